"""Fitted constants that turn the estimators' raw evidence into calibrated physical parameters.

The scales and the haze line are fitted by ``python scripts/eval_classic_reasoner.py --fit --count
200`` (medians of truth/measurement ratios, least squares) on 200 ``rnr.degrade`` mixtures of the
clean photo corpus at seed 1000, a different seed (other crops, other degradations) from the reported evaluation. The
presence thresholds trade flag F1 on that set against the false-positive rate on 60 undegraded crops
of seed 8919: each is the point where the false-positive rate drops without losing much F1 (e.g.
blur: F1 0.63 -> 0.60 while clean false positives fall from 40 % to 25 %). Severities follow
:mod:`rnr.diagnosis.calibration`.
"""

from __future__ import annotations

# Haze: transmission = HAZE_T_BIAS + HAZE_T_SLOPE * raw + HAZE_T_NOISE * sigma_255 / 255 (clamped 0.01..1).
HAZE_T_BIAS = 0.3146
HAZE_T_SLOPE = 0.8629
HAZE_T_NOISE = 0.2572
HAZE_MIN_SEVERITY = 25

# Noise: sigma_255 = NOISE_SCALE * measured; flagged at NOISE_MIN_SIGMA_255 and above.
NOISE_SCALE = 1.029
NOISE_MIN_SIGMA_255 = 5.0

# Blur: extent = scale * sqrt(width^2 - BLUR_SHARP_WIDTH_PX^2) for the isotropic width, or along the
# widest direction for motion; motion when (widest - narrowest) / widest >= BLUR_MOTION_ANISOTROPY.
BLUR_SHARP_WIDTH_PX = 2.0
BLUR_ISOTROPIC_SCALE = 2.44
BLUR_MOTION_SCALE = 2.193
BLUR_MOTION_ANISOTROPY = 0.4
BLUR_MIN_EXTENT_PX = 8.0
# Defocus vs gaussian by the kurtosis of the edges' derivative profiles (weak: about chance on the
# synthetic set; both are treated alike by the restorers).
BLUR_DEFOCUS_KURTOSIS = 2.2

# Rain: density = RAIN_DENSITY_SCALE * bright line energy (per pixel, within +-15 deg); flagged when
# the concentration reaches RAIN_MIN_CONCENTRATION and the severity RAIN_MIN_SEVERITY.
RAIN_DENSITY_SCALE = 37.294
RAIN_MIN_CONCENTRATION = 0.6
RAIN_MIN_SEVERITY = 20
RAIN_LENGTH_SCALE = 2.911
