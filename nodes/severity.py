"""RnR Severity Score: how degraded an image is (0-100 per type and overall), or how much a restore removed."""

from __future__ import annotations

import torch

from rnr.diagnosis import DEGRADATIONS, Diagnosis
from rnr.errors import RnRError

from ._convert import from_comfy
from .loaders import ModelHandle, handle_or_default
from .reason import run_reasoner

CATEGORY = "RnR"
_NAMES = (*DEGRADATIONS, "overall")


def _scores(diagnoses: list[Diagnosis]) -> list[dict[str, float]]:
    rows = []
    for d in diagnoses:
        row = {name: float(value) for name, value in d.severities().items()}
        row["overall"] = float(d.overall_severity())
        rows.append(row)
    return rows


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {name: sum(r[name] for r in rows) / len(rows) for name in _NAMES}


def _line(label: str, row: dict[str, float]) -> str:
    return f"{label:>10}: " + "  ".join(f"{name} {row[name]:5.1f}" for name in _NAMES)


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
        "A readable table of the scores per image (before, after and reduction with a reference).",
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
                                                   "one image."}),
                "reasoner": ("RNR_REASONER", {"tooltip": "The judge, from RnR Reasoner Loader; unconnected: the "
                                                         "built-in default."}),
            },
        }

    def score(self, image: torch.Tensor, reference: torch.Tensor | None = None,
              reasoner: ModelHandle | None = None) -> tuple[float, float, float, float, float, str]:
        handle = handle_or_default(reasoner, "reasoner", "reasoner")
        after = _scores(run_reasoner(handle, from_comfy(image).rgb))
        if reference is None:
            mean = _mean(after)
            lines = [f"Severity (0-100) by the {handle.spec.backend} reasoner"]
            lines += [_line(f"image {i + 1}", row) for i, row in enumerate(after)]
            if len(after) > 1:
                lines.append(_line("mean", mean))
            return (*(mean[name] for name in _NAMES), "\n".join(lines))
        before = _scores(run_reasoner(handle, from_comfy(reference, "reference").rgb))
        if len(before) == 1 and len(after) > 1:
            before = before * len(after)
        if len(before) != len(after):
            raise RnRError(f"reference holds {len(before)} images but image holds {len(after)}; connect batches of "
                           "the same size, or a single reference")
        reduction = [{name: b[name] - a[name] for name in _NAMES} for b, a in zip(before, after)]
        mean = _mean(reduction)
        lines = [f"Severity (0-100) by the {handle.spec.backend} reasoner; reduction = reference - image"]
        for i, (b, a, r) in enumerate(zip(before, after, reduction)):
            prefix = f"#{i + 1} " if len(after) > 1 else ""
            lines += [_line(prefix + "reference", b), _line(prefix + "image", a), _line(prefix + "reduction", r)]
        if len(after) > 1:
            lines.append(_line("mean red.", mean))
        return (*(mean[name] for name in _NAMES), "\n".join(lines))


NODE_CLASS_MAPPINGS = {"RnRSeverityScore": RnRSeverityScore}
NODE_DISPLAY_NAME_MAPPINGS = {"RnRSeverityScore": "RnR Severity Score"}
