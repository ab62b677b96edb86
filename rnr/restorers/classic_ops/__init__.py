"""The steps of the classic restorer, one module per degradation; each maps ``(images, record) -> images``.

:data:`STEPS` names them by degradation; :mod:`rnr.restorers.classic` runs them in diagnosis order.
"""

from __future__ import annotations

from .deconvolve import blur_kernel, deconvolve, estimate_noise_sigma, tv_deconvolve
from .dehaze import DehazePlan, apply_plan, dehaze, plan
from .denoise import dct_denoise, denoise, estimate_model
from .derain import derain
from .noise_model import NoiseModel

STEPS = {"noise": denoise, "blur": deconvolve, "rain": derain, "haze": dehaze}

__all__ = ["STEPS", "DehazePlan", "NoiseModel", "apply_plan", "blur_kernel", "dct_denoise", "deconvolve", "dehaze",
           "denoise", "derain", "estimate_model", "estimate_noise_sigma", "plan", "tv_deconvolve"]
