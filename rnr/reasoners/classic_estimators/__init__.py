"""The classic reasoner's estimators: haze (dark channel prior), noise (patch PCA), blur (edge widths),
rain (oriented line energy). Each returns plain evidence dataclasses; :mod:`.calibrated` holds the
constants that turn evidence into calibrated physical parameters."""

from .blur import BlurEvidence, estimate_blur
from .haze import HazeEvidence, estimate_haze
from .noise import NoiseEvidence, estimate_noise
from .rain import RainEvidence, estimate_rain

__all__ = ["BlurEvidence", "HazeEvidence", "NoiseEvidence", "RainEvidence", "estimate_blur", "estimate_haze",
           "estimate_noise", "estimate_rain"]
