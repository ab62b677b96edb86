"""The lite reasoner: loading, any image size, the output decoding, and the shipped weights on real degradations."""

from __future__ import annotations

import math

import pytest
import torch

from rnr.degrade import degrade
from rnr.diagnosis import DEGRADATIONS, Diagnosis, degradation_words_in
from rnr.errors import ModelNotFoundError, RnRError
from rnr.images import load_image
from rnr.lite import condition as cond
from rnr.lite.nets import LiteReasonerNet, ReasonerConfig, crop_grid, parameter_count, reasoner_views
from rnr.lite.weights import read_metadata, save_network
from rnr.reasoners import lite
from rnr.registry import ModelSpec

TINY = ReasonerConfig(global_size=32, crop_size=24, global_widths=(8, 16), local_widths=(8, 16), head_hidden=32)


def _tiny_weights(tmp_path, thresholds=(0.5, 0.5, 0.5, 0.5)):
    torch.manual_seed(0)
    net = LiteReasonerNet(TINY)
    path = save_network(net, "lite_reasoner", tmp_path / "lite_reasoner.safetensors", {"thresholds": list(thresholds)})
    return net, path


def test_tiny_reasoner_saved_and_loaded_through_the_backend_gives_the_same_outputs(tmp_path):
    net, path = _tiny_weights(tmp_path, (0.3, 0.4, 0.5, 0.6))
    reasoner = lite.load(ModelSpec.make("reasoner", "lite", path=str(tmp_path), device="cpu"))
    assert reasoner.thresholds == (0.3, 0.4, 0.5, 0.6)
    images = torch.rand(2, 3, 40, 56, generator=torch.Generator().manual_seed(1))
    expected = net.eval()(*reasoner_views(images, TINY, crops=lite.MIN_CROPS))
    # Weights ship as float16: the loaded net matches to half precision.
    assert torch.allclose(reasoner.raw_outputs(images), expected, atol=2e-2)
    assert read_metadata(path)["config"]["global_widths"] == [8, 16]


@pytest.mark.parametrize("shape", [(1, 3, 16, 16), (2, 3, 23, 61), (1, 3, 300, 90)])
def test_any_image_size_gives_a_valid_diagnosis_per_image(tmp_path, shape):
    _tiny_weights(tmp_path)
    reasoner = lite.load(ModelSpec.make("reasoner", "lite", path=str(tmp_path / "lite_reasoner.safetensors")))
    seen = []
    diagnoses = reasoner.diagnose(torch.rand(shape, generator=torch.Generator().manual_seed(2)),
                                  progress=lambda done, total: seen.append((done, total)))
    assert len(diagnoses) == shape[0] and seen[-1] == (shape[0], shape[0])
    for d in diagnoses:
        assert isinstance(d, Diagnosis) and d.source == "lite"
        assert degradation_words_in(d.scene) == []
        assert Diagnosis.from_json(d.to_json()) == d
        for name in DEGRADATIONS:
            record = d.record(name)
            assert (record.severity >= 1) == record.present


def test_missing_weights_name_the_folder_and_the_file(tmp_path):
    with pytest.raises(ModelNotFoundError, match="lite_reasoner.safetensors") as info:
        lite.load(ModelSpec.make("reasoner", "lite", path=str(tmp_path)))
    assert str(tmp_path) in str(info.value)


def test_a_pickled_checkpoint_is_refused(tmp_path):
    bad = tmp_path / "lite_reasoner.pt"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ModelNotFoundError, match="safetensors"):
        lite.load(ModelSpec.make("reasoner", "lite", path=str(bad)))


def test_restorer_weights_are_not_accepted_as_reasoner_weights(tmp_path):
    from rnr.lite.nets import LiteRestorerNet, RestorerConfig

    save_network(LiteRestorerNet(RestorerConfig(widths=(8, 16), enc_blocks=(1,), dec_blocks=(1,), middle_blocks=1)),
                 "lite_restorer", tmp_path / "lite_reasoner.safetensors")
    with pytest.raises(ModelNotFoundError, match="lite_restorer"):
        lite.load(ModelSpec.make("reasoner", "lite", path=str(tmp_path)))


def test_decoding_maps_outputs_to_records_on_the_calibrated_scale():
    row = torch.zeros(1, cond.OUTPUT_DIM)
    row[0, cond.O_PRESENT] = torch.tensor([4.0, -4.0, 4.0, 4.0])
    row[0, cond.O_SEVERITY] = torch.tensor([0.5, 0.9, 0.3, 0.25])
    row[0, cond.O_HAZE_LIGHT] = torch.tensor([0.9, 0.8, 1.3])
    row[0, cond.O_NOISE_POISSON] = 2.0
    row[0, cond.O_BLUR_KIND] = torch.tensor([3.0, 0.0, 0.0])
    row[0, cond.O_BLUR_ANGLE] = torch.tensor([math.cos(math.radians(60)), math.sin(math.radians(60))])
    records = cond.decode_outputs(row)[0]["records"]
    assert records["haze"].severity == 50 and records["haze"].transmission == pytest.approx(0.55)
    assert records["haze"].atmospheric_light == pytest.approx((0.9, 0.8, 1.0))
    assert not records["rain"].present and records["rain"].severity == 0
    assert records["noise"].kind == "poisson" and records["noise"].sigma_255 == pytest.approx(15.0)
    assert records["blur"].kind == "motion" and records["blur"].angle_deg == pytest.approx(30.0)
    assert records["blur"].extent_px == pytest.approx(6.0)


def test_targets_encode_ground_truth_and_round_trip_through_decoding():
    clean = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    truth = degrade(clean, haze=[40, None], blur=[None, 70], seed=4).diagnoses
    t = cond.reasoner_targets(truth)
    assert t.present.tolist() == [[1, 0, 0, 0], [0, 0, 0, 1]]
    assert t.severity[0, 0] == pytest.approx(truth[0].haze.severity / 100, abs=0.01)
    assert t.severity[1, 3] == pytest.approx(truth[1].blur.severity / 100, abs=0.01)
    outputs = torch.zeros(2, cond.OUTPUT_DIM)
    outputs[:, cond.O_PRESENT] = (t.present * 2 - 1) * 5
    outputs[:, cond.O_SEVERITY] = t.severity
    outputs[:, cond.O_HAZE_LIGHT] = t.haze_light
    decoded = cond.decode_outputs(outputs)
    assert abs(decoded[0]["records"]["haze"].severity - truth[0].haze.severity) <= 1
    assert abs(decoded[1]["records"]["blur"].severity - truth[1].blur.severity) <= 1
    outputs[:, cond.O_RAIN_ANGLE] = t.rain_angle
    outputs[:, cond.O_RAIN_LENGTH] = t.rain_length
    outputs[:, cond.O_NOISE_POISSON] = (t.noise_poisson * 2 - 1) * 10
    outputs[:, cond.O_BLUR_KIND] = torch.nn.functional.one_hot(t.blur_kind, 3).float() * 10
    outputs[:, cond.O_BLUR_ANGLE] = t.blur_angle
    loss, _ = cond.reasoner_loss(outputs, t)
    worse, _ = cond.reasoner_loss(torch.zeros_like(outputs), t)
    assert float(loss) < 0.02 < float(worse)


def test_crop_count_grows_with_the_image_between_9_and_36():
    assert lite.crops_for(256, 256, 96) == 9 and lite.crops_for(1024, 1024, 96) == 9
    assert lite.crops_for(1536, 2304, 96) == 24  # 3.5 MP: 24 crops of 96 px cover 1/16 of it
    assert lite.crops_for(8000, 8000, 96) == 36


def test_reasoner_chooses_its_crop_count_by_image_size_unless_told(tmp_path):
    net, _ = _tiny_weights(tmp_path)
    images = torch.rand(1, 3, 400, 600, generator=torch.Generator().manual_seed(4))
    auto = lite.load(ModelSpec.make("reasoner", "lite", path=str(tmp_path)))
    assert lite.crops_for(400, 600, TINY.crop_size) == 27
    expected = net.eval()(*reasoner_views(images, TINY, crops=27))
    assert torch.allclose(auto.raw_outputs(images), expected, atol=2e-2)
    fixed = lite.load(ModelSpec.make("reasoner", "lite", path=str(tmp_path), crops=5))
    assert torch.allclose(fixed.raw_outputs(images), net(*reasoner_views(images, TINY, crops=5)), atol=2e-2)
    with pytest.raises(RnRError, match="0 to choose by image size"):
        lite.LiteReasoner(net, crops=-1)


def test_crop_grid_covers_the_image_and_stays_inside():
    corners = crop_grid(300, 500, 96, 9)
    assert len(corners) >= 6
    assert all(0 <= y <= 300 - 96 and 0 <= x <= 500 - 96 for y, x in corners)
    assert (0, 0) in corners and (300 - 96, 500 - 96) in corners
    assert crop_grid(50, 60, 96, 9) == [(0, 0)]


# ---- the shipped weights ----------------------------------------------------------------------------
shipped = pytest.mark.skipif(not lite.weights_available(), reason="lite weights not installed")


@pytest.fixture(scope="module")
def photo():
    from rnr.assets import sample_path

    image = load_image(sample_path("landscape")).tensor
    return image[..., :256, :256].contiguous()


@shipped
def test_shipped_reasoner_is_small_and_flags_strong_degradations(photo):
    reasoner = lite.load(ModelSpec.make("reasoner", "lite", device="cpu"))
    assert parameter_count(reasoner.net) < 5_000_000
    batch = photo.expand(3, -1, -1, -1)
    degraded = degrade(batch, noise=[70, None, None], haze=[None, 80, None], blur=[None, None, 80], seed=5).images
    found = reasoner.diagnose(degraded)
    assert found[0].noise.present and abs(found[0].noise.severity - 70) <= 15
    assert found[1].haze.present
    assert found[2].blur.present
    clean = reasoner.diagnose(photo)[0]
    assert not clean.noise.present and not clean.rain.present


@shipped
def test_shipped_reasoner_judges_blur_on_a_large_photo_by_its_sharp_part_too():
    # A 3.5 MP photo whose sharp subject is a band across the middle, with a smooth out-of-focus top and
    # bottom (a common portrait or macro framing). Nine crops fall on the edges only and report blur;
    # the size-chosen 24 crops reach the sharp band. Blurring the whole photo is still reported.
    import torch.nn.functional as F

    from rnr.assets import sample_path
    from rnr.filters import gaussian_blur

    land, foliage = (load_image(sample_path(name)).tensor for name in ("landscape", "foliage"))
    photo = gaussian_blur(F.interpolate(land, size=(1536, 2304), mode="bilinear", align_corners=False), 6.0)
    photo[..., 512:1024, :] = torch.cat([foliage, foliage.flip(-1), foliage], dim=-1)
    auto = lite.load(ModelSpec.make("reasoner", "lite", device="cpu"))
    nine = lite.load(ModelSpec.make("reasoner", "lite", device="cpu", crops=9))
    assert nine.diagnose(photo)[0].blur.present
    assert not auto.diagnose(photo)[0].blur.present
    blurred = degrade(photo, blur=[40], seed=1).images
    assert auto.diagnose(blurred)[0].blur.present
