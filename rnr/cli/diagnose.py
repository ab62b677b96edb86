"""``rnr diagnose IMG...``: print each image's Diagnosis as JSON (or a readable report)."""

from __future__ import annotations

import argparse

from ..diagnosis import Diagnosis
from ..images import load_image
from .common import (add_max_pixels_arg, add_model_args, dumps, exit_code, expand_inputs, for_each_image, load_model,
                     max_pixels, write_text)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "diagnose", help="print the Diagnosis JSON of images",
        description="Diagnose haze, rain, noise and blur. Prints one Diagnosis JSON object for one image and a "
                    "list for several (the format `rnr restore --diagnosis` reads back).")
    parser.add_argument("images", nargs="+", metavar="IMG", help="image files or folders of images")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON (the default)")
    output.add_argument("--report", action="store_true", help="print a readable report instead of JSON")
    parser.add_argument("-o", "--output", metavar="FILE.json", help="also write the JSON to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_args(parser, "reasoner")
    add_max_pixels_arg(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    paths = expand_inputs(args.images)
    reasoner = load_model(args, "reasoner")

    def diagnose_one(_index: int, path: str) -> tuple[str, Diagnosis]:
        image = load_image(path, max_pixels=max_pixels(args))
        return path, reasoner.diagnose(image.tensor)[0]

    results, failed = for_each_image(paths, "diagnosing", args.quiet, diagnose_one)
    data = [diagnosis.to_dict() for _, diagnosis in results]
    text = dumps(data[0] if len(paths) == 1 and data else data)
    if args.output and results:
        write_text(args.output, text + "\n")
    if args.report:
        for path, diagnosis in results:
            print(f"== {path}\n{diagnosis.to_report()}\n")
    elif results:
        print(text)
    return exit_code(failed, len(paths))
