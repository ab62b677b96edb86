"""RnR Reason, RnR Restore and RnR Severity Score with the built-in classic backends, called as ComfyUI
calls them, on a shipped sample photo degraded with known parameters."""

from __future__ import annotations

import pytest
import torch
from comfy_calls import Link, call

from rnr import cache
from rnr.errors import RnRError
from rnr.metrics import psnr


def mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b) ** 2).mean())


def db(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(psnr(a.permute(0, 3, 1, 2), b.permute(0, 3, 1, 2)).mean())


@pytest.fixture(scope="module")
def clean():
    (image,) = call("RnRLoadSampleImage", sample="landscape.jpg")
    return image[:, ::3, ::3, :].contiguous()  # 192x256: quick on the CPU


@pytest.fixture(scope="module")
def hazy(clean):
    image, truth = call("RnRDegrade", image=clean, haze=70, seed=1)
    return image, truth


@pytest.fixture(scope="module")
def classic():
    (reasoner,) = call("RnRReasonerLoader", backend="classic")
    (restorer,) = call("RnRRestorerLoader", backend="classic")
    return Link(reasoner, "RNR_REASONER"), Link(restorer, "RNR_RESTORER")


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


def test_reason_diagnoses_each_image_of_a_batch(clean, classic):
    hazy = call("RnRDegrade", image=clean, haze=70, seed=1)[0]
    noisy = call("RnRDegrade", image=clean, noise=45, seed=2)[0]
    diagnoses, report = call("RnRReason", image=torch.cat([hazy, noisy]), reasoner=classic[0])
    assert len(diagnoses) == 2
    assert diagnoses[0].haze.present and diagnoses[0].haze.severity >= 35
    assert diagnoses[1].noise.present and diagnoses[1].noise.severity >= 25
    assert all(d.source == "classic" for d in diagnoses)
    assert "Image 1 of 2" in report and "Image 2 of 2" in report


def test_restore_with_the_true_diagnosis_improves_the_photo(clean, hazy, classic):
    degraded, truth = hazy
    restored, used = call("RnRRestore", image=degraded, diagnosis=Link(truth, "RNR_DIAGNOSIS"),
                          restorer=classic[1], strength=1.0, seed=0)
    assert restored.shape == degraded.shape and used == truth
    assert db(restored, clean) > db(degraded, clean) + 2.0


def test_restore_obeys_the_edited_diagnosis(hazy, classic):
    degraded, truth = hazy
    wire = Link(truth, "RNR_DIAGNOSIS")
    outputs = {}
    for label, widgets in {"full": {}, "less": {"haze_severity": 30}, "off": {"haze_presence": "off"}}.items():
        edited = call("RnRDiagnosisEdit", diagnosis=wire, **widgets).diagnosis
        outputs[label] = call("RnRRestore", image=degraded, diagnosis=edited, restorer=classic[1])[0]
    change = {label: mse(image, degraded) for label, image in outputs.items()}
    assert change["off"] < change["less"] < change["full"], change
    assert change["off"] < 1e-6  # nothing else was diagnosed: haze off leaves the photo as it is


def test_restore_without_a_diagnosis_reasons_first_with_the_shared_default(hazy):
    restored, used = call("RnRRestore", image=hazy[0])
    assert restored.shape == hazy[0].shape and used[0].haze.present
    assert used == call("RnRReason", image=hazy[0])[0]
    reasoners = [m for m in cache.stats()["models"] if m["kind"] == "reasoner"]
    assert [(m["loads"], m["hits"]) for m in reasoners] == [(1, 1)]  # Restore and Reason: one copy


def test_strength_zero_returns_the_input_and_one_diagnosis_serves_a_batch(hazy, classic):
    degraded, truth = hazy
    batch = torch.cat([degraded, degraded.flip(2)])
    unchanged = call("RnRRestore", image=batch, diagnosis=Link(truth, "RNR_DIAGNOSIS"), strength=0.0)[0]
    assert torch.allclose(unchanged, batch, atol=1e-6)
    restored, used = call("RnRRestore", image=batch, diagnosis=Link(truth, "RNR_DIAGNOSIS"))
    assert restored.shape == batch.shape and used == truth * 2


def test_restore_keeps_alpha_and_rejects_mismatched_batches(hazy):
    degraded, truth = hazy
    rgba = torch.cat([degraded, torch.full_like(degraded[..., :1], 0.25)], dim=-1)
    restored = call("RnRRestore", image=rgba, diagnosis=Link(truth, "RNR_DIAGNOSIS"))[0]
    assert restored.shape == rgba.shape and torch.equal(restored[..., 3], rgba[..., 3])
    three = torch.cat([degraded] * 3)
    with pytest.raises(RnRError, match="2 diagnoses but the image batch has 3 images"):
        call("RnRRestore", image=three, diagnosis=Link(truth * 2, "RNR_DIAGNOSIS"))


def test_severity_score_alone_and_as_a_reduction(hazy, classic):
    degraded, truth = hazy
    scores = call("RnRSeverityScore", image=degraded, reasoner=classic[0])
    assert abs(scores.haze.value - truth[0].haze.severity) <= 30
    assert scores.overall.value >= scores.haze.value - 1e-6
    assert scores.rain.value == 0.0 and "overall" in scores.report.value and "haze" in scores.report.value
    restored = call("RnRRestore", image=degraded, diagnosis=Link(truth, "RNR_DIAGNOSIS"))[0]
    # a batch of two restored images against one reference: two rows, the outputs are their mean
    reduction = call("RnRSeverityScore", image=torch.cat([restored, restored]), reference=degraded,
                     reasoner=classic[0])
    assert reduction.haze.value > 10 and reduction.overall.value > 10
    report = reduction.report.value
    assert "Image 2 of 2" in report and report.count("cleaner") == 2
    assert [m["loads"] for m in cache.stats()["models"] if m["kind"] == "reasoner"] == [1]
