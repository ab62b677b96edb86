"""training.runloop: the step bookkeeping SFT and GRPO share (log and evaluation cadence, checkpoints, the
time limit), run folders that refuse to be overwritten, and checkpoints that restore optimizer state."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from training import runloop
from training.config import TrainingError, read_log, save_config
from training.sft import SFTConfig


def _config(**changes) -> SFTConfig:
    """A real stage config with the loop settings the tests vary (nothing here loads its model)."""
    settings = {"steps": 5, "log_every": 2, "eval_every": 2, "save_every": 2, "device": "cpu", "dtype": "float32",
                "progress": False}
    return SFTConfig(**{**settings, **changes})


def _run(config: SFTConfig, start: int = 0) -> tuple[runloop.StepLoop, list[int], list[int], list[int]]:
    saved: list[int] = []
    loop = runloop.StepLoop(config, Path(config.out), start, "test", save=saved.append)
    logged, evaluated = [], []
    for step in loop.steps():
        entry = {"value": float(step)} if loop.log_due(step) else {}
        if loop.eval_due(step):
            evaluated.append(step + 1)
            entry["eval"] = 1.0
        if entry:
            logged.append(step + 1)
        loop.end_step(step, entry)
    return loop, logged, evaluated, saved


def test_cadence_of_logs_evaluations_and_checkpoints(tmp_path):
    loop, logged, evaluated, saved = _run(_config(out=str(tmp_path)))
    assert logged == [2, 4, 5]  # every log_every steps and the last
    assert evaluated == [2, 4]  # never on the last step: the stage evaluates at the end
    assert saved == [2, 4]
    assert (loop.done, loop.stopped_early) == (5, False)
    assert [(e["step"], e["value"]) for e in read_log(tmp_path)] == [(2, 1.0), (4, 3.0), (5, 4.0)]


def test_time_limit_saves_and_stops_and_a_resume_goes_on(tmp_path):
    loop, _, _, saved = _run(_config(out=str(tmp_path), max_minutes=1e-9, save_every=0))
    assert (loop.done, loop.stopped_early, saved) == (1, True, [1])
    loop, logged, _, saved = _run(_config(out=str(tmp_path), save_every=0), start=1)
    assert (loop.done, loop.stopped_early, logged, saved) == (5, False, [2, 4, 5], [])
    loop, _, _, _ = _run(_config(out=str(tmp_path)), start=5)
    assert (loop.done, loop.stopped_early) == (5, False)


def test_each_step_is_seeded_by_the_step_alone(tmp_path):
    draws = {}
    loop = runloop.StepLoop(_config(out=str(tmp_path), steps=3), tmp_path, 1, "test", save=lambda step: None)
    for step in loop.steps():
        draws[step] = torch.rand(()).item()
        loop.end_step(step, {})
    again = runloop.StepLoop(_config(out=str(tmp_path), steps=3), tmp_path, 0, "test", save=lambda step: None)
    for step in again.steps():
        if step in draws:
            assert torch.rand(()).item() == draws[step]
        again.end_step(step, {})


def test_run_folder_needs_resume_and_the_same_settings(tmp_path):
    config = _config(out=str(tmp_path))
    run = runloop.check_run_folder(config, {"steps", "resume"})
    assert (run.out, run.device, run.dtype, run.resuming) == (tmp_path, torch.device("cpu"), torch.float32, False)
    save_config(config, tmp_path)
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    names = {param: name for name, param in model.named_parameters()}
    runloop.save_checkpoint(tmp_path, 3, optimizer, names, lambda folder: (folder / "weights").touch())
    with pytest.raises(TrainingError, match="already holds a run"):
        runloop.check_run_folder(config, {"steps", "resume"})
    assert runloop.check_run_folder(dataclasses.replace(config, resume=True, steps=9), {"steps", "resume"}).resuming
    with pytest.raises(TrainingError, match="seed"):
        runloop.check_run_folder(dataclasses.replace(config, resume=True, seed=1), {"steps", "resume"})

    fresh = torch.optim.AdamW(model.parameters(), lr=0.1)
    seen = []
    assert runloop.load_checkpoint(tmp_path, fresh, names, lambda folder: seen.append((folder / "weights").is_file())) == 3
    assert seen == [True]
    for param in model.parameters():
        assert torch.equal(fresh.state[param]["exp_avg"], optimizer.state[param]["exp_avg"])
