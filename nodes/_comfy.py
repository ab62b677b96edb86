"""The few ComfyUI services the nodes use, imported lazily so that the nodes also run without ComfyUI.

Outside ComfyUI (tests, scripts) every function here degrades gracefully: no progress bar, no
interruption, no model folders beyond ``$RNR_MODELS_DIR``, and ``"auto"`` devices stay ``"auto"``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable, Iterator
from types import ModuleType

from rnr.errors import Interrupted


def comfy_module(name: str) -> ModuleType | None:
    """A ComfyUI module (``"comfy.utils"``, ``"folder_paths"``, ...) or None outside ComfyUI."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def in_comfyui() -> bool:
    return comfy_module("comfy.model_management") is not None and comfy_module("folder_paths") is not None


def progress_callback() -> Callable[[int, int], None]:
    """A ``progress(done, total)`` for rnr backends: ComfyUI's progress bar and its Cancel button.

    It raises :class:`rnr.errors.Interrupted` when the user cancels; :func:`comfy_interrupts` turns
    that back into ComfyUI's own interruption so the UI shows "interrupted", not an error.
    """
    utils = comfy_module("comfy.utils")
    management = comfy_module("comfy.model_management")
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if utils is not None:
            if bar is None:
                bar = utils.ProgressBar(max(1, int(total)))
            bar.update_absolute(int(done), max(1, int(total)))
        if management is not None and management.processing_interrupted():
            raise Interrupted("cancelled from the ComfyUI queue")

    return progress


@contextlib.contextmanager
def comfy_interrupts() -> Iterator[None]:
    """Re-raise :class:`rnr.errors.Interrupted` as ComfyUI's ``InterruptProcessingException``."""
    try:
        yield
    except Interrupted:
        management = comfy_module("comfy.model_management")
        if management is None:
            raise
        # Reset ComfyUI's flag and raise its own exception, as its samplers do.
        management.throw_exception_if_processing_interrupted()
        raise management.InterruptProcessingException() from None


def resolve_auto_device(device: str) -> str:
    """Inside ComfyUI, ``"auto"`` means ComfyUI's own device (so ``--cpu`` is honoured)."""
    if device != "auto":
        return device
    management = comfy_module("comfy.model_management")
    if management is None:
        return device
    return str(management.get_torch_device())


def model_folders(kind: str) -> list[str]:
    """Folders searched for ``kind`` (``"reasoners"``/``"restorers"``) models, existing or not.

    Inside ComfyUI: ``models/rnr/<kind>`` plus any ``rnr_<kind>`` entry of extra_model_paths.yaml.
    Everywhere: ``$RNR_MODELS_DIR/<kind>`` when that variable is set.
    """
    folders: list[str] = []
    folder_paths = comfy_module("folder_paths")
    if folder_paths is not None:
        name = f"rnr_{kind}"
        if name not in folder_paths.folder_names_and_paths:
            register_model_folders()
        folders.extend(folder_paths.get_folder_paths(name))
    extra = os.environ.get("RNR_MODELS_DIR", "").strip()
    if extra:
        folders.append(os.path.join(extra, kind))
    unique: list[str] = []
    for folder in folders:
        if folder not in unique:
            unique.append(folder)
    return unique


def comfy_model_files(folder_name: str) -> dict[str, str]:
    """Files of one of ComfyUI's own model folders (e.g. ``diffusion_models``): name -> full path."""
    folder_paths = comfy_module("folder_paths")
    if folder_paths is None or folder_name not in folder_paths.folder_names_and_paths:
        return {}
    found = {}
    for name in folder_paths.get_filename_list(folder_name):
        path = folder_paths.get_full_path(folder_name, name)
        if path:
            found[name] = path
    return found


def register_model_folders() -> None:
    """Register ``models/rnr/reasoners`` and ``models/rnr/restorers`` with ComfyUI's folder_paths."""
    folder_paths = comfy_module("folder_paths")
    if folder_paths is None:
        return
    for kind in ("reasoners", "restorers"):
        path = os.path.join(folder_paths.models_dir, "rnr", kind)
        folder_paths.add_model_folder_path(f"rnr_{kind}", path, is_default=True)
