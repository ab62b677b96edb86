"""Physically parameterised, seeded, batched synthesis of haze, rain, noise, blur and their mixtures.

``degrade(images, haze=60, noise=20, seed=3)`` returns a :class:`DegradeResult` with the degraded
images and one ground-truth :class:`~rnr.diagnosis.Diagnosis` per image, whose severities follow
:mod:`rnr.diagnosis.calibration` for the parameters actually applied. ``random_degrade`` draws a random
mixture per image for training and evaluation sets. Torch only; CPU or GPU; any size of at least 16 px.
"""

from __future__ import annotations

from .mix import FORMATION_ORDER, DegradeResult, check_images, degrade, random_degrade
from .params import (BLUR_KINDS, DEPTH_MODELS, MOTION_PATHS, NOISE_KINDS, RAIN_BLENDS, AppliedParams, BlurParams,
                     DegradeError, HazeParams, NoiseParams, RainParams)

__all__ = [
    "BLUR_KINDS", "DEPTH_MODELS", "FORMATION_ORDER", "MOTION_PATHS", "NOISE_KINDS", "RAIN_BLENDS", "AppliedParams",
    "BlurParams", "DegradeError", "DegradeResult", "HazeParams", "NoiseParams", "RainParams", "check_images",
    "degrade", "random_degrade",
]
