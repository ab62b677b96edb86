"""Plain functions for scripts and notebooks: load models, diagnose, restore, score, degrade.

Every function accepts images as a float tensor [B,3,H,W] or [3,H,W] (0..1), a PIL image, a numpy
array (H,W[,C] or B,H,W,C; uint8 0..255, uint16 0..65535 or float 0..1), a file path, or a list of
any of those (of any sizes). Models are named by backend (``"classic"``, ``"lite"``, ...) or passed
as loaded objects; names load through :func:`rnr.cache.get`, so each model loads once per process.

>>> import rnr
>>> diagnoses = rnr.diagnose("photo.jpg")
>>> restored = rnr.restore("photo.jpg", diagnoses)
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from PIL import Image

from . import cache, registry
from .diagnosis import Diagnosis, from_dict, from_json
from .errors import DiagnosisError, ImageError
from .images import check_images, load_image, pil_to_tensor
from .reasoners.base import Progress
from .registry import ModelSpec

ImageInput = Union[torch.Tensor, Image.Image, np.ndarray, str, os.PathLike]
Images = Union[ImageInput, Sequence[ImageInput]]
DiagnosisInput = Union[Diagnosis, dict, str]

DEFAULT_PREFERENCE: dict[str, tuple[str, ...]] = {"reasoner": ("lite", "classic"), "restorer": ("lite", "classic")}
"""Backends that ``"auto"`` tries in turn: the first whose weights are installed wins."""
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


# ---- backends --------------------------------------------------------------------------------------
def default_backend(kind: str) -> str:
    """The backend ``"auto"`` means for ``kind`` (``"reasoner"`` or ``"restorer"``): ``lite`` when its
    shipped weights are present, else ``classic`` (which needs none). The one place this is decided."""
    for name in DEFAULT_PREFERENCE[kind]:
        if name in registry.available(kind) and _weights_installed(kind, name):
            return name
    return "classic"


def _weights_installed(kind: str, name: str) -> bool:
    """Whether a backend can run with no path given. A backend module may answer with a
    ``weights_available()`` function; otherwise ``rnr/weights/<name>_<kind>*.safetensors`` must exist."""
    if name == "classic":
        return True
    module_name = registry.KINDS[kind][name]
    try:
        if importlib.util.find_spec(module_name) is None:
            return False
        module = importlib.import_module(module_name)
    except ImportError:
        return False
    check = getattr(module, "weights_available", None)
    if callable(check):
        return bool(check())
    return any(WEIGHTS_DIR.glob(f"{name}_{kind}*.safetensors"))


def resolve_backend(kind: str, name: str | None) -> str:
    """A backend name with ``"auto"``/``""``/None replaced by :func:`default_backend`."""
    return default_backend(kind) if name in (None, "", "auto", "default") else str(name)


def model_spec(kind: str, name: str | None = "auto", path: str = "", device: str = "auto", dtype: str = "auto",
               **options: Any) -> ModelSpec:
    """The :class:`ModelSpec` that :func:`load_reasoner`/:func:`load_restorer` load."""
    return ModelSpec.make(kind, resolve_backend(kind, name), path, device, dtype, **options)


def load_reasoner(name: str = "auto", path: str = "", device: str = "auto", dtype: str = "auto", **options: Any):
    """The reasoner backend ``name`` (``"auto"``: see :func:`default_backend`), loaded once and cached."""
    return cache.get(model_spec("reasoner", name, path, device, dtype, **options))


def load_restorer(name: str = "auto", path: str = "", device: str = "auto", dtype: str = "auto", **options: Any):
    """The restorer backend ``name`` (``"auto"``: see :func:`default_backend`), loaded once and cached."""
    return cache.get(model_spec("restorer", name, path, device, dtype, **options))


def _reasoner(reasoner: Any):
    return load_reasoner() if reasoner is None else load_reasoner(reasoner) if isinstance(reasoner, str) else reasoner


def _restorer(restorer: Any):
    return load_restorer() if restorer is None else load_restorer(restorer) if isinstance(restorer, str) else restorer


# ---- inputs ----------------------------------------------------------------------------------------
def to_batch(image: ImageInput) -> torch.Tensor:
    """One input (tensor, PIL image, numpy array or path) as a validated float32 batch [B,3,H,W] in 0..1.

    Alpha channels are dropped (use :func:`rnr.images.load_image` to keep them).
    """
    if isinstance(image, torch.Tensor):
        return check_images(image)
    if isinstance(image, (str, os.PathLike)):
        return load_image(image).tensor
    if isinstance(image, Image.Image):
        return check_images(pil_to_tensor(image)[0], "PIL image")
    if isinstance(image, np.ndarray):
        return check_images(_numpy_to_tensor(image), "numpy image")
    raise ImageError(f"cannot use a {type(image).__name__} as an image; pass a torch tensor [B,3,H,W], a PIL image, "
                     "a numpy array (H,W,C) or a file path")


def _numpy_to_tensor(array: np.ndarray) -> torch.Tensor:
    """numpy H,W / H,W,C / B,H,W,C (channels last, as PIL, OpenCV-after-BGR2RGB and ComfyUI use) -> [B,3,H,W]."""
    shape = list(array.shape)
    if array.dtype == np.uint8:
        values = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        values = array.astype(np.float32) / 65535.0
    elif np.issubdtype(array.dtype, np.floating):
        values = array.astype(np.float32)
    elif array.dtype == np.bool_:
        values = array.astype(np.float32)
    else:
        raise ImageError(f"numpy image has dtype {array.dtype}; use uint8 (0..255), uint16 (0..65535) or float (0..1)")
    if values.ndim == 2:
        values = values[..., None]
    if values.ndim == 3:
        values = values[None]
    if values.ndim != 4 or values.shape[-1] not in (1, 3, 4):
        raise ImageError(f"numpy image has shape {shape}; expected (H,W), (H,W,C) or (B,H,W,C) with C = 1, 3 or 4 "
                         "(channels last)")
    tensor = torch.from_numpy(np.ascontiguousarray(values)).permute(0, 3, 1, 2)
    if tensor.shape[1] == 1:
        tensor = tensor.expand(-1, 3, -1, -1)
    return tensor[:, :3].contiguous()


def _as_items(images: Images) -> tuple[list[torch.Tensor], bool]:
    """(batches, given_as_list): a list or tuple gives one batch per element, anything else one batch."""
    if isinstance(images, (list, tuple)):
        if not images:
            raise ImageError("no images given: the list is empty")
        return [to_batch(item) for item in images], True
    return [to_batch(images)], False


def _as_diagnoses(diagnoses: Any, count: int) -> list[Diagnosis]:
    """Diagnoses for ``count`` images from one Diagnosis/dict/JSON text (shared by all) or one per image."""
    if isinstance(diagnoses, (Diagnosis, dict, str, bytes)):
        return [_as_diagnosis(diagnoses)] * count
    items = list(diagnoses)
    if len(items) == 1:
        return [_as_diagnosis(items[0])] * count
    if len(items) != count:
        raise DiagnosisError("$", f"one diagnosis for all images or one per image ({count})",
                             f"{len(items)} diagnoses")
    return [_as_diagnosis(item) for item in items]


def _as_diagnosis(value: Any) -> Diagnosis:
    if isinstance(value, Diagnosis):
        return value
    if isinstance(value, dict):
        return from_dict(value)
    if isinstance(value, (str, bytes)):
        return from_json(value)
    raise DiagnosisError("$", "a Diagnosis, a dict or Diagnosis JSON text", type(value).__name__)


class _Steps:
    """Maps the progress of each model call onto one overall count of image-steps."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0

    def inner(self, size: int) -> Progress | None:
        if self.progress is None:
            return None
        base = self.done

        def report(done: int, total: int) -> None:
            self.progress(base + (size * done) // max(total, 1), self.total)

        return report

    def advance(self, size: int) -> None:
        self.done += size
        if self.progress is not None:
            self.progress(self.done, self.total)


# ---- the steps -------------------------------------------------------------------------------------
def diagnose(images: Images, reasoner: Any = None, progress: Progress | None = None) -> list[Diagnosis]:
    """One :class:`Diagnosis` per image. ``reasoner`` is a backend name, a loaded reasoner or None (auto)."""
    items, _ = _as_items(images)
    model = _reasoner(reasoner)
    steps = _Steps(progress, sum(len(item) for item in items))
    return _diagnose_items(model, items, steps)


def _diagnose_items(model: Any, items: list[torch.Tensor], steps: _Steps) -> list[Diagnosis]:
    diagnoses: list[Diagnosis] = []
    for item in items:
        diagnoses.extend(model.diagnose(item, progress=steps.inner(len(item))))
        steps.advance(len(item))
    return diagnoses


def restore(images: Images, diagnoses: Any = None, restorer: Any = None, reasoner: Any = None,
            strength: float = 1.0, seed: int = 0, progress: Progress | None = None):
    """Restore images guided by their diagnoses (reasoned with ``reasoner`` when ``diagnoses`` is None).

    ``diagnoses`` is one Diagnosis (or its dict or JSON) for every image, or one per image. Returns a
    tensor [B,3,H,W] for a single input, or a list of tensors (one per element) for a list input.
    """
    items, as_list = _as_items(images)
    count = sum(len(item) for item in items)
    steps = _Steps(progress, count * (2 if diagnoses is None else 1))
    if diagnoses is None:
        found = _diagnose_items(_reasoner(reasoner), items, steps)
    else:
        found = _as_diagnoses(diagnoses, count)
    model = _restorer(restorer)
    outputs, start = [], 0
    for item in items:
        batch_diagnoses = found[start:start + len(item)]
        outputs.append(model.restore(item, batch_diagnoses, strength=strength, seed=seed,
                                     progress=steps.inner(len(item))))
        steps.advance(len(item))
        start += len(item)
    return outputs if as_list else outputs[0]


def score(images: Images, reasoner: Any = None) -> list:
    """A :class:`rnr.severity.SeverityReport` per image: how degraded it looks to ``reasoner``."""
    from . import severity

    items, _ = _as_items(images)
    model = _reasoner(reasoner)
    return [report for item in items for report in severity.score(item, model)]


def compare(before: Images, after: Images, reasoner: Any = None) -> list:
    """Per image, the severity change from ``before`` to ``after`` (see :func:`rnr.severity.compare`)."""
    from . import severity

    before_items, _ = _as_items(before)
    after_items, _ = _as_items(after)
    if [len(b) for b in before_items] != [len(a) for a in after_items]:
        raise ImageError(f"compare needs as many 'after' images as 'before' images; got "
                         f"{sum(len(a) for a in after_items)} and {sum(len(b) for b in before_items)}")
    model = _reasoner(reasoner)
    return [delta for b, a in zip(before_items, after_items) for delta in severity.compare(b, a, model)]


def degrade_image(images: Images, *, haze: Any = None, rain: Any = None, noise: Any = None, blur: Any = None,
                  seed: int = 0, **options: Any):
    """Degrade images with known parameters: returns (degraded, ground-truth diagnoses).

    ``haze``/``rain``/``noise``/``blur`` are severities 1..100 or parameter objects of
    :mod:`rnr.degrade` (None = absent). A single input returns a tensor [B,3,H,W]; a list input a
    list of tensors; the diagnoses are one list over all images.
    """
    from .degrade import degrade

    items, as_list = _as_items(images)
    outputs, diagnoses = [], []
    for index, item in enumerate(items):
        result = degrade(item, haze=haze, rain=rain, noise=noise, blur=blur, seed=seed + index, **options)
        outputs.append(result.images)
        diagnoses.extend(result.diagnoses)
    return (outputs if as_list else outputs[0]), diagnoses


def run_pipeline(images: Images, reasoner: Any = None, restorer: Any = None, strength: float = 1.0, seed: int = 0,
                 progress: Progress | None = None):
    """Reason -> Restore -> SeverityScore: returns (restored, diagnoses, severity deltas per image)."""
    model = _reasoner(reasoner)
    items, as_list = _as_items(images)
    source: Images = items if as_list else items[0]
    diagnoses = diagnose(source, model)
    restored = restore(source, diagnoses, restorer=restorer, strength=strength, seed=seed, progress=progress)
    deltas = compare(source, restored, model)
    return restored, diagnoses, deltas


__all__ = ["DEFAULT_PREFERENCE", "compare", "default_backend", "degrade_image", "diagnose", "load_reasoner",
           "load_restorer", "model_spec", "resolve_backend", "restore", "run_pipeline", "score", "to_batch"]
