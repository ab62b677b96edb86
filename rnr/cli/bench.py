"""``rnr bench``: time per megapixel and peak memory of each backend on the CPU and the GPU."""

from __future__ import annotations

import argparse
import sys

from .. import bench as benchmark
from ..errors import RnRError
from .common import dumps, parse_options, write_text


def _size(text: str) -> tuple[int, int]:
    """'1024' -> (1024, 1024); '1024x768' (width x height) -> (768, 1024)."""
    try:
        if "x" in text:
            width, height = (int(v) for v in text.lower().split("x"))
        else:
            width = height = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} is not N or WIDTHxHEIGHT") from None
    return height, width


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench", help="time per megapixel and peak memory per backend",
        description="Benchmark backends on a synthetic photo with all four degradations: warm-up runs, then the "
                    "median of timed repeats, on the CPU and the GPU when there is one.")
    parser.add_argument("--kinds", default="restorer,reasoner", help="restorer, reasoner or both (default both)")
    parser.add_argument("--backends", help="comma-separated backend names (default: the built-in ones installed)")
    parser.add_argument("--devices", help="comma-separated devices (default: cpu, and cuda when available)")
    parser.add_argument("--size", type=_size, default=(1024, 1024), help="N or WIDTHxHEIGHT (default 1024: 1 MP)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtype", default="auto", help="auto, fp32, fp16 or bf16")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="backend option passed to every benchmarked model (repeatable)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    parser.add_argument("-o", "--output", metavar="FILE", help="also write the output to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in ("restorer", "reasoner")]
    if unknown or not kinds:
        raise RnRError(f"--kinds takes restorer and/or reasoner, got {args.kinds!r}")
    if args.repeats < 1 or args.warmup < 0 or args.batch < 1:
        raise RnRError("--repeats and --batch must be at least 1 and --warmup at least 0")
    backends = [b.strip() for b in args.backends.split(",")] if args.backends else None
    devices = [d.strip() for d in args.devices.split(",")] if args.devices else None

    def progress(message: str) -> None:
        if not args.quiet:
            print(f"benchmarking {message} ...", file=sys.stderr)

    results = benchmark.run_bench(kinds, backends, devices, args.size, args.batch, args.warmup, args.repeats,
                                  args.dtype, parse_options(args.option), progress)
    text = dumps([r.to_dict() for r in results]) if args.json else benchmark.to_markdown(results)
    print(text)
    if args.output:
        write_text(args.output, text + "\n")
    return 1 if any(r.error for r in results) else 0
