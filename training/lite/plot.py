"""Loss and validation curves of lite training runs, from their JSON-lines logs, as one PNG.

    python -m training.lite.plot benchmarks/lite/run1/log_both.jsonl benchmarks/lite/run2/log_both.jsonl \
        --grpo benchmarks/lite/run2/log_grpo.jsonl -o benchmarks/lite/curves.png

Runs given in order are drawn one after the other on a common step axis (a resumed run continues the
step count of the one before).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parser = argparse.ArgumentParser(prog="python -m training.lite.plot", description=__doc__.split("\n\n")[0])
    parser.add_argument("logs", nargs="+", help="log_both.jsonl files, in training order")
    parser.add_argument("--grpo", default="", help="log_grpo.jsonl of the GRPO fine-tune")
    parser.add_argument("-o", "--out", default="benchmarks/lite/curves.png")
    args = parser.parse_args(argv)

    train, val = [], []
    offset = 0
    for path in args.logs:
        records = read(path)
        steps = [r for r in records if "step" in r and "event" not in r]
        # A run resumed from exported weights counts its steps from 0 again: continue the axis.
        shift = offset if steps and steps[0]["step"] <= offset else 0
        train += [{**r, "step": r["step"] + shift} for r in steps]
        val += [{**r, "step": r["step"] + shift} for r in records if r.get("event") in ("val", "trained")]
        if steps:
            offset = steps[-1]["step"] + shift
    panels = 4 if args.grpo else 3
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4))
    x = [r["step"] for r in train]
    axes[0].plot(x, [r["restorer_loss"] for r in train], label="restorer loss")
    axes[0].plot(x, [r["reasoner_loss"] / 10 for r in train], label="reasoner loss / 10")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("step (batch 32)")
    axes[0].legend()
    axes[0].set_title("training losses")
    vx = [r["step"] for r in val]
    axes[1].plot(vx, [r["val_psnr_out"] for r in val], "o-", label="lite restorer (truth-guided)")
    axes[1].plot(vx, [r["val_psnr_in"] for r in val], "--", label="degraded input")
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("PSNR dB (validation batch)")
    axes[1].legend()
    axes[1].set_title("restorer validation")
    for name in ("haze", "rain", "noise", "blur"):
        axes[2].plot(vx, [r[f"f1_{name}"] for r in val], "o-", label=f"F1 {name}")
    axes[2].set_ylim(0, 1.02)
    axes[2].set_xlabel("step")
    axes[2].legend(loc="lower right")
    axes[2].set_title("reasoner flag F1 (validation, p>0.5)")
    if args.grpo:
        records = read(args.grpo)
        g = [r for r in records if r.get("event") == "val"]
        axes[3].plot([r["step"] for r in g], [r["judge_severity_out"] for r in g], "o-", color="C3")
        axes[3].set_xlabel("GRPO step")
        axes[3].set_ylabel("judge's residual severity (sum of fractions)", color="C3")
        twin = axes[3].twinx()
        twin.plot([r["step"] for r in g], [r["val_psnr"] for r in g], "s--", color="C0")
        twin.set_ylabel("validation PSNR dB", color="C0")
        axes[3].set_title("GRPO fine-tune")
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out} ({len(train)} training points, {len(val)} validation points, last step {offset})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
