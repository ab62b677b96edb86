"""Evaluation: restorers side by side (PSNR/SSIM) and reasoner accuracy, on folders or a synthetic set.

Two sources of (degraded, clean) pairs:

- a folder ``DIR/degraded/NAME`` + ``DIR/clean/NAME`` (same file names), e.g. a public benchmark;
- a seeded synthetic set made by :mod:`rnr.degrade` from clean photos: ``n`` crops per group, one
  group per degradation type (``haze``, ``rain``, ``noise``, ``blur``), ``mixture`` (2 or 3 types at
  once) and ``clean`` (no degradation; restorers should leave these alone and reasoners flag nothing).
  Severities are drawn uniformly from ``MIN_SYNTH_SEVERITY..100``; the set is the same for the same
  (n, seed, size, photos) on every machine.

Each restorer is guided by the same diagnoses (a reasoner's, or the ground truth with ``guide="truth"``,
or each restorer's same-named reasoner with ``guide="paired"``), so the table compares restorers.
On the synthetic set each reasoner's flag F1, severity MAE and clean-photo false-positive rate are
reported too.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from . import api, registry
from .diagnosis import DEGRADATIONS, Diagnosis, calibration
from .errors import RnRError
from .images import list_image_files, load_image
from .metrics import psnr, ssim

GROUPS: tuple[str, ...] = (*DEGRADATIONS, "mixture", "clean")
INPUT = "input"
Progress = Callable[[int, int], None]


@dataclass
class Pair:
    """One evaluation image: its name and group, and either its degraded and clean versions in memory
    ([1,3,H,W]; synthetic pairs, with their ground-truth diagnosis) or the two files to read them from
    when needed (folder pairs, so that big benchmark sets never sit in memory at once)."""

    name: str
    group: str
    degraded: torch.Tensor | None = None
    clean: torch.Tensor | None = None
    truth: Diagnosis | None = None
    degraded_path: str = ""
    clean_path: str = ""
    max_pixels: int | None = None

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(degraded, clean), read from the files if not in memory; raises RnRError if they don't match."""
        if self.degraded is not None and self.clean is not None:
            return self.degraded, self.clean
        options = {} if self.max_pixels is None else {"max_pixels": self.max_pixels}
        degraded = load_image(self.degraded_path, **options).tensor
        clean = load_image(self.clean_path, **options).tensor
        if degraded.shape != clean.shape:
            raise RnRError(f"{self.name}: degraded is {degraded.shape[-1]}x{degraded.shape[-2]} but clean is "
                           f"{clean.shape[-1]}x{clean.shape[-2]}")
        return degraded, clean


@dataclass
class EvalReport:
    """Mean PSNR/SSIM per group and method (``"input"`` = the degraded image itself), reasoner
    accuracy (synthetic sets only), the settings used and any pairs skipped with the reason."""

    title: str
    methods: list[str]
    groups: list[str]
    psnr: dict[str, dict[str, float]]
    ssim: dict[str, dict[str, float]]
    counts: dict[str, int]
    reasoners: dict[str, dict[str, Any]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (infinite PSNR, e.g. of clean inputs, becomes null)."""
        def clean(value: Any) -> Any:
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list):
                return [clean(v) for v in value]
            return value

        return clean({"title": self.title, "methods": self.methods, "groups": self.groups, "psnr": self.psnr,
                      "ssim": self.ssim, "counts": self.counts, "reasoners": self.reasoners,
                      "settings": self.settings, "skipped": self.skipped})

    def to_markdown(self) -> str:
        """The restoration table (PSNR dB / SSIM per group and method) and the reasoner table."""
        lines = [f"### {self.title}", ""]
        header = "| group | n | " + " | ".join(f"{m} PSNR / SSIM" for m in self.methods) + " |"
        lines += [header, "|" + "---|" * (2 + len(self.methods))]
        for group in self.groups:
            cells = []
            for method in self.methods:
                p, s = self.psnr[group][method], self.ssim[group][method]
                cells.append(f"{_db(p)} / {s:.4f}")
            lines.append(f"| {group} | {self.counts[group]} | " + " | ".join(cells) + " |")
        if self.reasoners:
            lines += ["", "| reasoner | " + " | ".join(f"{t} F1 / MAE" for t in DEGRADATIONS)
                      + " | clean flagged |", "|" + "---|" * (2 + len(DEGRADATIONS))]
            for name, accuracy in self.reasoners.items():
                cells = [f"{_ratio(accuracy[t]['f1'])} / {_num(accuracy[t]['severity_mae'])}" for t in DEGRADATIONS]
                lines.append(f"| {name} | " + " | ".join(cells) + f" | {_pct(accuracy['clean_flagged_rate'])} |")
        if self.skipped:
            lines += ["", f"Skipped {len(self.skipped)}: " + "; ".join(self.skipped)]
        return "\n".join(lines)


def _db(value: float) -> str:
    return "inf" if math.isinf(value) else "n/a" if math.isnan(value) else f"{value:.2f}"


def _num(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1f}"


def _ratio(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.1f} %"


# ---- pairs ---------------------------------------------------------------------------------------
def folder_pairs(folder: str | os.PathLike, max_pixels: int | None = None) -> tuple[list[Pair], list[str]]:
    """(pairs, skipped) from ``folder/degraded/NAME`` and ``folder/clean/NAME``; a clean file with the
    same stem but another suffix also matches. Files are read during evaluation, one pair at a time."""
    root = Path(folder)
    degraded_dir, clean_dir = root / "degraded", root / "clean"
    for sub in (degraded_dir, clean_dir):
        if not sub.is_dir():
            raise RnRError(f"{folder}: expected sub-folders 'degraded' and 'clean' with the same file names; "
                           f"{sub} is missing")
    clean_by_stem = {Path(p).stem: p for p in list_image_files(clean_dir)}
    pairs, skipped = [], []
    for path in list_image_files(degraded_dir):
        name = Path(path).name
        clean_path = str(clean_dir / name) if (clean_dir / name).is_file() else clean_by_stem.get(Path(path).stem)
        if clean_path is None:
            skipped.append(f"{name}: no clean/{name}")
            continue
        pairs.append(Pair(name=name, group="all", degraded_path=path, clean_path=clean_path, max_pixels=max_pixels))
    if not pairs:
        raise RnRError(f"{folder}: no (degraded, clean) pairs with the same file names"
                       + (f"; skipped: {'; '.join(skipped)}" if skipped else ""))
    return pairs, skipped


def default_photos() -> list[str]:
    """The sample photos shipped in :mod:`rnr.assets`."""
    from .assets import sample_paths

    photos = [str(p) for p in sample_paths()]
    if not photos:
        raise RnRError("no sample photos are installed in rnr/assets/samples; pass photos (--photos DIR)")
    return photos


def synthetic_pairs(n: int, seed: int = 0, size: int = 256, photos: Sequence[str] | None = None,
                    groups: Sequence[str] = GROUPS) -> list[Pair]:
    """``n`` seeded pairs per group from random ``size`` x ``size`` crops of ``photos``."""
    from .degrade import degrade

    if n < 1:
        raise RnRError(f"the synthetic set needs at least 1 image per group, got {n}")
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise RnRError(f"unknown group(s) {', '.join(unknown)}; choose from {', '.join(GROUPS)}")
    sources = [load_image(p).tensor for p in (photos or default_photos())]
    generator = torch.Generator().manual_seed(seed)
    low = calibration.MIN_SYNTH_SEVERITY
    pairs: list[Pair] = []
    for group_index, group in enumerate(groups):
        clean = torch.cat([_random_crop(sources[(i + group_index) % len(sources)], size, generator) for i in range(n)])
        specs: dict[str, list] = {name: [None] * n for name in DEGRADATIONS}
        for i in range(n):
            if group == "clean":
                chosen: list[str] = []
            elif group == "mixture":
                count = int(torch.randint(2, 4, (1,), generator=generator))
                chosen = [DEGRADATIONS[j] for j in torch.randperm(4, generator=generator)[:count].tolist()]
            else:
                chosen = [group]
            for name in chosen:
                specs[name][i] = int(torch.randint(low, 101, (1,), generator=generator))
        result = degrade(clean, seed=seed * 1000 + group_index, **specs)
        for i in range(n):
            pairs.append(Pair(name=f"{group}_{i:04d}", group=group, degraded=result.images[i:i + 1],
                              clean=clean[i:i + 1], truth=result.diagnoses[i]))
    return pairs


def _random_crop(image: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    height, width = image.shape[-2:]
    if min(height, width) < size:
        scale = size / min(height, width)
        image = F.interpolate(image, size=(max(size, round(height * scale)), max(size, round(width * scale))),
                              mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
        height, width = image.shape[-2:]
    top = int(torch.randint(0, height - size + 1, (1,), generator=generator))
    left = int(torch.randint(0, width - size + 1, (1,), generator=generator))
    return image[..., top:top + size, left:left + size].contiguous()


# ---- running -------------------------------------------------------------------------------------
def default_backends(kind: str) -> list[str]:
    """``classic`` and ``lite`` (when its weights are installed): the built-in backends."""
    return [name for name in ("classic", "lite") if name in registry.available(kind)
            and api._weights_installed(kind, name)]


def evaluate(pairs: list[Pair], restorers: Sequence[str], *, guide: str = "auto", reasoners: Sequence[str] = (),
             title: str = "Evaluation", device: str = "auto", dtype: str = "auto", batch_size: int = 4,
             strength: float = 1.0, seed: int = 0, skipped: Sequence[str] = (), progress: Progress | None = None,
             settings: dict[str, Any] | None = None) -> EvalReport:
    """Restore every pair with each restorer and tabulate PSNR/SSIM per group; score ``reasoners``.

    ``guide``: ``"truth"`` (ground-truth diagnoses; synthetic pairs only), ``"paired"`` (each restorer
    with the reasoner of the same name), or a reasoner name (``"auto"`` = the default reasoner). A pair
    whose files cannot be read or do not match is skipped and listed in the report.
    """
    if guide == "truth" and any(p.truth is None for p in pairs):
        raise RnRError("guide 'truth' needs ground-truth diagnoses, which only the synthetic set has; "
                       "use a reasoner name instead")
    restorer_names = list(dict.fromkeys(api.resolve_backend("restorer", name) for name in restorers))
    reasoner_names = list(dict.fromkeys(api.resolve_backend("reasoner", name) for name in reasoners))
    guides = {r: _guide_name(guide, r) for r in restorer_names}
    needed = list(dict.fromkeys(reasoner_names + [g for g in guides.values() if g != "truth"]))
    reasoner_models = {name: api.load_reasoner(name, device=device, dtype=dtype) for name in needed}
    restorer_models = {name: api.load_restorer(name, device=device, dtype=dtype) for name in restorer_names}
    methods = [INPUT, *restorer_names]
    skipped = list(skipped)
    groups_seen: list[str] = []
    scores: dict[str, list[tuple[float, float]]] = {m: [] for m in methods}
    predictions: dict[str, list[Diagnosis]] = {name: [] for name in reasoner_names}
    truths: list[Diagnosis | None] = []
    done = 0
    for batch in _batches(pairs, batch_size):
        try:
            loaded = [p.tensors() for p in batch]
        except RnRError as exc:
            skipped.append(str(exc))
            done += len(batch)
            continue
        degraded = torch.cat([d for d, _ in loaded])
        clean = torch.cat([c for _, c in loaded])
        found = {name: model.diagnose(degraded) for name, model in reasoner_models.items()}
        found["truth"] = [p.truth for p in batch]  # type: ignore[assignment]
        scores[INPUT].extend(_scores(degraded, clean))
        for name, model in restorer_models.items():
            restored = model.restore(degraded, found[guides[name]], strength=strength, seed=seed)
            scores[name].extend(_scores(restored.detach().float().cpu(), clean))
        for name in reasoner_names:
            predictions[name].extend(found[name])
        truths.extend(p.truth for p in batch)
        groups_seen.extend(p.group for p in batch)
        done += len(batch)
        if progress is not None:
            progress(done, len(pairs))
    if not groups_seen:
        raise RnRError("no pair could be evaluated; skipped: " + "; ".join(skipped))

    groups = list(dict.fromkeys(groups_seen))
    degraded_groups = [g for g in groups if g != "clean"]
    if len(degraded_groups) > 1:
        groups.append("all")
    psnr_table: dict[str, dict[str, float]] = {}
    ssim_table: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    for group in groups:
        members = [i for i, g in enumerate(groups_seen) if g == group or (group == "all" and g in degraded_groups)]
        counts[group] = len(members)
        psnr_table[group] = {m: _mean([scores[m][i][0] for i in members]) for m in methods}
        ssim_table[group] = {m: _mean([scores[m][i][1] for i in members]) for m in methods}

    accuracy = {}
    if reasoner_names and all(t is not None for t in truths):
        accuracy = {name: reasoner_accuracy(predictions[name], truths) for name in reasoner_names}  # type: ignore[arg-type]
    run_settings = {"guide": guide, "guides": guides, "strength": strength, "seed": seed, "device": device,
                    "dtype": dtype, **(settings or {})}
    return EvalReport(title=title, methods=methods, groups=groups, psnr=psnr_table, ssim=ssim_table, counts=counts,
                      reasoners=accuracy, settings=run_settings, skipped=skipped)


def _guide_name(guide: str, restorer: str) -> str:
    if guide == "truth":
        return "truth"
    if guide == "paired":
        return restorer if restorer in registry.available("reasoner") else api.default_backend("reasoner")
    return api.resolve_backend("reasoner", guide)


def _batches(pairs: list[Pair], batch_size: int):
    """Consecutive in-memory pairs of one size, at most ``batch_size`` long; file pairs one at a time."""
    batch: list[Pair] = []
    for pair in pairs:
        if batch and (len(batch) >= batch_size or pair.degraded is None or batch[0].degraded is None
                      or pair.degraded.shape != batch[0].degraded.shape):
            yield batch
            batch = []
        batch.append(pair)
    if batch:
        yield batch


def _scores(images: torch.Tensor, clean: torch.Tensor) -> list[tuple[float, float]]:
    images = images.to(clean.device)
    return list(zip(psnr(images, clean).tolist(), ssim(images, clean).tolist()))


def _mean(values: list[float]) -> float:
    """Mean, infinite when every value is (identical images), ignoring infinities otherwise."""
    if not values:
        return math.nan
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.inf


def reasoner_accuracy(predicted: Sequence[Diagnosis], truth: Sequence[Diagnosis]) -> dict[str, Any]:
    """Per degradation: flag precision, recall and F1, and the severity MAE over the images where it is
    truly present (a missed one counts with severity 0); plus the share of clean images with any flag."""
    result: dict[str, Any] = {}
    for name in DEGRADATIONS:
        tp = fp = fn = 0
        errors = []
        for pred, true in zip(predicted, truth):
            p, t = pred.record(name), true.record(name)
            tp += p.present and t.present
            fp += p.present and not t.present
            fn += t.present and not p.present
            if t.present:
                errors.append(abs(p.severity - t.severity))
        precision = tp / (tp + fp) if tp + fp else math.nan
        recall = tp / (tp + fn) if tp + fn else math.nan
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else math.nan
        result[name] = {"precision": precision, "recall": recall, "f1": f1,
                        "severity_mae": sum(errors) / len(errors) if errors else math.nan, "support": tp + fn}
    clean_predictions = [pred for pred, true in zip(predicted, truth) if true.is_clean]
    result["clean_flagged_rate"] = (sum(not p.is_clean for p in clean_predictions) / len(clean_predictions)
                                    if clean_predictions else math.nan)
    result["clean_images"] = len(clean_predictions)
    return result


__all__ = ["EvalReport", "GROUPS", "Pair", "default_backends", "evaluate", "folder_pairs", "reasoner_accuracy",
           "synthetic_pairs"]
