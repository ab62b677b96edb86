"""Recalibrate the lite reasoner's presence thresholds on photos it never trained on.

    python -m training.lite.calibrate --data data/packed_calibration/crops_256.safetensors --write

The thresholds written by :mod:`training.lite.export` were chosen on train-split photos, where the
network is over-confident (it flags almost nothing clean there), so they are too low for unseen
photos. This entry draws batches from the crops of a separate calibration corpus
(``python -m training.data.corpus --set calibration``, packed with ``--heldout 0``): degraded
batches in the groups of the held-out evaluation (``--draw groups``, the default: one batch each of
haze, rain, noise and blur alone, mixtures of 2-3 types and clean crops, in turn; severities 10-100,
colour/rescale/JPEG augmentation as in training) or exactly as in training (``--draw training``:
mixtures of up to four types, so that each type is present in about 47 % of the samples, which pulls
F1-best thresholds down), and clean batches (``p_clean=1``, JPEG-like compression on 30 % of them,
as the export calibration did).
:func:`choose_thresholds` then starts from each degradation's F1-best threshold and raises
thresholds greedily (the raise that costs least F1 per clean crop it unflags) until at most
``--max-clean-rate`` of the clean calibration crops get any flag, then refines them one type at a
time (highest F1 under the same limit).

Never point ``--data`` at the held-out photos: the held-out evaluation
(:mod:`training.lite.evaluate`) must stay unseen. With ``--write`` the thresholds and a
``calibration`` record (command, photos, date, numbers) go into the shipped
``rnr/weights/lite_reasoner.json`` and the safetensors header; the weights are unchanged.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import shlex
import sys
from pathlib import Path

import torch

from rnr.diagnosis import DEGRADATIONS
from rnr.lite.weights import load_network, read_metadata, resolve_path, save_network

from .data import SynthConfig, load_crops, synthesize
from .evaluate import GROUPS
from .export import flag_counts, flag_f1, reasoner_probabilities

DEFAULT_DATA = Path("data/packed_calibration/crops_256.safetensors")
GRID = tuple(round(0.05 + 0.01 * k, 2) for k in range(95))  # 0.05 .. 0.99
MAX_THRESHOLD = 0.995
SEED_BASE = 3 * 10**9  # seeds apart from training (0..) and the export calibration (2e9..)


def _scores(p: torch.Tensor, t: torch.Tensor, threshold: float) -> dict:
    tp, fp, fn = flag_counts(p, t, threshold)
    return {"precision": round(tp / max(tp + fp, 1.0), 4), "recall": round(tp / max(tp + fn, 1.0), 4),
            "f1": round(2 * tp / max(2 * tp + fp + fn, 1.0), 4)}


def choose_thresholds(probabilities: torch.Tensor, present: torch.Tensor, clean_probabilities: torch.Tensor,
                      max_clean_rate: float = 0.05) -> tuple[list[float], dict]:
    """Per-degradation thresholds: F1-best each, then raised until few clean crops are flagged.

    ``probabilities`` [N,4] and ``present`` [N,4] come from degraded (and some clean) batches,
    ``clean_probabilities`` [M,4] from clean ones. Each step raises one threshold to the smallest
    value that unflags at least one more of its clean crops, choosing, among the raises that unflag
    a crop, the one that loses the least F1 per crop unflagged (ties: the lower index); only when
    none does (crops flagged by two types) the cheapest raise of any type. Then coordinate ascent:
    per type, the threshold with the highest F1 that keeps the clean limit (ties: the nearest to the
    current one), until nothing changes. Deterministic.
    """
    present = present > 0
    n_types = probabilities.shape[1]
    thresholds, best = [], {}
    for i in range(n_types):
        f1s = [flag_f1(probabilities[:, i], present[:, i], g) for g in GRID]
        k = max(range(len(GRID)), key=lambda j: (f1s[j], -j))  # first maximum
        thresholds.append(GRID[k])
        best[i] = (GRID[k], f1s[k])

    def flagged(ts: list[float]) -> torch.Tensor:
        return (clean_probabilities >= torch.tensor(ts, dtype=clean_probabilities.dtype)).any(dim=1)

    limit = int(max_clean_rate * len(clean_probabilities) + 1e-9)
    steps = 0
    while int(flagged(thresholds).sum()) > limit:
        current = int(flagged(thresholds).sum())
        options = []
        for i in range(n_types):
            above = clean_probabilities[:, i][clean_probabilities[:, i] >= thresholds[i]]
            if len(above) == 0:
                continue
            # Smallest raise that unflags the lowest clean probability of this type still flagged.
            new = round(float(above.min()) + 1e-4, 4)
            if new > MAX_THRESHOLD:
                continue
            trial = list(thresholds)
            trial[i] = new
            gained = current - int(flagged(trial).sum())
            lost = flag_f1(probabilities[:, i], present[:, i], thresholds[i]) - flag_f1(probabilities[:, i], present[:, i], new)
            # A raise that unflags no crop yet (another type still flags it) is taken only when no
            # raise unflags one.
            options.append((gained <= 0, max(lost, 0.0) / max(gained, 1), i, new))
        if not options:
            break
        _, _, i, new = min(options)
        thresholds[i] = new
        steps += 1

    # Refine: coordinate ascent on the sum of F1 under the same clean limit. Each pass tries, per
    # type, every grid value and every value just above one of its clean probabilities.
    rounds = 0
    for rounds in range(1, 11):
        changed = False
        for i in range(n_types):
            values = sorted({*GRID, *(round(float(v) + 1e-4, 4) for v in clean_probabilities[:, i])})
            values = [v for v in values if v <= MAX_THRESHOLD]
            best_key, best_value = None, thresholds[i]
            for v in values:
                trial = list(thresholds)
                trial[i] = v
                if int(flagged(trial).sum()) > limit:
                    continue
                key = (round(flag_f1(probabilities[:, i], present[:, i], v), 6), -abs(v - thresholds[i]))
                if best_key is None or key > best_key:
                    best_key, best_value = key, v
            if best_value != thresholds[i]:
                thresholds[i], changed = best_value, True
        if not changed:
            break

    report: dict = {}
    for i, name in enumerate(DEGRADATIONS[:n_types]):
        report[name] = {"best_f1_threshold": best[i][0], "best_f1": round(best[i][1], 4),
                        "threshold": round(thresholds[i], 4),
                        **{f"{k}_at_threshold": v for k, v in _scores(probabilities[:, i], present[:, i], thresholds[i]).items()},
                        "clean_flag_rate": round(float((clean_probabilities[:, i] >= thresholds[i]).float().mean()), 4)}
    report["clean_any_flag_rate"] = round(float(flagged(thresholds).float().mean()), 4)
    report["max_clean_rate"] = max_clean_rate
    report["greedy_steps"] = steps
    report["refine_rounds"] = rounds
    return [round(t, 4) for t in thresholds], report


DRAWS = ("training", "groups")


def draw_config(draw: str, k: int, batch: int, crop: int) -> SynthConfig:
    """How degraded batch ``k`` is drawn: ``"training"`` as in training (mixtures of up to four types, 22 %
    clean); ``"groups"`` one group per batch in turn, as the held-out evaluation groups its samples (each
    type alone, mixtures of 2-3 types, clean), so that every type is present as often as it is there."""
    if draw == "training":
        return SynthConfig(batch=batch, crop=crop)
    if draw != "groups":
        raise ValueError(f"draw must be one of {', '.join(DRAWS)}, got {draw!r}")
    group = GROUPS[k % len(GROUPS)]
    if group == "clean":
        return SynthConfig(batch=batch, crop=crop, p_clean=1.0)
    if group == "mixture":
        return SynthConfig(batch=batch, crop=crop, p_clean=0.0, mix_weights=(0.0, 0.5, 0.5))
    return SynthConfig(batch=batch, crop=crop, p_clean=0.0, types=(group,), mix_weights=(1.0,))


def collect(model: torch.nn.Module, data: Path, batches: int, clean_batches: int, batch: int = 32, crop: int = 256,
            device: torch.device | None = None, log=print, draw: str = "groups") -> dict[str, torch.Tensor]:
    """Presence probabilities of seeded degraded (drawn as ``draw`` says, :func:`draw_config`) and clean
    batches drawn from all crops of ``data``."""
    device = device or torch.device("cpu")
    pool = load_crops(data, "all")
    probabilities, present, clean_probs = [], [], []
    for k in range(batches):
        b = synthesize(pool, SEED_BASE + k, draw_config(draw, k, batch, crop))
        probabilities.append(reasoner_probabilities(model, b["degraded"], device))
        present.append(torch.as_tensor(b["truth"]["present"]))
        log(f"degraded batch {k + 1}/{batches}")
    for k in range(clean_batches):
        b = synthesize(pool, SEED_BASE + 10**6 + k, SynthConfig(batch=batch, crop=crop, p_clean=1.0, p_jpeg=0.3))
        clean_probs.append(reasoner_probabilities(model, b["degraded"], device))
        log(f"clean batch {k + 1}/{clean_batches}")
    return {"probabilities": torch.cat(probabilities), "present": torch.cat(present).float(),
            "clean_probabilities": torch.cat(clean_probs)}


def cache_key(model: torch.nn.Module, data_sha256: str, draw: str, batches: int, clean_batches: int) -> dict[str, str]:
    """What a probability cache was computed from: the network's tensors, the data and how it was drawn."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return {"network_sha256": digest.hexdigest(), "data_sha256": data_sha256, "draw": draw,
            "batches": str(batches), "clean_batches": str(clean_batches)}


def load_cache(path: Path, key: dict[str, str]) -> dict[str, torch.Tensor]:
    """The probabilities cached at ``path``; refused when they were computed from anything else than ``key``."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as handle:
        cached = handle.metadata() or {}
    differ = sorted(k for k in key if cached.get(k) != key[k])
    if differ:
        seen = ", ".join(f"{k}: {cached.get(k, 'not recorded')!r} there, {key[k]!r} now" for k in differ)
        raise SystemExit(f"--cache {path} holds probabilities of another calibration ({seen}); "
                         "delete it or give another --cache file")
    return load_file(str(path))


def _photos(data: Path) -> list[str]:
    manifest = data.parent / "manifest.json"
    if not manifest.is_file():
        return []
    return [p.get("original_path", p.get("id", "")) + f" ({p.get('package', '')}, {p.get('license', '')})"
            for p in json.loads(manifest.read_text(encoding="utf-8")).get("photos", [])]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m training.lite.calibrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="packed crops of the calibration photos")
    parser.add_argument("--weights", default="", help="lite reasoner weights (default: the shipped ones)")
    parser.add_argument("--batches", type=int, default=24, help="degraded batches of 32")
    parser.add_argument("--clean-batches", type=int, default=24, help="clean batches of 32")
    parser.add_argument("--draw", choices=DRAWS, default="groups",
                        help="how degraded batches are drawn: as in training, or in the held-out evaluation's groups")
    parser.add_argument("--max-clean-rate", type=float, default=0.05, help="largest share of clean crops with any flag")
    parser.add_argument("--cache", type=Path, default=None, help="keep the probabilities here (safetensors) and reuse them")
    parser.add_argument("--json", type=Path, default=None, help="write the calibration report here")
    parser.add_argument("--write", action="store_true", help="write thresholds + record into the weight files")
    args = parser.parse_args(argv)
    torch.manual_seed(0)

    path = resolve_path("lite_reasoner", args.weights or None)
    if "heldout" in str(args.data):
        raise SystemExit(f"--data {args.data} looks like held-out data; calibrate on the calibration photos only")
    model, meta = load_network("lite_reasoner", path, "cpu")
    model = model.float().eval()
    data_sha256 = hashlib.sha256(args.data.read_bytes()).hexdigest() if args.data.is_file() else ""
    key = cache_key(model, data_sha256, args.draw, args.batches, args.clean_batches)
    probs = None
    if args.cache is not None and args.cache.is_file():
        probs = load_cache(args.cache, key)
        print(f"probabilities from {args.cache}")
    if probs is None:
        probs = collect(model, args.data, args.batches, args.clean_batches, draw=args.draw)
        if args.cache is not None:
            from safetensors.torch import save_file
            args.cache.parent.mkdir(parents=True, exist_ok=True)
            save_file({k: v.contiguous() for k, v in probs.items()}, str(args.cache), metadata=key)
    thresholds, report = choose_thresholds(probs["probabilities"], probs["present"], probs["clean_probabilities"],
                                           args.max_clean_rate)
    old = list(meta.get("thresholds", []))
    before = {"thresholds": old,
              "clean_any_flag_rate": round(float((probs["clean_probabilities"] >= torch.tensor(old)).any(dim=1).float().mean()), 4),
              **{name: _scores(probs["probabilities"][:, i], probs["present"][:, i] > 0, old[i]) for i, name in enumerate(DEGRADATIONS)}}
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    record = {"command": "python -m training.lite.calibrate " + shlex.join(argv), "date": date,
              "data": str(args.data),
              "data_sha256": data_sha256,
              "photos": _photos(args.data),
              "samples": {"degraded": len(probs["probabilities"]), "clean": len(probs["clean_probabilities"])},
              "method": "training.lite.calibrate.choose_thresholds: F1-best per type, greedy raises until "
                        f"<= {args.max_clean_rate:.0%} of clean calibration crops carry any flag, then "
                        "per-type coordinate ascent on F1 under the same limit",
              "thresholds": thresholds, "report": report, "previous": before}
    print(json.dumps({"thresholds": thresholds, "report": report, "previous": before}, indent=1))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    if args.write:
        new_meta = dict(read_metadata(path)["meta"])
        if "export_thresholds" not in new_meta:  # keep what training.lite.export chose, once
            new_meta["export_thresholds"] = new_meta.get("thresholds")
            new_meta["export_calibration"] = new_meta.get("calibration")
        new_meta["thresholds"] = thresholds
        new_meta["calibration"] = record
        written = save_network(model, "lite_reasoner", path, new_meta)
        print(f"thresholds {old} -> {thresholds} written to {written}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
