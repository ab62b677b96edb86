"""Reasoner SFT: LoRA fine-tuning of Qwen3-VL on chain-of-thought targets (see :mod:`.train`)."""

from .evaluate import evaluate, format_scores, score_answers
from .train import SFTConfig, SFTResult, train

__all__ = ["SFTConfig", "SFTResult", "evaluate", "format_scores", "score_answers", "train"]
