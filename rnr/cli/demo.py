"""``rnr demo``: degrade a shipped sample photo with known parameters, Reason -> Restore -> score it,
and write a labelled side-by-side PNG (degraded | restored | clean) plus the diagnosis JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from ..images import load_image, save_image, tensor_to_pil
from ..metrics import psnr, ssim
from .common import add_model_args, dumps, load_model, write_text


def demo_cases() -> list[tuple[str, dict]]:
    """(label, rnr.degrade keyword arguments) of each demo row: fixed physical parameters."""
    from ..degrade import BlurParams, HazeParams, NoiseParams

    return [
        ("haze + noise", {"haze": HazeParams(transmission=0.5, atmospheric_light=(0.88, 0.88, 0.9), depth_model="smooth",
                                             airlight_variation=0.0),
                          "noise": NoiseParams(sigma_255=15.0, kind="gaussian", poisson_fraction=0.0,
                                               channel_correlation=0.0, spatial_sigma_px=0.0)}),
        ("blur", {"blur": BlurParams(kind="defocus", extent_px=8.0)}),
    ]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="degrade a sample photo, restore it and show the result side by side",
        description="Takes a sample photo shipped with the pack, degrades it with known parameters (haze + noise, "
                    "and blur), runs Reason -> Restore -> SeverityScore, writes a labelled side-by-side PNG "
                    "(degraded | restored | clean) and the diagnosis JSON, and prints PSNR/SSIM before and after.")
    parser.add_argument("-o", "--output", default="rnr_demo", metavar="DIR", help="output folder (default rnr_demo)")
    parser.add_argument("--image", metavar="PATH", help="use this clean photo instead of a shipped sample")
    parser.add_argument("--sample", metavar="NAME", help="which shipped sample (default: the default sample)")
    parser.add_argument("--max-side", type=int, default=512,
                        help="downscale the photo so its longer side is at most this (default 512; 0 keeps it)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the degradation (default 0)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    add_model_args(parser, "reasoner", "restorer")
    parser.set_defaults(run=run)


def _fit(image: torch.Tensor, max_side: int) -> torch.Tensor:
    height, width = image.shape[-2:]
    if max_side <= 0 or max(height, width) <= max_side:
        return image
    scale = max_side / max(height, width)
    size = (max(16, round(height * scale)), max(16, round(width * scale)))
    return F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


def run(args: argparse.Namespace) -> int:
    from ..degrade import degrade

    if args.image:
        source = Path(args.image)
    else:
        from ..assets import sample_path

        source = sample_path(args.sample)
    clean = _fit(load_image(source).tensor, args.max_side)
    reasoner = load_model(args, "reasoner")
    restorer = load_model(args, "restorer")
    out = Path(args.output)
    rows, results, diagnoses, truths = [], [], [], []
    for index, (label, specs) in enumerate(demo_cases()):
        degraded_result = degrade(clean, seed=args.seed + index, **specs)
        degraded = degraded_result.images
        diagnosis = reasoner.diagnose(degraded)[0]
        restored = restorer.restore(degraded, [diagnosis]).detach().float().cpu().clamp(0, 1)
        after = reasoner.diagnose(restored)[0]
        before_psnr, after_psnr = float(psnr(degraded, clean)[0]), float(psnr(restored, clean)[0])
        before_ssim, after_ssim = float(ssim(degraded, clean)[0]), float(ssim(restored, clean)[0])
        results.append({"case": label, "psnr_before": before_psnr, "psnr_after": after_psnr,
                        "ssim_before": before_ssim, "ssim_after": after_ssim,
                        "severity_before": diagnosis.overall_severity(), "severity_after": after.overall_severity(),
                        "ground_truth": degraded_result.diagnoses[0].severities(), "found": diagnosis.severities()})
        diagnoses.append(diagnosis.to_dict())
        truths.append(degraded_result.diagnoses[0].to_dict())
        save_image(out / f"case{index + 1}_degraded.png", degraded)
        save_image(out / f"case{index + 1}_restored.png", restored)
        rows.append([(degraded, f"degraded: {label}  {before_psnr:.2f} dB"),
                     (restored, f"restored ({restorer_name(restorer, args)})  {after_psnr:.2f} dB"),
                     (clean, "clean")])
    figure = out / "side_by_side.png"
    side_by_side(rows).save(figure)
    write_text(str(out / "diagnosis.json"), dumps(diagnoses) + "\n")
    write_text(str(out / "ground_truth.json"), dumps(truths) + "\n")
    if args.json:
        print(dumps({"image": str(source), "size": list(clean.shape[-2:]), "cases": results,
                     "side_by_side": str(figure), "diagnosis": str(out / "diagnosis.json")}))
    else:
        height, width = clean.shape[-2:]
        print(f"rnr demo: {source.name} at {width}x{height}")
        print(f"{'case':<14}  {'PSNR before -> after':<22}  {'SSIM before -> after':<20}  severity before -> after")
        for r in results:
            psnr_text = f"{r['psnr_before']:.2f} -> {r['psnr_after']:.2f} dB"
            ssim_text = f"{r['ssim_before']:.4f} -> {r['ssim_after']:.4f}"
            print(f"{r['case']:<14}  {psnr_text:<22}  {ssim_text:<20}  {r['severity_before']} -> {r['severity_after']}")
        print(f"wrote {figure}, {out / 'diagnosis.json'} and {out / 'ground_truth.json'}", file=sys.stderr)
    return 0


def restorer_name(model: object, args: argparse.Namespace) -> str:
    return str(getattr(model, "name", "") or args.restorer)


def side_by_side(rows: list[list[tuple[torch.Tensor, str]]]) -> Image.Image:
    """A grid of labelled tiles: one row per case, one column per image."""
    tiles = [[tensor_to_pil(image) for image, _ in row] for row in rows]
    width, height = tiles[0][0].size
    font = _font(max(12, min(24, width // 28)))
    bar = int(font.size * 1.6) if hasattr(font, "size") else 18
    gap = 4
    columns = max(len(row) for row in rows)
    canvas = Image.new("RGB", (columns * width + (columns - 1) * gap, len(rows) * (height + bar) + (len(rows) - 1) * gap),
                       (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(rows):
        for c, (_, label) in enumerate(row):
            left, top = c * (width + gap), r * (height + bar + gap)
            draw.text((left + 4, top + (bar - (font.size if hasattr(font, "size") else 11)) // 2), label,
                      fill=(0, 0, 0), font=font)
            canvas.paste(tiles[r][c].resize((width, height)), (left, top + bar))
    return canvas


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):
        return ImageFont.load_default()
