"""Degrade a batch by any mixture and return the ground-truth Diagnosis of every image.

Degradations are applied in the order of image formation: haze (in the atmosphere, over the clean
scene and its depth), rain (in front of the scene), blur (camera and lens), noise (sensor).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ..diagnosis import DEFAULT_ORDER, Blur, Diagnosis, Haze, Noise, Rain, calibration
from ..errors import ImageError
from . import blur as blur_model
from . import haze as haze_model
from . import noise as noise_model
from . import rain as rain_model
from .depth import normalise_given_depth
from .params import AppliedParams, BlurParams, DegradeError, HazeParams, NoiseParams, RainParams
from .seeding import make_streams

MIN_SIDE = 16
PARAM_TYPES = {"haze": HazeParams, "rain": RainParams, "noise": NoiseParams, "blur": BlurParams}
FORMATION_ORDER: tuple[str, ...] = ("haze", "rain", "blur", "noise")

Spec = int | float | HazeParams | RainParams | NoiseParams | BlurParams | None


@dataclass(frozen=True)
class DegradeResult:
    """Degraded images [B,3,H,W] (float32, 0..1), their ground-truth diagnoses and applied parameters."""

    images: torch.Tensor
    diagnoses: list[Diagnosis]
    params: list[AppliedParams] = field(default_factory=list)
    seed: int = 0


def check_images(images: object) -> torch.Tensor:
    """The batch as float32 [B,3,H,W] in 0..1, or an :class:`~rnr.errors.ImageError` saying what is wrong."""
    if not isinstance(images, torch.Tensor):
        raise ImageError(f"images: expected a torch tensor [B,3,H,W], got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ImageError(f"images: expected shape [B,3,H,W] (RGB, channels first), got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ImageError(f"images: expected floating point values in 0..1, got dtype {images.dtype}; "
                         "divide 8-bit images by 255")
    if images.shape[0] == 0 or min(images.shape[-2:]) < MIN_SIDE:
        raise ImageError(f"images: expected at least one image of at least {MIN_SIDE}x{MIN_SIDE} pixels, "
                         f"got shape {tuple(images.shape)}")
    images = images.detach().float()
    low, high = (float(v) for v in torch.aminmax(images))
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ImageError("images: found NaN or infinite values; clean the input first")
    if low < -1e-3 or high > 1.0 + 1e-3:
        raise ImageError(f"images: expected values in 0..1, found {low:.4g}..{high:.4g}; rescale the input")
    return images if 0.0 <= low and high <= 1.0 else images.clamp(0.0, 1.0)


def _per_image(name: str, spec: object, batch: int) -> list[Spec]:
    """One spec per image from None, a severity, a params object, or a sequence of those."""
    if isinstance(spec, (list, tuple)):
        if len(spec) != batch:
            raise DegradeError(f"{name}: expected one value per image ({batch}), got a sequence of {len(spec)}")
        return [_check_spec(name, s) for s in spec]
    return [_check_spec(name, spec)] * batch


def _check_spec(name: str, spec: object) -> Spec:
    if spec is None or isinstance(spec, PARAM_TYPES[name]):
        return spec
    if isinstance(spec, bool) or not isinstance(spec, (int, float)) or not math.isfinite(spec):
        raise DegradeError(f"{name}: expected None, a severity 0..100 or {PARAM_TYPES[name].__name__}, got {spec!r}")
    if not 0 <= spec <= 100:
        raise DegradeError(f"{name}: expected a severity in 0..100, got {spec!r}")
    return None if spec == 0 else spec


def _reasoning(diagnosis: Diagnosis, applied: AppliedParams, seed: int) -> str:
    parts = [f"Ground truth from rnr.degrade (seed {seed})."]
    if applied.haze is not None:
        h = diagnosis.haze
        parts.append(f"Haze: mean transmission {h.transmission:.3f} over a {applied.haze.depth_model} depth map, "
                     f"airlight ({', '.join(f'{v:.2f}' for v in h.atmospheric_light)}).")
    if applied.rain is not None:
        r = applied.rain
        parts.append(f"Rain: {r.layers} layer(s) of streaks at {r.angle_deg:.0f} deg from vertical, "
                     f"about {diagnosis.rain.length_px:.0f} px long and {r.width_px:.1f} px wide, "
                     f"density {diagnosis.rain.density:.4f}, {r.blend} blend.")
    if applied.blur is not None:
        b = applied.blur
        shape = f"{b.path} motion at {b.angle_deg:.0f} deg" if b.kind == "motion" else b.kind
        parts.append(f"Blur: {shape}, extent {b.extent_px:.1f} px.")
    if applied.noise is not None:
        n = applied.noise
        parts.append(f"Noise: {n.kind} (poisson share {n.poisson_fraction:.2f}, channel correlation "
                     f"{n.channel_correlation:.2f}, spatial sigma {n.spatial_sigma_px:.2f} px), "
                     f"sigma {n.sigma_255:.1f}/255 at mid-grey.")
    if len(parts) == 1:
        parts.append("Clean image: no degradation applied.")
    return " ".join(parts)


def degrade(images: torch.Tensor, *, haze: object = None, rain: object = None, noise: object = None,
            blur: object = None, seed: int = 0, depth: torch.Tensor | None = None, scene: str = "") -> DegradeResult:
    """Degrade a batch [B,3,H,W] (0..1, any device) and return the images with their ground truth.

    Each of ``haze``, ``rain``, ``noise`` and ``blur`` is None or 0 (absent), a severity 1..100 on the
    :mod:`rnr.diagnosis.calibration` scale, a params dataclass (``HazeParams`` ...; its None fields are
    drawn from the seed), or a sequence of those with one entry per image. Free parameters differ from
    image to image and are reproducible from ``seed``. ``depth`` ([B,1,H,W], [B,H,W] or [H,W], larger
    is farther) drives the haze; without it a random smooth depth map is drawn. The diagnoses report
    severities of the parameters actually applied (measured mean transmission and streak coverage).
    """
    images = check_images(images)
    batch, _, height, width = images.shape
    device = images.device
    specs = {"haze": _per_image("haze", haze, batch), "rain": _per_image("rain", rain, batch),
             "noise": _per_image("noise", noise, batch), "blur": _per_image("blur", blur, batch)}
    depth_maps = normalise_given_depth(depth, batch, height, width, device) if depth is not None else None
    if depth is None and any(isinstance(s, HazeParams) and s.depth_model == "given" for s in specs["haze"]):
        raise DegradeError("haze: depth_model 'given' needs a depth map; pass depth=... to degrade or choose "
                           "another depth_model")

    out = images
    resolved: dict[str, list] = {name: [None] * batch for name in FORMATION_ORDER}
    records: dict[str, list] = {"haze": [Haze()] * batch, "rain": [Rain()] * batch,
                                "noise": [Noise()] * batch, "blur": [Blur()] * batch}
    for name in FORMATION_ORDER:
        chosen = [i for i in range(batch) if specs[name][i] is not None]
        if not chosen:
            continue
        streams = make_streams(seed, name, device)
        if name == "haze":
            params = [haze_model.resolve(specs[name][i], streams, depth_maps is not None) for i in chosen]
        elif name == "rain":
            params = [rain_model.resolve(specs[name][i], streams, height, width) for i in chosen]
        elif name == "noise":
            params = [noise_model.resolve(specs[name][i], streams) for i in chosen]
        else:
            params = [blur_model.resolve(specs[name][i], streams) for i in chosen]
        every = len(chosen) == batch
        index = torch.tensor(chosen, device=device)
        subset = out if every else out.index_select(0, index)
        if name == "haze":
            given = depth_maps.index_select(0, index) if depth_maps is not None else None
            subset, new_records = haze_model.apply(subset, params, streams, given)
        elif name == "rain":
            subset, new_records = rain_model.apply(subset, params, streams)
        elif name == "noise":
            subset, new_records = noise_model.apply(subset, params, streams)
        else:
            subset, new_records = blur_model.apply(subset, params, streams)
        out = subset if every else out.index_copy(0, index, subset)
        for j, i in enumerate(chosen):
            resolved[name][i] = params[j]
            records[name][i] = new_records[j]

    diagnoses, applied_list = [], []
    for i in range(batch):
        applied = AppliedParams(haze=resolved["haze"][i], rain=resolved["rain"][i],
                                noise=resolved["noise"][i], blur=resolved["blur"][i])
        diagnosis = Diagnosis(haze=records["haze"][i], rain=records["rain"][i], noise=records["noise"][i],
                              blur=records["blur"][i], scene=scene, source="ground_truth")
        diagnosis = diagnosis.replace(order=tuple(n for n in DEFAULT_ORDER if getattr(diagnosis, n).present),
                                      reasoning=_reasoning(diagnosis, applied, seed))
        diagnoses.append(diagnosis)
        applied_list.append(applied)
    return DegradeResult(images=out, diagnoses=diagnoses, params=applied_list, seed=int(seed))


def random_degrade(images: torch.Tensor, *, seed: int, types: Sequence[str] = ("haze", "rain", "noise", "blur"),
                   p_clean: float = 0.1, max_mix: int = 3,
                   severity_range: tuple[int, int] = (calibration.MIN_SYNTH_SEVERITY, 100),
                   depth: torch.Tensor | None = None, scene: str = "") -> DegradeResult:
    """Degrade each image by a random mixture: clean with probability ``p_clean``, otherwise 1..``max_mix``
    of ``types`` (singles most often, then pairs, then triples) at severities drawn uniformly from
    ``severity_range`` (inclusive), every free parameter drawn from ``seed``."""
    images = check_images(images)
    unknown = [t for t in types if t not in PARAM_TYPES]
    if not types or unknown:
        raise DegradeError(f"types: expected a non-empty selection of {', '.join(PARAM_TYPES)}, got {tuple(types)!r}")
    types = tuple(dict.fromkeys(types))
    if not 0.0 <= p_clean <= 1.0:
        raise DegradeError(f"p_clean: expected a probability in 0..1, got {p_clean!r}")
    if isinstance(max_mix, bool) or not isinstance(max_mix, int) or max_mix < 1:
        raise DegradeError(f"max_mix: expected an integer >= 1, got {max_mix!r}")
    low, high = severity_range
    if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high <= 100):
        raise DegradeError(f"severity_range: expected integers 1 <= low <= high <= 100, got {severity_range!r}")
    streams = make_streams(seed, "mix", torch.device("cpu"))
    mix_sizes = tuple(range(1, min(max_mix, len(types)) + 1))
    mix_weights = tuple((0.5, 0.3, 0.2, 0.1)[k - 1] if k <= 4 else 0.05 for k in mix_sizes)
    specs: dict[str, list] = {name: [None] * images.shape[0] for name in PARAM_TYPES}
    for i in range(images.shape[0]):
        if streams.uniform() < p_clean:
            continue
        size = streams.choice(mix_sizes, mix_weights)
        order = torch.randperm(len(types), generator=streams.params).tolist()
        for t in order[:size]:
            specs[types[t]][i] = streams.integer(low, high)
    return degrade(images, haze=specs["haze"], rain=specs["rain"], noise=specs["noise"], blur=specs["blur"],
                   seed=seed, depth=depth, scene=scene)
