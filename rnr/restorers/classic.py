"""The classic restorer: a restoration chain with no learned weights, run in the order the diagnosis gives.

Each present degradation is removed by one step parameterised by its record (see
:mod:`rnr.restorers.classic_ops`): ``noise`` by sliding-DCT shrinkage at the diagnosed sigma,
``blur`` by TV deconvolution with the diagnosed kernel, ``rain`` by oriented streak removal along the
diagnosed angle and length, ``haze`` by the dark channel prior with the diagnosed airlight, scaled to
the diagnosed severity. Steps run in :meth:`Diagnosis.effective_order`, each blended with its input by
``strength``. Images that share a diagnosis are processed as one batch; images larger than
``max_untiled_pixels`` go tile by tile (:func:`rnr.tiling.tiled_apply`), so any size fits in memory.
Pure torch: it runs wherever the images are (CPU or GPU).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..devices import resolve_device
from ..diagnosis import Diagnosis
from ..errors import DiagnosisError, RnRError
from ..images import check_images
from ..reasoners.base import Progress
from ..registry import ModelSpec
from ..tiling import tiled_apply
from .classic_ops import STEPS, blur_kernel, denoise, estimate_model

Step = Callable[[torch.Tensor, object], torch.Tensor]

DEFAULT_TILE = 1024
DEFAULT_MAX_UNTILED_PIXELS = 2048 * 2048


def _tile_overlap(name: str, record: object, tile: int) -> tuple[int, int]:
    """(tile, overlap) in pixels for one step: the overlap covers the step's reach on each side."""
    if name == "blur":
        reach = 2 * blur_kernel(record).shape[-1] + 16
    elif name == "rain":
        reach = int(record.length_px / 2) + 24
    else:
        reach = 32
    overlap = 2 * reach
    return max(tile, 4 * overlap), overlap


class ClassicRestorer:
    """Restores images with classical, diagnosis-driven steps; see the module documentation.

    ``device`` is where the work runs (``"auto"``: a GPU when there is one); ``tile`` and
    ``max_untiled_pixels`` bound memory for large images; ``steps`` replaces step functions by name
    (``"noise"``, ``"blur"``, ``"rain"``, ``"haze"``) and exists for experiments and tests.
    """

    name = "classic"

    def __init__(self, device: str | torch.device | None = "auto", *, tile: int = DEFAULT_TILE,
                 max_untiled_pixels: int = DEFAULT_MAX_UNTILED_PIXELS, steps: dict[str, Step] | None = None) -> None:
        self.device = resolve_device(device)
        self.tile = int(tile)
        self.max_untiled_pixels = int(max_untiled_pixels)
        self.steps: dict[str, Step] = {**STEPS, **(steps or {})}

    def restore(self, images: torch.Tensor, diagnoses: list[Diagnosis], *, strength: float = 1.0, seed: int = 0,
                progress: Progress | None = None) -> torch.Tensor:
        """Restore a batch: float ``[B,3,H,W]`` in 0..1 in, the same shape, dtype and device out.

        ``diagnoses`` has one :class:`Diagnosis` per image. ``strength`` in 0..1 blends every step with
        its input (0 returns the input unchanged). ``seed`` is accepted for the protocol; the chain is
        deterministic. ``progress(done, total)`` is called after each step of each image and may raise
        :class:`rnr.errors.Interrupted`.
        """
        work = check_images(images)
        diagnoses = _check_diagnoses(diagnoses, work.shape[0])
        strength = _check_strength(strength)
        if strength == 0.0:
            return images.clone()
        work = work.to(self.device)

        groups: dict[Diagnosis, list[int]] = {}
        for index, diagnosis in enumerate(diagnoses):
            groups.setdefault(diagnosis, []).append(index)
        total = sum(len(d.effective_order()) for d in diagnoses)
        done = 0
        out = work.clone() if len(groups) > 1 else None
        for diagnosis, indices in groups.items():
            chunk = work[indices] if out is not None else work
            for name in diagnosis.effective_order():
                # Large images go tile by tile: report (unchanged) progress between tiles so that a
                # request to stop is honoured within one tile, not one whole step.
                between_tiles = None if progress is None else (lambda _d, _t, done=done: progress(done, total))
                restored = self._run_step(name, chunk, diagnosis.record(name), between_tiles)
                chunk = restored if strength == 1.0 else torch.lerp(chunk, restored, strength)
                done += len(indices)
                if progress is not None:
                    progress(done, total)
            if out is None:
                out = chunk
            else:
                out[indices] = chunk
        if out is work:
            out = out.clone()  # nothing to do: still never hand back the caller's own tensor
        return out.to(device=images.device, dtype=images.dtype)

    def _run_step(self, name: str, images: torch.Tensor, record: object,
                  between_tiles: Progress | None) -> torch.Tensor:
        step = self.steps[name]
        height, width = images.shape[-2:]
        # Dehazing fits its model at working resolution and is pointwise at full size: never tiled.
        if height * width <= self.max_untiled_pixels or name == "haze":
            return step(images, record).clamp(0.0, 1.0)
        tile, overlap = _tile_overlap(name, record, self.tile)
        run = lambda piece: step(piece, record)
        if name == "noise" and step is STEPS["noise"]:
            # One noise model for the whole image, so that every tile is denoised alike.
            model = estimate_model(images, record)
            run = lambda piece: denoise(piece, record, model=model)
        return tiled_apply(run, images, tile=tile, overlap=overlap, progress=between_tiles).clamp(0.0, 1.0)


def _check_diagnoses(diagnoses: object, batch: int) -> list[Diagnosis]:
    if isinstance(diagnoses, Diagnosis):
        raise DiagnosisError("diagnoses", f"a list of {batch} Diagnosis objects, one per image", "a single Diagnosis",
                             "Wrap it in a list: [diagnosis] (repeat it for every image of the batch).")
    if not isinstance(diagnoses, (list, tuple)):
        raise DiagnosisError("diagnoses", f"a list of {batch} Diagnosis objects, one per image",
                             type(diagnoses).__name__)
    if len(diagnoses) != batch:
        raise DiagnosisError("diagnoses", f"{batch} Diagnosis objects, one per image of the batch",
                             f"{len(diagnoses)} diagnoses", "Diagnose every image, or pass the same one repeated.")
    for i, diagnosis in enumerate(diagnoses):
        if not isinstance(diagnosis, Diagnosis):
            raise DiagnosisError(f"diagnoses[{i}]", "a Diagnosis (use Diagnosis.from_json for JSON text)",
                                 type(diagnosis).__name__)
    return list(diagnoses)


def _check_strength(strength: object) -> float:
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not math.isfinite(strength) \
            or not 0.0 <= strength <= 1.0:
        raise RnRError(f"strength must be a number in 0..1 (0 = leave the image as it is, 1 = full restoration), "
                       f"got {strength!r}")
    return float(strength)


def load(spec: ModelSpec) -> ClassicRestorer:
    """The registry entry point: a :class:`ClassicRestorer` on the spec's device (no weights to load).

    Options: ``tile`` (pixels) and ``max_untiled_pixels``.
    """
    return ClassicRestorer(device=spec.device, tile=spec.option("tile", DEFAULT_TILE),
                           max_untiled_pixels=spec.option("max_untiled_pixels", DEFAULT_MAX_UNTILED_PIXELS))
