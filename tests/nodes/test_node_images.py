"""RnR Load Sample Image and RnR Degrade, plus the IMAGE layout conversion they share with every node."""

from __future__ import annotations

import pytest
import torch
from comfy_calls import ValidationError, call, mappings, pack_module

from rnr.errors import ImageError


def test_sample_combo_lists_the_shipped_photos():
    samples = mappings()["RnRLoadSampleImage"].INPUT_TYPES()["required"]["sample"][0]
    assert samples == ["building.jpg", "foliage.jpg", "landscape.jpg"]
    assert mappings()["RnRLoadSampleImage"].INPUT_TYPES()["required"]["sample"][1]["default"] == "building.jpg"


@pytest.mark.parametrize("sample, size", [("building.jpg", (480, 768)), ("landscape.jpg", (576, 768))])
def test_load_sample_gives_a_one_image_batch(sample, size):
    (image,) = call("RnRLoadSampleImage", sample=sample)
    assert tuple(image.shape) == (1, *size, 3)
    assert 0.1 < float(image.mean()) < 0.9 and float(image.std()) > 0.05  # a real photo, not a blank


def test_unknown_sample_is_rejected():
    with pytest.raises(ValidationError, match="not in list"):
        call("RnRLoadSampleImage", sample="cat.jpg")


@pytest.fixture(scope="module")
def photo():
    (image,) = call("RnRLoadSampleImage", sample="foliage.jpg")
    return image[:, ::4, ::4, :].contiguous()  # 128x192: quick on the CPU


def test_degrade_adds_what_it_reports(photo):
    image, truth = call("RnRDegrade", image=photo, haze=60, noise=25, seed=3)
    assert image.shape == photo.shape
    (diagnosis,) = truth
    assert diagnosis.present == ("haze", "noise") and diagnosis.source == "ground_truth"
    assert abs(diagnosis.haze.severity - 60) <= 3 and abs(diagnosis.noise.severity - 25) <= 3
    assert float((image - photo).abs().mean()) > 0.05
    # haze lifts the dark channel: the mean of the per-pixel minimum over RGB rises
    assert float(image.min(dim=-1).values.mean()) > float(photo.min(dim=-1).values.mean()) + 0.1


def test_degrade_is_reproducible_from_the_seed_and_zero_adds_nothing(photo):
    a = call("RnRDegrade", image=photo, rain=50, seed=7)[0]
    b = call("RnRDegrade", image=photo, rain=50, seed=7)[0]
    c = call("RnRDegrade", image=photo, rain=50, seed=8)[0]
    assert torch.equal(a, b) and not torch.equal(a, c)
    clean, truth = call("RnRDegrade", image=photo, seed=7)
    assert torch.allclose(clean, photo, atol=1e-6) and truth[0].is_clean


def test_degrade_batches_and_keeps_alpha_and_grayscale_layouts(photo):
    batch = torch.cat([photo, photo.flip(2)])
    image, truth = call("RnRDegrade", image=batch, blur=40, seed=1)
    assert image.shape == batch.shape and len(truth) == 2 and all(d.blur.present for d in truth)
    rgba = torch.cat([photo, torch.full_like(photo[..., :1], 0.5)], dim=-1)
    out = call("RnRDegrade", image=rgba, noise=30, seed=1)[0]
    assert out.shape == rgba.shape and torch.equal(out[..., 3], rgba[..., 3])
    gray = photo.mean(dim=-1, keepdim=True)
    out = call("RnRDegrade", image=gray, noise=30, seed=1)[0]
    assert out.shape == gray.shape


def test_images_that_cannot_work_get_a_readable_error():
    convert = pack_module("nodes._convert")
    with pytest.raises(ImageError, match="MASK is not an image"):
        convert.from_comfy(torch.rand(1, 32, 32), "image")  # a MASK [B,H,W] wired by mistake is 3-D ...
    with pytest.raises(ImageError, match=r"at least 16x16"):
        convert.from_comfy(torch.rand(1, 8, 8, 3))
    with pytest.raises(ImageError, match="NaN"):
        convert.from_comfy(torch.full((1, 32, 32, 3), float("nan")))
