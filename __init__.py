"""ComfyUI entry point of ComfyUI-RnR: registers the nodes (the library itself is the ``rnr`` package)."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys

_PACK_DIR = os.path.dirname(os.path.realpath(__file__))

# ComfyUI imports this folder as a package under a path-derived name, so the ``rnr`` library beside
# it is importable only when the folder is on sys.path (or the pack is pip-installed). It goes at the
# end of sys.path so that our top-level folders never shadow another package.
_found = importlib.util.find_spec("rnr")
if _found is None:
    sys.path.append(_PACK_DIR)
elif not os.path.realpath(_found.origin or "").startswith(_PACK_DIR + os.sep):
    logging.getLogger("rnr").warning("ComfyUI-RnR: using the rnr library at %s, not the copy in %s",
                                     _found.origin, _PACK_DIR)

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
