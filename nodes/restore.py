"""RnR Restore: IMAGE + diagnosis -> restored IMAGE of the same size."""

from __future__ import annotations

import torch

from rnr.diagnosis import Diagnosis
from rnr.errors import RnRError

from . import _comfy
from ._convert import check_diagnoses, from_comfy
from .loaders import ModelHandle, default_handle, handle_or_default
from .reason import run_reasoner

CATEGORY = "RnR"


class RnRRestore:
    DESCRIPTION = ("Removes the degradations a diagnosis names, in its order and at its severities, and returns "
                   "images of the input's size. Edit the diagnosis first (Diagnosis Edit) to keep or remove "
                   "chosen effects. Without a diagnosis it diagnoses the images itself with the built-in reasoner; "
                   "without a restorer it uses the built-in default.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "RNR_DIAGNOSIS")
    RETURN_NAMES = ("image", "diagnosis")
    OUTPUT_TOOLTIPS = ("The restored images, same size and count as the input.",
                       "The diagnoses the restorer followed (one per image).")
    FUNCTION = "restore"

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "The degraded photo(s) to restore."}),
                "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.05,
                                       "tooltip": "0 returns the input unchanged, 1 the full restoration; values "
                                                  "in between blend the two."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF,
                                 "tooltip": "Seed for restorers that sample (the diffusion restorer); the built-in "
                                            "restorers give the same result for any seed."}),
            },
            "optional": {
                "diagnosis": ("RNR_DIAGNOSIS", {"tooltip": "What to remove, from RnR Reason or Diagnosis Edit: one "
                                                           "per image, or one for the whole batch. Unconnected: "
                                                           "the images are diagnosed first."}),
                "restorer": ("RNR_RESTORER", {"tooltip": "From RnR Restorer Loader; leave unconnected for the "
                                                         "built-in default."}),
            },
        }

    def restore(self, image: torch.Tensor, strength: float, seed: int, diagnosis: list[Diagnosis] | None = None,
                restorer: ModelHandle | None = None) -> tuple[torch.Tensor, list[Diagnosis]]:
        source = from_comfy(image)
        batch = source.rgb.shape[0]
        handle = handle_or_default(restorer, "restorer", "restorer")
        if diagnosis is None:
            diagnoses = run_reasoner(default_handle("reasoner"), source.rgb)
        else:
            diagnoses = check_diagnoses(diagnosis, batch)
        model = handle.load()
        with _comfy.comfy_interrupts():
            restored = model.restore(source.rgb, diagnoses, strength=float(strength), seed=int(seed),
                                     progress=_comfy.progress_callback())
        if not isinstance(restored, torch.Tensor) or tuple(restored.shape) != tuple(source.rgb.shape):
            shape = list(restored.shape) if isinstance(restored, torch.Tensor) else type(restored).__name__
            raise RnRError(f"the {handle.spec.backend} restorer returned {shape} for input {list(source.rgb.shape)}; "
                           "this is a bug in that backend, please report it")
        return (source.back(restored), diagnoses)


NODE_CLASS_MAPPINGS = {"RnRRestore": RnRRestore}
NODE_DISPLAY_NAME_MAPPINGS = {"RnRRestore": "RnR Restore"}
