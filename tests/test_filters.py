"""rnr.filters: reference values for the shared image operations, at ordinary and degenerate sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnr import filters

pytestmark = pytest.mark.usefixtures("one_thread_per_module")


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("pads", [(0, 0, 0, 0), (1, 2, 3, 4), (7, 7, 5, 5), (20, 1, 1, 30)])
def test_pad_symmetric_matches_numpy_for_any_pad(pads):
    x = _rand(1, 2, 5, 7)
    left, right, top, bottom = pads
    expected = np.pad(x.numpy(), ((0, 0), (0, 0), (top, bottom), (left, right)), mode="symmetric")
    assert np.array_equal(filters.pad_symmetric(x, *pads).numpy(), expected)


@pytest.mark.parametrize("radius", [1, 3, 9])
def test_box_filter_is_the_mean_over_pixels_inside_the_window(radius):
    x = _rand(2, 3, 23, 31)
    reference = F.avg_pool2d(x, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)
    assert torch.allclose(filters.box_filter(x, radius), reference, atol=1e-6)


def test_box_filter_stays_exact_on_long_rows():
    x = _rand(1, 1, 2, 8000, seed=1) + 5.0
    reference = F.avg_pool2d(x.double(), (1, 11), 1, (0, 5), count_include_pad=False).float()
    assert (filters.box_filter_1d(x, 5, -1) - reference).abs().max() < 1e-5


def test_min_and_max_filters_match_pooling_with_replicated_edges():
    x = _rand(1, 3, 12, 15)
    padded = F.pad(x, (2, 2, 2, 2), mode="replicate")
    assert torch.equal(filters.max_filter(x, 2), F.max_pool2d(padded, 5, 1))
    assert torch.equal(filters.min_filter(x, 2), -F.max_pool2d(-padded, 5, 1))


def test_gaussian_blur_keeps_constants_and_mean_and_smooths_noise():
    constant = torch.full((1, 3, 20, 20), 0.3)
    assert torch.allclose(filters.gaussian_blur(constant, 2.0), constant, atol=1e-6)
    noise = _rand(1, 1, 64, 64)
    blurred = filters.gaussian_blur(noise, 2.0)
    assert abs(blurred.mean() - noise.mean()) < 2e-3
    assert blurred.std() < 0.3 * noise.std()
    assert torch.equal(filters.gaussian_blur(noise, 0.0), noise)


def test_median_filter_removes_an_impulse():
    x = torch.full((1, 1, 9, 9), 0.2)
    x[0, 0, 4, 4] = 1.0
    assert torch.allclose(filters.median_filter(x, 1, 1), torch.full_like(x, 0.2))


def test_guided_filter_keeps_the_guide_edges_and_smooths_flat_noise():
    step = torch.zeros(1, 1, 32, 32)
    step[..., 16:] = 1.0
    noisy = step + 0.05 * torch.randn(step.shape, generator=torch.Generator().manual_seed(2))
    out = filters.guided_filter(step, noisy, 4, 1e-3)
    assert (out - step).abs().mean() < 0.3 * (noisy - step).abs().mean()
    # eps -> 0 with the image as its own guide is the identity.
    x = _rand(2, 3, 17, 21)
    assert torch.allclose(filters.guided_filter(x, x, 2, 1e-8), x, atol=1e-4)
    fast = filters.guided_filter(step, noisy, 8, 1e-3, subsample=4)
    assert fast.shape == step.shape and (fast - step).abs().mean() < 0.05


def test_color_guided_filter_follows_a_colour_edge_of_equal_luminance():
    guide = torch.zeros(1, 3, 24, 24)
    guide[:, 0, :, :12] = 0.6      # red left half
    guide[:, 2, :, 12:] = 0.6      # blue right half: nearly equal grey value
    src = torch.zeros(1, 1, 24, 24)
    src[..., 12:] = 1.0
    colour = filters.color_guided_filter(guide, src, 4, 1e-4)
    grey = filters.guided_filter(guide.mean(dim=1, keepdim=True), src, 4, 1e-4)
    assert (colour - src).abs().mean() < 0.02
    assert (colour - src).abs().mean() < 0.5 * (grey - src).abs().mean()


def test_dark_channel_and_atmospheric_light_of_a_synthetic_haze():
    generator = torch.Generator().manual_seed(4)
    scene = filters.gaussian_blur(torch.rand(1, 3, 64, 64, generator=generator), 1.0) * 0.8
    scene[..., 20:40, 20:40] = 0.0  # dark objects: the prior's assumption
    depth = torch.linspace(0, 1, 64).view(1, 1, 64, 1).expand(1, 1, 64, 64)
    transmission = torch.exp(-2.0 * depth)
    light = torch.tensor([0.9, 0.85, 0.8]).view(1, 3, 1, 1)
    hazy = scene * transmission + light * (1 - transmission)
    dark = filters.dark_channel(hazy, 3)
    assert dark.shape == (1, 1, 64, 64)
    assert dark[..., 50:, :].mean() > dark[..., :10, :].mean()  # more haze farther away
    estimate = filters.estimate_atmospheric_light(hazy, patch_radius=3, top_fraction=0.01)
    assert estimate.shape == (1, 3)
    assert (estimate[0] - light.view(3)).abs().max() < 0.12
    t = filters.estimate_transmission(hazy, light.view(1, 3), patch_radius=3)
    assert (t[..., 30:34, 30:34] - transmission[..., 30:34, 30:34]).abs().max() < 0.1


def test_colour_transforms_round_trip_and_luma_weights():
    x = _rand(2, 3, 5, 6)
    assert torch.allclose(filters.opponent_to_rgb(filters.rgb_to_opponent(x)), x, atol=1e-6)
    noise = torch.randn(1, 3, 200, 200, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(filters.rgb_to_opponent(noise).std(dim=(0, 2, 3)), torch.ones(3), atol=0.02)
    grey = torch.full((1, 3, 2, 2), 0.5)
    assert torch.allclose(filters.rgb_to_luma(grey), torch.full((1, 1, 2, 2), 0.5))


def test_resize_max_side_only_shrinks():
    x = _rand(1, 3, 100, 50)
    assert filters.resize_max_side(x, 40).shape == (1, 3, 40, 20)
    assert filters.resize_max_side(x, 400) is x


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (1, 9)])
def test_every_filter_handles_tiny_images(size):
    x = _rand(1, 3, *size)
    for out in (filters.box_filter(x, 3), filters.gaussian_blur(x, 1.5), filters.min_filter(x, 2),
                filters.max_filter(x, 2), filters.median_filter(x, 1, 1), filters.dark_channel(x, 7),
                filters.guided_filter(x[:, :1], x, 4, 1e-3), filters.color_guided_filter(x, x, 4, 1e-3)):
        assert out.shape[-2:] == size and torch.isfinite(out).all()
    assert torch.allclose(filters.box_filter(x, 50), x.mean(dim=(2, 3), keepdim=True).expand_as(x), atol=1e-6)
