"""``rnr-train``: labelled data, reasoner SFT, restorer GRPO, SFT evaluation and curve plots.

    rnr-train data --data-source data/packed/crops_256.safetensors --data-split heldout --count 200 --out data/heldout
    rnr-train sft --model models/Qwen3-VL-2B-Instruct --steps 500 --out runs/sft
    rnr-train eval-sft --model models/Qwen3-VL-2B-Instruct --adapter runs/sft/final/adapter --eval-data data/heldout
    rnr-train grpo --model models/Qwen-Image-Edit --reward severity:1 structure:0.5 --out runs/grpo
    rnr-train plot runs/grpo

Every setting of a stage is a field of its config dataclass and a ``--flag`` here (``--help`` lists them
with their defaults); data settings are ``--data-<name>``. User mistakes print one line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rnr.errors import RnRError

from .config import add_arguments, from_arguments, option
from .dataset import DataConfig


@dataclass
class DataCommand:
    """Settings of ``rnr-train data``."""

    out: str = option("data/labelled", "folder to write degraded/, clean/ and labels.jsonl to")
    count: int = option(100, "examples to write")
    start: int = option(0, "index of the first example")
    with_clean: bool = option(True, "also write the clean crops")
    data: DataConfig = option(DataConfig(split="heldout"), "examples")  # noqa: RUF009 (a default_factory)


@dataclass
class EvalSFTCommand:
    """Settings of ``rnr-train eval-sft``: a Qwen3-VL reasoner (with an adapter) loaded by the Reason backend."""

    model: str = option("", "Qwen3-VL checkpoint folder")
    adapter: str = option("", "LoRA adapter folder from rnr-train sft (empty: the base model)")
    processor: str = option("", "processor folder when not beside the weights")
    eval_data: str = option("", "labelled set folder (rnr-train data); default: examples of --data-*")
    count: int = option(64, "examples to evaluate")
    batch_size: int = option(4, "images per generate call")
    max_new_tokens: int = option(1024, "answer length bound")
    system_prompt: str = option("", "system prompt (empty: the reasoner's own)")
    device: str = option("auto", "auto, cpu, cuda")
    dtype: str = option("auto", "auto, float32, bfloat16, float16")
    out: str = option("", "write scores and answers to this JSON file")
    data: DataConfig = option(DataConfig(split="heldout"),  # noqa: RUF009 (a default_factory)
                              "examples when --eval-data is not given")


def run_data(config: DataCommand) -> int:
    from .config import progress
    from .dataset import SyntheticDegradations, write_labelled_set

    dataset = SyntheticDegradations(config.data, length=config.start + config.count)
    bar = progress(total=config.count, desc="data")

    def report(done: int, total: int) -> None:
        bar.update(done - bar.n)

    folder = write_labelled_set(dataset, config.out, config.count, start=config.start, with_clean=config.with_clean,
                                progress=report)
    bar.close()
    print(f"wrote {config.count} labelled examples to {folder}")
    return 0


def run_eval_sft(config: EvalSFTCommand) -> int:
    from rnr import cache
    from rnr.registry import ModelSpec

    from .dataset import LabelledSet, SyntheticDegradations
    from .sft.evaluate import evaluate, format_scores

    options = {"max_new_tokens": config.max_new_tokens, "batch_size": config.batch_size, "reask": False}
    if config.adapter:
        options["adapter"] = config.adapter
    if config.processor:
        options["processor"] = config.processor
    reasoner = cache.get(ModelSpec.make("reasoner", "qwen3vl", config.model, config.device, config.dtype, **options))
    if config.system_prompt:
        reasoner.system = config.system_prompt
    if config.eval_data:
        samples = LabelledSet.read(config.eval_data).samples[:config.count]
    else:
        dataset = SyntheticDegradations(config.data, length=config.count)
        samples = [dataset[i] for i in range(config.count)]
    scores, answers = evaluate(reasoner, samples, config.batch_size)
    print(format_scores(scores))
    if config.out:
        Path(config.out).parent.mkdir(parents=True, exist_ok=True)
        Path(config.out).write_text(json.dumps({"scores": scores, "answers": answers}, indent=1, default=str) + "\n",
                                    encoding="utf-8")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .grpo.train import GRPOConfig
    from .sft.train import SFTConfig

    parser = argparse.ArgumentParser(prog="rnr-train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--traceback", action="store_true", help="show full tracebacks of errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, config_class, text in (
        ("data", DataCommand, "write a labelled set (degraded images, ground truth, CoT targets)"),
        ("sft", SFTConfig, "LoRA fine-tuning of the Qwen3-VL reasoner"),
        ("grpo", GRPOConfig, "Flow-GRPO of the Qwen-Image-Edit restorer (LoRA on the transformer)"),
        ("eval-sft", EvalSFTCommand, "evaluate a Qwen3-VL reasoner (and adapter): flag F1, severity MAE"),
    ):
        sub = commands.add_parser(name, help=text, description=text)
        add_arguments(sub, config_class)
        sub.set_defaults(config_class=config_class)
    plot = commands.add_parser("plot", help="plot a run's log.jsonl as an SVG")
    plot.add_argument("run", help="run folder (holds log.jsonl)")
    plot.add_argument("--keys", nargs="+", default=None, help="logged quantities to plot")
    plot.add_argument("--out", default=None, help="SVG file (default RUN/curves.svg)")
    plot.set_defaults(config_class=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        if args.command == "plot":
            from .plot import DEFAULT_KEYS, plot_run

            print(plot_run(args.run, args.keys or DEFAULT_KEYS, args.out))
            return 0
        config = from_arguments(args.config_class, args)
        if args.command == "data":
            return run_data(config)
        if args.command == "eval-sft":
            return run_eval_sft(config)
        if args.command == "sft":
            from .sft.train import train

            result = train(config)
        else:
            from .grpo.train import train

            result = train(config)
        if getattr(result, "adapter", None) is None and getattr(result, "lora", None) is None:
            print(f"stopped at step {result.step} (max_minutes); continue with the same command and --resume")
        else:
            print(f"done: {result.step} steps; weights in {getattr(result, 'adapter', None) or result.lora}")
        return 0
    except (RnRError, ValueError) as exc:
        if args.traceback:
            raise
        print(f"rnr-train: error: {exc}", file=sys.stderr)
        return 2


__all__ = ["DataCommand", "EvalSFTCommand", "build_parser", "main"]


if __name__ == "__main__":
    sys.exit(main())
