"""The lite reasoner: a 2 M-parameter CNN that writes the full Diagnosis from an image of any size.

It looks at a downscaled copy of the whole image and at a grid of native-resolution crops (noise sigma
and blur extent are properties of the native pixels) and outputs presence probabilities, severities
and physical parameters (see :mod:`rnr.lite.condition`). The number of crops grows with the image
(:func:`crops_for`): on a large photo nine crops cover 3 % of it, and where they all fall on smooth
sand or an out-of-focus background the photo looks blurred although other parts of it are sharp.
The scene text comes from image statistics (:mod:`rnr.reasoners.scene`) and never names a
degradation. Weights ship in ``rnr/weights``.
"""

from __future__ import annotations

import math

import torch

from ..devices import resolve_device
from ..diagnosis import DEFAULT_ORDER, DEGRADATIONS, Diagnosis
from ..errors import RnRError
from ..images import check_images
from ..lite.condition import decode_outputs
from ..lite.nets import LiteReasonerNet, reasoner_views
from ..lite.weights import default_path, load_network
from ..registry import ModelSpec
from .base import Progress
from .scene import describe_scenes

MIN_CROPS = 9
MAX_CROPS = 36
COVERAGE = 1 / 16
"""Automatic crop count: enough crops to cover this share of the image (at least MIN_CROPS, at most MAX_CROPS)."""
BATCH = 8


def crops_for(height: int, width: int, crop_size: int) -> int:
    """How many native crops of side ``crop_size`` the reasoner analyses on an image of this size.

    Nine on images up to about 1.3 MP (96 px crops), then as many as cover 1/16 of the image, up to 36.
    Measured on 9 whole photos (4 held-out, 5 calibration; benchmarks/lite/README.md): nine crops
    flagged blur on 2 of them and gave 18 flags to absent types on 108 degraded copies; this count
    flagged none and gave 7.
    """
    wanted = math.ceil(COVERAGE * height * width / (crop_size * crop_size))
    return max(MIN_CROPS, min(MAX_CROPS, wanted))


def weights_available() -> bool:
    """Whether the shipped lite reasoner weights are installed."""
    return default_path("lite_reasoner").is_file()


class LiteReasoner:
    """Diagnoses images with :class:`~rnr.lite.nets.LiteReasonerNet`.

    ``thresholds`` are the presence probabilities (haze, rain, noise, blur) at which a degradation is
    flagged, calibrated at export so that clean photos stay unflagged; ``crops`` is how many native
    crops are analysed per image (0: by image size, :func:`crops_for`).
    """

    name = "lite"

    def __init__(self, net: LiteReasonerNet, *, thresholds: tuple[float, ...] = (0.5, 0.5, 0.5, 0.5),
                 crops: int = 0, device: torch.device | str = "cpu") -> None:
        if len(thresholds) != 4 or not all(0.0 < t < 1.0 for t in thresholds):
            raise RnRError(f"lite reasoner thresholds must be 4 probabilities in (0, 1), got {thresholds!r}")
        if not isinstance(crops, int) or isinstance(crops, bool) or crops < 0:
            raise RnRError(f"lite reasoner crops must be a positive integer, or 0 to choose by image size; got {crops!r}")
        self.device = torch.device(device)
        self.net = net.eval().to(self.device)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.crops = crops

    @torch.inference_mode()
    def raw_outputs(self, images: torch.Tensor) -> torch.Tensor:
        """Network outputs ``[B, OUTPUT_DIM]`` (float32, CPU) for a batch in 0..1."""
        images = images.to(self.device, torch.float32)
        count = self.crops or crops_for(*images.shape[-2:], self.net.config.crop_size)
        global_view, crops = reasoner_views(images, self.net.config, crops=count)
        return self.net(global_view, crops).float().cpu()

    def diagnose(self, images: torch.Tensor, progress: Progress | None = None) -> list[Diagnosis]:
        """One Diagnosis per image of ``images`` [B,3,H,W] in 0..1 (any size, any device)."""
        images = check_images(images)
        total = images.shape[0]
        diagnoses: list[Diagnosis] = []
        for start in range(0, total, BATCH):
            chunk = images[start:start + BATCH]
            decoded = decode_outputs(self.raw_outputs(chunk), self.thresholds)
            scenes = describe_scenes(chunk)
            for scene, item in zip(scenes, decoded):
                diagnoses.append(self._diagnosis(scene, item))
            if progress is not None:
                progress(len(diagnoses), total)
        return diagnoses

    def _diagnosis(self, scene: str, item: dict) -> Diagnosis:
        records = item["records"]
        present = [n for n in DEFAULT_ORDER if records[n].present]
        lines = ["Lite reasoner (learned CNN, whole-image view plus native-resolution crops)."]
        for name in DEGRADATIONS:
            p = item["probability"][name]
            if records[name].present:
                lines.append(f"{name}: probability {p:.2f} >= {self.thresholds[DEGRADATIONS.index(name)]:.2f}, "
                             f"severity {records[name].severity}/100.")
            else:
                lines.append(f"{name}: probability {p:.2f}, not flagged.")
        lines.append("Restoration order: " + (" -> ".join(present) if present else "nothing to do") + ".")
        return Diagnosis(haze=records["haze"], rain=records["rain"], noise=records["noise"], blur=records["blur"],
                         scene=scene, reasoning=" ".join(lines), order=tuple(present), source="lite")


def load(spec: ModelSpec) -> LiteReasoner:
    """The lite reasoner for ``spec`` (``spec.path``: a weight file or folder; '' for the shipped one).

    Options: ``crops`` (native crops per image; default 0: 9 to 36 by image size). The network runs
    in float32: it is small, and its presence probabilities are calibrated in float32.
    """
    device = resolve_device(spec.device)
    net, meta = load_network("lite_reasoner", spec.path or None, device)
    thresholds = tuple(meta.get("thresholds", (0.5, 0.5, 0.5, 0.5)))
    return LiteReasoner(net, thresholds=thresholds, crops=int(spec.option("crops", 0)), device=device)
