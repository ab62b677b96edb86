"""``rnr degrade IMG --haze 60 --noise 20 -o OUT``: synthesise degradations with known parameters."""

from __future__ import annotations

import argparse
import os
import sys

from ..diagnosis import DEGRADATIONS, calibration
from ..errors import RnRError
from ..images import load_image, save_image
from .common import add_max_pixels_arg, dumps, max_pixels, output_paths, write_text

DEFAULT_SEVERITY = 50


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "degrade", help="add haze, rain, noise or blur with known parameters",
        description="Degrade a photo by the physical models of rnr.degrade and print its ground-truth Diagnosis JSON. "
                    "Each degradation takes a severity 1..100 on the calibrated scale (default 50 when the "
                    "option is given without a value); free parameters are drawn from --seed.")
    parser.add_argument("image", metavar="IMG", help="the clean image")
    for name in DEGRADATIONS:
        parser.add_argument(f"--{name}", type=float, nargs="?", const=DEFAULT_SEVERITY, metavar="SEVERITY",
                            help=f"add {name} at this severity 1..100")
    parser.add_argument("--noise-kind", choices=["gaussian", "poisson"], help="noise model (default: drawn)")
    parser.add_argument("--blur-kind", choices=["motion", "defocus", "gaussian"], help="blur kernel (default: drawn)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every free parameter (default 0)")
    parser.add_argument("-o", "--output", metavar="OUT", help="output image (default: IMG_degraded.png)")
    parser.add_argument("--diagnosis-out", metavar="FILE.json", help="write the ground-truth Diagnosis here")
    add_max_pixels_arg(parser)
    parser.set_defaults(run=run)


def degradation_specs(args: argparse.Namespace) -> dict[str, object]:
    """The ``rnr.degrade.degrade`` keyword arguments the options ask for."""
    from ..degrade import BlurParams, NoiseParams

    specs: dict[str, object] = {}
    for name in DEGRADATIONS:
        severity = getattr(args, name)
        if severity is None:
            continue
        if not 1 <= severity <= 100:
            raise RnRError(f"--{name} takes a severity in 1..100, got {severity:g}")
        specs[name] = severity
    if args.noise_kind:
        if "noise" not in specs:
            raise RnRError("--noise-kind needs --noise SEVERITY")
        specs["noise"] = NoiseParams(sigma_255=calibration.noise_sigma_from_severity(specs["noise"]),
                                     kind=args.noise_kind)
    if args.blur_kind:
        if "blur" not in specs:
            raise RnRError("--blur-kind needs --blur SEVERITY")
        specs["blur"] = BlurParams(extent_px=calibration.blur_extent_from_severity(specs["blur"]), kind=args.blur_kind)
    if not specs:
        raise RnRError("choose at least one degradation, e.g. --haze 60 --noise 20")
    return specs


def run(args: argparse.Namespace) -> int:
    from ..degrade import degrade

    specs = degradation_specs(args)
    if os.path.isdir(args.image):
        raise RnRError(f"{args.image}: rnr degrade takes one image file, not a folder")
    image = load_image(args.image, max_pixels=max_pixels(args))
    target = output_paths([args.image], args.output, True, "_degraded", None if args.output else ".png")[0]
    result = degrade(image.tensor, seed=args.seed, **specs)
    save_image(target, result.images, image.alpha)
    diagnosis = result.diagnoses[0]
    if args.diagnosis_out:
        write_text(args.diagnosis_out, dumps(diagnosis.to_dict()) + "\n")
    print(dumps(diagnosis.to_dict()))
    found = ", ".join(f"{name} {getattr(diagnosis, name).severity}" for name in diagnosis.present) or "nothing"
    print(f"wrote {target} ({found})", file=sys.stderr)
    return 0
