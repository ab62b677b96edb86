"""RnR Reason: IMAGE batch -> one Diagnosis per image and a readable report."""

from __future__ import annotations

import torch

from rnr.diagnosis import Diagnosis
from rnr.errors import RnRError

from . import _comfy
from ._convert import batch_report, from_comfy
from .loaders import ModelHandle, handle_or_default

CATEGORY = "RnR"


def run_reasoner(handle: ModelHandle, rgb: torch.Tensor) -> list[Diagnosis]:
    """Diagnose an rnr batch with progress and cancellation; checks what the backend returned."""
    reasoner = handle.load()
    with _comfy.comfy_interrupts():
        diagnoses = list(reasoner.diagnose(rgb, progress=_comfy.progress_callback()))
    if len(diagnoses) != rgb.shape[0] or not all(isinstance(d, Diagnosis) for d in diagnoses):
        raise RnRError(f"the {handle.spec.backend} reasoner returned {len(diagnoses)} results for "
                       f"{rgb.shape[0]} images; this is a bug in that backend, please report it")
    return diagnoses


class RnRReason:
    DESCRIPTION = ("Looks at each image and writes a diagnosis: which of haze, rain, noise and blur are present, "
                   "how severe (1-100), their physical parameters, what the scene shows and the order to "
                   "remove them in. Without a reasoner input it uses the built-in default.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("RNR_DIAGNOSIS", "STRING")
    RETURN_NAMES = ("diagnosis", "report")
    OUTPUT_TOOLTIPS = (("One diagnosis per image of the batch, for RnR Restore, Diagnosis Edit and the other "
                        "diagnosis nodes."),
                       "The diagnosis as readable text (one block per image).")
    FUNCTION = "reason"

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "The photo(s) to diagnose; every image of a batch gets its own "
                                               "diagnosis."}),
            },
            "optional": {
                "reasoner": ("RNR_REASONER", {"tooltip": "From RnR Reasoner Loader; leave unconnected for the "
                                                         "built-in default."}),
            },
        }

    def reason(self, image: torch.Tensor, reasoner: ModelHandle | None = None) -> tuple[list[Diagnosis], str]:
        handle = handle_or_default(reasoner, "reasoner", "reasoner")
        diagnoses = run_reasoner(handle, from_comfy(image).rgb)
        return (diagnoses, batch_report(diagnoses))


NODE_CLASS_MAPPINGS = {"RnRReason": RnRReason}
NODE_DISPLAY_NAME_MAPPINGS = {"RnRReason": "RnR Reason"}
