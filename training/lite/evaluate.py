"""Held-out evaluation of the lite models against classic and the degraded input.

    python -m training.lite.evaluate --per-group 2 --json benchmarks/lite/eval_heldout.json

The held-out set is the packed crops of held-out photos (never seen in training), degraded by
``rnr.degrade`` with seeded severities 10..100: each degradation type alone, mixtures of 2-3 types,
and clean crops. Restorers run guided by their own reasoner (``lite`` by lite, ``classic`` by classic)
and by the ground truth; reasoners are scored by flag F1, severity MAE and clean-crop flag rate.

``--clean-photos`` adds the lite reasoner's verdict on whole clean photos (files or folders), as a
user meets it: a photo counts as flagged when any degradation is reported on it; ``--photo-crops``
compares native-crop counts on those photos and on degraded copies of them.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from rnr import cache
from rnr.degrade import degrade
from rnr.diagnosis import DEGRADATIONS, Diagnosis
from rnr.eval import reasoner_accuracy
from rnr.metrics import psnr, ssim
from rnr.registry import ModelSpec

from .data import DEFAULT_DATA, load_crops

GROUPS = ("haze", "rain", "noise", "blur", "mixture", "clean")


def heldout_set(data: str | Path, per_group: int, seed: int = 0) -> list[dict]:
    """Items {group, degraded [1,3,H,W], clean, truth} over every held-out crop, ``per_group`` draws each."""
    crops = load_crops(data, "heldout").float() / 255.0
    generator = torch.Generator().manual_seed(seed)
    items = []
    for g, group in enumerate(GROUPS):
        for draw in range(per_group):
            specs: dict[str, list] = {name: [None] * len(crops) for name in DEGRADATIONS}
            for i in range(len(crops)):
                if group == "clean":
                    chosen: list[str] = []
                elif group == "mixture":
                    count = int(torch.randint(2, 4, (1,), generator=generator))
                    chosen = [DEGRADATIONS[j] for j in torch.randperm(4, generator=generator)[:count].tolist()]
                else:
                    chosen = [group]
                for name in chosen:
                    specs[name][i] = int(torch.randint(10, 101, (1,), generator=generator))
            result = degrade(crops, seed=seed * 1000 + g * 100 + draw, **specs)
            for i in range(len(crops)):
                items.append({"group": group, "degraded": result.images[i:i + 1], "clean": crops[i:i + 1],
                              "truth": result.diagnoses[i]})
    return items


def _load(kind: str, backend: str, path: str = "", device: str = "cpu"):
    try:
        return cache.get(ModelSpec.make(kind, backend, path=path, device=device))
    except Exception as exc:  # a backend that is not installed yet is reported, not fatal
        print(f"skipping {kind} {backend!r}: {exc}")
        return None


def run(items: list[dict], device: str = "cpu", lite_path: str = "", restorer_paths: dict[str, str] | None = None,
        batch: int = 8) -> dict:
    """Restore and diagnose every item; return tables of PSNR/SSIM per group and reasoner accuracy."""
    reasoners = {name: _load("reasoner", name, lite_path if name == "lite" else "", device) for name in ("lite", "classic")}
    reasoners = {k: v for k, v in reasoners.items() if v is not None}
    restorers = {"lite": _load("restorer", "lite", lite_path, device), "classic": _load("restorer", "classic", "", device)}
    for label, path in (restorer_paths or {}).items():
        restorers[label] = _load("restorer", "lite", path, device)
    restorers = {k: v for k, v in restorers.items() if v is not None}
    truth = [item["truth"] for item in items]

    diagnoses: dict[str, list[Diagnosis]] = {"truth": truth}
    timings: dict[str, float] = {}
    for name, model in reasoners.items():
        start = time.perf_counter()
        diagnoses[name] = []
        for k in range(0, len(items), batch):
            diagnoses[name].extend(model.diagnose(torch.cat([it["degraded"] for it in items[k:k + batch]]).to(device)))
        timings[f"reasoner_{name}_s"] = time.perf_counter() - start

    outputs: dict[str, list[torch.Tensor]] = {"input": [it["degraded"] for it in items]}
    for name, model in restorers.items():
        guides = ["truth"] + (["lite" if name not in reasoners else name] if name not in ("classic",) else ["classic"])
        for guide in dict.fromkeys(guides):
            if guide not in diagnoses:
                continue
            label = f"{name}|{guide}"
            start = time.perf_counter()
            results = []
            for k in range(0, len(items), batch):
                images = torch.cat([it["degraded"] for it in items[k:k + batch]]).to(device)
                restored = model.restore(images, diagnoses[guide][k:k + batch])
                results.extend(restored[i:i + 1].float().cpu() for i in range(len(restored)))
            outputs[label] = results
            timings[f"restore_{label}_s"] = time.perf_counter() - start

    tables: dict[str, dict[str, dict[str, float]]] = {"psnr": {}, "ssim": {}}
    clean = [it["clean"] for it in items]
    for label, results in outputs.items():
        scores = [(float(psnr(r, c)[0]), float(ssim(r, c)[0])) for r, c in zip(results, clean)]
        for group in (*GROUPS, "all_degraded"):
            members = [i for i, it in enumerate(items) if it["group"] == group or
                       (group == "all_degraded" and it["group"] != "clean")]
            finite = [scores[i][0] for i in members if math.isfinite(scores[i][0])]
            tables["psnr"].setdefault(group, {})[label] = sum(finite) / len(finite) if finite else math.inf
            tables["ssim"].setdefault(group, {})[label] = sum(scores[i][1] for i in members) / len(members)
    accuracy = {name: reasoner_accuracy(diagnoses[name], truth) for name in reasoners}
    return {"groups": {g: sum(1 for it in items if it["group"] == g) for g in GROUPS}, "psnr": tables["psnr"],
            "ssim": tables["ssim"], "reasoners": accuracy, "timings_s": timings}


def clean_photo_flags(paths: list[str], device: str = "cpu", lite_path: str = "") -> dict:
    """The lite reasoner on whole clean photos: per photo the flags it reports, and the share flagged."""
    from rnr.images import load_image

    files = _photo_files(paths)
    reasoner = cache.get(ModelSpec.make("reasoner", "lite", path=lite_path, device=device))
    per_photo = {}
    for file in files:
        diagnosis = reasoner.diagnose(load_image(file).tensor.to(device))[0]
        per_photo[file] = {name: diagnosis.record(name).severity for name in DEGRADATIONS
                           if diagnosis.record(name).present}
    flagged = sum(1 for flags in per_photo.values() if flags)
    return {"photos": len(files), "flagged": flagged, "flagged_rate": flagged / len(files), "per_photo": per_photo}


SWEEP_SEVERITIES = (12, 25, 50)


def photo_crop_sweep(paths: list[str], counts: list[int], device: str = "cpu", lite_path: str = "") -> dict:
    """The lite reasoner on whole photos with each native-crop count of ``counts`` (0: by image size).

    Per count: how many of the clean photos get a flag, and on copies degraded by one type at severities
    ``SWEEP_SEVERITIES`` (seeded), the share of copies whose type is flagged (recall per type) and the
    flags given to types that are not there.
    """
    from rnr.images import load_image
    from rnr.reasoners.lite import LiteReasoner

    files = _photo_files(paths)
    base = cache.get(ModelSpec.make("reasoner", "lite", path=lite_path, device=device))
    reasoners = {c: LiteReasoner(base.net, thresholds=base.thresholds, crops=c, device=base.device) for c in counts}
    rows = {c: {"clean_flagged": 0, "found": dict.fromkeys(DEGRADATIONS, 0), "false_flags": 0} for c in counts}
    for f, file in enumerate(files):
        photo = load_image(file).tensor.to(device)
        for c, reasoner in reasoners.items():
            rows[c]["clean_flagged"] += int(any(reasoner.diagnose(photo)[0].record(n).present for n in DEGRADATIONS))
        for t, name in enumerate(DEGRADATIONS):
            for severity in SWEEP_SEVERITIES:
                degraded = degrade(photo, **{name: [severity]}, seed=f * 1000 + t * 100 + severity).images
                for c, reasoner in reasoners.items():
                    found = reasoner.diagnose(degraded)[0]
                    rows[c]["found"][name] += int(found.record(name).present)
                    rows[c]["false_flags"] += sum(int(found.record(n).present) for n in DEGRADATIONS if n != name)
    copies = len(files) * len(SWEEP_SEVERITIES)
    return {"photos": len(files), "copies_per_type": copies, "severities": list(SWEEP_SEVERITIES),
            "rows": {str(c): {**row, "recall": {n: row["found"][n] / copies for n in DEGRADATIONS}}
                     for c, row in rows.items()}}


def _photo_files(paths: list[str]) -> list[str]:
    from rnr.cli.common import expand_inputs
    from rnr.errors import RnRError

    try:
        return list(dict.fromkeys(str(Path(f)) for f in expand_inputs(paths)))  # a photo named twice counts once
    except RnRError as exc:
        raise FileNotFoundError(f"no images found in {', '.join(map(str, paths))} ({exc}); "
                                "pass photo files or folders") from exc


def markdown(report: dict) -> str:
    """The report as markdown tables."""
    lines = []
    methods = list(next(iter(report["psnr"].values())).keys())
    for metric in ("psnr", "ssim"):
        lines.append(f"\n{metric.upper()} ({'dB' if metric == 'psnr' else '0..1'}), held-out synthetic\n")
        # Labels are restorer|guide; a bare '|' would break the markdown table.
        lines.append("| group | n | " + " | ".join(m.replace("|", " by ") for m in methods) + " |")
        lines.append("|---|---|" + "---|" * len(methods))
        for group, row in report[metric].items():
            n = report["groups"].get(group, sum(v for k, v in report["groups"].items() if k != "clean"))
            fmt = (lambda v: f"{v:.2f}") if metric == "psnr" else (lambda v: f"{v:.4f}")
            lines.append(f"| {group} | {n} | " + " | ".join(fmt(row[m]) for m in methods) + " |")
    for name, acc in report["reasoners"].items():
        lines.append(f"\nReasoner {name}: flag F1 / severity MAE per type; clean photos flagged\n")
        lines.append("| type | precision | recall | F1 | severity MAE |")
        lines.append("|---|---|---|---|---|")
        for t in DEGRADATIONS:
            a = acc[t]
            lines.append(f"| {t} | {a['precision']:.3f} | {a['recall']:.3f} | {a['f1']:.3f} | {a['severity_mae']:.2f} |")
        extra = {k: v for k, v in acc.items() if k not in DEGRADATIONS}
        lines.append(f"\n{json.dumps(extra)}")
    photos = report.get("clean_photos")
    if photos:
        lines.append(f"\nLite reasoner on whole clean photos: {photos['flagged']} of {photos['photos']} flagged\n")
        lines.append("| photo | flags (severity) |")
        lines.append("|---|---|")
        for file, flags in photos["per_photo"].items():
            text = ", ".join(f"{name} {severity}" for name, severity in flags.items()) or "none"
            lines.append(f"| {Path(file).name} | {text} |")
    sweep = report.get("photo_crops")
    if sweep:
        lines.append(f"\nLite reasoner on {sweep['photos']} whole photos by native-crop count (0: by image size); "
                     f"degraded copies: one type at severities {sweep['severities']}, {sweep['copies_per_type']} per type\n")
        lines.append("| crops | clean photos flagged | " + " | ".join(f"{n} found" for n in DEGRADATIONS)
                     + " | flags on absent types |")
        lines.append("|---|---|" + "---|" * len(DEGRADATIONS) + "---|")
        for count, row in sweep["rows"].items():
            lines.append(f"| {count} | {row['clean_flagged']} | " + " | ".join(str(row["found"][n]) for n in DEGRADATIONS)
                         + f" | {row['false_flags']} of {3 * len(DEGRADATIONS) * sweep['copies_per_type']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.lite.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--per-group", type=int, default=2, help="draws per held-out crop and group")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--lite", default="", help="folder or file of lite weights (default: the shipped ones)")
    parser.add_argument("--extra-restorer", action="append", default=[], metavar="LABEL=PATH",
                        help="another lite restorer weight file to compare (e.g. grpo=out/lite3)")
    parser.add_argument("--clean-photos", nargs="+", default=[], metavar="PATH",
                        help="whole clean photos (files or folders) to count the lite reasoner's flags on")
    parser.add_argument("--photo-crops", nargs="+", type=int, default=[], metavar="N",
                        help="with --clean-photos: also compare these native-crop counts on the whole photos and "
                             "on degraded copies of them (0: chosen by image size)")
    parser.add_argument("--json", default="", help="write the report here")
    parser.add_argument("--markdown", default="", help="write the tables here")
    args = parser.parse_args(argv)
    if args.photo_crops and not args.clean_photos:
        parser.error("--photo-crops compares crop counts on the photos of --clean-photos: pass those too")
    torch.manual_seed(0)
    items = heldout_set(args.data, args.per_group, args.seed)
    extra = dict(item.split("=", 1) for item in args.extra_restorer)
    report = run(items, args.device, args.lite, extra)
    if args.clean_photos:
        report["clean_photos"] = clean_photo_flags(args.clean_photos, args.device, args.lite)
        if args.photo_crops:
            report["photo_crops"] = photo_crop_sweep(args.clean_photos, args.photo_crops, args.device, args.lite)
    report["settings"] = vars(args)
    text = markdown(report)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2, default=str) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
