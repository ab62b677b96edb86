"""RnR Reasoner Loader and RnR Restorer Loader: pick a backend and a model, get a handle.

A handle holds only a :class:`~rnr.registry.ModelSpec`; the model itself loads lazily through
:mod:`rnr.cache` when a node first uses it, so two nodes with equal settings share one copy and a
model freed from the ComfyUI menu simply loads again on its next use.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from typing import Any

import torch

from rnr import api, cache, registry
from rnr.errors import BackendError, ModelNotFoundError, RnRError
from rnr.registry import ModelSpec

from . import _comfy

CATEGORY = "RnR/loaders"
BUILT_IN = "(built-in)"
DTYPES = ["auto", "fp32", "fp16", "bf16"]
_FOLDERS = {"reasoner": "reasoners", "restorer": "restorers"}
_MODEL_SUFFIXES = (".safetensors",)


@dataclass(frozen=True)
class ModelHandle:
    """What an RNR_REASONER / RNR_RESTORER wire carries: a spec, loaded through the shared cache."""

    spec: ModelSpec

    def load(self) -> Any:
        return cache.get(self.spec)

    def __str__(self) -> str:
        return f"{self.spec.kind} {self.spec.backend} ({self.spec.path or BUILT_IN}, {self.spec.device})"


def device_choices() -> list[str]:
    choices = ["auto", "cpu"]
    if torch.cuda.is_available():
        choices += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        choices.append("mps")
    return choices


COMFY_SPLIT_FILES = {"restorer": ("diffusion_models", ("qwen_image_edit", "qwen-image-edit"))}
"""Model files users already keep in ComfyUI's own folders that a restorer backend can load
(qwen_image_edit loads ComfyUI's split files); listed as ``<folder>/<file>``."""


def _split_files(kind: str) -> dict[str, str]:
    if kind not in COMFY_SPLIT_FILES:
        return {}
    folder, stems = COMFY_SPLIT_FILES[kind]
    return {f"{folder}/{name}": path for name, path in _comfy.comfy_model_files(folder).items()
            if any(stem in name.lower() for stem in stems)}


def model_choices(kind: str) -> list[str]:
    """``(built-in)``, every model file or folder under the registered folders, then usable files
    from ComfyUI's own model folders."""
    names: list[str] = []
    for folder in _comfy.model_folders(_FOLDERS[kind]):
        if not os.path.isdir(folder):
            continue
        for entry in sorted(os.listdir(folder)):
            full = os.path.join(folder, entry)
            if entry.startswith("."):
                continue
            is_model = os.path.isdir(full) or entry.lower().endswith(_MODEL_SUFFIXES)
            if is_model and entry not in names:
                names.append(entry)
    return [BUILT_IN] + names + sorted(_split_files(kind))


def resolve_model_path(kind: str, model: str) -> str:
    """The absolute path of a model chosen in the combo ('' for built-in weights)."""
    if model in ("", BUILT_IN):
        return ""
    if os.path.isabs(model) and os.path.exists(model):
        return model
    split = _split_files(kind)
    if model in split:
        return split[model]
    searched = _comfy.model_folders(_FOLDERS[kind])
    for folder in searched:
        candidate = os.path.join(folder, model)
        if os.path.exists(candidate):
            return os.path.abspath(candidate)
    raise ModelNotFoundError(
        f"{kind} model {model!r} was not found; searched {', '.join(searched) or '(no model folder)'}. "
        f"Put the model file or folder in ComfyUI/models/rnr/{_FOLDERS[kind]}/ and press R to refresh, "
        f"or pick {BUILT_IN}")


def parse_options(text: str) -> dict[str, Any]:
    """Backend options from the loader's JSON text ('' means none). Names and values are checked by
    :class:`~rnr.registry.ModelSpec` against the backend's options table (docs/backend_options.md)."""
    if not text or not text.strip():
        return {}
    try:
        options = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RnRError(f"options: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
                       'write an object such as {"attn_implementation": "sdpa"} or leave it empty') from None
    if not isinstance(options, dict):
        raise RnRError(f"options: expected a JSON object like {{\"key\": value}}, got {type(options).__name__}")
    return options


def make_spec(kind: str, backend: str, model: str = BUILT_IN, dtype: str = "auto", device: str = "auto",
              options: str = "") -> ModelSpec:
    """The spec a loader node with these widget values names (also used for the defaults)."""
    if backend not in registry.available(kind):
        raise BackendError(f"unknown {kind} backend {backend!r}; available: {', '.join(registry.available(kind))}")
    if dtype not in DTYPES:
        raise RnRError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    return ModelSpec.make(kind, backend, resolve_model_path(kind, model), _comfy.resolve_auto_device(device),
                          dtype, **parse_options(options))


def check_importable(spec: ModelSpec) -> None:
    """Import the backend's module now, so a missing dependency shows on the loader node."""
    try:
        importlib.import_module(registry.KINDS[spec.kind][spec.backend])
    except ImportError as exc:
        raise BackendError(f"the {spec.kind} backend {spec.backend!r} cannot be imported ({exc}); install its "
                           f"extra dependencies (see the README) or pick another backend: "
                           f"{', '.join(registry.available(spec.kind))}") from None


def default_handle(kind: str) -> ModelHandle:
    """The handle an unconnected reasoner/restorer input stands for."""
    return ModelHandle(make_spec(kind, api.default_backend(kind)))


def handle_or_default(handle: object, kind: str, name: str) -> ModelHandle:
    if handle is None:
        return default_handle(kind)
    if not isinstance(handle, ModelHandle) or handle.spec.kind != kind:
        wire = "RNR_REASONER" if kind == "reasoner" else "RNR_RESTORER"
        raise RnRError(f"input '{name}' must be an {wire} from the RnR {kind.title()} Loader, "
                       f"got {type(handle).__name__}")
    return handle


def _loader_inputs(kind: str) -> dict:
    default_backend = api.default_backend(kind)
    return {
        "required": {
            "backend": (registry.available(kind), {
                "default": default_backend,
                "tooltip": f"Which {kind} to use. 'classic' needs no model file; 'lite' uses the small built-in "
                           "networks; the big-model backends need their model in ComfyUI/models/rnr/"
                           f"{_FOLDERS[kind]}/."}),
            "model": (model_choices(kind), {
                "default": BUILT_IN,
                "tooltip": f"Model file or folder from ComfyUI/models/rnr/{_FOLDERS[kind]}/ "
                           f"({BUILT_IN} for backends that ship their weights or need none)"
                           + (". Qwen-Image-Edit files in models/diffusion_models/ are listed too."
                              if kind == "restorer" else ".")}),
            "dtype": (DTYPES, {
                "default": "auto",
                "tooltip": "Weight precision. auto = bf16/fp16 on a GPU, fp32 on the CPU."}),
            "device": (device_choices(), {
                "default": "auto",
                "tooltip": "Where the model runs. auto = the device ComfyUI uses."}),
        },
        "optional": {
            "options": ("STRING", {
                "default": "", "multiline": False,
                "tooltip": 'Backend options as a JSON object, e.g. {"attn_implementation": "sdpa"}; '
                           "empty for none. Each backend's options are listed in docs/backend_options.md "
                           "(in this node pack's folder)."}),
        },
    }


class RnRReasonerLoader:
    DESCRIPTION = ("Chooses the reasoner that diagnoses images (haze, rain, noise, blur). The model loads "
                   "once, on first use, and is shared by every node using the same settings.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("RNR_REASONER",)
    RETURN_NAMES = ("reasoner",)
    OUTPUT_TOOLTIPS = ("A reasoner handle for RnR Reason, RnR Restore and RnR Severity Score.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return _loader_inputs("reasoner")

    def load(self, backend: str, model: str, dtype: str, device: str, options: str = "") -> tuple[ModelHandle]:
        spec = make_spec("reasoner", backend, model, dtype, device, options)
        check_importable(spec)
        return (ModelHandle(spec),)


class RnRRestorerLoader:
    DESCRIPTION = ("Chooses the restorer that removes degradations as a diagnosis says. The model loads once, "
                   "on first use, and is shared by every node using the same settings.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("RNR_RESTORER",)
    RETURN_NAMES = ("restorer",)
    OUTPUT_TOOLTIPS = ("A restorer handle for RnR Restore.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return _loader_inputs("restorer")

    def load(self, backend: str, model: str, dtype: str, device: str, options: str = "") -> tuple[ModelHandle]:
        spec = make_spec("restorer", backend, model, dtype, device, options)
        check_importable(spec)
        return (ModelHandle(spec),)


NODE_CLASS_MAPPINGS = {"RnRReasonerLoader": RnRReasonerLoader, "RnRRestorerLoader": RnRRestorerLoader}
NODE_DISPLAY_NAME_MAPPINGS = {"RnRReasonerLoader": "RnR Reasoner Loader", "RnRRestorerLoader": "RnR Restorer Loader"}
