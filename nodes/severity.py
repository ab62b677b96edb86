"""RnR Severity Score: how degraded an image is (0-100 per type and overall), or how much a restore removed."""

from __future__ import annotations

import torch

from rnr import severity
from rnr.diagnosis import DEGRADATIONS

from . import _comfy
from ._convert import from_comfy
from .loaders import ModelHandle, handle_or_default

CATEGORY = "RnR"
_NAMES = (*DEGRADATIONS, "overall")


def _mean(rows: list[dict[str, float]]) -> tuple[float, ...]:
    return tuple(sum(float(row[name]) for row in rows) / len(rows) for name in _NAMES)


def _numbered(texts: list[str]) -> str:
    if len(texts) == 1:
        return texts[0]
    return "\n\n".join(f"Image {i + 1} of {len(texts)}\n{text}" for i, text in enumerate(texts))


class RnRSeverityScore:
    DESCRIPTION = ("Scores how degraded images are: haze, rain, noise and blur severity (0 = none, 100 = worst, the "
                   "shared calibration scale) and an overall score. With a reference (the image before "
                   "restoration) connected, the outputs are the reduction: reference score minus image score, "
                   "positive when the image is cleaner. Batches give the mean; the report lists every image.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("FLOAT", "FLOAT", "FLOAT", "FLOAT", "FLOAT", "STRING")
    RETURN_NAMES = ("haze", "rain", "noise", "blur", "overall", "report")
    OUTPUT_TOOLTIPS = (
        "Haze severity 0-100 (with a reference: its reduction).",
        "Rain severity 0-100 (with a reference: its reduction).",
        "Noise severity 0-100 (with a reference: its reduction).",
        "Blur severity 0-100 (with a reference: its reduction).",
        "Overall severity 0-100, combining the four (with a reference: its reduction).",
        "The scores as readable text per image (before, after and change with a reference).",
    )
    FUNCTION = "score"

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "The image(s) to score, e.g. the restored output."}),
            },
            "optional": {
                "reference": ("IMAGE", {"tooltip": "Optional 'before' image(s), e.g. the degraded input: the outputs "
                                                   "then give the severity reduction. Same batch size as image, or "
                                                   "one image for all."}),
                "reasoner": ("RNR_REASONER", {"tooltip": "The judge, from RnR Reasoner Loader; unconnected: the "
                                                         "built-in default."}),
            },
        }

    def score(self, image: torch.Tensor, reference: torch.Tensor | None = None,
              reasoner: ModelHandle | None = None) -> tuple[float, float, float, float, float, str]:
        handle = handle_or_default(reasoner, "reasoner", "reasoner")
        after = from_comfy(image).rgb
        judge = handle.load()
        title = f"Severity 0-100 judged by the {handle.spec.backend} reasoner"
        with _comfy.comfy_interrupts():
            if reference is None:
                reports = severity.score(after, judge, progress=_comfy.progress_callback())
                rows = [{**r.severities, "overall": r.overall} for r in reports]
                return (*_mean(rows), title + "\n" + _numbered([r.to_text() for r in reports]))
            before = from_comfy(reference, "reference").rgb
            if before.shape[0] == 1 and after.shape[0] > 1:
                before = before.expand(after.shape[0], -1, -1, -1)
            deltas = severity.compare(before, after, judge, progress=_comfy.progress_callback())
        rows = [{**d.reductions, "overall": d.reduction} for d in deltas]
        text = title + " (before = reference, after = image)\n" + _numbered([d.to_text() for d in deltas])
        return (*_mean(rows), text)


NODE_CLASS_MAPPINGS = {"RnRSeverityScore": RnRSeverityScore}
NODE_DISPLAY_NAME_MAPPINGS = {"RnRSeverityScore": "RnR Severity Score"}
