"""Image files in and out (every common mode and the broken ones) and validation of image tensors."""

from __future__ import annotations

import struct
import warnings
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from rnr.errors import ImageError
from rnr.images import (DEFAULT_MAX_PIXELS, ImageWarning, check_images, list_image_files, load_image,
                        save_image)


def write_png16(path, array: np.ndarray) -> None:
    """Write a 16-bit PNG (grey, grey+alpha, RGB or RGBA by channel count) without Pillow's 8-bit reduction."""
    height, width, channels = array.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    with open(path, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))


def gradient_rgb(height: int = 24, width: int = 32) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // (width - 1), y * 255 // (height - 1), (x + y) % 256], axis=2).astype(np.uint8)


def test_rgb_png_round_trips_exactly(tmp_path):
    array = gradient_rgb()
    Image.fromarray(array).save(tmp_path / "a.png")
    loaded = load_image(tmp_path / "a.png")
    assert loaded.tensor.shape == (1, 3, 24, 32) and loaded.tensor.dtype == torch.float32
    assert loaded.alpha is None and loaded.bit_depth == 8 and loaded.size == (24, 32)
    assert torch.equal((loaded.tensor[0].permute(1, 2, 0) * 255).round().to(torch.uint8), torch.from_numpy(array))
    save_image(tmp_path / "out" / "b.png", loaded.tensor)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "b.png")), array)


def test_grayscale_becomes_three_equal_channels(tmp_path):
    grey = gradient_rgb()[..., 0]
    Image.fromarray(grey, mode="L").save(tmp_path / "g.png")
    loaded = load_image(tmp_path / "g.png")
    assert loaded.tensor.shape == (1, 3, 24, 32) and loaded.alpha is None
    assert torch.equal(loaded.tensor[0, 0], loaded.tensor[0, 1]) and torch.equal(loaded.tensor[0, 0], loaded.tensor[0, 2])
    assert loaded.tensor[0, 0, 0, -1].item() == pytest.approx(1.0)


def test_rgba_keeps_its_alpha_through_save(tmp_path):
    rgba = np.concatenate([gradient_rgb(), np.full((24, 32, 1), 7, np.uint8)], axis=2)
    rgba[:12, :, 3] = 200
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "t.png")
    loaded = load_image(tmp_path / "t.png")
    assert loaded.alpha is not None and loaded.alpha.shape == (1, 1, 24, 32)
    assert loaded.alpha[0, 0, 0, 0].item() == pytest.approx(200 / 255) and loaded.alpha[0, 0, -1, 0].item() == pytest.approx(7 / 255)
    save_image(tmp_path / "t_out.png", loaded.tensor, loaded.alpha)
    back = np.asarray(Image.open(tmp_path / "t_out.png"))
    assert back.shape == (24, 32, 4) and np.array_equal(back, rgba)
    with pytest.warns(ImageWarning, match="no alpha channel"):
        save_image(tmp_path / "t_out.jpg", loaded.tensor, loaded.alpha)
    assert Image.open(tmp_path / "t_out.jpg").mode == "RGB"


def test_la_and_palette_transparency_give_alpha(tmp_path):
    Image.new("LA", (20, 20), (90, 128)).save(tmp_path / "la.png")
    palette = Image.new("P", (20, 20), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.info["transparency"] = 0
    palette.putpixel((0, 0), 0)
    palette.save(tmp_path / "p.png", transparency=0)
    la = load_image(tmp_path / "la.png")
    assert la.alpha[0, 0, 5, 5].item() == pytest.approx(128 / 255)
    assert la.tensor[0, :, 5, 5].tolist() == pytest.approx([90 / 255] * 3)
    pal = load_image(tmp_path / "p.png")
    assert pal.alpha[0, 0, 0, 0].item() == 0.0 and pal.alpha[0, 0, 3, 3].item() == 1.0
    assert pal.tensor[0, :, 3, 3].tolist() == [1.0, 0.0, 0.0]


def test_16_bit_grayscale_png_keeps_full_precision(tmp_path):
    values = (np.arange(24 * 32).reshape(24, 32, 1) * 85 + 3).astype(np.uint16)
    write_png16(tmp_path / "g16.png", values)
    loaded = load_image(tmp_path / "g16.png")
    assert loaded.bit_depth == 16
    expected = torch.from_numpy(values[..., 0].astype(np.float32) / 65535.0)
    assert torch.allclose(loaded.tensor[0, 1], expected, atol=1e-7)
    assert loaded.tensor[0, 0, 0, 1].item() == pytest.approx(88 / 65535, abs=1e-8)  # finer than 1/255


def test_16_bit_rgb_and_rgba_png_are_scaled_to_0_1(tmp_path):
    rgb = (np.arange(24 * 32 * 3).reshape(24, 32, 3) * 27).astype(np.uint16)
    write_png16(tmp_path / "c16.png", rgb)
    loaded = load_image(tmp_path / "c16.png")
    assert loaded.bit_depth == 16 and loaded.alpha is None
    reference = torch.from_numpy(rgb.astype(np.float32) / 65535.0).permute(2, 0, 1)
    assert (loaded.tensor[0] - reference).abs().max().item() <= 1 / 255 + 1e-6
    rgba = np.concatenate([rgb, np.full((24, 32, 1), 32768, np.uint16)], axis=2)
    write_png16(tmp_path / "c16a.png", rgba)
    with_alpha = load_image(tmp_path / "c16a.png")
    assert with_alpha.alpha is not None and with_alpha.alpha.mean().item() == pytest.approx(128 / 255)


def test_cmyk_jpeg_and_exif_orientation(tmp_path):
    Image.new("CMYK", (20, 16), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=100)
    red = load_image(tmp_path / "cmyk.jpg").tensor[0, :, 8, 10]
    assert red[0] > 0.9 and red[1] < 0.1 and red[2] < 0.1
    image = Image.fromarray(gradient_rgb(16, 40))
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    image.save(tmp_path / "rotated.jpg", exif=exif.tobytes())
    assert load_image(tmp_path / "rotated.jpg").size == (40, 16)


def test_truncated_and_non_image_files_name_the_file(tmp_path):
    Image.fromarray(gradient_rgb(64, 64)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"cut\.png: the file is truncated or corrupt"):
        load_image(tmp_path / "cut.png")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ImageError, match=r"notes\.png: not an image file"):
        load_image(tmp_path / "notes.png")
    with pytest.raises(ImageError, match=r"missing\.png: no such file"):
        load_image(tmp_path / "missing.png")


def test_too_small_and_too_large_files_are_refused(tmp_path):
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    with pytest.raises(ImageError, match=r"dot\.png.*1x1 pixels.*at least 16x16"):
        load_image(tmp_path / "dot.png")
    Image.new("RGB", (300, 200)).save(tmp_path / "big.png")
    with pytest.raises(ImageError, match=r"big\.png: each image is 0\.1 MP \(300x200\).*Downscale"):
        load_image(tmp_path / "big.png", max_pixels=50_000)


def test_check_images_accepts_a_single_image_and_converts_float_types():
    image = torch.rand(3, 16, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    batch = check_images(image)
    assert batch.shape == (1, 3, 16, 20) and batch.dtype == torch.float32
    assert check_images(image.half()[None]).dtype == torch.float32


@pytest.mark.parametrize("make, message", [
    (lambda: (torch.rand(1, 3, 16, 16) * 255).to(torch.uint8), r"uint8 \(values 0\.\.255\).*\.float\(\) / 255"),
    (lambda: torch.ones(1, 3, 16, 16, dtype=torch.int32), "dtype int32"),
    (lambda: torch.rand(1, 16, 16, 3), r"channels-last \[B,H,W,C\].*permute\(0, 3, 1, 2\)"),
    (lambda: torch.rand(16, 16, 3), r"\[H,W,C\].*permute\(2, 0, 1\)"),
    (lambda: torch.rand(2, 1, 16, 16), r"1 channels.*grayscale.*expand\(-1, 3, -1, -1\)"),
    (lambda: torch.rand(2, 4, 16, 16), r"4 channels.*RGBA.*\[:, :3\]"),
    (lambda: torch.rand(16, 16), r"2 dimensions"),
    (lambda: torch.rand(0, 3, 16, 16), "empty batch"),
    (lambda: torch.rand(1, 3, 1, 1), r"1x1 pixels.*at least 16x16"),
    (lambda: torch.rand(1, 3, 16, 16) * 255, r"\[0.*, 25\d.*\].*0\.\.255 values: pass images / 255"),
    (lambda: torch.rand(1, 3, 16, 16) * 2 - 1, r"-1\.\.1 values: pass \(images \+ 1\) / 2"),
    ([1, 2, 3], "must be a torch tensor"),
])
def test_check_images_errors_explain_the_fix(make, message):
    with pytest.raises(ImageError, match=message):
        check_images(make() if callable(make) else make)


def test_nan_and_inf_are_counted():
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    images[0, 0, :2, :2] = float("nan")
    images[1, 2, 0, 0] = float("inf")
    with pytest.raises(ImageError, match=r"contains 4 NaN and 1 Inf values \(of 1536\).*nan_to_num"):
        check_images(images)


def test_slightly_out_of_range_values_are_clamped_with_a_warning():
    images = torch.full((1, 3, 16, 16), 0.5)
    images[0, 0, 0, 0] = 1.02
    images[0, 1, 0, 0] = -0.01
    with pytest.warns(ImageWarning, match="slightly outside 0..1; clamped"):
        checked = check_images(images)
    assert checked.max().item() == 1.0 and checked.min().item() == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_images(torch.full((1, 3, 16, 16), 0.5))


def test_size_limits_8000_square_fits_and_larger_is_refused():
    assert DEFAULT_MAX_PIXELS == 100_000_000
    photo = torch.zeros(1, 3, 8000, 8000)
    assert check_images(photo).shape == (1, 3, 8000, 8000)
    del photo
    huge = torch.zeros(1, 3, 1, 1).expand(1, 3, 11000, 10000)
    with pytest.raises(ImageError, match=r"110\.0 MP \(10000x11000\); the limit is 100 MP.*Downscale it to about 9534x10488"):
        check_images(huge)
    with pytest.raises(ImageError, match="the limit is 1 MP"):
        check_images(torch.zeros(1, 3, 1, 1).expand(1, 3, 2000, 2000), max_pixels=1_000_000)


@pytest.mark.slow
def test_an_8000x8000_file_loads(tmp_path):
    Image.new("L", (8000, 8000), 77).save(tmp_path / "big.png", compress_level=1)
    loaded = load_image(tmp_path / "big.png")
    assert loaded.tensor.shape == (1, 3, 8000, 8000)
    assert loaded.tensor[0, :, 4000, 4000].tolist() == pytest.approx([77 / 255] * 3)


def test_save_image_formats_and_errors(tmp_path):
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    for suffix in (".png", ".jpg", ".webp"):
        save_image(tmp_path / f"x{suffix}", image)
        assert load_image(tmp_path / f"x{suffix}").tensor.shape == (1, 3, 16, 16)
    with pytest.raises(ImageError, match=r"suffix '\.gif'"):
        save_image(tmp_path / "x.gif", image)
    with pytest.raises(ImageError, match="batch of 2"):
        save_image(tmp_path / "y.png", image.expand(2, -1, -1, -1))


def test_list_image_files_sorted_by_name(tmp_path):
    for name in ("b.png", "a.JPG", "c.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.png").mkdir()
    assert [p.split("/")[-1] for p in list_image_files(tmp_path)] == ["a.JPG", "b.png"]
