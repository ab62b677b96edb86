"""Diagnosis <-> vectors for the lite networks.

Two fixed layouts live here, and nowhere else:

* the **condition vector** (``CONDITION_DIM`` floats) that conditions the lite restorer, encoded from
  any :class:`~rnr.diagnosis.Diagnosis` (whichever reasoner wrote it, or a user's edit);
* the **reasoner output vector** (``OUTPUT_DIM`` floats) of the lite reasoner, decoded into a
  Diagnosis, and the training targets for it, encoded from ground-truth diagnoses.

Angles with a period of 180 degrees are encoded as (cos 2a, sin 2a), so that -89 and +89 degrees lie
close together. Severities are fractions of the calibrated full scale (see
:mod:`rnr.diagnosis.calibration`), computed from the physical parameter so that they are continuous.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..diagnosis import BLUR_KINDS, DEGRADATIONS, Blur, Diagnosis, Haze, Noise, Rain
from ..diagnosis import calibration as cal

# Condition vector layout.
C_PRESENT = slice(0, 4)
C_SEVERITY = slice(4, 8)
C_HAZE_LIGHT = slice(8, 11)
C_RAIN_ANGLE = slice(11, 13)
C_RAIN_LENGTH = 13
C_NOISE_POISSON = 14
C_BLUR_KIND = slice(15, 18)
C_BLUR_ANGLE = slice(18, 20)
CONDITION_DIM = 20

# Reasoner output layout.
O_PRESENT = slice(0, 4)
O_SEVERITY = slice(4, 8)
O_HAZE_LIGHT = slice(8, 11)
O_RAIN_ANGLE = slice(11, 13)
O_RAIN_LENGTH = 13
O_NOISE_POISSON = 14
O_BLUR_KIND = slice(15, 18)
O_BLUR_ANGLE = slice(18, 20)
OUTPUT_DIM = 20

RAIN_LENGTH_SCALE_PX = 256.0


def severity_fraction(diagnosis: Diagnosis, name: str) -> float:
    """The degradation's strength as a continuous fraction 0..1 of the calibrated scale (0 when absent).

    Computed from the physical parameter (transmission, density, sigma, extent), so it is finer than the
    integer severity; when the parameter disagrees with a present record (a hand-edited diagnosis whose
    severity was changed but not its parameter), the integer severity wins.
    """
    record = diagnosis.record(name)
    if not record.present:
        return 0.0
    if name == "haze":
        value = (1.0 - record.transmission) / (1.0 - cal.HAZE_MIN_TRANSMISSION)
        from_param = cal.severity_from_transmission(record.transmission)
    elif name == "rain":
        value = record.density / cal.RAIN_DENSITY_AT_100
        from_param = cal.severity_from_rain_density(record.density)
    elif name == "noise":
        value = record.sigma_255 / cal.NOISE_SIGMA_255_AT_100
        from_param = cal.severity_from_noise_sigma(record.sigma_255)
    else:
        value = record.extent_px / cal.BLUR_EXTENT_PX_AT_100
        from_param = cal.severity_from_blur_extent(record.extent_px)
    if abs(from_param - record.severity) > 1:
        value = record.severity / 100.0
    return min(1.0, max(0.0, value))


def _angle_pair(angle_deg: float) -> tuple[float, float]:
    a = math.radians(2.0 * angle_deg)
    return math.cos(a), math.sin(a)


def _rain_length_code(length_px: float) -> float:
    return min(1.5, math.log1p(max(length_px, 0.0)) / math.log1p(RAIN_LENGTH_SCALE_PX))


def encode_condition(diagnosis: Diagnosis) -> list[float]:
    """The restorer's condition vector (``CONDITION_DIM`` floats) for one diagnosis.

    Absent degradations encode as all zeros, so "absent" and "severity 0" mean the same to the net.
    The strength of each degradation is its single severity fraction (:func:`severity_fraction`), so an
    edited severity is obeyed even when the edit left the physical parameter as it was.
    """
    v = [0.0] * CONDITION_DIM
    for i, name in enumerate(DEGRADATIONS):
        record = diagnosis.record(name)
        if record.present:
            v[C_PRESENT.start + i] = 1.0
            v[C_SEVERITY.start + i] = severity_fraction(diagnosis, name)
    haze, rain, noise, blur = diagnosis.haze, diagnosis.rain, diagnosis.noise, diagnosis.blur
    if haze.present:
        v[C_HAZE_LIGHT] = list(haze.atmospheric_light)
    if rain.present:
        v[C_RAIN_ANGLE] = list(_angle_pair(rain.angle_deg))
        v[C_RAIN_LENGTH] = _rain_length_code(rain.length_px)
    if noise.present:
        v[C_NOISE_POISSON] = 1.0 if noise.kind == "poisson" else 0.0
    if blur.present:
        v[C_BLUR_KIND.start + BLUR_KINDS.index(blur.kind)] = 1.0
        if blur.kind == "motion":
            v[C_BLUR_ANGLE] = list(_angle_pair(blur.angle_deg))
    return v


def condition_tensor(diagnoses: list[Diagnosis], device: torch.device | str = "cpu") -> torch.Tensor:
    """``[B, CONDITION_DIM]`` float32 condition vectors for a batch of diagnoses."""
    return torch.tensor([encode_condition(d) for d in diagnoses], dtype=torch.float32, device=device)


@dataclass
class ReasonerTargets:
    """Training targets for the reasoner, batched (masks say where a target is defined)."""

    present: torch.Tensor        # [B,4] 0/1
    severity: torch.Tensor       # [B,4] fraction 0..1
    haze_light: torch.Tensor     # [B,3]
    rain_angle: torch.Tensor     # [B,2]
    rain_length: torch.Tensor    # [B]
    noise_poisson: torch.Tensor  # [B]
    blur_kind: torch.Tensor      # [B] long
    blur_angle: torch.Tensor     # [B,2]
    motion: torch.Tensor         # [B] 0/1: blur present and of kind motion

    def to(self, device: torch.device | str) -> "ReasonerTargets":
        return ReasonerTargets(**{k: v.to(device) for k, v in self.__dict__.items()})


def reasoner_targets(diagnoses: list[Diagnosis]) -> ReasonerTargets:
    """Targets for :func:`rnr.lite.nets.LiteReasonerNet` outputs from ground-truth diagnoses."""
    rows = []
    for d in diagnoses:
        rows.append((
            [1.0 if d.record(n).present else 0.0 for n in DEGRADATIONS],
            [severity_fraction(d, n) for n in DEGRADATIONS],
            list(d.haze.atmospheric_light),
            list(_angle_pair(d.rain.angle_deg)),
            _rain_length_code(d.rain.length_px),
            1.0 if d.noise.kind == "poisson" else 0.0,
            BLUR_KINDS.index(d.blur.kind),
            list(_angle_pair(d.blur.angle_deg)),
            1.0 if d.blur.present and d.blur.kind == "motion" else 0.0,
        ))
    cols = list(zip(*rows))
    f = torch.float32
    return ReasonerTargets(
        present=torch.tensor(cols[0], dtype=f), severity=torch.tensor(cols[1], dtype=f),
        haze_light=torch.tensor(cols[2], dtype=f), rain_angle=torch.tensor(cols[3], dtype=f),
        rain_length=torch.tensor(cols[4], dtype=f), noise_poisson=torch.tensor(cols[5], dtype=f),
        blur_kind=torch.tensor(cols[6], dtype=torch.long), blur_angle=torch.tensor(cols[7], dtype=f),
        motion=torch.tensor(cols[8], dtype=f))


def reasoner_loss(outputs: torch.Tensor, t: ReasonerTargets) -> tuple[torch.Tensor, dict[str, float]]:
    """Multi-task loss of the reasoner: presence BCE, severity L1, masked parameter losses."""
    import torch.nn.functional as F

    outputs = outputs.float()
    presence = F.binary_cross_entropy_with_logits(outputs[:, O_PRESENT], t.present)
    severity = F.smooth_l1_loss(outputs[:, O_SEVERITY], t.severity, beta=0.02)

    def masked(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (values * mask).sum() / mask.sum().clamp(min=1.0)

    haze_mask, rain_mask, noise_mask, blur_mask = t.present.unbind(dim=1)
    light = masked((outputs[:, O_HAZE_LIGHT] - t.haze_light).abs().mean(dim=1), haze_mask)
    rain_angle = masked(((outputs[:, O_RAIN_ANGLE] - t.rain_angle) ** 2).sum(dim=1), rain_mask)
    rain_length = masked((outputs[:, O_RAIN_LENGTH] - t.rain_length).abs(), rain_mask)
    poisson = masked(F.binary_cross_entropy_with_logits(outputs[:, O_NOISE_POISSON], t.noise_poisson,
                                                        reduction="none"), noise_mask)
    blur_kind = masked(F.cross_entropy(outputs[:, O_BLUR_KIND], t.blur_kind, reduction="none"), blur_mask)
    blur_angle = masked(((outputs[:, O_BLUR_ANGLE] - t.blur_angle) ** 2).sum(dim=1), t.motion)
    total = (presence + 4.0 * severity + light + 0.3 * (rain_angle + rain_length) + 0.2 * poisson
             + 0.3 * blur_kind + 0.3 * blur_angle)
    parts = {"presence": presence.item(), "severity": severity.item(), "light": light.item(),
             "rain_angle": rain_angle.item(), "blur_kind": blur_kind.item(), "blur_angle": blur_angle.item()}
    return total, parts


def _angle_from_pair(c: float, s: float) -> float:
    return math.degrees(math.atan2(s, c)) / 2.0


def decode_outputs(outputs: torch.Tensor, thresholds: tuple[float, ...] = (0.5, 0.5, 0.5, 0.5),
                   ) -> list[dict]:
    """Reasoner outputs ``[B, OUTPUT_DIM]`` -> per image a dict of records and raw probabilities.

    Each dict holds ``records`` (name -> Haze/Rain/Noise/Blur) and ``probability`` (name -> float).
    A degradation is present when its probability reaches its threshold; its severity is then the
    regressed fraction on the 1..100 scale, and its physical parameter follows from the calibration.
    """
    out = outputs.detach().float().cpu()
    results = []
    for row in out:
        probs = torch.sigmoid(row[O_PRESENT]).tolist()
        fractions = row[O_SEVERITY].clamp(0.0, 1.0).tolist()
        records: dict[str, object] = {}
        for i, name in enumerate(DEGRADATIONS):
            present = probs[i] >= thresholds[i]
            severity = int(min(100, max(1, round(fractions[i] * 100.0)))) if present else 0
            records[name] = _record(name, present, severity, row)
        results.append({"records": records, "probability": dict(zip(DEGRADATIONS, probs)),
                        "fraction": dict(zip(DEGRADATIONS, fractions))})
    return results


def _record(name: str, present: bool, severity: int, row: torch.Tensor) -> object:
    if not present:
        return {"haze": Haze, "rain": Rain, "noise": Noise, "blur": Blur}[name]()
    if name == "haze":
        light = tuple(float(v) for v in row[O_HAZE_LIGHT].clamp(0.0, 1.0).tolist())
        return Haze(True, severity, light, float(cal.transmission_from_severity(severity)))
    if name == "rain":
        c, s = row[O_RAIN_ANGLE].tolist()
        code = float(row[O_RAIN_LENGTH].clamp(0.0, 1.5))
        length = math.expm1(code * math.log1p(RAIN_LENGTH_SCALE_PX))
        angle = min(90.0, max(-90.0, _angle_from_pair(c, s)))
        return Rain(True, severity, float(cal.rain_density_from_severity(severity)), angle, float(length))
    if name == "noise":
        kind = "poisson" if float(row[O_NOISE_POISSON]) > 0.0 else "gaussian"
        return Noise(True, severity, float(cal.noise_sigma_from_severity(severity)), kind)
    kind = BLUR_KINDS[int(row[O_BLUR_KIND].argmax())]
    angle = 0.0
    if kind == "motion":
        c, s = row[O_BLUR_ANGLE].tolist()
        angle = _angle_from_pair(c, s) % 180.0
    return Blur(True, severity, kind, float(cal.blur_extent_from_severity(severity)), angle)
