"""rnr.api on the real classic backends: inputs of every kind, diagnose, restore, score, degrade, pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import rnr
from rnr import api
from rnr.assets import sample_path
from rnr.diagnosis import Diagnosis
from rnr.errors import BackendError, DiagnosisError, ImageError, Interrupted
from rnr.images import load_image
from rnr.metrics import psnr


def photo(size: int = 64, top: int = 200, left: int = 300, name: str = "landscape") -> torch.Tensor:
    """A real photo crop [1,3,size,size] from a shipped sample."""
    image = load_image(sample_path(name)).tensor
    return image[..., top:top + size, left:left + size].contiguous()


@pytest.fixture(scope="module")
def hazy() -> tuple[torch.Tensor, torch.Tensor, Diagnosis]:
    clean = photo(64)
    result = rnr.degrade_image(clean, haze=70, seed=1)
    return clean, result[0], result[1][0]


def test_auto_backend_is_resolved_in_one_place_and_cached():
    for kind in ("reasoner", "restorer"):
        assert api.default_backend(kind) in ("lite", "classic")
        assert api.resolve_backend(kind, "auto") == api.default_backend(kind)
        assert api.resolve_backend(kind, None) == api.default_backend(kind)
        assert api.resolve_backend(kind, "classic") == "classic"
        assert api.model_spec(kind).backend == api.default_backend(kind)
    assert api.load_reasoner("classic") is api.load_reasoner("classic", device="auto")
    assert api.load_restorer() is api.load_restorer(api.default_backend("restorer"))
    with pytest.raises(BackendError, match="unknown restorer backend 'nope'; available: classic"):
        api.load_restorer("nope")


def test_to_batch_accepts_tensors_pil_numpy_and_paths(tmp_path):
    rgb = (np.arange(20 * 24 * 3).reshape(20, 24, 3) % 251).astype(np.uint8)
    expected = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    Image.fromarray(rgb).save(tmp_path / "x.png")
    candidates = [expected[0], expected, Image.fromarray(rgb), rgb, rgb.astype(np.float32) / 255, tmp_path / "x.png",
                  str(tmp_path / "x.png"), Image.fromarray(rgb).convert("RGBA")]
    for candidate in candidates:
        batch = api.to_batch(candidate)
        assert batch.shape == (1, 3, 20, 24) and batch.dtype == torch.float32
        assert torch.allclose(batch, expected, atol=1e-6), type(candidate)
    grey = api.to_batch(rgb[..., 0])
    assert grey.shape == (1, 3, 20, 24) and torch.equal(grey[0, 0], grey[0, 2])
    deep = api.to_batch((rgb.astype(np.uint16) * 257))
    assert torch.allclose(deep, expected, atol=1e-6)
    assert api.to_batch(np.stack([rgb, rgb])).shape == (2, 3, 20, 24)
    with pytest.raises(ImageError, match="cannot use a dict as an image"):
        api.to_batch({"a": 1})
    with pytest.raises(ImageError, match="dtype int64"):
        api.to_batch(rgb.astype(np.int64))


def test_nan_tensor_and_1x1_image_get_clear_errors():
    nan = photo(32).clone()
    nan[0, 1, 3, 3] = float("nan")
    with pytest.raises(ImageError, match=r"contains 1 NaN and 0 Inf values"):
        rnr.restore(nan, Diagnosis.clean(), restorer="classic")
    with pytest.raises(ImageError, match=r"1x1 pixels is too small.*at least 16x16"):
        rnr.diagnose(torch.rand(1, 3, 1, 1), reasoner="classic")
    with pytest.raises(ImageError, match=r"uint8.*/ 255"):
        rnr.diagnose((photo(32) * 255).to(torch.uint8), reasoner="classic")


def test_diagnose_finds_strong_haze_and_accepts_mixed_sizes(hazy, tmp_path):
    clean, degraded, truth = hazy
    diagnoses = rnr.diagnose(degraded, reasoner="classic")
    assert len(diagnoses) == 1 and isinstance(diagnoses[0], Diagnosis)
    assert diagnoses[0].haze.present and truth.haze.severity >= 60
    Image.fromarray((clean[0, :, :40, :56].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(tmp_path / "small.png")
    assert load_image(tmp_path / "small.png").size == (40, 56)
    mixed = rnr.diagnose([degraded[0], tmp_path / "small.png", clean], reasoner="classic")
    assert len(mixed) == 3 and all(d.source for d in mixed)


def test_restore_with_the_true_diagnosis_improves_psnr(hazy):
    clean, degraded, truth = hazy
    restored = rnr.restore(degraded, truth, restorer="classic")
    assert restored.shape == degraded.shape and restored.dtype == torch.float32
    assert psnr(restored, clean).item() > psnr(degraded, clean).item() + 1.0
    from_json = rnr.restore(degraded, truth.to_json(), restorer="classic")
    assert torch.allclose(from_json, restored, atol=1e-6)
    untouched = rnr.restore(degraded, truth, restorer="classic", strength=0.0)
    assert torch.allclose(untouched, degraded, atol=1e-5)


def test_restore_returns_a_list_for_a_list_and_checks_diagnosis_counts(hazy):
    _, degraded, truth = hazy
    outputs = rnr.restore([degraded, degraded[..., :48, :56]], [truth, truth], restorer="classic")
    assert isinstance(outputs, list) and [tuple(o.shape) for o in outputs] == [(1, 3, 64, 64), (1, 3, 48, 56)]
    with pytest.raises(DiagnosisError, match=r"one diagnosis for all images or one per image \(3\)"):
        rnr.restore(degraded.expand(3, -1, -1, -1), [truth, truth], restorer="classic")
    with pytest.raises(DiagnosisError, match="haze.severity"):
        rnr.restore(degraded, {"haze": {"present": True, "severity": 0}, "rain": {"present": False},
                               "noise": {"present": False}, "blur": {"present": False}}, restorer="classic")


def test_restore_reports_progress_and_stops_when_asked(hazy):
    _, degraded, _ = hazy
    seen: list[tuple[int, int]] = []
    rnr.restore(degraded.expand(2, -1, -1, -1), reasoner="classic", restorer="classic",
                progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (4, 4) and all(total == 4 for _, total in seen)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)

    def stop(done: int, total: int) -> None:
        raise Interrupted("stop")

    with pytest.raises(Interrupted):
        rnr.restore(degraded, reasoner="classic", restorer="classic", progress=stop)


def test_degrade_image_returns_ground_truth_with_the_requested_severities():
    clean = photo(64)
    degraded, truths = rnr.degrade_image(clean, haze=60, noise=20, seed=3)
    assert degraded.shape == clean.shape and len(truths) == 1
    assert truths[0].present == ("haze", "noise") and truths[0].noise.severity == 20
    again, _ = rnr.degrade_image(clean, haze=60, noise=20, seed=3)
    assert torch.equal(degraded, again)
    listed, truths = rnr.degrade_image([clean, clean[..., :32, :48]], blur=40, seed=0)
    assert [tuple(t.shape) for t in listed] == [(1, 3, 64, 64), (1, 3, 32, 48)] and len(truths) == 2


def test_score_compare_and_run_pipeline(hazy):
    clean, degraded, _ = hazy
    hazy_report, clean_report = rnr.score([degraded, clean], reasoner="classic")
    assert hazy_report.severities["haze"] > clean_report.severities["haze"]
    assert hazy_report.overall > clean_report.overall and hazy_report.source == "classic"
    restored, diagnoses, deltas = rnr.run_pipeline(degraded, reasoner="classic", restorer="classic")
    assert restored.shape == degraded.shape and len(diagnoses) == 1 and len(deltas) == 1
    assert diagnoses[0].haze.present and deltas[0].before.overall == hazy_report.overall
    assert deltas[0].reduction > 0 and deltas[0].reductions["haze"] > 0
    assert psnr(restored, clean).item() > psnr(degraded, clean).item()
    again = rnr.compare(degraded, restored, reasoner="classic")
    assert [d.reduction for d in again] == [deltas[0].reduction]
