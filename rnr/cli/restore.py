"""``rnr restore IN... -o OUT``: restore files or folders, models loaded once, bad files reported by name."""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..diagnosis import Diagnosis, from_dict
from ..errors import DiagnosisError, RnRError
from ..images import load_image, save_image
from .common import (add_max_pixels_arg, add_model_args, dumps, exit_code, expand_inputs, for_each_image, load_model,
                     max_pixels, output_paths, read_text, write_text)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "restore", help="restore images (files or folders)",
        description="Diagnose each image and restore it guided by the diagnosis. A bad file among many is "
                    "reported by name and the rest are restored; the exit code is 1 if any failed.")
    parser.add_argument("inputs", nargs="+", metavar="IN", help="image files or folders of images")
    parser.add_argument("-o", "--output", metavar="OUT",
                        help="an image file (one input) or a folder (default: next to each input, *_restored)")
    parser.add_argument("--diagnosis", metavar="FILE.json",
                        help="use this diagnosis instead of reasoning: one Diagnosis object for every image or a "
                             "list with one per image (as `rnr diagnose` prints); edit it to steer the restorer")
    parser.add_argument("--diagnosis-out", metavar="FILE.json", help="write the diagnoses used to this file")
    parser.add_argument("--strength", type=float, default=1.0, help="0 returns the input, 1 the full restoration")
    parser.add_argument("--seed", type=int, default=0, help="seed for restorers that sample (default 0)")
    parser.add_argument("--format", choices=["png", "jpg", "webp"], help="output format (default: the input's)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_args(parser, "reasoner", "restorer")
    add_max_pixels_arg(parser)
    parser.set_defaults(run=run)


def read_diagnoses(path: str, count: int) -> list[Diagnosis]:
    """One diagnosis per input from a JSON file holding one Diagnosis object or a list of them."""
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RnRError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    try:
        if isinstance(data, list):
            if len(data) not in (1, count):
                raise RnRError(f"{path}: holds {len(data)} diagnoses but there are {count} images; give one "
                               "diagnosis for all or one per image, in input order")
            diagnoses = [from_dict(item) for item in data]
            return diagnoses * count if len(diagnoses) == 1 else diagnoses
        return [from_dict(data)] * count
    except DiagnosisError as exc:
        raise RnRError(f"{path}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    if not 0.0 <= args.strength <= 1.0:
        raise RnRError(f"--strength must be in 0..1, got {args.strength}")
    paths = expand_inputs(args.inputs)
    single_file = len(args.inputs) == 1 and not os.path.isdir(args.inputs[0])
    extension = f".{args.format}" if args.format else None
    targets = output_paths(paths, args.output, single_file, "_restored", extension)
    given = read_diagnoses(args.diagnosis, len(paths)) if args.diagnosis else None
    reasoner = None if given else load_model(args, "reasoner")
    restorer = load_model(args, "restorer")

    def restore_one(index: int, path: str) -> dict:
        image = load_image(path, max_pixels=max_pixels(args))
        diagnosis = given[index] if given else reasoner.diagnose(image.tensor)[0]
        restored = restorer.restore(image.tensor, [diagnosis], strength=args.strength, seed=args.seed)
        save_image(targets[index], restored, image.alpha)
        return diagnosis.to_dict()

    used, failed = for_each_image(paths, "restoring", args.quiet, restore_one)
    if args.diagnosis_out and used:
        write_text(args.diagnosis_out, dumps(used[0] if len(paths) == 1 else used) + "\n")
    done = len(paths) - len(failed)
    where = targets[0] if single_file else (args.output or "next to the inputs")
    print(f"restored {done} of {len(paths)} image{'s' if len(paths) != 1 else ''} -> {where}", file=sys.stderr)
    return exit_code(failed, len(paths))
