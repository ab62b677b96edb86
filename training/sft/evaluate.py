"""Evaluate a reasoner on labelled examples: generate, parse, compare with the ground truth.

Answers go through the reasoner's own generation (:meth:`Qwen3VLReasoner.generate`) and parser
(:func:`rnr.reasoners.qwen3vl_parse.parse_answer`); an unreadable answer counts as a parse failure and
as a prediction of "nothing present". The scores are those of :func:`rnr.eval.reasoner_accuracy`
(flag precision, recall and F1 and the severity MAE over the truly present cases, per degradation,
plus the share of clean images with a flag), with the parse-failure rate and the mean F1 and MAE.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from rnr.diagnosis import DEGRADATIONS, Diagnosis
from rnr.eval import reasoner_accuracy
from rnr.reasoners import qwen3vl_prompt as prompt
from rnr.reasoners.qwen3vl_parse import AnswerParseError, parse_answer

from ..dataset import Sample


def score_answers(answers: Sequence[str], truths: Sequence[Diagnosis]) -> dict[str, Any]:
    """Scores of raw answers against the ground truth (see the module docs)."""
    predictions, failures = [], 0
    for answer in answers:
        try:
            predictions.append(parse_answer(answer))
        except AnswerParseError:
            failures += 1
            predictions.append(Diagnosis())
    scores = reasoner_accuracy(predictions, list(truths))
    scores["parse_failure_rate"] = failures / max(1, len(answers))
    scores["count"] = len(answers)
    f1s = [scores[name]["f1"] for name in DEGRADATIONS if not math.isnan(scores[name]["f1"])]
    maes = [scores[name]["severity_mae"] for name in DEGRADATIONS if not math.isnan(scores[name]["severity_mae"])]
    scores["mean_f1"] = sum(f1s) / len(f1s) if f1s else math.nan
    scores["mean_severity_mae"] = sum(maes) / len(maes) if maes else math.nan
    return scores


def generate_answers(reasoner: Any, samples: Sequence[Sample], batch_size: int = 4,
                     progress: Callable[[int, int], None] | None = None) -> list[str]:
    """The reasoner's answers to ``samples`` (first answers only: no re-ask, so the score is the model's)."""
    answers: list[str] = []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start:start + batch_size]
        images = [reasoner._pil(sample.degraded) for sample in chunk]
        chats = [prompt.messages(system=reasoner.system) for _ in chunk]
        answers.extend(reasoner.generate(images, chats))
        if progress is not None:
            progress(len(answers), len(samples))
    return answers


def evaluate(reasoner: Any, samples: Sequence[Sample], batch_size: int = 4,
             progress: Callable[[int, int], None] | None = None) -> tuple[dict[str, Any], list[str]]:
    """(scores, raw answers) of ``reasoner`` on ``samples``."""
    answers = generate_answers(reasoner, samples, batch_size, progress)
    return score_answers(answers, [s.diagnosis for s in samples]), answers


def flat_scores(scores: dict[str, Any], prefix: str = "eval_") -> dict[str, float]:
    """The scores as one flat dict of numbers (for the JSONL log)."""
    flat = {f"{prefix}parse_failure_rate": scores["parse_failure_rate"], f"{prefix}mean_f1": scores["mean_f1"],
            f"{prefix}mean_severity_mae": scores["mean_severity_mae"]}
    for name in DEGRADATIONS:
        flat[f"{prefix}{name}_f1"] = scores[name]["f1"]
        flat[f"{prefix}{name}_severity_mae"] = scores[name]["severity_mae"]
    flat[f"{prefix}clean_flagged_rate"] = scores["clean_flagged_rate"]
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in flat.items()}


def format_scores(scores: dict[str, Any]) -> str:
    """A small table: one row per degradation."""
    lines = [f"{'type':6} {'F1':>6} {'prec':>6} {'recall':>6} {'sev MAE':>8} {'support':>7}"]
    for name in DEGRADATIONS:
        s = scores[name]
        lines.append(f"{name:6} {s['f1']:6.3f} {s['precision']:6.3f} {s['recall']:6.3f} {s['severity_mae']:8.2f} "
                     f"{s['support']:7d}")
    lines.append(f"parse failures {scores['parse_failure_rate']:.1%} of {scores['count']}; clean images flagged "
                 f"{scores['clean_flagged_rate']:.1%} of {scores['clean_images']}")
    return "\n".join(lines)


__all__ = ["evaluate", "flat_scores", "format_scores", "generate_answers", "score_answers"]
