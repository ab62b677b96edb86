"""Restorer GRPO: Flow-GRPO on the Qwen-Image-Edit transformer with a LoRA (see :mod:`.train`)."""

from .rewards import (
           CombinedReward,
           brightness,
           reference_ssim,
           severity_reduction,
           structure_fidelity,
)
from .train import GRPOConfig, GRPOResult, train

__all__ = ["CombinedReward", "GRPOConfig", "GRPOResult", "brightness", "reference_ssim", "severity_reduction",
           "structure_fidelity", "train"]
