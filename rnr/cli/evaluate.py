"""``rnr eval DIR`` and ``rnr eval --synthetic N``: restorers side by side, PSNR/SSIM, reasoner accuracy."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from .. import eval as evaluation
from ..errors import RnRError
from ..images import list_image_files
from .common import add_device_args, add_max_pixels_arg, dumps, max_pixels, write_text


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="PSNR/SSIM of restorers side by side (folder of pairs or a synthetic set)",
        description="Evaluate restorers on DIR/degraded/NAME vs DIR/clean/NAME, or on a seeded synthetic set "
                    "(--synthetic N: N crops per degradation type, per mixture and clean). Prints a markdown table "
                    "(or --json); on the synthetic set also each reasoner's flag F1, severity MAE and how often "
                    "it flags clean photos.")
    parser.add_argument("folder", nargs="?", metavar="DIR", help="folder with degraded/ and clean/ sub-folders")
    parser.add_argument("--synthetic", type=int, metavar="N", help="evaluate on N synthetic images per group instead")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic set (default 0)")
    parser.add_argument("--size", type=int, default=256, help="crop size of the synthetic set in pixels (default 256)")
    parser.add_argument("--photos", metavar="DIR", help="clean photos for the synthetic set (default: the samples)")
    parser.add_argument("--groups", type=_names, default=list(evaluation.GROUPS),
                        help=f"synthetic groups, comma-separated (default {','.join(evaluation.GROUPS)})")
    parser.add_argument("--restorers", type=_names, metavar="A,B",
                        help="restorer backends side by side (default: the built-in ones installed)")
    parser.add_argument("--reasoners", type=_names, metavar="A,B",
                        help="reasoners to score on the synthetic set (default: the built-in ones installed)")
    parser.add_argument("--guide", default="auto",
                        help="diagnoses that guide the restorers: a reasoner name (default auto), 'paired' (each "
                             "restorer with the same-named reasoner) or 'truth' (ground truth, synthetic only)")
    parser.add_argument("--strength", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    parser.add_argument("-o", "--output", metavar="FILE", help="also write the output to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_device_args(parser)
    add_max_pixels_arg(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if (args.folder is None) == (args.synthetic is None):
        raise RnRError("give either a folder DIR (with degraded/ and clean/) or --synthetic N")
    restorers = args.restorers or evaluation.default_backends("restorer")
    skipped: list[str] = []
    settings: dict = {}
    if args.synthetic is not None:
        photos = list_image_files(args.photos) if args.photos else None
        pairs = evaluation.synthetic_pairs(args.synthetic, args.seed, args.size, photos, args.groups)
        reasoners = args.reasoners or evaluation.default_backends("reasoner")
        title = f"Synthetic set: {args.synthetic} per group, {args.size}x{args.size}, seed {args.seed}"
        settings = {"synthetic": args.synthetic, "size": args.size, "photos": args.photos or "rnr.assets samples"}
    else:
        pairs, skipped = evaluation.folder_pairs(args.folder, max_pixels(args))
        reasoners = args.reasoners or []
        title = f"{args.folder}: {len(pairs)} pairs"
        settings = {"folder": args.folder}
    with tqdm(total=1, desc="evaluating", unit="img", disable=args.quiet, file=sys.stderr) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        report = evaluation.evaluate(pairs, restorers, guide=args.guide, reasoners=reasoners, title=title,
                                     device=args.device, dtype=args.dtype, batch_size=args.batch_size,
                                     strength=args.strength, seed=args.seed, skipped=skipped, progress=progress,
                                     settings=settings)
    text = dumps(report.to_dict()) if args.json else report.to_markdown()
    print(text)
    if args.output:
        write_text(args.output, text + "\n")
    for reason in report.skipped:
        print(f"rnr: skipped {reason}", file=sys.stderr)
    return 1 if report.skipped else 0
