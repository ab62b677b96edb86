"""The lite restorer: loading, shapes, strength, tiling without seams, conditioning, and the shipped weights."""

from __future__ import annotations

import pytest
import torch

from rnr.degrade import degrade
from rnr.diagnosis import Diagnosis, Haze
from rnr.errors import ModelNotFoundError, RnRError
from rnr.images import load_image
from rnr.lite.condition import CONDITION_DIM, condition_tensor, encode_condition
from rnr.lite.nets import LiteRestorerNet, RestorerConfig, conv_macs_per_pixel, parameter_count
from rnr.lite.weights import save_network
from rnr.metrics import psnr
from rnr.registry import ModelSpec
from rnr.restorers import lite

TINY = RestorerConfig(widths=(8, 16, 16), enc_blocks=(1, 1), middle_blocks=1, dec_blocks=(1, 1), cond_hidden=16)
HAZE = Diagnosis(haze=Haze(True, 60, (0.9, 0.9, 0.95), 0.46))


def _random_net(config: RestorerConfig = TINY, seed: int = 0) -> LiteRestorerNet:
    """A tiny net with every weight random (the real init zeroes the head, which would be the identity)."""
    torch.manual_seed(seed)
    net = LiteRestorerNet(config)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.1)
        for p in net.cond_mlp.parameters():
            p.normal_(0.0, 0.5)
    return net.eval()


def _restorer(tmp_path, config: RestorerConfig = TINY, **options) -> lite.LiteRestorer:
    save_network(_random_net(config), "lite_restorer", tmp_path / "lite_restorer.safetensors")
    return lite.load(ModelSpec.make("restorer", "lite", path=str(tmp_path), device="cpu", **options))


@pytest.mark.parametrize("shape", [(1, 3, 16, 16), (2, 3, 37, 53), (1, 3, 90, 33)])
def test_any_size_comes_back_same_shape_dtype_and_range(tmp_path, shape):
    restorer = _restorer(tmp_path)
    images = torch.rand(shape, generator=torch.Generator().manual_seed(1))
    out = restorer.restore(images, [HAZE] * shape[0])
    assert out.shape == images.shape and out.dtype == images.dtype
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert float((out - images).abs().mean()) > 1e-3


def test_strength_zero_is_the_input_and_strength_blends_linearly(tmp_path):
    restorer = _restorer(tmp_path)
    images = torch.rand(1, 3, 48, 40, generator=torch.Generator().manual_seed(2)) * 0.6 + 0.2
    assert torch.equal(restorer.restore(images, [HAZE], strength=0.0), images)
    full = restorer.restore(images, [HAZE])
    half = restorer.restore(images, [HAZE], strength=0.5)
    inside = (full > 0) & (full < 1)
    assert torch.allclose(half[inside], (0.5 * (images + full))[inside], atol=1e-5)
    with pytest.raises(RnRError, match="strength"):
        restorer.restore(images, [HAZE], strength=-1.0)
    with pytest.raises(RnRError, match="one diagnosis per image"):
        restorer.restore(images, [HAZE, HAZE])


def test_tiles_join_without_seams(tmp_path):
    # A net whose reach (about 20 px) fits in the blended part of the overlap: tiling must not change it.
    shallow = RestorerConfig(widths=(8, 8), enc_blocks=(1,), middle_blocks=1, dec_blocks=(1,), cond_hidden=16)
    images = torch.rand(1, 3, 150, 170, generator=torch.Generator().manual_seed(3))
    whole = _restorer(tmp_path, shallow).restore(images, [HAZE])
    seen = []
    tiled = _restorer(tmp_path, shallow, tile=64, overlap=28).restore(images, [HAZE],
                                                                      progress=lambda d, t: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1] > 1
    # Less than half an 8-bit grey level anywhere (tile starts on the net's down-sampling grid).
    difference = (tiled - whole).abs()
    assert float(difference.max()) < 2e-3


def test_one_image_path_equals_the_batched_path():
    net = _random_net()
    images = torch.rand(3, 3, 32, 48, generator=torch.Generator().manual_seed(4))
    condition = torch.rand(3, CONDITION_DIM, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        batched = net(images, condition)
        single = torch.cat([net(images[i:i + 1], condition[i:i + 1]) for i in range(3)])
    assert torch.allclose(batched, single, atol=1e-5)


def test_the_condition_changes_the_output():
    net = _random_net()
    images = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        out_haze = net(images, condition_tensor([HAZE]))
        out_clean = net(images, condition_tensor([Diagnosis()]))
    assert float((out_haze - out_clean).abs().mean()) > 1e-3


def test_edited_severity_is_what_the_condition_encodes():
    edited = HAZE.with_degradation("haze", severity=20)
    assert encode_condition(edited)[4] == pytest.approx(0.20)
    assert encode_condition(HAZE)[4] == pytest.approx((1 - 0.46) / 0.9, abs=0.01)
    assert encode_condition(HAZE.with_degradation("haze", present=False)) == [0.0] * CONDITION_DIM


def test_missing_weights_name_the_folder_and_the_file(tmp_path):
    with pytest.raises(ModelNotFoundError, match="lite_restorer.safetensors") as info:
        lite.load(ModelSpec.make("restorer", "lite", path=str(tmp_path)))
    assert str(tmp_path) in str(info.value)


def test_bad_tile_options_are_refused(tmp_path):
    with pytest.raises(RnRError, match="tile"):
        _restorer(tmp_path, tile=100)


# ---- the shipped weights ----------------------------------------------------------------------------
shipped = pytest.mark.skipif(not lite.weights_available(), reason="lite weights not installed")


@pytest.fixture(scope="module")
def photo():
    from rnr.assets import sample_path

    return load_image(sample_path("landscape")).tensor[..., :192, :192].contiguous()


@shipped
def test_shipped_restorer_is_small_and_cheap():
    restorer = lite.load(ModelSpec.make("restorer", "lite", device="cpu"))
    assert parameter_count(restorer.net) < 10_000_000
    # 28.6 k multiply-adds per pixel run a megapixel in 0.47 s on the 2-core CPU (target: 1 s).
    assert conv_macs_per_pixel(restorer.net.float()) < 35_000


@shipped
def test_shipped_restorer_tiles_a_large_photo_without_seams():
    import torch.nn.functional as F

    from rnr.assets import sample_path

    large = F.interpolate(load_image(sample_path("foliage")).tensor, size=(1200, 1600), mode="bicubic",
                          align_corners=False).clamp(0, 1)
    result = degrade(large, haze=[50], noise=[30], blur=[20], seed=0)
    whole = lite.load(ModelSpec.make("restorer", "lite", device="cpu", tile=2048, overlap=0))
    tiled = lite.load(ModelSpec.make("restorer", "lite", device="cpu"))  # default: 1024-px tiles, 2 x 2 here
    difference = (tiled.restore(result.images, result.diagnoses) - whole.restore(result.images, result.diagnoses)).abs()
    # Within 4 grey levels anywhere and a fraction of one on average (an overlap of 128 px gives 6.3 / 0.25).
    assert float(difference.max()) < 0.015 and float(difference.mean()) < 0.0006


@shipped
def test_shipped_restorer_dehazes_more_as_the_haze_severity_rises(photo):
    restorer = lite.load(ModelSpec.make("restorer", "lite", device="cpu"))
    result = degrade(photo, haze=60, seed=7)
    hazy, truth = result.images, result.diagnoses[0]
    severities = [0, 20, 40, 60]
    outputs = [restorer.restore(hazy, [truth.with_degradation("haze", present=s > 0, severity=s or None)])
               for s in severities]
    changes = [float((out - hazy).abs().mean()) for out in outputs]
    assert changes[0] < 0.01
    assert all(a < b for a, b in zip(changes, changes[1:])), changes
    assert float(psnr(outputs[-1], photo)[0]) > float(psnr(hazy, photo)[0]) + 3.0


@shipped
def test_shipped_restorer_denoises_only_when_told(photo):
    restorer = lite.load(ModelSpec.make("restorer", "lite", device="cpu"))
    result = degrade(photo, noise=50, seed=8)
    noisy, truth = result.images, result.diagnoses[0]
    told = restorer.restore(noisy, [truth])
    untold = restorer.restore(noisy, [Diagnosis()])
    assert float(psnr(told, photo)[0]) > float(psnr(noisy, photo)[0]) + 4.0
    assert float((untold - noisy).abs().mean()) < float((told - noisy).abs().mean()) / 3
    weaker = restorer.restore(noisy, [truth.with_degradation("noise", severity=10)])
    assert float((untold - noisy).abs().mean()) < float((weaker - noisy).abs().mean()) < float((told - noisy).abs().mean())


@shipped
@pytest.mark.parametrize("name, gain_db", [("rain", 6.0), ("blur", 1.0)])
def test_shipped_restorer_restores_more_as_rain_or_blur_severity_rises(name, gain_db):
    from rnr.assets import sample_path

    # A window of the building photo: straight edges and texture that rain and blur both hide.
    clean = load_image(sample_path("building")).tensor[..., 100:292, 200:392].contiguous()
    restorer = lite.load(ModelSpec.make("restorer", "lite", device="cpu"))
    result = degrade(clean, **{name: 60}, seed=9)
    degraded, truth = result.images, result.diagnoses[0]
    outputs = [restorer.restore(degraded, [truth.with_degradation(name, present=s > 0, severity=s or None)])
               for s in (0, 20, 40, 60)]
    changes = [float((out - degraded).abs().mean()) for out in outputs]
    assert changes[0] < 0.005
    assert all(a < b for a, b in zip(changes, changes[1:])), changes
    assert float(psnr(outputs[-1], clean)[0]) > float(psnr(degraded, clean)[0]) + gain_db
