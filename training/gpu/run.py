"""One GPU run of a training stage on random-initialised real-size models, with a summary and curves.

    python3 -m training.gpu.run sft  --size 2B --tokenizer .bench_assets/qwen25_tokenizer --export $OUT/sft  [sft flags]
    python3 -m training.gpu.run grpo --transformer-layers 60 --tokenizer .bench_assets/qwen25_tokenizer \
        --export $OUT/grpo [grpo flags]

Builds the model in memory (:mod:`training.gpu.models`), runs the stage's own ``train`` with it (every
``rnr-train sft``/``grpo`` flag applies), and writes ``summary.json`` (device, build time, time per step,
peak GPU memory, first and last loss or reward) and ``curves.svg`` into the run folder; ``--export``
copies ``config.json``, ``log.jsonl``, ``summary.json`` and ``curves.svg`` there (the device tool brings
back at most 8 small files). See ``training/gpu/README.md`` for the exact commands.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from rnr.devices import resolve_device, resolve_dtype

from ..config import add_arguments, from_arguments, read_log
from ..plot import plot_run
from . import models

EXPORTED = ("config.json", "log.jsonl", "summary.json", "curves.svg")


def _parameters(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _summary(stage: str, out: Path, build_s: float, sizes: dict, started: float) -> dict:
    log = read_log(out)
    steps = [e for e in log if "step_s" in e]
    key = "loss" if stage == "sft" else "reward"
    values = [e[key] for e in steps if key in e]
    cuda = torch.cuda.is_available()
    return {
        "stage": stage, "device": torch.cuda.get_device_name(0) if cuda else platform.processor() or "cpu",
        "torch": torch.__version__, "build_s": round(build_s, 2), "total_s": round(time.monotonic() - started, 2),
        "steps": len(steps), "step_s_median": statistics.median(e["step_s"] for e in steps) if steps else None,
        "step_s_mean": statistics.fmean(e["step_s"] for e in steps) if steps else None,
        "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        f"first_{key}": values[0] if values else None, f"last_{key}": values[-1] if values else None,
        f"mean_{key}_first_5": statistics.fmean(values[:5]) if values else None,
        f"mean_{key}_last_5": statistics.fmean(values[-5:]) if values else None,
        "parameters": sizes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.gpu.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=("sft", "grpo"))
    parser.add_argument("--tokenizer", required=True, help="Qwen2.5 tokenizer folder (vocab.json, merges.txt)")
    parser.add_argument("--size", default="2B", choices=("2B", "8B"), help="sft: Qwen3-VL size")
    parser.add_argument("--transformer-layers", type=int, default=None, help="grpo: transformer depth (60 = full)")
    parser.add_argument("--text-layers", type=int, default=None, help="grpo: text-encoder depth (28 = full)")
    parser.add_argument("--tiny", action="store_true", help="tiny layers (check the command on a CPU)")
    parser.add_argument("--export", default=None, help="copy the run's small files to this folder")
    known, rest = parser.parse_known_args(argv)

    if known.stage == "sft":
        from ..sft.train import SFTConfig as Config
        from ..sft.train import train
    else:
        from ..grpo.train import GRPOConfig as Config
        from ..grpo.train import train
    stage_parser = argparse.ArgumentParser(prog=f"python -m training.gpu.run {known.stage}")
    add_arguments(stage_parser, Config)
    config = from_arguments(Config, stage_parser.parse_args(rest))
    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    started = time.monotonic()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    t0 = time.monotonic()
    if known.stage == "sft":
        model, processor = models.qwen3vl(known.size, known.tokenizer, device, dtype, tiny=known.tiny, seed=config.seed)
        build_s = time.monotonic() - t0
        sizes = {"qwen3vl": _parameters(model)}
        config = replace(config, model=f"random-init Qwen3-VL-{known.size}{' (tiny layers)' if known.tiny else ''}")
        result = train(config, model=model, processor=processor)
    else:
        pipe = models.edit_pipeline(known.tokenizer, device, dtype, transformer_layers=known.transformer_layers,
                                    text_layers=known.text_layers, tiny=known.tiny, seed=config.seed)
        build_s = time.monotonic() - t0
        sizes = {name: _parameters(getattr(pipe, name)) for name in ("transformer", "text_encoder", "vae")}
        config = replace(config, model=f"random-init Qwen-Image-Edit ({sizes['transformer'] / 1e9:.2f} B transformer)")
        result = train(config, pipeline=pipe)

    out = Path(config.out)
    summary = _summary(known.stage, out, build_s, sizes, started)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    keys = (("loss", "token_accuracy", "grad_norm", "step_s") if known.stage == "sft"
            else ("reward", "eval_reward", "kl", "loss", "clip_fraction", "step_s"))
    plot_run(out, keys)
    print(json.dumps(summary, indent=1))
    if known.export:
        export = Path(known.export)
        export.mkdir(parents=True, exist_ok=True)
        for name in EXPORTED:
            if (out / name).is_file():
                shutil.copy(out / name, export / name)
    return 0 if result.step == config.steps else 3


if __name__ == "__main__":
    sys.exit(main())
