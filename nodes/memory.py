"""Glue between :mod:`rnr.cache` and ComfyUI's memory management (installed only inside ComfyUI).

- Before one of our models loads, ComfyUI frees enough memory on that device for it
  (``model_management.free_memory``, then ``soft_empty_cache``), unloading its own idle models.
- When ComfyUI itself needs memory on a device (``free_memory``, called before it loads a checkpoint)
  and its own unloading was not enough, our models on that device are offloaded to the CPU.
- "Unload Models" / "Free model and node cache" in the UI (``POST /free``) make ComfyUI's prompt
  worker call ``model_management.unload_all_models()``, as does its out-of-memory handler; we wrap
  that function so our cache is released too.
- ``GET /rnr/cache`` returns :func:`rnr.cache.stats` (what is loaded, loads, hits, evictions).
"""

from __future__ import annotations

import functools
import logging
import threading

from rnr import cache

from . import _comfy

log = logging.getLogger("rnr.comfyui")

_installed = False
_state = threading.local()


def _free_comfy_memory(bytes_needed: int, device) -> None:
    management = _comfy.comfy_module("comfy.model_management")
    if management is None or bytes_needed <= 0:
        return
    _state.loading = True
    try:
        management.free_memory(bytes_needed, device)
        management.soft_empty_cache()
    finally:
        _state.loading = False


def _wrap_unload_all_models(management) -> None:
    original = management.unload_all_models

    @functools.wraps(original)
    def unload_all_models(*args, **kwargs):
        result = original(*args, **kwargs)
        released = cache.release_all()
        if released:
            log.info("RnR: released %d cached model(s) with ComfyUI's models", released)
        return result

    unload_all_models.__rnr_wrapped__ = original  # type: ignore[attr-defined]
    management.unload_all_models = unload_all_models


def _wrap_free_memory(management) -> None:
    original = management.free_memory

    @functools.wraps(original)
    def free_memory(memory_required, device, *args, **kwargs):
        result = original(memory_required, device, *args, **kwargs)
        # Our own before-load hook calls free_memory too: do not offload our models for ourselves.
        if getattr(device, "type", "cpu") != "cpu" and not getattr(_state, "loading", False):
            try:
                short = management.get_free_memory(device) < memory_required
            except (RuntimeError, AttributeError, TypeError):  # a device ComfyUI cannot measure
                short = True
            if short:
                moved = cache.offload_all(device)
                if moved:
                    log.info("RnR: offloaded %.0f MB of cached models to the CPU for ComfyUI", moved / 2**20)
                    management.soft_empty_cache()
        return result

    free_memory.__rnr_wrapped__ = original  # type: ignore[attr-defined]
    management.free_memory = free_memory


def _add_stats_route() -> None:
    server = _comfy.comfy_module("server")
    instance = getattr(getattr(server, "PromptServer", None), "instance", None)
    if instance is None:
        return
    from aiohttp import web

    @instance.routes.get("/rnr/cache")
    async def rnr_cache_stats(request):
        return web.json_response(cache.stats())


def install() -> bool:
    """Install the hooks once, inside ComfyUI; returns whether they are installed."""
    global _installed
    if _installed:
        return True
    management = _comfy.comfy_module("comfy.model_management")
    if management is None:
        return False
    cache.add_before_load_hook(_free_comfy_memory)
    if not hasattr(management.unload_all_models, "__rnr_wrapped__"):
        _wrap_unload_all_models(management)
    if not hasattr(management.free_memory, "__rnr_wrapped__"):
        _wrap_free_memory(management)
    _comfy.register_model_folders()
    try:
        _add_stats_route()
    except (ImportError, AttributeError, RuntimeError) as exc:  # a convenience: never block the pack on it
        log.warning("RnR: could not add the /rnr/cache route: %s", exc)
    _installed = True
    return True
