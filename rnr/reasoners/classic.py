"""The classic reasoner: a Diagnosis from image statistics alone, with no learned weights.

Four estimators measure physical evidence (see :mod:`rnr.reasoners.classic_estimators`): the dark
channel prior for haze, patch PCA for noise, edge widths for blur and oriented bright-line energy for
rain. Constants fitted on ``rnr.degrade`` data (:mod:`.classic_estimators.calibrated`) map the
evidence to the calibration's physical parameters, severities and presence flags; the ``reasoning``
text states the evidence behind every number. Runs on any device, any image size, batched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..diagnosis import DEFAULT_ORDER, Blur, Diagnosis, Haze, Noise, Rain, calibration
from ..images import check_images
from ..registry import ModelSpec
from .base import Progress
from .classic_estimators import (BlurEvidence, HazeEvidence, NoiseEvidence, RainEvidence, estimate_blur,
                                 estimate_haze, estimate_noise, estimate_rain)
from .classic_estimators import calibrated as C
from .scene import describe_scenes

CHUNK = 4


@dataclass(frozen=True)
class Evidence:
    """Everything the estimators measured on one image (None where the image was too small)."""

    height: int
    width: int
    haze: HazeEvidence | None
    noise: NoiseEvidence | None
    blur: BlurEvidence | None
    rain: RainEvidence | None


def _clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value)) if math.isfinite(value) else low


def haze_record(ev: HazeEvidence | None, noise_sigma_255: float) -> tuple[Haze, str]:
    if ev is None:
        return Haze(), "Haze: image too small to judge."
    t = _clamp(C.HAZE_T_BIAS + C.HAZE_T_SLOPE * ev.raw_transmission + C.HAZE_T_NOISE * noise_sigma_255 / 255.0,
               0.01, 1.0)
    severity = calibration.severity_from_transmission(t)
    present = severity >= C.HAZE_MIN_SEVERITY
    light = tuple(round(_clamp(v, 0.0, 1.0), 3) for v in ev.atmospheric_light)
    text = (f"Haze: dark channel of I/A averages {ev.dark_channel_mean:.2f} with airlight A = "
            f"({light[0]:.2f}, {light[1]:.2f}, {light[2]:.2f}) -> raw transmission {ev.raw_transmission:.2f}, "
            f"calibrated {t:.2f} -> severity {severity}"
            + (" (present)." if present else f" (below the threshold {C.HAZE_MIN_SEVERITY}: absent)."))
    if not present:
        return Haze(), text
    shift = t - ev.raw_transmission
    rows = tuple(tuple(round(_clamp(v + shift, 0.0, 1.0), 3) for v in row) for row in ev.transmission_map)
    return Haze(present=True, severity=severity, atmospheric_light=light, transmission=round(t, 4),
                transmission_map=rows), text


def noise_record(ev: NoiseEvidence | None) -> tuple[Noise, float, str]:
    if ev is None:
        return Noise(), 0.0, "Noise: image too small to judge."
    sigma = _clamp(C.NOISE_SCALE * ev.sigma_255, 0.0, 255.0)
    severity = calibration.severity_from_noise_sigma(sigma)
    present = sigma >= C.NOISE_MIN_SIGMA_255 and severity > 0
    bins = ", ".join(f"{s:.1f} at {m:.2f}" for m, s in ev.bin_sigmas_255)
    text = (f"Noise: smallest patch-PCA eigenvalues give sigma {bins or 'n/a'} (per intensity); the variance "
            f"{'rises' if ev.signal_dependence > 0.5 else 'hardly changes'} with intensity (signal-dependent share "
            f"{ev.signal_dependence:.2f}) -> {ev.kind}, sigma {sigma:.1f}/255 at mid-grey -> severity {severity}"
            + (" (present)." if present else f" (below {C.NOISE_MIN_SIGMA_255:.0f}/255: absent)."))
    if not present:
        return Noise(), sigma, text
    return Noise(present=True, severity=severity, sigma_255=round(sigma, 2), kind=ev.kind), sigma, text


def blur_record(ev: BlurEvidence | None) -> tuple[Blur, str]:
    if ev is None:
        return Blur(), "Blur: too few strong edges to judge."
    anisotropy = (ev.widest_px - ev.narrowest_px) / max(ev.widest_px, 1e-6)
    motion = anisotropy >= C.BLUR_MOTION_ANISOTROPY
    sharp = C.BLUR_SHARP_WIDTH_PX
    if motion:
        extent = C.BLUR_MOTION_SCALE * math.sqrt(max(0.0, ev.widest_px ** 2 - max(ev.narrowest_px, sharp) ** 2))
        kind = "motion"
    else:
        extent = C.BLUR_ISOTROPIC_SCALE * math.sqrt(max(0.0, ev.isotropic_width_px ** 2 - sharp ** 2))
        kind = "defocus" if ev.kurtosis < C.BLUR_DEFOCUS_KURTOSIS else "gaussian"
    extent = _clamp(extent, 0.0, 1000.0)
    severity = calibration.severity_from_blur_extent(extent)
    present = extent >= C.BLUR_MIN_EXTENT_PX and severity > 0
    text = (f"Blur: median 10-90% rise of {ev.edge_count} strong edges {ev.isotropic_width_px:.1f} px; by direction "
            f"{ev.narrowest_px:.1f} to {ev.widest_px:.1f} px (widest across {ev.widest_angle_deg:.0f} deg, "
            f"anisotropy {anisotropy:.2f}) -> {kind}, extent {extent:.1f} px -> severity {severity}"
            + (" (present)." if present else f" (below {C.BLUR_MIN_EXTENT_PX:.1f} px: absent)."))
    if not present:
        return Blur(), text
    angle = round(ev.widest_angle_deg % 180.0, 1) if motion else 0.0
    return Blur(present=True, severity=severity, kind=kind, extent_px=round(extent, 2), angle_deg=angle), text


def rain_record(ev: RainEvidence | None) -> tuple[Rain, str]:
    if ev is None:
        return Rain(), "Rain: image too small to judge."
    density = _clamp(C.RAIN_DENSITY_SCALE * ev.bright_energy, 0.0, 1.0)
    severity = calibration.severity_from_rain_density(density)
    present = (severity >= C.RAIN_MIN_SEVERITY and ev.concentration >= C.RAIN_MIN_CONCENTRATION)
    length = _clamp(C.RAIN_LENGTH_SCALE * ev.length_px, 0.0, 10000.0)
    text = (f"Rain: bright thin lines at {ev.angle_deg:+.0f} deg from vertical carry {ev.concentration:.0%} of all "
            f"bright-line energy (energy {ev.bright_energy * 1000:.2f}e-3 per pixel, dark lines "
            f"{ev.dark_energy * 1000:.2f}e-3, across {ev.cross_energy * 1000:.2f}e-3), streaks about {length:.0f} px "
            f"long -> density {density:.3f} -> severity {severity}"
            + (" (present)." if present else " (absent: too weak or not one direction)."))
    if not present:
        return Rain(), text
    return Rain(present=True, severity=severity, density=round(density, 4), angle_deg=round(_clamp(ev.angle_deg, -90, 90), 1),
                length_px=round(length, 1)), text


def diagnosis_from_evidence(ev: Evidence, scene: str = "") -> Diagnosis:
    """The calibrated Diagnosis for one image's evidence."""
    noise, sigma, noise_text = noise_record(ev.noise)
    haze, haze_text = haze_record(ev.haze, sigma)
    blur, blur_text = blur_record(ev.blur)
    rain, rain_text = rain_record(ev.rain)
    diagnosis = Diagnosis(haze=haze, rain=rain, noise=noise, blur=blur, scene=scene, source="classic")
    order = tuple(name for name in DEFAULT_ORDER if getattr(diagnosis, name).present)
    summary = ("Found " + ", ".join(f"{n} ({getattr(diagnosis, n).severity})" for n in order) +
               "; restore in the order " + " -> ".join(order) + "." if order else "No degradation found.")
    reasoning = " ".join([f"Classic statistics on a {ev.width}x{ev.height} image.", noise_text, blur_text,
                          rain_text, haze_text, summary])
    return diagnosis.replace(order=order, reasoning=reasoning)


class ClassicReasoner:
    """Diagnoses images with the classic estimators; ``device`` None keeps the images' own device."""

    name = "classic"

    def __init__(self, device: str | torch.device | None = None) -> None:
        self.device = torch.device(device) if device not in (None, "", "auto") else None

    def evidence(self, images: torch.Tensor) -> list[Evidence]:
        """The raw evidence per image of a batch [B,3,H,W] in 0..1 (for calibration and inspection)."""
        images = check_images(images)
        if self.device is not None:
            images = images.to(self.device)
        h, w = images.shape[-2:]
        noise = estimate_noise(images)
        sigmas = [C.NOISE_SCALE * n.sigma_255 if n is not None else 0.0 for n in noise]
        haze = estimate_haze(images, sigmas)
        blur = estimate_blur(images, sigmas)
        rain = estimate_rain(images)
        return [Evidence(h, w, haze[i], noise[i], blur[i], rain[i]) for i in range(images.shape[0])]

    @torch.no_grad()
    def diagnose(self, images: torch.Tensor, progress: Progress | None = None) -> list[Diagnosis]:
        """One Diagnosis per image of a batch [B,3,H,W] in 0..1 on any device."""
        images = check_images(images)
        total = images.shape[0]
        out: list[Diagnosis] = []
        for start in range(0, total, CHUNK):
            chunk = images[start:start + CHUNK]
            scenes = describe_scenes(chunk)
            out.extend(diagnosis_from_evidence(ev, scene) for ev, scene in zip(self.evidence(chunk), scenes))
            if progress is not None:
                progress(len(out), total)
        return out


def load(spec: ModelSpec) -> ClassicReasoner:
    """The registry entry point: the classic reasoner needs no weights, so ``spec.path`` is ignored."""
    device = None if spec.device in ("", "auto") else spec.device
    return ClassicReasoner(device=device)
