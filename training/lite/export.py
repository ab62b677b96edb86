"""Export trained lite networks to shippable weight files, calibrating the reasoner's thresholds.

A presence threshold per degradation is chosen on fresh validation batches: the probability that
maximises that degradation's flag F1, raised if needed to the 99.3th percentile of its probability on
clean photos, so that (over four degradations) at most about 3 % of clean photos get any flag.

These are train-split photos, on which the network is over-confident; the shipped thresholds were
recalibrated afterwards on photos it never saw (:mod:`training.lite.calibrate`).
"""

from __future__ import annotations

import datetime
from pathlib import Path

import torch

from rnr.lite.condition import O_PRESENT
from rnr.lite.nets import reasoner_views
from rnr.lite.weights import FILE_NAMES, save_network

from .data import SynthConfig, load_crops, synthesize

CLEAN_QUANTILE = 0.993


@torch.no_grad()
def reasoner_probabilities(model: torch.nn.Module, degraded_u8: torch.Tensor, device: torch.device,
                           crops: int = 9) -> torch.Tensor:
    """Presence probabilities [B,4] of the inference views (deterministic crop grid)."""
    images = degraded_u8.to(device).float() / 255.0
    global_view, views = reasoner_views(images, model.config, crops=crops)
    return torch.sigmoid(model(global_view, views).float()[:, O_PRESENT]).cpu()


def flag_counts(p: torch.Tensor, t: torch.Tensor, threshold) -> tuple[float, float, float]:
    """(true positives, false positives, false negatives) of flagging ``p >= threshold`` against ``t``."""
    flag = p >= threshold
    return float((flag & t).sum()), float((flag & ~t).sum()), float((~flag & t).sum())


def flag_f1(p: torch.Tensor, t: torch.Tensor, threshold) -> float:
    tp, fp, fn = flag_counts(p, t, threshold)
    return 2 * tp / max(2 * tp + fp + fn, 1.0)


def calibrate_thresholds(probabilities: torch.Tensor, present: torch.Tensor,
                         clean_probabilities: torch.Tensor) -> tuple[list[float], dict]:
    """Per-degradation thresholds and the validation numbers behind them."""
    thresholds, report = [], {}
    grid = torch.linspace(0.05, 0.95, 91)
    for i, name in enumerate(("haze", "rain", "noise", "blur")):
        p, t = probabilities[:, i], present[:, i] > 0
        f1s = [flag_f1(p, t, g) for g in grid]
        best = int(torch.tensor(f1s).argmax())
        clean_q = float(torch.quantile(clean_probabilities[:, i], CLEAN_QUANTILE))
        threshold = float(min(0.98, max(float(grid[best]), clean_q + 1e-3)))
        thresholds.append(round(threshold, 4))
        report[name] = {"best_f1_threshold": round(float(grid[best]), 3), "best_f1": round(f1s[best], 4),
                        "clean_quantile": round(clean_q, 4), "threshold": round(threshold, 4),
                        "f1_at_threshold": round(flag_f1(p, t, threshold), 4)}
    any_flag = (clean_probabilities >= torch.tensor(thresholds)).any(dim=1).float().mean()
    report["clean_any_flag_rate"] = round(float(any_flag), 4)
    return thresholds, report


def export_models(models: dict[str, torch.nn.Module], out: Path, data, cfg, command: str, extra: dict, log,
                  device: torch.device, validation_batches: int = 48, clean_images: int = 768) -> dict[str, Path]:
    """Write ``lite_reasoner``/``lite_restorer`` weight files into ``out``; returns their paths."""
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    common = {"training_command": command, "data": str(cfg.data), "date": date,
              "data_note": "packed clean crops (training/data), degraded on the fly by rnr.degrade "
                           "plus JPEG-like, resize and colour augmentation (training/lite)",
              **extra}
    paths: dict[str, Path] = {}
    if "reasoner" in models:
        model = models["reasoner"].eval()
        probabilities, present = [], []
        for _, batch in zip(range(validation_batches), data):
            probabilities.append(reasoner_probabilities(model, batch["degraded"], device))
            present.append(torch.as_tensor(batch["truth"]["present"]))
        pool = load_crops(cfg.data, "train")
        clean_probs = []
        per_batch = min(64, clean_images)
        for k in range(max(1, clean_images // per_batch)):
            clean = synthesize(pool, 2 * 10**9 + k, SynthConfig(batch=per_batch, crop=cfg.crop, p_clean=1.0, p_jpeg=0.3))
            clean_probs.append(reasoner_probabilities(model, clean["degraded"], device))
        thresholds, report = calibrate_thresholds(torch.cat(probabilities), torch.cat(present), torch.cat(clean_probs))
        log.write({"event": "calibration", **report, "thresholds": thresholds})
        paths["reasoner"] = save_network(model, "lite_reasoner", out / FILE_NAMES["lite_reasoner"],
                                         {**common, "thresholds": thresholds, "calibration": report})
    if "restorer" in models:
        paths["restorer"] = save_network(models["restorer"].eval(), "lite_restorer",
                                         out / FILE_NAMES["lite_restorer"], common)
    return paths
