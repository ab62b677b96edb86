"""Layout conversion between ComfyUI and rnr, and checks of the custom wire values.

ComfyUI's IMAGE is float [B,H,W,C] in 0..1 on the CPU (C is 3, sometimes 1 or 4); rnr works on
float32 [B,3,H,W]. Alpha and grayscale channels are split off on the way in and put back on the way
out, so that a node returns the layout it was given.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rnr.diagnosis import Diagnosis
from rnr.errors import ImageError, RnRError
from rnr.images import check_images


@dataclass(frozen=True)
class ComfyImage:
    """An IMAGE input as rnr sees it: ``rgb`` [B,3,H,W] plus what is needed to give it back."""

    rgb: torch.Tensor
    alpha: torch.Tensor | None
    """[B,1,H,W] when the IMAGE had 4 channels."""
    channels: int

    def back(self, rgb: torch.Tensor) -> torch.Tensor:
        """``rgb`` [B,3,H,W] as a ComfyUI IMAGE with this input's channel count."""
        out = rgb.detach().float().clamp(0.0, 1.0)
        if self.channels == 1:
            out = out.mean(dim=1, keepdim=True)
        elif self.channels == 4 and self.alpha is not None:
            out = torch.cat([out, self.alpha.to(out.device, out.dtype)], dim=1)
        return out.permute(0, 2, 3, 1).contiguous().cpu()


def from_comfy(image: object, name: str = "image") -> ComfyImage:
    """Validate a ComfyUI IMAGE and convert it to rnr's layout."""
    if not isinstance(image, torch.Tensor):
        raise ImageError(f"input '{name}' must be an IMAGE (a [B,H,W,C] tensor), got {type(image).__name__}; "
                         "connect it to an image output such as Load Image")
    if image.ndim == 3:
        image = image.unsqueeze(0)
    if image.ndim != 4 or image.shape[-1] not in (1, 3, 4):
        raise ImageError(f"input '{name}' has shape {list(image.shape)}; an IMAGE must be [B,H,W,C] with "
                         "C = 1, 3 or 4 channels. Connect an IMAGE output (a MASK is not an image: use "
                         "'Convert Mask to Image' first)")
    channels = int(image.shape[-1])
    chw = image.permute(0, 3, 1, 2)
    alpha = None
    if channels == 1:
        chw = chw.expand(-1, 3, -1, -1)
    elif channels == 4:
        chw, alpha = chw[:, :3], chw[:, 3:].float()
    rgb = check_images(chw.contiguous(), name=f"input '{name}'")
    return ComfyImage(rgb=rgb, alpha=alpha, channels=channels)


def to_comfy(rgb: torch.Tensor) -> torch.Tensor:
    """rnr [B,3,H,W] -> ComfyUI IMAGE [B,H,W,3] float32 on the CPU."""
    return rgb.detach().float().clamp(0.0, 1.0).permute(0, 2, 3, 1).contiguous().cpu()


def check_diagnoses(diagnoses: object, batch: int | None = None, name: str = "diagnosis") -> list[Diagnosis]:
    """The diagnoses on an RNR_DIAGNOSIS wire; with ``batch``, one per image (a single one is broadcast)."""
    if isinstance(diagnoses, Diagnosis):
        diagnoses = [diagnoses]
    if not isinstance(diagnoses, (list, tuple)) or not diagnoses or \
            not all(isinstance(d, Diagnosis) for d in diagnoses):
        raise RnRError(f"input '{name}' must be an RNR_DIAGNOSIS (from RnR Reason, Diagnosis Edit or Diagnosis "
                       f"From JSON), got {type(diagnoses).__name__}")
    diagnoses = list(diagnoses)
    if batch is None or len(diagnoses) == batch:
        return diagnoses
    if len(diagnoses) == 1:
        return diagnoses * batch
    raise RnRError(f"input '{name}' holds {len(diagnoses)} diagnoses but the image batch has {batch} images; "
                   "use one diagnosis per image (reason on the same batch) or a single diagnosis for all")


def batch_report(diagnoses: list[Diagnosis]) -> str:
    """Readable reports of a batch, one block per image."""
    if len(diagnoses) == 1:
        return diagnoses[0].to_report()
    blocks = [f"Image {i + 1} of {len(diagnoses)}\n{d.to_report()}" for i, d in enumerate(diagnoses)]
    return "\n\n".join(blocks)
