"""The ``rnr`` command line: diagnose, restore, score, degrade, demo, eval and bench.

Each subcommand lives in its own module with ``add_parser(subparsers)`` and a ``run(args) -> int``.
User mistakes (:class:`~rnr.errors.RnRError`) print one line to stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import Interrupted, RnRError
from . import bench, common, degrade, demo, diagnose, evaluate, restore, score

COMMANDS = (diagnose, restore, score, degrade, demo, evaluate, bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnr", description="Reason & Restore: diagnose and remove haze, rain, noise and blur from photos.")
    parser.add_argument("--version", action="version", version=f"rnr {__version__}")
    parser.add_argument("--traceback", action="store_true", help="show full tracebacks of unexpected errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse exits on --help, --version and usage errors
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    common.SHOW_TRACEBACKS = args.traceback
    try:
        return int(args.run(args))
    except RnRError as exc:
        if args.traceback:
            raise
        print(f"rnr: error: {exc}", file=sys.stderr)
        return 2
    except (Interrupted, KeyboardInterrupt):
        print("rnr: interrupted", file=sys.stderr)
        return 130


__all__ = ["build_parser", "main"]
