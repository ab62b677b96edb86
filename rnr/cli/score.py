"""``rnr score IMG... [--reference IMG]``: how degraded images look (severity per degradation), and
PSNR/SSIM against a clean reference when one is given."""

from __future__ import annotations

import argparse
import sys

from ..errors import ImageError, Interrupted
from ..images import load_image
from ..metrics import psnr, ssim
from .common import (add_max_pixels_arg, add_model_args, dumps, expand_inputs, load_model, max_pixels, progress_bar,
                     report_failure)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score", help="severity of each degradation (and PSNR/SSIM against a reference)",
        description="Score images with a reasoner: severity 0..100 per degradation and overall (lower is "
                    "cleaner). With --reference, also PSNR and SSIM against that clean image.")
    parser.add_argument("images", nargs="+", metavar="IMG", help="image files or folders")
    parser.add_argument("--reference", metavar="IMG", help="clean reference image of the same size")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_args(parser, "reasoner")
    add_max_pixels_arg(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .. import severity

    paths = expand_inputs(args.images)
    reference = load_image(args.reference, max_pixels=max_pixels(args)).tensor if args.reference else None
    reasoner = load_model(args, "reasoner")
    rows, failed = [], []
    for path in progress_bar(paths, "scoring", args.quiet):
        try:
            image = load_image(path, max_pixels=max_pixels(args)).tensor
            report = severity.score(image, reasoner)[0]
            row = {"file": path, **severity_dict(report)}
            if reference is not None:
                if reference.shape != image.shape:
                    raise ImageError(f"{path} is {image.shape[-1]}x{image.shape[-2]} but the reference "
                                     f"{args.reference} is {reference.shape[-1]}x{reference.shape[-2]}; "
                                     "PSNR/SSIM need the same size")
                row["psnr_db"] = float(psnr(image, reference)[0])
                row["ssim"] = float(ssim(image, reference)[0])
            rows.append(row)
        except Interrupted:
            raise
        except Exception as exc:  # one bad file must not stop the others
            report_failure(path, exc)
            failed.append(path)
    if args.json:
        if rows:
            print(dumps(rows[0] if len(paths) == 1 else rows))
    else:
        for row in rows:
            print(format_row(row))
    if failed:
        print(f"rnr: {len(failed)} of {len(paths)} images failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def severity_dict(report: object) -> dict:
    """``{"overall": int, "severities": {name: int}}`` from a SeverityReport."""
    if hasattr(report, "to_dict"):
        return report.to_dict()  # type: ignore[no-any-return]
    raise TypeError(f"unexpected severity report {report!r}")


def format_row(row: dict) -> str:
    parts = [f"{row['file']}: overall severity {row.get('overall', '?')}/100"]
    severities = row.get("severities", {})
    if severities:
        parts.append("(" + ", ".join(f"{k} {v}" for k, v in severities.items()) + ")")
    if "psnr_db" in row:
        parts.append(f"PSNR {row['psnr_db']:.2f} dB, SSIM {row['ssim']:.4f} vs reference")
    return " ".join(parts)
