"""Images for self-contained graphs: the sample photos shipped with the pack, and synthetic degradation.

ComfyUI's Load Image reads only from its own input/ folder, so the example workflows load the
pack's sample photos with RnR Load Sample Image and degrade them in the graph with RnR Degrade,
which also outputs the ground-truth diagnosis of what it did.
"""

from __future__ import annotations

import os

import torch

from rnr.diagnosis import Diagnosis
from rnr.errors import ImageError
from rnr.images import IMAGE_SUFFIXES, load_image

from ._convert import from_comfy, to_comfy

CATEGORY = "RnR/images"
SAMPLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "rnr", "assets", "samples")


def sample_names() -> list[str]:
    """File names of the shipped sample photos, sorted."""
    if not os.path.isdir(SAMPLES_DIR):
        return []
    return sorted(name for name in os.listdir(SAMPLES_DIR)
                  if name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith("."))


class RnRLoadSampleImage:
    DESCRIPTION = ("Loads one of the clean sample photos that ship with ComfyUI-RnR (see rnr/assets/samples/ and "
                   "its licence file), so that the example workflows run without uploading anything.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    OUTPUT_TOOLTIPS = ("The sample photo as a one-image batch.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        names = sample_names()
        return {"required": {"sample": (names or ["(no samples installed)"], {
            "default": names[0] if names else "(no samples installed)",
            "tooltip": "Which shipped sample photo to load."})}}

    def load(self, sample: str) -> tuple[torch.Tensor]:
        names = sample_names()
        if sample not in names:
            raise ImageError(f"sample {sample!r} is not in {SAMPLES_DIR}; available: {', '.join(names) or 'none'}. "
                             "Reinstall the pack if the folder is empty")
        return (to_comfy(load_image(os.path.join(SAMPLES_DIR, sample)).tensor),)


class RnRDegrade:
    DESCRIPTION = ("Adds synthetic haze, rain, noise and/or blur at chosen severities (1-100, the same scale the "
                   "reasoners report) and outputs the ground-truth diagnosis of what was added. Reproducible from "
                   "the seed. For demos, tests and comparing reasoners with the truth.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "RNR_DIAGNOSIS")
    RETURN_NAMES = ("image", "ground_truth")
    OUTPUT_TOOLTIPS = ("The degraded images (same size as the input).",
                       "What was added, as a diagnosis per image (feed it to RnR Restore for an oracle restore).")
    FUNCTION = "degrade"

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        def severity(name: str, what: str) -> tuple:
            return ("INT", {"default": 0, "min": 0, "max": 100, "step": 1,
                            "tooltip": f"{what} severity 1-100; 0 adds none."})

        return {"required": {
            "image": ("IMAGE", {"tooltip": "Clean photo(s) to degrade."}),
            "haze": severity("haze", "Haze/fog"),
            "rain": severity("rain", "Rain streak"),
            "noise": severity("noise", "Sensor noise"),
            "blur": severity("blur", "Blur"),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF,
                             "tooltip": "Seed for the free parameters (depth map, streak layout, noise, blur "
                                        "kernel); each image of a batch gets its own draw."}),
        }}

    def degrade(self, image: torch.Tensor, haze: int, rain: int, noise: int, blur: int,
                seed: int) -> tuple[torch.Tensor, list[Diagnosis]]:
        from rnr.degrade import degrade

        source = from_comfy(image)
        result = degrade(source.rgb, haze=haze or None, rain=rain or None, noise=noise or None, blur=blur or None,
                         seed=int(seed))
        return (source.back(result.images), list(result.diagnoses))


NODE_CLASS_MAPPINGS = {"RnRLoadSampleImage": RnRLoadSampleImage, "RnRDegrade": RnRDegrade}
NODE_DISPLAY_NAME_MAPPINGS = {"RnRLoadSampleImage": "RnR Load Sample Image", "RnRDegrade": "RnR Degrade"}
