"""Make the pictures under docs/: workflow screenshots, before/after strips and the pack icon.

    python scripts/make_pictures.py                        # everything (starts ComfyUI via the test harness)
    python scripts/make_pictures.py --url http://127.0.0.1:8188   # screenshots from a running ComfyUI
    python scripts/make_pictures.py --only strips icon     # no server, no browser

- ``docs/workflows/<stem>.png``: each shipped workflow dropped on the canvas of the real ComfyUI frontend
  in headless Chromium (the same code path as tests/browser), run with the Run button when its models are
  on this machine (so the previews show the results), fitted to the view, 1600x1000.
- ``docs/strips/<type>.png``: degraded | restored | clean for haze, rain, noise, blur and a mixture, on a
  shipped sample photo: ``rnr.api.degrade_image`` with a fixed seed, then ``rnr.api.restore`` with the
  built-in default backends (diagnosis included), labelled with what was found and the PSNR.
- ``docs/icon.png``: a sample photo split degraded | restored (the pack icon of pyproject's [tool.comfy]).

The strips and the icon are deterministic (fixed seeds, fixed fonts, no PNG timestamps): re-running with
the same code and weights reproduces them byte for byte. Screenshots depend on the browser's rendering.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
WORKFLOWS = REPO / "workflows"
SAMPLES = REPO / "rnr" / "assets" / "samples"
NEEDS_BIG_MODELS = {"04_big_models", "05_diagnosis_prompt_to_qwen_image_edit"}

PANEL_W, GAP, CAPTION_H, TITLE_H = 396, 6, 44, 0
STRIP_W = 3 * PANEL_W + 2 * GAP  # 1200
BACKGROUND = (24, 24, 27)
TEXT = (236, 236, 236)
MUTED = (170, 170, 176)


@dataclass(frozen=True)
class StripSpec:
    name: str
    sample: str
    severities: dict
    seed: int
    crop: bool = False
    """Show a 1:1 crop of the middle instead of the whole photo scaled down (noise and blur are fine detail)."""


STRIPS = (
    StripSpec("haze", "landscape.jpg", {"haze": 65}, 101),
    StripSpec("rain", "building.jpg", {"rain": 60}, 102),
    StripSpec("noise", "foliage.jpg", {"noise": 45}, 103, crop=True),
    StripSpec("blur", "building.jpg", {"blur": 45}, 104, crop=True),
    StripSpec("mixture", "landscape.jpg", {"haze": 45, "rain": 35, "noise": 20}, 105),
)


# ---- strips and icon (in-process, rnr.api) --------------------------------------------------------------
def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _to_pil(tensor):
    import numpy as np
    from PIL import Image

    array = tensor.detach().float().clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.round(array * 255.0).astype(np.uint8), "RGB")


def _panel(image, crop: bool):
    from PIL import Image

    width, height = image.size
    panel_h = round(PANEL_W * height / width)
    if crop:
        left, top = (width - PANEL_W) // 2, (height - panel_h) // 2
        return image.crop((left, top, left + PANEL_W, top + panel_h))
    return image.resize((PANEL_W, panel_h), Image.Resampling.LANCZOS)


def _found(diagnosis) -> str:
    found = [f"{name} {getattr(diagnosis, name).severity}" for name in ("haze", "rain", "noise", "blur")
             if getattr(diagnosis, name).present]
    return ", ".join(found) if found else "nothing"


def make_strip(spec: StripSpec):
    """(strip image, facts) for one degradation type."""
    from PIL import Image, ImageDraw

    from rnr import api, metrics

    clean = api.to_batch(SAMPLES / spec.sample)
    degraded, truth = api.degrade_image(clean, seed=spec.seed, **spec.severities)
    diagnoses = api.diagnose(degraded)
    restored = api.restore(degraded, diagnoses, seed=0)
    psnr_in = float(metrics.psnr(degraded, clean)[0])
    psnr_out = float(metrics.psnr(restored, clean)[0])
    backends = (api.default_backend("reasoner"), api.default_backend("restorer"))

    panels = [_panel(_to_pil(t), spec.crop) for t in (degraded, restored, clean)]
    panel_h = panels[0].size[1]
    strip = Image.new("RGB", (STRIP_W, panel_h + CAPTION_H), BACKGROUND)
    draw = ImageDraw.Draw(strip)
    big, small = _font(17), _font(13)
    applied = ", ".join(f"{k} {v}" for k, v in spec.severities.items())
    captions = [
        (f"degraded: {applied}", f"PSNR {psnr_in:.1f} dB" + ("  ·  100% crop" if spec.crop else "")),
        (f"restored ({backends[1]})", f"found {_found(diagnoses[0])}  ·  PSNR {psnr_out:.1f} dB"),
        ("clean", f"{spec.sample}  ·  {clean.shape[-1]}x{clean.shape[-2]}"),
    ]
    for index, (panel, (line1, line2)) in enumerate(zip(panels, captions)):
        x = index * (PANEL_W + GAP)
        strip.paste(panel, (x, 0))
        draw.text((x + 8, panel_h + 5), line1, font=big, fill=TEXT)
        draw.text((x + 8, panel_h + 26), line2, font=small, fill=MUTED)
    facts = {"type": spec.name, "sample": spec.sample, "applied": spec.severities, "seed": spec.seed,
             "truth": _found(truth[0]), "found": _found(diagnoses[0]), "reasoner": backends[0],
             "restorer": backends[1], "psnr_degraded": round(psnr_in, 2), "psnr_restored": round(psnr_out, 2)}
    return strip, facts, (degraded, restored)


def make_icon(degraded, restored):
    """400x400: the middle square of a sample, left half degraded, right half restored."""
    from PIL import Image, ImageDraw

    before, after = _to_pil(degraded), _to_pil(restored)
    width, height = before.size
    side = min(width, height)
    box = ((width - side) // 2, (height - side) // 2, (width - side) // 2 + side, (height - side) // 2 + side)
    before = before.crop(box).resize((400, 400), Image.Resampling.LANCZOS)
    after = after.crop(box).resize((400, 400), Image.Resampling.LANCZOS)
    icon = before.copy()
    icon.paste(after.crop((200, 0, 400, 400)), (200, 0))
    draw = ImageDraw.Draw(icon)
    draw.rectangle((198, 0, 201, 399), fill=(255, 255, 255))
    return icon


def save_png(image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG", optimize=True)


def backend_state() -> dict:
    """What decides the strips besides this script: the default backends and the shipped weight files."""
    import hashlib

    from rnr import api

    weights = {}
    for path in sorted(api.WEIGHTS_DIR.glob("*.safetensors")):
        weights[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"reasoner": api.default_backend("reasoner"), "restorer": api.default_backend("restorer"),
            "weights_sha256": weights}


def make_strips_and_icon(out: Path, want_strips: bool, want_icon: bool) -> list[dict]:
    import torch

    torch.manual_seed(0)
    facts = []
    icon_source = None
    for spec in STRIPS:
        if not want_strips and spec.name != "haze":
            continue
        t0 = time.monotonic()
        strip, fact, tensors = make_strip(spec)
        if spec.name == "haze":
            icon_source = tensors
        if want_strips:
            save_png(strip, out / "strips" / f"{spec.name}.png")
            facts.append(fact)
            print(f"strip {spec.name} ({time.monotonic() - t0:.1f} s): {json.dumps(fact)}")
    if want_strips:
        record = {"made_by": "python scripts/make_pictures.py --only strips icon", **backend_state(),
                  "strips": facts}
        (out / "strips" / "facts.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    if want_icon and icon_source is not None:
        save_png(make_icon(*icon_source), out / "icon.png")
        print(f"icon: {out / 'icon.png'}")
    return facts


# ---- workflow screenshots (real frontend, headless Chromium) -----------------------------------------------
def _harness():
    for folder in (REPO / "tests" / "integration", REPO / "tests" / "browser"):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    import browser_harness
    import comfyui_harness

    return browser_harness, comfyui_harness


def screenshot_workflows(out: Path, url: str | None, run: bool, stems: list[str] | None,
                         thumbnails: Path | None = None) -> None:
    browser_harness, comfyui_harness = _harness()
    problem = browser_harness.playwright_problem()
    if problem:
        raise SystemExit(f"cannot take screenshots: {problem}")
    server, workdir = None, None
    if url is None:
        missing = comfyui_harness.missing_requirements()
        if missing:
            raise SystemExit("cannot start ComfyUI: " + "; ".join(missing))
        workdir = Path(tempfile.mkdtemp(prefix="rnr-pictures-"))
        t0 = time.monotonic()
        server = comfyui_harness.start_comfy_server(workdir)
        url = server.url
        print(f"ComfyUI up at {url} in {time.monotonic() - t0:.0f} s")
    try:
        with browser_harness.chromium_context() as context:
            page = browser_harness.ComfyPage(context, url, settings=browser_harness.PICTURE_SETTINGS)
            for path in sorted(WORKFLOWS.glob("*.json")):
                if stems and path.stem not in stems:
                    continue
                result = page.drop_workflow(path)
                problems = browser_harness.load_problems(result)
                if problems:
                    raise SystemExit(f"{path.name} does not load cleanly: {problems}")
                if run and path.stem not in NEEDS_BIG_MODELS:
                    t0 = time.monotonic()
                    finished = page.queue_and_wait(url)
                    if finished.status != "success":
                        raise SystemExit(f"{path.name} failed: {json.dumps(finished.error, indent=2)}")
                    for node in result.workflow["nodes"]:
                        if node["type"] == "SaveImage":
                            page.loaded_preview_sizes(node["id"])
                    print(f"ran {path.stem} in {time.monotonic() - t0:.1f} s")
                page.page.mouse.move(2, 2)
                page.command("Workspace.ToggleFocusMode")  # the graph alone, no menus
                page.fit_view(zoom=0.96)
                page.page.wait_for_timeout(300)
                target = out / "workflows" / f"{path.stem}.png"
                target.parent.mkdir(parents=True, exist_ok=True)
                shot = page.page.screenshot(type="png")
                page.command("Workspace.ToggleFocusMode")
                _save_screenshot(shot, target)
                if thumbnails is not None:
                    _save_thumbnail(shot, thumbnails / f"{path.stem}.jpg")
                print(f"screenshot {target} ({target.stat().st_size // 1024} KiB)")
    finally:
        if server is not None:
            server.stop()
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


def _save_screenshot(png: bytes, target: Path) -> None:
    """The screenshot as an adaptive 256-colour PNG (UI pictures stay sharp and small)."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        quantized = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                                 dither=Image.Dither.NONE)
        quantized.save(target, format="PNG", optimize=True)


def _save_thumbnail(png: bytes, target: Path) -> None:
    """A template-browser thumbnail: ComfyUI's template dialog shows ``<workflow stem>.jpg`` from the
    pack's workflows folder on the workflow's card (frontend 1.27.10: the whole picture, scaled to fit)."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        image.convert("RGB").resize((640, 400), Image.Resampling.LANCZOS).save(
            target, format="JPEG", quality=82, optimize=True)
    print(f"thumbnail {target} ({target.stat().st_size // 1024} KiB)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=("workflows", "strips", "icon"),
                        help="make only these (default: all)")
    parser.add_argument("--url", help="use this running ComfyUI (with the pack installed) instead of starting one")
    parser.add_argument("--no-run", action="store_true", help="screenshot the workflows without running them")
    parser.add_argument("--workflow", action="append", help="screenshot only this workflow stem (repeatable)")
    parser.add_argument("--out", type=Path, default=DOCS, help="output folder (default: docs/)")
    parser.add_argument("--thumbnails", action="store_true",
                        help="also write workflows/<stem>.jpg, the cards' pictures in ComfyUI's template browser")
    args = parser.parse_args(argv)
    wanted = set(args.only or ("workflows", "strips", "icon"))
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    t0 = time.monotonic()
    if wanted & {"strips", "icon"}:
        make_strips_and_icon(args.out, "strips" in wanted, "icon" in wanted)
    if "workflows" in wanted:
        screenshot_workflows(args.out, args.url, not args.no_run, args.workflow,
                             WORKFLOWS if args.thumbnails else None)
    total = sum(p.stat().st_size for p in args.out.rglob("*.png")) if args.out.exists() else 0
    print(f"done in {time.monotonic() - t0:.0f} s; {args.out} holds {total / 1e6:.2f} MB of PNG")
    return 0


if __name__ == "__main__":
    sys.exit(main())
