"""Rewards for restorer GRPO: plain functions ``(prompts, images, restored, references) -> list[float]``.

- ``prompts``: the edit instruction of each sample (``Diagnosis.to_prompt()`` of its input);
- ``images``: the degraded inputs [N,3,H,W] in 0..1 (each input repeated for its group);
- ``restored``: the samples [N,3,H,W] in 0..1;
- ``references``: the clean images [N,3,H,W] when known (synthetic data), else None.

A reward returns one number per sample, higher is better. GRPO normalises rewards within each group,
so only their order and spread inside a group matter, not their scale. Rewards that need settings (a
reasoner) are made by a factory. Add your own by passing ``--reward my.module:my_function[:weight]``
(a function, or a factory called with no arguments that returns one).

Built-in (``--reward NAME[:WEIGHT]``):

- ``severity``: severity reduction judged by a reasoner through :mod:`rnr.severity` (the paper's
  alignment reward): (severity before - severity after) / 100 on the combined scale;
- ``structure``: structure fidelity to the input (:func:`structure_fidelity`), which punishes
  structure drift (lost or moved edges, invented objects, over-smoothing) but not the contrast,
  colour and sharpness changes a restoration should make;
- ``reference_ssim``: SSIM to the clean reference (synthetic data only);
- ``brightness``, ``contrast``: mean brightness or RMS contrast of the result, toy rewards for tests and
  smoke runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from rnr.filters import gaussian_blur, rgb_to_luma
from rnr.metrics import ssim

from ..config import TrainingError

RewardFunction = Callable[[Sequence[str], torch.Tensor, torch.Tensor, "torch.Tensor | None"], list[float]]


def brightness(prompts: Sequence[str], images: torch.Tensor, restored: torch.Tensor,
               references: torch.Tensor | None = None) -> list[float]:
    """Mean value of each result (0..1): a toy reward whose optimum is obvious."""
    return restored.float().flatten(1).mean(1).tolist()


def contrast(prompts: Sequence[str], images: torch.Tensor, restored: torch.Tensor,
             references: torch.Tensor | None = None) -> list[float]:
    """RMS contrast (standard deviation of the luma) of each result: a toy reward."""
    return rgb_to_luma(restored.float()).flatten(1).std(1).tolist()


def _local_stats(x: torch.Tensor, y: torch.Tensor, sigma_px: float):
    mu_x, mu_y = gaussian_blur(x, sigma_px), gaussian_blur(y, sigma_px)
    var_x = (gaussian_blur(x * x, sigma_px) - mu_x ** 2).clamp_min(0)
    var_y = (gaussian_blur(y * y, sigma_px) - mu_y ** 2).clamp_min(0)
    cov = gaussian_blur(x * y, sigma_px) - mu_x * mu_y
    return var_x, var_y, cov


def structure_fidelity(prompts: Sequence[str], images: torch.Tensor, restored: torch.Tensor,
                       references: torch.Tensor | None = None, *, smooth_px: float = 1.5,
                       window_px: float = 3.0, constant: float = 4.5e-4) -> list[float]:
    """How well each result keeps the input's structure, about -1..1 (1: same structure).

    Both lumas are low-passed (gaussian ``smooth_px``) so that noise and thin streaks count little;
    then, in local gaussian windows (``window_px``), SSIM's structure term (correlation) is multiplied
    by a one-sided contrast term that only punishes *lost* local contrast (over-smoothing, erased
    detail). Global brightness, contrast gains, colour and sharpening are free, so a dehazed or
    deblurred result keeps a high score while a result whose edges moved or vanished does not.
    """
    x = gaussian_blur(rgb_to_luma(images.float()), smooth_px)
    y = gaussian_blur(rgb_to_luma(restored.float().to(images.device)), smooth_px)
    var_x, var_y, cov = _local_stats(x, y, window_px)
    sd_x, sd_y = var_x.sqrt(), var_y.sqrt()
    correlation = (cov + constant) / (sd_x * sd_y + constant)
    lost = (2 * sd_x * sd_y + 2 * constant) / (var_x + var_y + 2 * constant)
    kept = torch.where(sd_y < sd_x, lost, torch.ones_like(lost))
    return (correlation * kept).flatten(1).mean(1).tolist()


def reference_ssim(prompts: Sequence[str], images: torch.Tensor, restored: torch.Tensor,
                   references: torch.Tensor | None = None) -> list[float]:
    """SSIM of each result to its clean reference (needs references)."""
    if references is None:
        raise TrainingError("the reference_ssim reward needs clean references; the data has none (use it with "
                            "synthetic degradations only)")
    return ssim(restored.float(), references.float().to(restored.device)).tolist()


def severity_reduction(reasoner: Any) -> RewardFunction:
    """The paper's reward: how much the reasoner's combined severity drops from input to result, /100.

    ``reasoner`` is any object with ``diagnose(images) -> list[Diagnosis]`` (a loaded backend).
    """
    from rnr import severity as judge

    def severity(prompts: Sequence[str], images: torch.Tensor, restored: torch.Tensor,
                 references: torch.Tensor | None = None) -> list[float]:
        changes = judge.compare(images.float(), restored.float().clamp(0, 1), reasoner)
        return [float(change.reduction) / 100.0 for change in changes]

    return severity


def load_reasoner(backend: str, path: str = "", device: str = "auto", **options: Any) -> Any:
    """A reasoner through the shared model cache (e.g. ``lite``, ``classic``, ``qwen3vl`` with a path)."""
    from rnr import cache
    from rnr.registry import ModelSpec

    return cache.get(ModelSpec.make("reasoner", backend, path, device, **options))


BUILT_IN: dict[str, Callable[..., RewardFunction] | RewardFunction] = {
    "brightness": brightness,
    "contrast": contrast,
    "structure": structure_fidelity,
    "reference_ssim": reference_ssim,
}
FACTORIES = {"severity": severity_reduction}


def parse_reward(spec: str, reasoner: Callable[[], Any] | None = None) -> tuple[str, RewardFunction, float]:
    """``NAME[:WEIGHT]`` or ``module.path:function[:WEIGHT]`` -> (name, function, weight).

    ``reasoner`` is called (lazily, once) to build the reasoner a ``severity`` reward needs.
    """
    parts = spec.split(":")
    weight = 1.0
    if len(parts) > 1:
        try:
            weight = float(parts[-1])
            parts = parts[:-1]
        except ValueError:
            pass
    name = ":".join(parts)
    if name in BUILT_IN:
        return name, BUILT_IN[name], weight  # type: ignore[return-value]
    if name in FACTORIES:
        if reasoner is None:
            raise TrainingError(f"the {name} reward needs a reasoner; pass --reward-reasoner")
        return name, FACTORIES[name](reasoner()), weight
    if ":" not in name:
        raise TrainingError(f"unknown reward {name!r}: use one of {', '.join([*BUILT_IN, *FACTORIES])} or "
                            "module.path:function")
    module_name, function_name = name.split(":", 1)
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise TrainingError(f"reward {name!r} cannot be imported ({exc}); check the module path and function name") from None
    if getattr(function, "is_reward_factory", False):
        function = function()
    return name, function, weight


class CombinedReward:
    """The weighted sum of several rewards; ``last`` keeps each term's values of the last call."""

    def __init__(self, terms: list[tuple[str, RewardFunction, float]]) -> None:
        if not terms:
            raise TrainingError("GRPO needs at least one reward (--reward NAME[:WEIGHT])")
        self.terms = terms
        self.last: dict[str, list[float]] = {}

    def __call__(self, prompts: Sequence[str], images: torch.Tensor, restored: torch.Tensor,
                 references: torch.Tensor | None = None) -> list[float]:
        total = [0.0] * restored.shape[0]
        self.last = {}
        for name, function, weight in self.terms:
            values = [float(v) for v in function(prompts, images, restored, references)]
            if len(values) != restored.shape[0]:
                raise TrainingError(f"reward {name} returned {len(values)} values for {restored.shape[0]} samples")
            self.last[name] = values
            total = [t + weight * v for t, v in zip(total, values)]
        return total


def downscale_for_reward(images: torch.Tensor, max_side: int) -> torch.Tensor:
    """Images with their long side at most ``max_side`` (rewards on big images can be costly)."""
    height, width = images.shape[-2:]
    scale = max_side / max(height, width)
    if scale >= 1:
        return images
    size = (max(16, round(height * scale)), max(16, round(width * scale)))
    return F.interpolate(images.float(), size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


__all__ = ["BUILT_IN", "CombinedReward", "RewardFunction", "brightness", "contrast", "downscale_for_reward", "load_reasoner",
           "parse_reward", "reference_ssim", "severity_reduction", "structure_fidelity"]
