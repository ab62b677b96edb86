"""rnr.severity: scores and before/after deltas with any reasoner that follows the protocol."""

from __future__ import annotations

import pytest
import torch

from rnr import severity
from rnr.degrade import HazeParams, NoiseParams, degrade
from rnr.diagnosis import Diagnosis, combined_severity
from rnr.errors import ImageError
from rnr.reasoners.classic import ClassicReasoner


class FixedReasoner:
    """A reasoner that reports haze of the given severity for bright images and nothing for dark ones."""

    name = "fixed"

    def __init__(self, severity: int) -> None:
        self.severity = severity

    def diagnose(self, images: torch.Tensor, progress=None) -> list[Diagnosis]:
        out = []
        for image in images:
            d = Diagnosis.clean(source=self.name)
            if float(image.mean()) > 0.5:
                d = d.with_degradation("haze", present=True, severity=self.severity)
                d = d.with_degradation("noise", present=True, severity=20)
            out.append(d)
        return out


def test_score_reports_per_type_and_combined_overall():
    images = torch.stack([torch.full((3, 32, 32), 0.8), torch.full((3, 32, 32), 0.2)])
    reports = severity.score(images, FixedReasoner(40))
    assert reports[0].severities == {"haze": 40, "rain": 0, "noise": 20, "blur": 0}
    assert reports[0].overall == combined_severity([40, 20]) == 52
    assert reports[1].overall == 0 and reports[1].to_text().endswith("no degradation found")
    assert reports[0].to_dict() == {"overall": 52, "severities": reports[0].severities, "source": "fixed"}


def test_compare_reports_reductions_and_text():
    before = torch.full((1, 3, 32, 32), 0.8)
    after = torch.full((1, 3, 40, 24), 0.2)
    delta = severity.compare(before, after, FixedReasoner(60))[0]
    assert delta.reductions == {"haze": 60, "rain": 0, "noise": 20, "blur": 0}
    assert delta.reduction == combined_severity([60, 20]) == 68
    text = delta.to_text()
    assert "haze" in text and "cleaner" in text and "reduction 68" in text
    assert delta.to_dict()["reduction"] == 68


def test_compare_needs_one_after_per_before():
    with pytest.raises(ImageError, match="one 'after' image per 'before'"):
        severity.compare(torch.rand(2, 3, 32, 32), torch.rand(1, 3, 32, 32), FixedReasoner(10))


def test_classic_reasoner_sees_the_clean_image_as_less_degraded():
    from importlib.resources import files

    from rnr.images import load_image

    clean = load_image(str(files("rnr.assets") / "samples" / "landscape.jpg")).tensor
    clean = torch.nn.functional.interpolate(clean, size=(160, 240), mode="area").clamp(0, 1)
    noise = NoiseParams(sigma_255=20.0, kind="gaussian", poisson_fraction=0.0, channel_correlation=0.0,
                        spatial_sigma_px=0.0)
    hazy = degrade(clean, haze=HazeParams(transmission=0.3, depth_model="uniform"), noise=noise, seed=0).images
    delta = severity.compare(hazy, clean, ClassicReasoner())[0]
    assert delta.before.severities["haze"] > 30 and delta.before.severities["noise"] > 25
    assert delta.reductions["haze"] > 20 and delta.reductions["noise"] > 25
    assert delta.reduction > 30
