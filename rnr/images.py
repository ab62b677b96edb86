"""Image files in and out, and validation of image tensors.

Inside ``rnr`` an image batch is a float32 tensor [B,3,H,W] with values 0..1 on any device.
:func:`load_image` turns any common file (grayscale, palette, RGBA, 16-bit PNG, CMYK, EXIF-rotated)
into that layout plus an optional alpha channel; :func:`save_image` writes one back (8 bits per
channel, alpha re-attached); :func:`check_images` validates a tensor a user handed in and says
exactly what is wrong with it.
"""

from __future__ import annotations

import math
import os
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError

DEFAULT_MAX_PIXELS = 100_000_000
"""Largest image accepted, in pixels per image (100 MP); an 8000x8000 photo (64 MP) fits."""
MIN_SIDE = 16
"""Smallest height and width accepted, in pixels."""
CLAMP_TOLERANCE = 0.05
"""Values at most this far outside 0..1 are clamped with a warning; further out is an error."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
"""File suffixes treated as images when a folder is read."""
_SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
                 ".tif": "TIFF", ".tiff": "TIFF"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageWarning(UserWarning):
    """An input was usable but had to be changed (values clamped, alpha dropped)."""


@dataclass(frozen=True)
class LoadedImage:
    """One image read from a file.

    ``tensor`` is float32 [1,3,H,W] in 0..1, ``alpha`` float32 [1,1,H,W] in 0..1 or None when the
    file has no transparency, ``bit_depth`` the bits per channel stored in the file (8 or 16 for
    most photos) and ``path`` the file it came from.
    """

    tensor: torch.Tensor
    alpha: torch.Tensor | None
    bit_depth: int
    path: str

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return int(self.tensor.shape[-2]), int(self.tensor.shape[-1])


def load_image(path: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS,
               min_side: int = MIN_SIDE) -> LoadedImage:
    """Read an image file as float32 RGB [1,3,H,W] in 0..1 plus its alpha channel, if any.

    Grayscale and palette images become RGB; RGBA, LA and palette images with transparency give an
    alpha channel; 16-bit grayscale PNGs keep their full precision (16-bit colour PNGs are read at
    8 bits per channel, which is what Pillow decodes); CMYK becomes RGB; the EXIF orientation tag
    is applied. Unreadable, truncated, too small or too large files raise :class:`ImageError`
    naming the file.
    """
    path = str(path)
    if not os.path.exists(path):
        raise ImageError(f"{path}: no such file; check the path")
    if os.path.isdir(path):
        raise ImageError(f"{path}: is a folder, not an image file")
    try:
        with warnings.catch_warnings():
            # Our own pixel limit replaces Pillow's decompression-bomb warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                _check_size(path, height, width, max_pixels, min_side)
                image.load()
                bit_depth = _bit_depth(path, image)
                image = ImageOps.exif_transpose(image)
                tensor, alpha = _to_tensors(image, bit_depth)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path}: the image is too large to decode safely ({exc}); downscale it first") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file Pillow can read (supported: PNG, JPEG, WebP, BMP, TIFF, "
                         "GIF, ...); check that the file is complete and really an image") from None
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error, IndexError) as exc:
        raise ImageError(f"{path}: the file is truncated or corrupt ({exc}); re-export or re-download it") from None
    return LoadedImage(tensor=tensor, alpha=alpha, bit_depth=bit_depth, path=path)


def _bit_depth(path: str, image: Image.Image) -> int:
    if image.format == "PNG":
        with open(path, "rb") as handle:
            header = handle.read(25)
        if header[:8] == _PNG_SIGNATURE and len(header) == 25:
            return int(header[24])
    if image.mode.startswith("I;16"):
        return 16
    if image.mode in ("I", "F"):
        return 32
    if image.mode == "1":
        return 1
    return 8


def _to_tensors(image: Image.Image, bit_depth: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(rgb float32 [1,3,H,W] in 0..1, alpha float32 [1,1,H,W] in 0..1 or None) of a decoded image."""
    mode = image.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        values = np.asarray(image).astype(np.float64)
        if mode == "F":
            scale = 1.0 if values.size == 0 or np.nanmax(values) <= 1.0 else float(np.nanmax(values))
        elif mode.startswith("I;16") or bit_depth == 16 or (values.size and values.max() <= 65535):
            scale = 65535.0
        else:
            scale = float(2 ** 32 - 1)
        grey = torch.from_numpy(np.clip(values / scale, 0.0, 1.0).astype(np.float32))
        return grey.expand(1, 3, *grey.shape).contiguous(), None
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        rgba = _uint8_chw(image if mode == "RGBA" else image.convert("RGBA"))
        return _unit_float(rgba[:3]), _unit_float(rgba[3:])
    return _unit_float(_uint8_chw(image if mode == "RGB" else image.convert("RGB"))), None


def pil_to_tensor(image: Image.Image) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A PIL image as (float32 RGB [1,3,H,W] in 0..1, alpha [1,1,H,W] or None), by the rules of :func:`load_image`."""
    bit_depth = 16 if image.mode.startswith("I;16") else 8
    return _to_tensors(image, bit_depth)


def tensor_to_pil(tensor: torch.Tensor, alpha: torch.Tensor | None = None) -> Image.Image:
    """One image [1,3,H,W] or [3,H,W] (0..1) as an 8-bit PIL image, RGBA when ``alpha`` is given."""
    if tensor.ndim == 4:
        if tensor.shape[0] != 1:
            raise ImageError(f"tensor_to_pil converts one image; got a batch of {tensor.shape[0]}")
        tensor = tensor[0]
    if tensor.ndim != 3 or tensor.shape[0] != 3:
        raise ImageError(f"tensor_to_pil needs [1,3,H,W] or [3,H,W], got shape {list(tensor.shape)}")
    rgb = _to_uint8(tensor.permute(1, 2, 0))
    if alpha is None:
        return Image.fromarray(rgb, mode="RGB")
    return Image.fromarray(np.concatenate([rgb, _alpha_2d(alpha, *rgb.shape[:2])[..., None]], axis=2), mode="RGBA")


def _uint8_chw(image: Image.Image) -> torch.Tensor:
    # Channels-first in uint8 before the float conversion: 4x less memory traffic on big photos.
    array = np.array(image, dtype=np.uint8)
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def _unit_float(values: torch.Tensor) -> torch.Tensor:
    return values.unsqueeze(0).float().div_(255.0)


def save_image(path: str | os.PathLike, tensor: torch.Tensor, alpha: torch.Tensor | None = None, *,
               quality: int = 95) -> str:
    """Write one image [1,3,H,W] or [3,H,W] (0..1) as an 8-bit file; the suffix picks the format.

    PNG, WebP and TIFF keep ``alpha`` ([1,1,H,W], [1,H,W] or [H,W], resized if the image size
    changed); JPEG and BMP have no alpha channel, so it is dropped with a warning. Parent folders
    are created. Returns the path written.
    """
    path = str(path)
    suffix = Path(path).suffix.lower()
    if suffix not in _SAVE_FORMATS:
        raise ImageError(f"{path}: cannot write images with suffix {suffix or '(none)'!r}; "
                         f"use one of {', '.join(sorted(_SAVE_FORMATS))}")
    if not isinstance(tensor, torch.Tensor):
        raise ImageError(f"save_image needs a torch tensor, got {type(tensor).__name__}")
    if tensor.ndim == 4:
        if tensor.shape[0] != 1:
            raise ImageError(f"save_image writes one image; got a batch of {tensor.shape[0]}: save each "
                             "images[i:i+1] to its own file")
        tensor = tensor[0]
    if tensor.ndim != 3 or tensor.shape[0] != 3:
        raise ImageError(f"save_image needs [1,3,H,W] or [3,H,W], got shape {list(tensor.shape)}")
    rgb = _to_uint8(tensor.permute(1, 2, 0))
    height, width = rgb.shape[:2]
    mode = "RGB"
    array = rgb
    fmt = _SAVE_FORMATS[suffix]
    if alpha is not None:
        if fmt in ("JPEG", "BMP"):
            warnings.warn(f"{path}: {fmt} has no alpha channel; transparency dropped (save as .png to keep it)",
                          ImageWarning, stacklevel=2)
        else:
            alpha_2d = _alpha_2d(alpha, height, width)
            array = np.concatenate([rgb, alpha_2d[..., None]], axis=2)
            mode = "RGBA"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array, mode=mode)
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    try:
        image.save(path, format=fmt, **options)
    except OSError as exc:
        raise ImageError(f"{path}: cannot write the image ({exc})") from None
    return path


def _to_uint8(values: torch.Tensor) -> np.ndarray:
    values = torch.nan_to_num(values.detach().to("cpu", torch.float32), nan=0.0)
    return (values.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).numpy()


def _alpha_2d(alpha: torch.Tensor, height: int, width: int) -> np.ndarray:
    alpha = alpha.detach().to("cpu", torch.float32)
    while alpha.ndim > 2:
        alpha = alpha[0]
    if alpha.ndim != 2:
        raise ImageError(f"alpha must be [1,1,H,W], [1,H,W] or [H,W], got shape {list(alpha.shape)}")
    if tuple(alpha.shape) != (height, width):
        alpha = torch.nn.functional.interpolate(alpha[None, None], size=(height, width), mode="bilinear",
                                                align_corners=False)[0, 0]
    return _to_uint8(alpha)


def check_images(images: object, name: str = "images", *, max_pixels: int = DEFAULT_MAX_PIXELS,
                 min_side: int = MIN_SIDE) -> torch.Tensor:
    """Validate a user's image batch and return it as float32 [B,3,H,W] in 0..1 (same device).

    A single [3,H,W] image gets a batch dimension; float16/bfloat16/float64 become float32; values
    at most :data:`CLAMP_TOLERANCE` outside 0..1 are clamped with an :class:`ImageWarning`. Anything
    else that is wrong (integer dtype, channels-last or 1/4-channel layout, NaN or Inf, values far
    outside 0..1, smaller than ``min_side`` or larger than ``max_pixels`` per image) raises
    :class:`ImageError` saying what was seen and how to fix it.
    """
    if not isinstance(images, torch.Tensor):
        raise ImageError(f"{name} must be a torch tensor [B,3,H,W] with values 0..1, got {type(images).__name__}; "
                         "use rnr.images.load_image(path) for files or rnr.api.to_batch(...) for PIL/numpy images")
    if images.dtype == torch.uint8:
        raise ImageError(f"{name} has dtype uint8 (values 0..255); rnr expects float values 0..1: "
                         f"pass {name}.float() / 255")
    if not images.is_floating_point():
        raise ImageError(f"{name} has dtype {str(images.dtype).replace('torch.', '')}; rnr expects float32 values "
                         f"0..1: convert with {name}.float() and scale to 0..1")
    shape = list(images.shape)
    if images.ndim == 3:
        if images.shape[0] == 3:
            images = images.unsqueeze(0)
        else:
            raise ImageError(f"{name} has shape {shape}; a single image must be [3,H,W] (channels first)"
                             + _layout_hint(shape, name))
    if images.ndim != 4:
        raise ImageError(f"{name} has {images.ndim} dimensions (shape {shape}); expected [B,3,H,W]")
    if images.shape[1] != 3:
        raise ImageError(f"{name} has shape {shape} with {images.shape[1]} channels; expected [B,3,H,W] RGB"
                         + _layout_hint(shape, name))
    batch, _, height, width = images.shape
    if batch == 0:
        raise ImageError(f"{name} is an empty batch (shape {shape}); pass at least one image")
    _check_size(name, height, width, max_pixels, min_side)
    images = images.float()
    # One pass: NaN propagates into min/max, and an Inf shows up as the min or the max.
    low, high = (float(v) for v in torch.aminmax(images))
    if not (math.isfinite(low) and math.isfinite(high)):
        nans = int(torch.isnan(images).sum())
        infs = int(torch.isinf(images).sum())
        raise ImageError(f"{name} contains {nans} NaN and {infs} Inf values (of {images.numel()}); fix the step "
                         f"that produced them or replace them with torch.nan_to_num({name}, 0.0).clamp(0, 1)")
    if low < 0.0 or high > 1.0:
        if low >= -CLAMP_TOLERANCE and high <= 1.0 + CLAMP_TOLERANCE:
            warnings.warn(f"{name} has values in [{low:.4f}, {high:.4f}], slightly outside 0..1; clamped",
                          ImageWarning, stacklevel=2)
            images = images.clamp(0.0, 1.0)
        else:
            raise ImageError(f"{name} has values in [{low:.4g}, {high:.4g}]; rnr expects 0..1"
                             + _range_hint(low, high, name))
    return images


def _check_size(name: str, height: int, width: int, max_pixels: int, min_side: int) -> None:
    if height < min_side or width < min_side:
        raise ImageError(f"{name}: {width}x{height} pixels is too small; R&R needs images of at least "
                         f"{min_side}x{min_side} pixels")
    if height * width > max_pixels:
        scale = math.sqrt(max_pixels / (height * width))
        raise ImageError(
            f"{name}: each image is {height * width / 1e6:.1f} MP ({width}x{height}); the limit is "
            f"{max_pixels / 1e6:.0f} MP per image. Downscale it to about {int(width * scale)}x{int(height * scale)} "
            "or raise the limit (max_pixels=..., or --max-megapixels on the command line)")


def _layout_hint(shape: list[int], name: str) -> str:
    if len(shape) == 4 and shape[-1] in (1, 3, 4) and shape[1] not in (1, 3, 4):
        return (f". It looks channels-last [B,H,W,C] (ComfyUI's IMAGE layout): use {name}.permute(0, 3, 1, 2)"
                + (" and drop the alpha channel" if shape[-1] == 4 else ""))
    if len(shape) == 3 and shape[-1] in (1, 3, 4) and shape[0] not in (1, 3, 4):
        return f". It looks like [H,W,C]: use {name}.permute(2, 0, 1).unsqueeze(0)"
    four_d = len(shape) == 4
    channels = shape[1] if four_d else shape[0]
    if channels == 1:
        return (". For a grayscale image repeat the channel: "
                + (f"{name}.expand(-1, 3, -1, -1)" if four_d else f"{name}.expand(3, -1, -1)"))
    if channels == 4:
        return (". For RGBA drop the alpha channel: " + (f"{name}[:, :3]" if four_d else f"{name}[:3]")
                + " (and put it back after restoring)")
    return ""


def _range_hint(low: float, high: float, name: str) -> str:
    if low >= 0.0 and high <= 255.0 and high > 1.5:
        return f"; it looks like 0..255 values: pass {name} / 255"
    if low >= -1.0 - CLAMP_TOLERANCE and high <= 1.0 + CLAMP_TOLERANCE:
        return f"; it looks like -1..1 values: pass ({name} + 1) / 2"
    return f"; rescale it, e.g. ({name} - {name}.min()) / ({name}.max() - {name}.min())"


def list_image_files(folder: str | os.PathLike) -> list[str]:
    """The image files directly inside ``folder`` (by suffix), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"{folder}: not a folder")
    return sorted(str(p) for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


__all__ = ["CLAMP_TOLERANCE", "DEFAULT_MAX_PIXELS", "IMAGE_SUFFIXES", "MIN_SIDE", "ImageWarning", "LoadedImage",
           "check_images", "list_image_files", "load_image", "pil_to_tensor", "save_image", "tensor_to_pil"]
