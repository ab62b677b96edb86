"""Run plumbing shared by the training stages: dataclass configs as command lines, seeds, the JSONL
run log, progress bars and resumable checkpoints (safetensors + JSON, never pickles).

A stage declares its settings as a dataclass whose fields carry a ``help`` text in their metadata;
:func:`add_arguments` turns each field into ``--field-name`` and :func:`from_arguments` builds the
config back, so the command line, ``config.json`` of a run and the Python API say the same thing.

A run folder holds::

    config.json         the config the run started with
    log.jsonl           one JSON object per logged step (step, loss, reward, kl, lr, seconds, ...)
    checkpoint/         the latest resumable state (weights, optimizer.safetensors, state.json)
    final/              what the nodes load (the stage decides the layout)
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import random
import shutil
import time
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from rnr.errors import RnRError

CHECKPOINT_DIR = "checkpoint"
FINAL_DIR = "final"
LOG_FILE = "log.jsonl"
CONFIG_FILE = "config.json"


class TrainingError(RnRError):
    """A training run cannot start or go on (bad config, missing data, incompatible checkpoint)."""


def option(default: Any, help: str, **kwargs: Any) -> Any:
    """A dataclass field with a default and a help text for the command line."""
    if isinstance(default, (list, dict, set)) or dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata={"help": help, **kwargs})
    return dataclasses.field(default=default, metadata={"help": help, **kwargs})


# ---- dataclass <-> command line ---------------------------------------------------------------------
def _base_type(hint: Any) -> tuple[Any, bool]:
    """(the type inside Optional[...], whether None is allowed)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return (args[0] if len(args) == 1 else str), True
    return hint, False


def add_arguments(parser: argparse.ArgumentParser, config_class: type, prefix: str = "") -> None:
    """One ``--field-name`` option per field of ``config_class`` (bools get ``--no-field-name`` too);
    a field that is itself a dataclass contributes its fields as ``--<field>-<name>``."""
    hints = typing.get_type_hints(config_class)
    for f in dataclasses.fields(config_class):
        hint, optional = _base_type(hints[f.name])
        if dataclasses.is_dataclass(hint):
            add_arguments(parser, hint, prefix=f"{prefix}{f.name}_")
            continue
        dest = prefix + f.name
        flag = "--" + dest.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        help_text = f.metadata.get("help", "") + f" (default: {default!r})"
        if hint is bool:
            parser.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=default,
                                help=help_text)
        elif typing.get_origin(hint) in (tuple, list):
            inner = (typing.get_args(hint) or (str,))[0]
            parser.add_argument(flag, dest=dest, type=inner, nargs="*", default=default, help=help_text)
        else:
            kind = hint if hint in (int, float, str) else str
            parser.add_argument(flag, dest=dest, type=_optional(kind) if optional else kind, default=default,
                                help=help_text)


def _optional(kind: type):
    def parse(text: str):
        return None if text.lower() in ("none", "null", "") else kind(text)

    parse.__name__ = kind.__name__
    return parse


def from_arguments(config_class: type, namespace: argparse.Namespace, prefix: str = "") -> Any:
    """The config of the parsed command line (lists become tuples where the field is a tuple)."""
    values = {}
    hints = typing.get_type_hints(config_class)
    for f in dataclasses.fields(config_class):
        hint = _base_type(hints[f.name])[0]
        if dataclasses.is_dataclass(hint):
            values[f.name] = from_arguments(hint, namespace, prefix=f"{prefix}{f.name}_")
            continue
        value = getattr(namespace, prefix + f.name)
        if typing.get_origin(hint) is tuple and value is not None:
            value = tuple(value)
        values[f.name] = value
    return config_class(**values)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config (nested dataclasses included) as JSON-ready plain values."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def config_from_dict(config_class: type, data: dict[str, Any]) -> Any:
    """A config from a ``config.json`` dict; unknown keys raise, missing ones take their defaults."""
    names = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise TrainingError(f"{config_class.__name__}: unknown setting(s) {', '.join(unknown)}; known: "
                            f"{', '.join(sorted(names))}")
    hints = typing.get_type_hints(config_class)
    values = {}
    for key, value in data.items():
        hint = _base_type(hints[key])[0]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = config_from_dict(hint, value)
        elif typing.get_origin(hint) is tuple and isinstance(value, list):
            value = tuple(value)
        values[key] = value
    return config_class(**values)


def save_config(config: Any, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(json.dumps(config_to_dict(config), indent=2) + "\n", encoding="utf-8")


# ---- seeds and devices ------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def step_seed(seed: int, step: int, salt: int = 0) -> int:
    """A seed for one step of a run, independent of what ran before (so a resumed run repeats it)."""
    return int(np.random.SeedSequence([int(seed), int(step), int(salt)]).generate_state(1)[0] & 0x7FFFFFFF)


# ---- the run log --------------------------------------------------------------------------------------
class RunLog:
    """Appends one JSON object per step to ``folder/log.jsonl``.

    Entries are numbered by the optimizer steps done (1 after the first step). On resume from a checkpoint
    taken after ``start_step`` steps, entries past ``start_step`` are dropped first, so that the file never
    holds a step twice.
    """

    def __init__(self, folder: Path, start_step: int = 0, echo: bool = False) -> None:
        self.path = Path(folder) / LOG_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.echo = echo
        self.started = time.monotonic()
        if self.path.exists():
            kept = [line for line in self.path.read_text(encoding="utf-8").splitlines()
                    if line.strip() and json.loads(line).get("step", -1) <= start_step]
            self.path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def log(self, step: int, **values: Any) -> dict[str, Any]:
        entry = {"step": int(step), **{k: _plain(v) for k, v in values.items()},
                 "elapsed_s": round(time.monotonic() - self.started, 3)}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
        if self.echo:
            print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in entry.items()))
        return entry


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        value = value.detach().float().cpu()
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def read_log(folder: Path | str) -> list[dict[str, Any]]:
    """The entries of a run's ``log.jsonl``."""
    path = Path(folder) / LOG_FILE
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def progress(iterable: Iterable | None = None, *, total: int | None = None, initial: int = 0, desc: str = "",
             enabled: bool = True):
    """A tqdm progress bar (silent when ``enabled`` is false)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, initial=initial, desc=desc, disable=not enabled, dynamic_ncols=True)


# ---- checkpoints ----------------------------------------------------------------------------------------
def save_optimizer(optimizer: torch.optim.Optimizer, names: dict[torch.nn.Parameter, str], path: Path) -> None:
    """The optimizer's per-parameter state as safetensors (keyed ``<param name>/<state key>``) and its
    hyperparameters as JSON metadata."""
    tensors: dict[str, torch.Tensor] = {}
    for group in optimizer.param_groups:
        for param in group["params"]:
            for key, value in optimizer.state.get(param, {}).items():
                tensor = value if isinstance(value, torch.Tensor) else torch.tensor(value)
                tensors[f"{names[param]}/{key}"] = tensor.detach().cpu().contiguous()
    groups = [{k: v for k, v in group.items() if k != "params" and isinstance(v, (int, float, bool, str, list, tuple))}
              for group in optimizer.param_groups]
    save_file(tensors, str(path), metadata={"param_groups": json.dumps(groups)})


def load_optimizer(optimizer: torch.optim.Optimizer, names: dict[torch.nn.Parameter, str], path: Path) -> None:
    """Restore what :func:`save_optimizer` wrote onto an optimizer over the same named parameters."""
    from safetensors import safe_open

    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as handle:
        groups = json.loads(handle.metadata().get("param_groups", "[]"))
    for group, saved in zip(optimizer.param_groups, groups):
        group.update({k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()})
    for group in optimizer.param_groups:
        for param in group["params"]:
            prefix = names[param] + "/"
            state = {key[len(prefix):]: value.to(param.device) for key, value in tensors.items()
                     if key.startswith(prefix)}
            if state:
                optimizer.state[param] = state


def checkpoint_dir(folder: Path | str) -> Path:
    return Path(folder) / CHECKPOINT_DIR


def write_state(folder: Path, state: dict[str, Any]) -> None:
    (folder / "state.json").write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")


def read_state(folder: Path) -> dict[str, Any]:
    path = folder / "state.json"
    if not path.is_file():
        raise TrainingError(f"{folder} holds no state.json: it is not a checkpoint written by rnr-train; start "
                            "a new run with another --out or without --resume")
    return json.loads(path.read_text(encoding="utf-8"))


def replace_dir(tmp: Path, final: Path) -> None:
    """Move a freshly written folder into place (the old one goes only once the new one is complete)."""
    old = final.with_name(final.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old)


def check_resumable(config: Any, out: Path, may_change: set[str]) -> None:
    """Raise unless ``config`` equals the one saved in ``out/config.json`` outside ``may_change``."""
    saved_path = Path(out) / CONFIG_FILE
    if not saved_path.is_file():
        return
    saved = config_to_dict(config_from_dict(type(config), json.loads(saved_path.read_text(encoding="utf-8"))))
    now = config_to_dict(config)
    changed = sorted(k for k in now if k not in may_change and now[k] != saved.get(k))
    if changed:
        raise TrainingError(f"--resume with settings that differ from {saved_path}: {', '.join(changed)}; resume with "
                            "the same settings or start a new run with another --out")


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


__all__ = ["CHECKPOINT_DIR", "FINAL_DIR", "RunLog", "TrainingError", "add_arguments", "check_resumable", "checkpoint_dir",
           "config_from_dict", "config_to_dict", "fresh_dir", "from_arguments", "load_optimizer", "option",
           "progress", "read_log", "read_state", "replace_dir", "save_config", "save_optimizer", "seed_everything",
           "step_seed", "write_state"]
