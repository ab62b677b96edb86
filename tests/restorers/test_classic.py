"""The classic restorer: PSNR gains on rnr.degrade data, diagnosis order, strength, batching, sizes, errors."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch

from rnr import cache
from rnr.assets import sample_paths
from rnr.degrade import BlurParams, NoiseParams, degrade
from rnr.diagnosis import Blur, Diagnosis, Haze, Noise, Rain
from rnr.errors import DiagnosisError, ImageError, Interrupted, RnRError
from rnr.filters import dark_channel, rgb_to_opponent
from rnr.images import load_image
from rnr.metrics import psnr
from rnr.registry import ModelSpec
from rnr.restorers.classic import ClassicRestorer, load
from rnr.restorers.classic_ops import blur_kernel
from rnr.restorers.classic_ops.noise_model import estimate as estimate_noise_model

CROP = (96, 128)


pytestmark = pytest.mark.usefixtures("one_thread_per_module")


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    """Centre crops of the three shipped sample photos, [3,3,96,128]."""
    crops = []
    for path in sample_paths():
        image = load_image(path).tensor
        h, w = image.shape[-2:]
        top, left = (h - CROP[0]) // 2, (w - CROP[1]) // 2
        crops.append(image[:, :, top:top + CROP[0], left:left + CROP[1]])
    assert len(crops) == 3
    return torch.cat(crops)


@pytest.fixture(scope="module")
def restorer() -> ClassicRestorer:
    return ClassicRestorer(device="cpu")


def _mean_gain(restorer: ClassicRestorer, clean: torch.Tensor, seed: int, **degradation: object) -> float:
    result = degrade(clean, seed=seed, **degradation)
    restored = restorer.restore(result.images, result.diagnoses)
    return float((psnr(restored, clean) - psnr(result.images, clean)).mean())


def test_dehazing_raises_psnr(restorer, photos):
    assert _mean_gain(restorer, photos, seed=1, haze=60) > 5.0


def test_denoising_raises_psnr(restorer, photos):
    white = NoiseParams(sigma_255=25.0, kind="gaussian", poisson_fraction=0.0, channel_correlation=0.0,
                        spatial_sigma_px=0.0, domain="srgb")
    assert _mean_gain(restorer, photos, seed=2, noise=white) > 5.0
    shot = dataclasses.replace(white, kind="poisson", poisson_fraction=1.0)
    assert _mean_gain(restorer, photos, seed=3, noise=shot) > 5.0
    assert _mean_gain(restorer, photos, seed=4, noise=50) > 1.0  # any noise model rnr.degrade draws


def test_noise_model_tells_correlated_from_white_noise(photos):
    white = NoiseParams(sigma_255=30.0, kind="gaussian", poisson_fraction=0.0, channel_correlation=0.0,
                        spatial_sigma_px=0.0, domain="srgb")
    correlated = dataclasses.replace(white, channel_correlation=0.7, spatial_sigma_px=1.0)
    sigma = torch.full((3,), 30.0 / 255.0)
    model = estimate_noise_model(rgb_to_opponent(degrade(photos, seed=12, noise=white).images), sigma)
    assert model.spatial_sigma_px.max() <= 0.3 and model.channel_correlation.max() <= 0.15
    model = estimate_noise_model(rgb_to_opponent(degrade(photos, seed=12, noise=correlated).images), sigma)
    assert model.spatial_sigma_px.min() >= 0.5 and model.channel_correlation.min() >= 0.3
    assert torch.allclose(model.spectrum.square().mean(dim=(1, 2)), torch.ones(3))


@pytest.mark.parametrize("kind", ["defocus", "gaussian"])
def test_deconvolution_raises_psnr(restorer, photos, kind):
    assert _mean_gain(restorer, photos, seed=5, blur=BlurParams(kind=kind, extent_px=8.0)) > 0.3


def test_motion_deconvolution_raises_psnr_for_a_straight_path(restorer, photos):
    motion = BlurParams(kind="motion", path="linear", extent_px=10.0, angle_deg=30.0, variation=0.0)
    assert _mean_gain(restorer, photos, seed=6, blur=motion) > 0.3


def test_deraining_does_not_hurt_and_usually_helps(restorer, photos):
    assert _mean_gain(restorer, photos, seed=7, rain=50) > 0.0


def test_a_record_without_parameters_falls_back_on_its_severity(restorer, photos):
    noisy = degrade(photos[:1], seed=13, noise=NoiseParams(sigma_255=25.0, kind="gaussian", poisson_fraction=0.0,
                                                             channel_correlation=0.0, spatial_sigma_px=0.0,
                                                             domain="srgb"))
    bare = Diagnosis(noise=Noise(present=True, severity=50, sigma_255=0.0))  # severity 50 is sigma 25
    gain = psnr(restorer.restore(noisy.images, [bare]), photos[:1]) - psnr(noisy.images, photos[:1])
    assert float(gain) > 5.0


def test_motion_kernel_follows_the_calibration_conventions():
    kernel = blur_kernel(Blur(present=True, severity=40, kind="motion", extent_px=8.0, angle_deg=45.0))
    centre = kernel.shape[0] // 2
    # 45 degrees counter-clockwise on screen: up and to the right means row decreasing, column increasing.
    assert kernel[centre - 2, centre + 2] > 0.05 and kernel[centre - 2, centre - 2] == 0
    assert abs(float(kernel.sum()) - 1.0) < 1e-6


def _recording_restorer(calls: list) -> ClassicRestorer:
    def recorder(name):
        def step(images, record):
            calls.append((name, images.shape[0], record.severity))
            return images
        return step
    return ClassicRestorer(device="cpu", steps={name: recorder(name) for name in ("noise", "blur", "rain", "haze")})


def test_steps_run_in_the_diagnosis_order_with_their_records(photos):
    calls: list = []
    diagnosis = Diagnosis(haze=Haze(True, 40), noise=Noise(True, 20, 10.0), blur=Blur(True, 30, "gaussian", 7.0),
                          order=("haze", "noise"))
    _recording_restorer(calls).restore(photos[:1], [diagnosis])
    # Present degradations missing from `order` follow in the default order.
    assert calls == [("haze", 1, 40), ("noise", 1, 20), ("blur", 1, 30)]


def test_a_batch_groups_equal_diagnoses_and_keeps_each_order(photos):
    calls: list = []
    first = Diagnosis(rain=Rain(True, 50, 0.06, 5.0, 20.0), noise=Noise(True, 30, 15.0), order=("rain", "noise"))
    second = Diagnosis(haze=Haze(True, 70))
    _recording_restorer(calls).restore(photos, [first, second, first])
    assert calls == [("rain", 2, 50), ("noise", 2, 30), ("haze", 1, 70)]


def test_progress_is_reported_per_step_and_can_interrupt(restorer, photos):
    seen = []
    diagnoses = [Diagnosis(noise=Noise(True, 20, 10.0), haze=Haze(True, 30)), Diagnosis(haze=Haze(True, 50))]
    restorer.restore(photos[:2], diagnoses, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]

    def stop(done, total):
        raise Interrupted("stop")

    with pytest.raises(Interrupted):
        restorer.restore(photos[:2], diagnoses, progress=stop)


def test_strength_zero_is_the_identity_and_strength_blends(restorer, photos):
    hazy = degrade(photos[:1], seed=1, haze=50)
    images, diagnoses = hazy.images, hazy.diagnoses
    assert torch.equal(restorer.restore(images, diagnoses, strength=0.0), images)
    full = restorer.restore(images, diagnoses, strength=1.0)
    half = restorer.restore(images, diagnoses, strength=0.5)
    assert torch.allclose(half, 0.5 * (images + full), atol=1e-5)
    untouched = restorer.restore(images, [Diagnosis()])
    assert torch.equal(untouched, images) and untouched.data_ptr() != images.data_ptr()


def test_dehazing_grows_monotonically_with_severity(restorer, photos):
    hazy = degrade(photos, seed=8, haze=50)
    changes, darks = [], []
    for severity in (10, 30, 50, 70, 90):
        diagnoses = [d.with_degradation("haze", severity=severity) for d in hazy.diagnoses]
        out = restorer.restore(hazy.images, diagnoses)
        changes.append(float((out - hazy.images).abs().mean()))
        darks.append(float(dark_channel(out, 3).mean()))
    assert all(a < b for a, b in itertools.pairwise(changes)), changes
    assert all(a > b for a, b in itertools.pairwise(darks)), darks


def test_a_mixed_batch_equals_restoring_each_image_alone(restorer, photos):
    a = degrade(photos[:1], seed=9, haze=40, noise=30)
    b = degrade(photos[1:2], seed=10, blur=BlurParams(kind="defocus", extent_px=6.0), rain=40)
    batch = torch.cat([a.images, b.images])
    together = restorer.restore(batch, a.diagnoses + b.diagnoses)
    alone = torch.cat([restorer.restore(a.images, a.diagnoses), restorer.restore(b.images, b.diagnoses)])
    assert torch.allclose(together, alone, atol=1e-5)
    assert (together[0] - together[1]).abs().mean() > 0.01


FULL = Diagnosis(haze=Haze(True, 50), rain=Rain(True, 40, 0.05, 10.0, 12.0), noise=Noise(True, 40, 20.0, "poisson"),
                 blur=Blur(True, 30, "motion", 6.0, 120.0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_odd_sizes_keep_shape_dtype_and_range(restorer, photos, dtype):
    images = photos[:2, :, :17, :33].to(dtype)
    out = restorer.restore(images, [FULL, FULL])
    assert out.shape == images.shape and out.dtype == dtype and out.device == images.device
    assert torch.isfinite(out.float()).all() and out.min() >= 0 and out.max() <= 1


def test_tiled_restoration_matches_the_whole_image(photos):
    noisy = degrade(photos[:1], seed=11, noise=NoiseParams(sigma_255=20.0, kind="gaussian", poisson_fraction=0.0,
                                                             channel_correlation=0.0, spatial_sigma_px=0.0,
                                                             domain="srgb"))
    diagnosis = noisy.diagnoses[0].with_degradation("haze", present=True, severity=40)
    whole = ClassicRestorer(device="cpu").restore(noisy.images, [diagnosis])
    tiled = ClassicRestorer(device="cpu", tile=48, max_untiled_pixels=1000).restore(noisy.images, [diagnosis])
    assert float(psnr(tiled, whole)) > 45.0


def test_a_tiled_step_can_be_interrupted_between_tiles(photos):
    seen = []

    def stop(done, total):
        seen.append((done, total))
        raise Interrupted("stop")

    diagnosis = Diagnosis(noise=Noise(True, 40, 20.0), haze=Haze(True, 40))
    tiled = ClassicRestorer(device="cpu", tile=48, max_untiled_pixels=1000)
    with pytest.raises(Interrupted):
        tiled.restore(photos[:1], [diagnosis], progress=stop)
    assert seen == [(0, 2)]  # after the first tile of the first step


def test_bad_inputs_raise_clear_errors(restorer, photos):
    with pytest.raises(ImageError, match="too small"):
        restorer.restore(torch.rand(1, 3, 1, 1), [FULL])
    bad = photos[:1].clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ImageError, match="NaN"):
        restorer.restore(bad, [FULL])
    with pytest.raises(ImageError, match="uint8"):
        restorer.restore((photos[:1] * 255).to(torch.uint8), [FULL])
    with pytest.raises(ImageError, match="0..255"):
        restorer.restore(photos[:1] * 255, [FULL])
    with pytest.raises(DiagnosisError, match="one per image"):
        restorer.restore(photos[:2], [FULL])
    with pytest.raises(DiagnosisError, match="Wrap it in a list"):
        restorer.restore(photos[:1], FULL)
    with pytest.raises(DiagnosisError, match=r"diagnoses\[0\]"):
        restorer.restore(photos[:1], [FULL.to_json()])
    with pytest.raises(RnRError, match="strength"):
        restorer.restore(photos[:1], [FULL], strength=1.5)


def test_loads_through_the_registry_and_cache():
    spec = ModelSpec.make("restorer", "classic", device="cpu")
    model = cache.get(spec)
    assert isinstance(model, ClassicRestorer) and model.name == "classic"
    assert model.device == torch.device("cpu") and cache.get(spec) is model
    assert isinstance(load(ModelSpec.make("restorer", "classic", device="cpu", tile=512)), ClassicRestorer)
