"""Accuracy of the classic reasoner on a seeded synthetic set made from clean photos.

    python scripts/eval_classic_reasoner.py                 # 240 degraded + 60 clean crops, markdown table
    python scripts/eval_classic_reasoner.py --json out.json # also write the numbers
    python scripts/eval_classic_reasoner.py --fit           # refit the constants of calibrated.py (seed 1000)

Clean photos come from ``data/corpus/images`` (built by ``python -m training.data.corpus``) when it is
there, plus the samples shipped in ``rnr/assets/samples``. Each synthetic image is a seeded random
crop (after a random downscale, so content scale varies), degraded by ``rnr.degrade.random_degrade``
(all four types, singles, pairs and triples, some clean). Reported per type: flag precision, recall
and F1, severity MAE over the images where the type is present (a missed flag counts as severity 0),
and the false-positive rate on undegraded crops. Runs in a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rnr.degrade import random_degrade  # noqa: E402
from rnr.diagnosis import DEGRADATIONS, calibration  # noqa: E402
from rnr.images import load_image  # noqa: E402
from rnr.reasoners import classic  # noqa: E402
from rnr.reasoners.classic_estimators import calibrated as C  # noqa: E402

CROP = 256


def photo_paths(folder: Path | None = None) -> list[Path]:
    """Clean photos: ``folder`` (default data/corpus/images) plus the shipped samples."""
    folder = folder or ROOT / "data" / "corpus" / "images"
    paths = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"))
    paths += sorted((ROOT / "rnr" / "assets" / "samples").glob("*.jpg"))
    return paths


def load_photos(folder: Path | None = None, max_side: int = 1024) -> list[torch.Tensor]:
    photos = []
    for path in photo_paths(folder):
        image = load_image(path).tensor
        h, w = image.shape[-2:]
        if max(h, w) > max_side:
            scale = max_side / max(h, w)
            image = F.interpolate(image, size=(round(h * scale), round(w * scale)), mode="area")
        photos.append(image[0].clamp(0, 1))
    if not photos:
        raise SystemExit("no clean photos found: build data/corpus (python -m training.data.corpus) or ship "
                         "rnr/assets/samples")
    return photos


def crops(photos: list[torch.Tensor], count: int, seed: int) -> torch.Tensor:
    """``count`` seeded CROP x CROP crops, each after a random downscale of its photo."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        photo = photos[(i + seed) % len(photos)]
        h, w = photo.shape[-2:]
        short = rng.uniform(CROP, max(CROP, min(h, w)))
        scale = short / min(h, w)
        size = (max(CROP, round(h * scale)), max(CROP, round(w * scale)))
        image = F.interpolate(photo[None], size=size, mode="area")[0] if scale < 1 else photo
        y = rng.randint(0, image.shape[-2] - CROP)
        x = rng.randint(0, image.shape[-1] - CROP)
        out.append(image[:, y:y + CROP, x:x + CROP])
    return torch.stack(out).clamp(0, 1)


def synthetic_set(photos: list[torch.Tensor], count: int, seed: int, batch: int = 16):
    """(images, ground-truth diagnoses) for ``count`` degraded crops."""
    images = crops(photos, count, seed)
    results = [random_degrade(images[i:i + batch], seed=seed * 1000 + i, p_clean=0.1)
               for i in range(0, count, batch)]
    return torch.cat([r.images for r in results]), [d for r in results for d in r.diagnoses]


def run_evidence(images: torch.Tensor, batch: int = 8) -> list:
    reasoner = classic.ClassicReasoner()
    out = []
    for i in range(0, images.shape[0], batch):
        out.extend(reasoner.evidence(images[i:i + batch]))
    return out


def diagnoses_of(evidence: list) -> list:
    return [classic.diagnosis_from_evidence(ev) for ev in evidence]


def score(predicted: list, truth: list) -> dict:
    """Flag precision/recall/F1 and severity MAE per degradation."""
    table = {}
    for name in DEGRADATIONS:
        tp = sum(p.record(name).present and t.record(name).present for p, t in zip(predicted, truth))
        fp = sum(p.record(name).present and not t.record(name).present for p, t in zip(predicted, truth))
        fn = sum(not p.record(name).present and t.record(name).present for p, t in zip(predicted, truth))
        precision = tp / (tp + fp) if tp + fp else float("nan")
        recall = tp / (tp + fn) if tp + fn else float("nan")
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
        errors = [abs(p.record(name).severity - t.record(name).severity) for p, t in zip(predicted, truth)
                  if t.record(name).present]
        table[name] = {"positives": tp + fn, "precision": precision, "recall": recall, "f1": f1,
                       "severity_mae": sum(errors) / len(errors) if errors else float("nan")}
        if name == "noise":
            kinds = [p.noise.kind == t.noise.kind for p, t in zip(predicted, truth) if p.noise.present and t.noise.present]
            table[name]["kind_accuracy"] = sum(kinds) / len(kinds) if kinds else float("nan")
        if name == "blur":
            kinds = [p.blur.kind == t.blur.kind for p, t in zip(predicted, truth) if p.blur.present and t.blur.present]
            table[name]["kind_accuracy"] = sum(kinds) / len(kinds) if kinds else float("nan")
    return table


def false_positives(predicted: list) -> dict:
    rates = {name: sum(p.record(name).present for p in predicted) / len(predicted) for name in DEGRADATIONS}
    rates["any"] = sum(bool(p.present) for p in predicted) / len(predicted)
    return rates


def markdown(table: dict, fp: dict, n_synth: int, n_clean: int) -> str:
    lines = [f"Classic reasoner on {n_synth} synthetic images (rnr.degrade mixtures) and {n_clean} clean crops",
             "", "| type | positives | precision | recall | F1 | severity MAE | clean FP rate |",
             "|---|---|---|---|---|---|---|"]
    for name in DEGRADATIONS:
        r = table[name]
        lines.append(f"| {name} | {r['positives']} | {r['precision']:.2f} | {r['recall']:.2f} | {r['f1']:.2f} | "
                     f"{r['severity_mae']:.1f} | {fp[name]:.1%} |")
    lines.append(f"\nAny flag on a clean crop: {fp['any']:.1%}. Noise kind accuracy {table['noise']['kind_accuracy']:.2f}, "
                 f"blur kind accuracy {table['blur']['kind_accuracy']:.2f} (over correctly flagged images).")
    return "\n".join(lines)


# ---- fitting --------------------------------------------------------------------------------------
def _best_threshold(values: list[float], labels: list[bool], candidates) -> float:
    best, best_f1 = None, -1.0
    for thr in candidates:
        tp = sum(v >= thr and l for v, l in zip(values, labels))
        fp = sum(v >= thr and not l for v, l in zip(values, labels))
        fn = sum(v < thr and l for v, l in zip(values, labels))
        f1 = 2 * tp / max(1, 2 * tp + fp + fn)
        if f1 > best_f1:
            best, best_f1 = thr, f1
    return best


def _median(values: list[float]) -> float:
    values = sorted(v for v in values if math.isfinite(v))
    return values[len(values) // 2] if values else float("nan")


def fit(evidence: list, truth: list) -> dict:
    """Refit the constants of calibrated.py from evidence and ground truth."""
    fitted = {}
    pairs = [(e.noise.sigma_255, t.noise.sigma_255) for e, t in zip(evidence, truth)
             if e.noise is not None and t.noise.present and t.noise.sigma_255 >= 8]
    fitted["NOISE_SCALE"] = round(_median([g / max(m, 1e-3) for m, g in pairs]), 3)
    sig = [fitted["NOISE_SCALE"] * e.noise.sigma_255 if e.noise else 0.0 for e in evidence]
    fitted["NOISE_MIN_SIGMA_255"] = _best_threshold(sig, [t.noise.present for t in truth],
                                                    [x / 2 for x in range(4, 30)])
    rows = [(e.haze.raw_transmission, s / 255.0, t.haze.transmission if t.haze.present else 1.0)
            for e, s, t in zip(evidence, sig, truth) if e.haze is not None]
    design = torch.tensor([[1.0, r, s] for r, s, _ in rows], dtype=torch.float64)
    target = torch.tensor([[g] for _, _, g in rows], dtype=torch.float64)
    bias, slope, noise_term = torch.linalg.lstsq(design, target).solution[:, 0].tolist()
    fitted.update(HAZE_T_BIAS=round(bias, 4), HAZE_T_SLOPE=round(slope, 4), HAZE_T_NOISE=round(noise_term, 4))
    sev = [calibration.severity_from_transmission(min(1, max(0.01, bias + slope * r + noise_term * s)))
           for r, s, _ in rows]
    fitted["HAZE_MIN_SEVERITY"] = _best_threshold(sev, [t.haze.present for e, t in zip(evidence, truth)
                                                        if e.haze is not None], range(5, 60))
    sharp = C.BLUR_SHARP_WIDTH_PX
    iso = [(e.blur, t.blur.extent_px) for e, t in zip(evidence, truth)
           if e.blur is not None and t.blur.present and t.blur.kind != "motion" and t.blur.extent_px >= 6]
    fitted["BLUR_ISOTROPIC_SCALE"] = round(_median([g / max(1e-3, math.sqrt(max(0.0, b.isotropic_width_px ** 2 - sharp ** 2)))
                                                    for b, g in iso]), 3)
    mot = [(e.blur, t.blur.extent_px) for e, t in zip(evidence, truth)
           if e.blur is not None and t.blur.present and t.blur.kind == "motion" and t.blur.extent_px >= 6]
    fitted["BLUR_MOTION_SCALE"] = round(_median([g / max(1e-3, math.sqrt(max(0.0, b.widest_px ** 2 - max(b.narrowest_px, sharp) ** 2)))
                                                 for b, g in mot]), 3)
    rain = [(e.rain.bright_energy, t.rain.density) for e, t in zip(evidence, truth)
            if e.rain is not None and t.rain.present and t.rain.density > 0.02]
    fitted["RAIN_DENSITY_SCALE"] = round(_median([g / max(1e-6, b) for b, g in rain]), 3)
    lengths = [(e.rain.length_px, t.rain.length_px) for e, t in zip(evidence, truth)
               if e.rain is not None and t.rain.present and t.rain.density > 0.02]
    fitted["RAIN_LENGTH_SCALE"] = round(_median([g / max(1e-3, m) for m, g in lengths]), 3)
    return fitted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=240, help="synthetic (degraded) images")
    parser.add_argument("--clean", type=int, default=60, help="undegraded crops for the false-positive rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the numbers here")
    parser.add_argument("--fit", action="store_true", help="print refitted constants (uses seed 1000)")
    parser.add_argument("--photos", type=Path, help="folder of clean photos (default data/corpus/images)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    started = time.time()
    photos = load_photos(args.photos)
    seed = 1000 if args.fit else args.seed
    images, truth = synthetic_set(photos, args.count, seed)
    evidence = run_evidence(images)
    if args.fit:
        for key, value in fit(evidence, truth).items():
            print(f"{key} = {value}")
        return 0
    predicted = diagnoses_of(evidence)
    clean_images = crops(photos, args.clean, seed + 7919)
    clean_predicted = diagnoses_of(run_evidence(clean_images))
    table = score(predicted, truth)
    fp = false_positives(clean_predicted)
    print(markdown(table, fp, len(predicted), len(clean_predicted)))
    print(f"\n{len(photos)} clean photos, seed {seed}, {time.time() - started:.0f} s on "
          f"{torch.get_num_threads()} threads.")
    if args.json:
        args.json.write_text(json.dumps({"synthetic": table, "clean_false_positive_rate": fp, "seed": seed,
                                         "count": len(predicted), "clean": len(clean_predicted),
                                         "photos": len(photos)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
