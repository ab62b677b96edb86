"""ComfyUI nodes of ComfyUI-RnR: thin adapters over the ``rnr`` library, one file per theme."""

from __future__ import annotations

from . import diagnosis, images, loaders, memory, reason, restore, severity

_MODULES = (loaders, images, reason, diagnosis, restore, severity)

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}
for _module in _MODULES:
    NODE_CLASS_MAPPINGS.update(_module.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(_module.NODE_DISPLAY_NAME_MAPPINGS)

memory.install()

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
