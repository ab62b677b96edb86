"""The loop plumbing that the SFT and GRPO stages share: opening (or resuming) a run folder, the held-out
examples, atomic resumable checkpoints, and the bookkeeping around the steps (per-step seed, progress bar,
log and evaluation cadence, periodic checkpoints, the ``max_minutes`` stop).

A stage's config provides the fields these read: ``out``, ``device``, ``dtype``, ``resume``, ``seed``,
``steps``, ``log_every``, ``eval_every``, ``save_every``, ``max_minutes`` and ``progress``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rnr.devices import resolve_device, resolve_dtype

from .config import (
    RunLog,
    TrainingError,
    check_resumable,
    checkpoint_dir,
    fresh_dir,
    load_optimizer,
    progress,
    read_state,
    replace_dir,
    save_optimizer,
    step_seed,
    write_state,
)
from .dataset import DataConfig, Sample, SyntheticDegradations


@dataclass(frozen=True)
class RunFolder:
    out: Path
    device: torch.device
    dtype: torch.dtype
    resuming: bool
    """True when ``out`` holds a checkpoint and the config asks to resume it."""


def check_run_folder(config: Any, resumable_changes: set[str]) -> RunFolder:
    """Resolve the device and dtype and check ``config.out``: a folder that holds a run needs ``resume``, and a
    resumed run may change only the settings in ``resumable_changes``. Writes nothing (the stage then saves
    its config and seeds: ``save_config(config, run.out)``, ``seed_everything(config.seed)``)."""
    out = Path(config.out)
    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    has_checkpoint = (checkpoint_dir(out) / "state.json").is_file()
    if has_checkpoint and not config.resume:
        raise TrainingError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if has_checkpoint:
        check_resumable(config, out, resumable_changes)
    return RunFolder(out, device, dtype, has_checkpoint)


def held_out_samples(data: DataConfig, count: int, **options: Any) -> list[Sample]:
    """``count`` examples from the held-out split of the training source (its ``all`` split when the source
    has no held-out part), seeded apart from the training examples and never flipped."""
    if count <= 0:
        return []
    held = dataclasses.replace(data, split="heldout", seed=data.seed + 1, flip=False)
    try:
        dataset = SyntheticDegradations(held, length=count, **options)
    except TrainingError:
        dataset = SyntheticDegradations(dataclasses.replace(held, split="all"), length=count, **options)
    return [dataset[i] for i in range(count)]


def save_checkpoint(out: Path, step: int, optimizer: torch.optim.Optimizer, names: dict[torch.nn.Parameter, str],
                    write_weights: Callable[[Path], None]) -> None:
    """Write ``OUT/checkpoint`` (the weights ``write_weights(folder)`` writes, the optimizer state, the step)
    into a fresh folder first, so that a run killed while saving keeps its previous checkpoint."""
    final = checkpoint_dir(out)
    tmp = fresh_dir(final.with_name(final.name + ".tmp"))
    write_weights(tmp)
    save_optimizer(optimizer, names, tmp / "optimizer.safetensors")
    write_state(tmp, {"step": step})
    replace_dir(tmp, final)


def load_checkpoint(out: Path, optimizer: torch.optim.Optimizer, names: dict[torch.nn.Parameter, str],
                    read_weights: Callable[[Path], None]) -> int:
    """Restore what :func:`save_checkpoint` wrote (``read_weights(folder)`` loads the weights); the step."""
    folder = checkpoint_dir(out)
    state = read_state(folder)
    read_weights(folder)
    load_optimizer(optimizer, names, folder / "optimizer.safetensors")
    return int(state["step"])


class StepLoop:
    """Steps ``start .. config.steps`` of a run with its log (``self.log``), progress bar and checkpoints::

        loop = StepLoop(config, out, start, "sft", save=lambda step: ...)
        for step in loop.steps():
            ...  # one optimizer step
            entry = {...} if loop.log_due(step) else {}
            if loop.eval_due(step):
                entry.update(...)
            loop.end_step(step, entry, loss=f"{loss:.3f}")
        loop.done, loop.stopped_early

    Every step starts with ``torch.manual_seed(step_seed(config.seed, step, 3))`` so a resumed run repeats it.
    ``end_step`` advances the bar, logs a non-empty entry as step ``step + 1``, saves every ``save_every`` steps,
    and after ``max_minutes`` saves and ends the loop early.
    """

    def __init__(self, config: Any, out: Path, start: int, desc: str, save: Callable[[int], None]) -> None:
        self.config = config
        self.start = start
        self.desc = desc
        self.save = save
        self.log = RunLog(out, start_step=start)
        self.done = start
        """Optimizer steps done so far (the step a final checkpoint records)."""
        self.stopped_early = False

    def steps(self) -> Iterator[int]:
        config = self.config
        self._started = time.monotonic()
        self._bar = progress(total=config.steps, initial=self.start, desc=self.desc, enabled=config.progress)
        for step in range(self.start, config.steps):
            torch.manual_seed(step_seed(config.seed, step, 3))
            yield step
            if self.stopped_early:
                break
        self._bar.close()

    def log_due(self, step: int) -> bool:
        return (step + 1) % self.config.log_every == 0 or step + 1 == self.config.steps

    def eval_due(self, step: int) -> bool:
        """Every ``eval_every`` steps, except the last (the stage evaluates at the end anyway)."""
        every = self.config.eval_every
        return bool(every) and (step + 1) % every == 0 and step + 1 < self.config.steps

    def end_step(self, step: int, entry: dict[str, Any], **postfix: Any) -> None:
        config = self.config
        self._bar.update(1)
        self._bar.set_postfix(**postfix)
        if entry:
            self.log.log(step + 1, **entry)
        self.done = step + 1
        if config.save_every and (step + 1) % config.save_every == 0:
            self.save(step + 1)
        if config.max_minutes and time.monotonic() - self._started > 60 * config.max_minutes and step + 1 < config.steps:
            self.save(step + 1)
            self.stopped_early = True


__all__ = ["RunFolder", "StepLoop", "check_run_folder", "held_out_samples", "load_checkpoint",
           "save_checkpoint"]
