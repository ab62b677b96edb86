"""Plot a run's ``log.jsonl`` curves as a dependency-free SVG (one panel per logged quantity).

    rnr-train plot runs/grpo --keys reward kl loss --out runs/grpo/curves.svg
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path

from .config import read_log

DEFAULT_KEYS = ("loss", "token_accuracy", "reward", "eval_reward", "kl", "eval_mean_f1", "eval_mean_severity_mae")
PANEL_W, PANEL_H, MARGIN_L, MARGIN_B, MARGIN_T = 420, 220, 64, 36, 28


def series(entries: list[dict], key: str) -> list[tuple[float, float]]:
    """(step, value) pairs of one key, finite values only."""
    points = []
    for entry in entries:
        value = entry.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            points.append((float(entry["step"]), float(value)))
    return points


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    if high <= low:
        return [low]
    return [low + (high - low) * i / count for i in range(count + 1)]


def _panel(key: str, points: list[tuple[float, float]], x0: int, y0: int) -> list[str]:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x_low, x_high = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y_low, y_high = min(ys), max(ys)
    if y_high - y_low < 1e-12:
        y_low, y_high = y_low - 0.5, y_high + 0.5
    width, height = PANEL_W - MARGIN_L - 12, PANEL_H - MARGIN_B - MARGIN_T

    def sx(x: float) -> float:
        return x0 + MARGIN_L + (x - x_low) / (x_high - x_low) * width

    def sy(y: float) -> float:
        return y0 + MARGIN_T + (1 - (y - y_low) / (y_high - y_low)) * height

    out = [f'<text x="{x0 + MARGIN_L}" y="{y0 + 18}" font-size="14" font-weight="bold">{html.escape(key)}</text>',
           f'<rect x="{x0 + MARGIN_L}" y="{y0 + MARGIN_T}" width="{width}" height="{height}" fill="none" stroke="#999"/>']
    for y in _ticks(y_low, y_high):
        out.append(f'<text x="{x0 + MARGIN_L - 6}" y="{sy(y) + 4:.1f}" font-size="10" text-anchor="end">{y:.4g}</text>')
    for x in _ticks(x_low, x_high):
        out.append(f'<text x="{sx(x):.1f}" y="{y0 + PANEL_H - MARGIN_B + 14}" font-size="10" '
                   f'text-anchor="middle">{x:.0f}</text>')
    out.append(f'<text x="{x0 + MARGIN_L + width / 2}" y="{y0 + PANEL_H - 4}" font-size="10" '
               f'text-anchor="middle">step</text>')
    path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
    if len(points) == 1:
        out.append(f'<circle cx="{sx(xs[0]):.1f}" cy="{sy(ys[0]):.1f}" r="3" fill="#1f77b4"/>')
    else:
        out.append(f'<polyline points="{path}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>')
    return out


def plot_run(folder: str | Path, keys: Sequence[str] = DEFAULT_KEYS, out: str | Path | None = None,
             columns: int = 2) -> Path:
    """Write the SVG of the keys the run logged (keys it never logged are skipped); returns its path."""
    folder = Path(folder)
    entries = read_log(folder)
    panels = [(key, points) for key in keys if (points := series(entries, key))]
    if not panels:
        raise ValueError(f"{folder}/log.jsonl logs none of {', '.join(keys)}")
    rows = math.ceil(len(panels) / columns)
    width, height = PANEL_W * min(columns, len(panels)), PANEL_H * rows
    body = []
    for index, (key, points) in enumerate(panels):
        body += _panel(key, points, (index % columns) * PANEL_W, (index // columns) * PANEL_H)
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>' + "".join(body) + "</svg>\n")
    path = Path(out) if out else folder / "curves.svg"
    path.write_text(svg, encoding="utf-8")
    return path


__all__ = ["DEFAULT_KEYS", "plot_run", "series"]
