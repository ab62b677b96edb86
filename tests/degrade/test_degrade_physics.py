"""rnr.degrade models change images in the physically expected direction, by the stated amounts."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rnr.degrade import BlurParams, HazeParams, NoiseParams, RainParams, degrade
from rnr.degrade.blur import kernel_extent, make_kernel
from rnr.degrade.kernels import defocus_kernel, gaussian_kernel, linear_path, path_extent_angle, shake_path
from rnr.degrade.seeding import make_streams


def textured(batch: int = 2, size: int = 96, seed: int = 0) -> torch.Tensor:
    """Isotropic random texture (smoothed noise) around mid-grey with some colour."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(batch, 3, size // 2, size // 2, generator=g)
    up = F.interpolate(noise, size=(size, size), mode="bilinear", align_corners=False)
    return (0.15 + 0.7 * up).clamp(0, 1)


def dark_channel(images: torch.Tensor) -> torch.Tensor:
    return -F.max_pool2d(-images.amin(dim=1, keepdim=True), 7, stride=1, padding=3)


def gradient_energy(images: torch.Tensor, dy: int, dx: int) -> float:
    """Mean squared difference between each pixel and its neighbour (dy, dx) (rows down)."""
    h, w = images.shape[-2:]
    a = images[..., max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
    b = images[..., max(0, dy):h - max(0, -dy), max(0, dx):w - max(0, -dx)]
    return float(((a - b) ** 2).mean())


@pytest.mark.parametrize("model", ["uniform", "vertical", "smooth", "image", "mixed"])
def test_haze_raises_dark_channel_and_lowers_contrast(model):
    images = textured()
    hazy = degrade(images, haze=HazeParams(transmission=0.4, depth_model=model), seed=1)
    assert dark_channel(hazy.images).mean() > dark_channel(images).mean() + 0.2
    assert hazy.images.std(dim=(2, 3)).mean() < 0.8 * images.std(dim=(2, 3)).mean()
    for diagnosis in hazy.diagnoses:
        assert diagnosis.haze.transmission == pytest.approx(0.4, abs=0.01)


def test_haze_follows_the_scattering_model_for_uniform_depth():
    images = textured(1)
    light = (0.9, 0.85, 0.8)
    result = degrade(images, haze=HazeParams(transmission=0.3, atmospheric_light=light, depth_model="uniform",
                                             airlight_variation=0.0), seed=0)
    expected = images * 0.3 + torch.tensor(light)[None, :, None, None] * 0.7
    assert (result.images - expected).abs().max() < 1e-4


@pytest.mark.parametrize("params", [
    NoiseParams(sigma_255=25.0, poisson_fraction=0.0, channel_correlation=0.0, spatial_sigma_px=0.0),
    NoiseParams(sigma_255=25.0, poisson_fraction=1.0, channel_correlation=0.0, spatial_sigma_px=0.0),
    NoiseParams(sigma_255=10.0, poisson_fraction=0.4, channel_correlation=0.7, spatial_sigma_px=0.0),
    NoiseParams(sigma_255=40.0, poisson_fraction=0.8, channel_correlation=0.3, spatial_sigma_px=1.0),
    NoiseParams(sigma_255=5.0, poisson_fraction=0.0, channel_correlation=0.0, spatial_sigma_px=0.6),
    NoiseParams(sigma_255=30.0, poisson_fraction=0.0, channel_correlation=0.0, spatial_sigma_px=0.0, domain="linear"),
    NoiseParams(sigma_255=50.0, poisson_fraction=1.0, channel_correlation=0.5, spatial_sigma_px=0.0, domain="linear"),
])
def test_noise_std_on_mid_grey_matches_sigma(params):
    flat = torch.full((2, 3, 128, 128), 0.5)
    result = degrade(flat, noise=params, seed=3)
    measured = float((result.images - flat).std()) * 255
    assert measured == pytest.approx(params.sigma_255, rel=0.1)
    assert result.diagnoses[0].noise.sigma_255 == pytest.approx(params.sigma_255)


@pytest.mark.parametrize("severity", [10, 40, 80])
def test_noise_severity_matches_measured_std(severity):
    flat = torch.full((4, 3, 96, 96), 0.5)
    result = degrade(flat, noise=severity, seed=severity)
    for i, diagnosis in enumerate(result.diagnoses):
        measured = float((result.images[i] - flat[i]).std()) * 255
        assert measured == pytest.approx(calibration_sigma(severity), rel=0.1)
        assert diagnosis.noise.severity == severity


def calibration_sigma(severity: int) -> float:
    from rnr.diagnosis import calibration
    return calibration.noise_sigma_from_severity(severity)


def test_poisson_noise_grows_with_signal_and_gaussian_does_not():
    dark, bright = torch.full((1, 3, 128, 128), 0.1), torch.full((1, 3, 128, 128), 0.8)
    shot = NoiseParams(sigma_255=20.0, poisson_fraction=1.0, channel_correlation=0.0, spatial_sigma_px=0.0,
                       domain="srgb")
    read = NoiseParams(sigma_255=20.0, poisson_fraction=0.0, channel_correlation=0.0, spatial_sigma_px=0.0,
                       domain="srgb")
    std = {}
    for name, p in (("shot", shot), ("read", read)):
        for level, image in (("dark", dark), ("bright", bright)):
            std[name, level] = float((degrade(image, noise=p, seed=0).images - image).std()) * 255
    # Pure shot noise: variance proportional to the signal, sigma^2 * 2x.
    assert std["shot", "dark"] == pytest.approx(20.0 * math.sqrt(0.2), rel=0.1)
    assert std["shot", "bright"] == pytest.approx(20.0 * math.sqrt(1.6), rel=0.1)
    assert std["read", "dark"] == pytest.approx(std["read", "bright"], rel=0.1)


def test_linear_light_read_noise_is_stronger_in_the_shadows():
    dark, grey = torch.full((1, 3, 128, 128), 0.15), torch.full((1, 3, 128, 128), 0.5)
    p = NoiseParams(sigma_255=10.0, poisson_fraction=0.0, channel_correlation=0.0, spatial_sigma_px=0.0,
                    domain="linear")
    dark_std = float((degrade(dark, noise=p, seed=0).images - dark).std()) * 255
    grey_std = float((degrade(grey, noise=p, seed=0).images - grey).std()) * 255
    assert grey_std == pytest.approx(10.0, rel=0.1)
    assert dark_std > 1.8 * grey_std


def test_channel_correlated_noise_is_correlated():
    flat = torch.full((1, 3, 128, 128), 0.5)
    p = NoiseParams(sigma_255=20.0, poisson_fraction=0.0, channel_correlation=0.8, spatial_sigma_px=0.0)
    n = (degrade(flat, noise=p, seed=0).images - flat)[0].flatten(1)
    assert float(torch.corrcoef(n)[0, 1]) == pytest.approx(0.8, abs=0.05)


def test_spatially_correlated_noise_has_neighbour_correlation():
    flat = torch.full((1, 3, 128, 128), 0.5)
    p = NoiseParams(sigma_255=20.0, poisson_fraction=0.0, channel_correlation=0.0, spatial_sigma_px=1.0)
    n = (degrade(flat, noise=p, seed=0).images - flat)[0]
    neighbour = float(torch.corrcoef(torch.stack([n[:, :, 1:].flatten(), n[:, :, :-1].flatten()]))[0, 1])
    # A gaussian of sigma 1 correlates neighbours by exp(-1/4) ~ 0.78.
    assert neighbour == pytest.approx(math.exp(-0.25), abs=0.06)


@pytest.mark.parametrize("kind", ["motion", "defocus", "gaussian"])
def test_blur_lowers_gradient_energy(kind):
    images = textured()
    result = degrade(images, blur=BlurParams(kind=kind, extent_px=8.0), seed=2)
    before = gradient_energy(images, 0, 1) + gradient_energy(images, 1, 0)
    after = gradient_energy(result.images, 0, 1) + gradient_energy(result.images, 1, 0)
    assert after < 0.5 * before


@pytest.mark.parametrize("angle,along,across", [(0.0, (0, 1), (1, 0)), (90.0, (1, 0), (0, 1)),
                                                 (45.0, (-1, 1), (-1, -1)), (135.0, (-1, -1), (-1, 1))])
def test_motion_blur_smooths_along_its_angle(angle, along, across):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(1, 3, 96, 96, generator=g)
    result = degrade(images, blur=BlurParams(kind="motion", extent_px=12.0, angle_deg=angle, path="linear"), seed=0)
    ratio_along = gradient_energy(result.images, *along) / gradient_energy(images, *along)
    ratio_across = gradient_energy(result.images, *across) / gradient_energy(images, *across)
    assert ratio_along < 0.5 * ratio_across
    assert result.diagnoses[0].blur.angle_deg == pytest.approx(angle)


@pytest.mark.parametrize("angle", [0.0, 30.0, 100.0, 160.0])
def test_shake_kernels_have_the_requested_extent_and_direction(angle):
    streams = make_streams(4, "blur", torch.device("cpu"))
    for _ in range(5):
        points, weights = shake_path(streams, 16.0, angle)
        extent, measured_angle = path_extent_angle(points, weights)
        assert extent == pytest.approx(16.0, rel=1e-6)
        assert min(abs(measured_angle - angle), 180 - abs(measured_angle - angle)) < 1e-6
        kernel = make_kernel(BlurParams(kind="motion", extent_px=16.0, angle_deg=angle, path="shake"), streams)
        assert kernel.sum() == pytest.approx(1.0, abs=1e-5) and kernel.min() >= 0
        assert kernel_extent(kernel) == pytest.approx(16.0, rel=0.12)


def test_kernel_extents_match_the_calibration_definitions():
    # A disk of diameter D has std D/4 along each axis and a gaussian of sigma s has std s, so
    # 4 * std = kernel_extent * 4 / sqrt(12) is the diameter or 4 sigma of the calibration.
    assert kernel_extent(defocus_kernel(12.0)) * 4 / math.sqrt(12) == pytest.approx(12.0, rel=0.05)
    assert kernel_extent(gaussian_kernel(3.0)) * 4 / math.sqrt(12) == pytest.approx(12.0, rel=0.05)
    line = make_kernel(BlurParams(kind="motion", extent_px=16.0, angle_deg=20.0, path="linear"),
                       make_streams(0, "blur", torch.device("cpu")))
    assert kernel_extent(line) == pytest.approx(16.0, rel=0.05)
    extent, angle = path_extent_angle(linear_path(16.0, 20.0))
    assert extent == pytest.approx(16.0, rel=0.002) and angle == pytest.approx(20.0, abs=0.01)


def test_linear_light_blur_smears_highlights_brighter():
    images = torch.full((1, 3, 64, 64), 0.1)
    images[..., 30:33, 30:33] = 1.0
    plain = degrade(images, blur=BlurParams(kind="defocus", extent_px=10.0, linear_light=False), seed=0).images
    light = degrade(images, blur=BlurParams(kind="defocus", extent_px=10.0, linear_light=True), seed=0).images
    assert float(light[0, 0, 31, 31]) > float(plain[0, 0, 31, 31]) + 0.05
    assert float(light[0, 0, 5, 5]) == pytest.approx(0.1, abs=1e-4)


@pytest.mark.parametrize("kind", ["motion", "defocus", "gaussian"])
def test_spatially_varying_blur_lies_between_its_extremes(kind):
    images = textured(1, 96)
    base = {"kind": kind, "angle_deg": 60.0, "path": "shake", "linear_light": False}
    varying = degrade(images, blur=BlurParams(extent_px=10.0, variation=0.8, **base), seed=3)
    low = degrade(images, blur=BlurParams(extent_px=6.0, variation=0.0, **base), seed=3).images
    high = degrade(images, blur=BlurParams(extent_px=14.0, variation=0.0, **base), seed=3).images
    out = varying.images
    assert float(((out - low) * (out - high)).max()) < 1e-6
    closer_to_low = ((out - low).abs() < (out - high).abs()).float().mean()
    assert 0.15 < float(closer_to_low) < 0.85
    assert varying.diagnoses[0].blur.extent_px == pytest.approx(10.0)


def test_rain_density_is_the_mean_opacity():
    black = torch.zeros(2, 3, 128, 128)
    params = RainParams(density=0.06, blend="over", colour=(1.0, 1.0, 1.0))
    result = degrade(black, rain=params, seed=5)
    for i, diagnosis in enumerate(result.diagnoses):
        assert float(result.images[i].mean()) == pytest.approx(diagnosis.rain.density, rel=0.02)
        assert diagnosis.rain.density == pytest.approx(0.06, rel=0.05)


@pytest.mark.parametrize("severity", [15, 50, 90])
def test_rain_measured_density_is_within_tolerance(severity):
    result = degrade(textured(3, 128), rain=severity, seed=severity)
    target = severity * 0.12 / 100
    for diagnosis in result.diagnoses:
        assert diagnosis.rain.density == pytest.approx(target, rel=0.05)


@pytest.mark.parametrize("angle", [0.0, 30.0, -30.0])
def test_rain_adds_bright_thin_streaks_along_their_angle(angle):
    images = torch.full((1, 3, 128, 128), 0.3)
    params = RainParams(density=0.05, angle_deg=angle, angle_spread_deg=0.0, length_px=30.0, width_px=1.2,
                        layers=1, blend="screen", softness_px=0.0)
    result = degrade(images, rain=params, seed=1)
    streaks = result.images[0].mean(dim=0) - 0.3
    assert float(streaks.min()) > -1e-6 and float(streaks.max()) > 0.2
    # Differences across the streaks are large, along them small. Direction "up the streak":
    # positive angles lean right at the top.
    theta = math.radians(angle)
    up = (-math.cos(theta), math.sin(theta))
    across = (math.sin(theta), math.cos(theta))
    along_energy = directional_energy(streaks, up)
    across_energy = directional_energy(streaks, across)
    assert across_energy > 3 * along_energy


def directional_energy(image: torch.Tensor, direction: tuple[float, float]) -> float:
    """Mean squared difference to the neighbour one pixel away along (dy, dx), by bilinear sampling."""
    h, w = image.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    grid = torch.stack([(xs + direction[1]) / (w - 1) * 2 - 1, (ys + direction[0]) / (h - 1) * 2 - 1], dim=-1)
    shifted = F.grid_sample(image[None, None], grid[None], align_corners=True, padding_mode="border")[0, 0]
    return float(((shifted - image)[4:-4, 4:-4] ** 2).mean())


def test_rain_streak_length_is_reported():
    result = degrade(textured(2, 128), rain=RainParams(density=0.04, length_px=40.0, layers=1), seed=0)
    for diagnosis in result.diagnoses:
        assert 25 < diagnosis.rain.length_px < 60
