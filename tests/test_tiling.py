"""rnr.tiling: tiles cover every pixel, blend weights sum to one, no seams for local functions."""

from __future__ import annotations

import itertools

import pytest
import torch

from rnr.errors import ImageError
from rnr.filters import gaussian_blur
from rnr.tiling import tile_starts, tiled_apply

pytestmark = pytest.mark.usefixtures("one_thread_per_module")


def _image(batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, height, width, generator=generator)


@pytest.mark.parametrize("length,tile,overlap", [(100, 32, 8), (33, 32, 8), (32, 32, 8), (5, 32, 8), (257, 64, 16)])
def test_tile_starts_cover_the_axis_with_the_overlap(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0
    assert starts[-1] + min(tile, length) == length
    for a, b in itertools.pairwise(starts):
        assert b - a <= tile - overlap  # neighbours share at least `overlap` pixels


@pytest.mark.parametrize("height,width", [(97, 61), (17, 33), (1, 1), (64, 200)])
def test_pointwise_function_gives_the_untiled_result(height, width):
    images = _image(2, height, width)

    def fn(x: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(x) * 0.5 + x ** 2

    tiled = tiled_apply(fn, images, tile=24, overlap=8)
    assert tiled.shape == images.shape
    assert torch.allclose(tiled, fn(images), atol=1e-6)


def test_local_function_leaves_no_seams():
    images = gaussian_blur(_image(1, 150, 130, seed=3), 1.5)
    fn = lambda x: gaussian_blur(x, 2.0)
    reference = fn(images)
    tiled = tiled_apply(fn, images, tile=48, overlap=24)
    error = (tiled - reference).abs()
    # Tile borders lie at multiples of the step (24 px); errors there must be as small as elsewhere.
    assert error.max() < 2e-3
    assert error.mean() < 1e-4


def test_output_channels_may_differ_and_progress_counts_tiles():
    images = _image(1, 50, 70)
    calls = []
    out = tiled_apply(lambda x: x.mean(dim=1, keepdim=True), images, tile=32, overlap=8,
                      progress=lambda done, total: calls.append((done, total)))
    assert out.shape == (1, 1, 50, 70)
    assert torch.allclose(out, images.mean(dim=1, keepdim=True), atol=1e-6)
    assert calls == [(i + 1, 6) for i in range(6)]


def test_an_image_within_one_tile_goes_to_fn_whole():
    images = _image(1, 20, 30)
    shapes = []
    tiled_apply(lambda x: shapes.append(tuple(x.shape)) or x, images, tile=64, overlap=16)
    assert shapes == [(1, 3, 20, 30)]


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ImageError, match=r"\[B,C,H,W\]"):
        tiled_apply(lambda x: x, torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="overlap < tile"):
        tiled_apply(lambda x: x, torch.rand(1, 3, 8, 8), tile=16, overlap=16)
    with pytest.raises(ValueError, match="keep batch and tile size"):
        tiled_apply(lambda x: x[..., :-1], torch.rand(1, 3, 40, 40), tile=16, overlap=4)
