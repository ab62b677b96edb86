"""``rnr score IMG... [--reference IMG]``: how degraded images look (severity per degradation), and
PSNR/SSIM against a clean reference when one is given."""

from __future__ import annotations

import argparse

from ..errors import ImageError
from ..images import load_image
from ..metrics import psnr, ssim
from .common import (add_max_pixels_arg, add_model_args, dumps, exit_code, expand_inputs, for_each_image, load_model,
                     max_pixels)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score", help="severity of each degradation (and the change and PSNR/SSIM against a reference)",
        description="Score images with a reasoner: severity 0..100 per degradation and overall (lower is "
                    "cleaner). With --reference (e.g. the photo before restoration, or a clean original), also the "
                    "severity reduction from the reference to each image and PSNR/SSIM against the reference.")
    parser.add_argument("images", nargs="+", metavar="IMG", help="image files or folders")
    parser.add_argument("--reference", metavar="IMG", help="reference image of the same size")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_args(parser, "reasoner")
    add_max_pixels_arg(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..severity import SeverityDelta, score

    paths = expand_inputs(args.images)
    reasoner = load_model(args, "reasoner")
    reference = reference_report = None
    if args.reference:
        reference = load_image(args.reference, max_pixels=max_pixels(args)).tensor
        reference_report = score(reference, reasoner)[0]

    def score_one(_index: int, path: str) -> dict:
        image = load_image(path, max_pixels=max_pixels(args)).tensor
        report = score(image, reasoner)[0]
        row = {"file": path, **report.to_dict(), "text": report.to_text()}
        if reference is not None and reference_report is not None:
            if reference.shape != image.shape:
                raise ImageError(f"{path} is {image.shape[-1]}x{image.shape[-2]} but the reference "
                                 f"{args.reference} is {reference.shape[-1]}x{reference.shape[-2]}; "
                                 "PSNR/SSIM need the same size")
            delta = SeverityDelta(before=reference_report, after=report)
            row["reference"] = {"file": args.reference, **reference_report.to_dict()}
            row["reduction"] = delta.reduction
            row["reductions"] = delta.reductions
            row["psnr_db"] = float(psnr(image, reference)[0])
            row["ssim"] = float(ssim(image, reference)[0])
        return row

    rows, failed = for_each_image(paths, "scoring", args.quiet, score_one)
    if args.json:
        if rows:
            print(dumps(rows[0] if len(paths) == 1 else rows))
    else:
        for row in rows:
            print(format_row(row))
    return exit_code(failed, len(paths))


def format_row(row: dict) -> str:
    text = f"{row['file']}: {row['text']}"
    if "reference" in row:
        text += (f"\n  vs {row['reference']['file']}: overall {row['reference']['overall']} -> {row['overall']} "
                 f"(reduction {row['reduction']:+d}), PSNR {row['psnr_db']:.2f} dB, SSIM {row['ssim']:.4f}")
    return text
