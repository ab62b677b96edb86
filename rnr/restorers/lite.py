"""The lite restorer: a 2.9 M-parameter UNet conditioned on the diagnosis by feature-wise modulation.

Every diagnosis is encoded into a fixed vector (:func:`rnr.lite.condition.encode_condition`) that
scales and shifts the features of every block, so editing the diagnosis edits the result: a
degradation marked absent is left alone, a higher severity is removed more strongly. The network is
fully convolutional with no global statistics, so large images run tile by tile
(:func:`rnr.tiling.tiled_apply`) with no seams; the output has the input's size, dtype and device.
"""

from __future__ import annotations

import torch

from ..devices import resolve_device, resolve_dtype
from ..diagnosis import Diagnosis
from ..errors import RnRError
from ..images import check_images
from ..lite.condition import condition_tensor
from ..lite.nets import LiteRestorerNet
from ..lite.weights import default_path, load_network
from ..registry import ModelSpec
from ..reasoners.base import Progress
from ..tiling import tiled_apply

DEFAULT_TILE = 1024
# The shipped network reaches far (six blocks at 1/16 resolution): on a 1200x1600 photo, 1024-px tiles
# sharing 256 px stay within 0.009 (max) / 0.0004 (mean) of the untiled result; sharing 128 px, 0.025 / 0.001.
DEFAULT_OVERLAP = 256


def weights_available() -> bool:
    """Whether the shipped lite restorer weights are installed."""
    return default_path("lite_restorer").is_file()


class LiteRestorer:
    """Restores images with :class:`~rnr.lite.nets.LiteRestorerNet`, one image and one tile at a time.

    ``dtype`` is the compute dtype (bf16/fp16 on GPUs, fp32 on the CPU); ``tile``/``overlap`` (px) bound
    the memory used on large images; ``compile`` wraps the network in ``torch.compile`` (worth it on a
    GPU for many images of one size).
    """

    name = "lite"

    def __init__(self, net: LiteRestorerNet, *, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
                 compile: bool = False) -> None:
        if tile % net.config.multiple or tile < 4 * net.config.multiple:
            raise RnRError(f"lite restorer tile must be a multiple of {net.config.multiple} and at least "
                           f"{4 * net.config.multiple} px, got {tile}")
        if not 0 <= overlap < tile // 2 or overlap % net.config.multiple:
            raise RnRError(f"lite restorer overlap must be a multiple of {net.config.multiple} in 0..{tile // 2 - 1} px, "
                           f"got {overlap}")
        self.device = torch.device(device)
        self.dtype = dtype
        self.net = net.eval().to(self.device, dtype).to(memory_format=torch.channels_last)
        self.tile, self.overlap = tile, overlap
        self._forward = torch.compile(self.net) if compile else self.net

    @torch.inference_mode()
    def restore(self, images: torch.Tensor, diagnoses: list[Diagnosis], *, strength: float = 1.0, seed: int = 0,
                progress: Progress | None = None) -> torch.Tensor:
        """Restore ``images`` [B,3,H,W] (0..1) guided by one diagnosis per image.

        ``strength`` blends between the input (0) and the full restoration (1); values above 1
        extrapolate. ``seed`` is unused: the lite restorer is deterministic.
        """
        source_dtype, source_device = images.dtype, images.device
        images = check_images(images)
        if len(diagnoses) != images.shape[0]:
            raise RnRError(f"restore needs one diagnosis per image: got {len(diagnoses)} diagnoses for "
                           f"{images.shape[0]} images")
        if not isinstance(strength, (int, float)) or not 0.0 <= strength <= 2.0:
            raise RnRError(f"strength must be a number in 0..2 (0 = input, 1 = full restoration), got {strength!r}")
        conditions = condition_tensor(list(diagnoses), self.device).to(self.dtype)
        outputs = []
        total = images.shape[0]
        height, width = images.shape[-2:]
        for i in range(total):
            image = images[i:i + 1].to(self.device, self.dtype)
            # The net is shift-equivariant only in steps of its down-sampling factor, so the image is
            # padded to a multiple of it and every tile starts on that grid (tile and overlap are
            # multiples too): a tiled result then equals the untiled one.
            padded = _pad_to_multiple(image, self.net.config.multiple).contiguous(memory_format=torch.channels_last)
            condition = conditions[i:i + 1]

            def run(tile: torch.Tensor) -> torch.Tensor:
                return self._forward(tile.contiguous(memory_format=torch.channels_last), condition)

            def tile_progress(done: int, count: int, i: int = i) -> None:
                if progress is not None:
                    progress(i * count + done, total * count)

            restored = tiled_apply(run, padded, tile=self.tile, overlap=self.overlap, progress=tile_progress)
            image, restored = image.float(), restored[..., :height, :width].float()
            out = image + float(strength) * (restored - image)
            outputs.append(out.clamp(0.0, 1.0).to(source_device))
        return torch.cat(outputs).to(source_dtype if source_dtype.is_floating_point else torch.float32)


def _pad_to_multiple(image: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the bottom and right edges by reflection (replication for tiny images) to a multiple."""
    h, w = image.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not (ph or pw):
        return image
    mode = "reflect" if ph < h and pw < w else "replicate"
    return torch.nn.functional.pad(image, (0, pw, 0, ph), mode=mode)


def load(spec: ModelSpec) -> LiteRestorer:
    """The lite restorer for ``spec`` (``spec.path``: a weight file or folder; '' for the shipped one).

    Options: ``tile`` and ``overlap`` (px, defaults 1024 and 256), ``compile`` (bool, default False).
    """
    device = resolve_device(spec.device)
    dtype = resolve_dtype(spec.dtype, device)
    net, _ = load_network("lite_restorer", spec.path or None, device)
    return LiteRestorer(net, device=device, dtype=dtype, tile=int(spec.option("tile", DEFAULT_TILE)),
                        overlap=int(spec.option("overlap", DEFAULT_OVERLAP)),
                        compile=bool(spec.option("compile", False)))
