"""Fitted constants that turn the estimators' raw evidence into calibrated physical parameters.

Fitted by ``python scripts/eval_classic_reasoner.py --fit`` on ``rnr.degrade`` mixtures of the clean
photo corpus (seed 1000, a different seed from the reported evaluation), by least squares for the
parameter maps and by maximising flag F1 for the presence thresholds. Severities follow
:mod:`rnr.diagnosis.calibration`.
"""

from __future__ import annotations

# Haze: transmission = HAZE_T_BIAS + HAZE_T_SLOPE * raw + HAZE_T_NOISE * sigma_255 / 255 (clamped 0.01..1).
HAZE_T_BIAS = 0.3151
HAZE_T_SLOPE = 0.8604
HAZE_T_NOISE = 0.2591
HAZE_MIN_SEVERITY = 17

# Noise: sigma_255 = NOISE_SCALE * measured; flagged at NOISE_MIN_SIGMA_255 and above.
NOISE_SCALE = 1.03
NOISE_MIN_SIGMA_255 = 3.5

# Blur: extent = scale * sqrt(width^2 - BLUR_SHARP_WIDTH_PX^2) for the isotropic width, or along the
# widest direction for motion; motion when (widest - narrowest) / widest >= BLUR_MOTION_ANISOTROPY.
BLUR_SHARP_WIDTH_PX = 2.0
BLUR_ISOTROPIC_SCALE = 2.375
BLUR_MOTION_SCALE = 1.677
BLUR_MOTION_ANISOTROPY = 0.45
BLUR_MIN_EXTENT_PX = 3.0

# Rain: density = RAIN_DENSITY_SCALE * bright line energy (per pixel, within +-15 deg); flagged when
# the concentration reaches RAIN_MIN_CONCENTRATION and the severity RAIN_MIN_SEVERITY.
RAIN_DENSITY_SCALE = 37.164
RAIN_MIN_CONCENTRATION = 0.7
RAIN_MIN_SEVERITY = 10
RAIN_LENGTH_SCALE = 2.897
BLUR_DEFOCUS_KURTOSIS = 2.3
