"""Threshold-free comparison of lite reasoners on the held-out crops (one draw per group, seed 0).

    PYTHONPATH=. python benchmarks/lite/run10/compare_heldout.py "" out/lite10 > benchmarks/lite/run10/compare_heldout.txt

Per type: ranking AUC of the presence probability, F1 at the weights' own thresholds, the best F1 over
thresholds 0.05..0.99 (an upper bound, not a tuned number) and severity MAE on the truly present ones;
"" is the shipped reasoner. Run 10's thresholds are its export ones (train photos, not recalibrated).
``missed at best`` names the items misjudged at that best threshold as group/crop (crops 0-6, 7-13,
14-20, 21-27 are the four held-out photos), so that networks can be compared item by item.
"""

import sys

import torch

from rnr.diagnosis import DEGRADATIONS
from rnr.lite.condition import O_PRESENT, O_SEVERITY
from rnr.reasoners.lite import load
from rnr.registry import ModelSpec
from training.lite.evaluate import GROUPS, heldout_set
from training.lite.export import flag_f1


def auc(p: torch.Tensor, t: torch.Tensor) -> float:
    pos, neg = p[t > 0], p[t == 0]
    return float((pos[:, None] > neg[None, :]).float().mean() + 0.5 * (pos[:, None] == neg[None, :]).float().mean())


def main(paths: list[str]) -> None:
    items = heldout_set("data/packed/crops_256.safetensors", 1, 0)
    x = torch.cat([it["degraded"] for it in items])
    present = torch.tensor([[float(it["truth"].record(n).present) for n in DEGRADATIONS] for it in items])
    severity = torch.tensor([[float(it["truth"].record(n).severity) for n in DEGRADATIONS] for it in items])
    clean = torch.tensor([it["group"] == "clean" for it in items])
    for path in paths:
        reasoner = load(ModelSpec.make("reasoner", "lite", path=path))
        raw = torch.cat([reasoner.raw_outputs(x[k:k + 16]) for k in range(0, len(x), 16)])
        p = torch.sigmoid(raw[:, O_PRESENT])
        predicted = raw[:, O_SEVERITY].clamp(0, 1) * 100
        thresholds = torch.tensor(reasoner.thresholds)
        print(path or "shipped", "thresholds", [round(v, 3) for v in reasoner.thresholds])
        for j, name in enumerate(DEGRADATIONS):
            t = present[:, j]
            best = max((flag_f1(p[:, j], t > 0, k / 100), k / 100) for k in range(5, 100))
            mask = t > 0
            mae = float((predicted[mask, j] - severity[mask, j]).abs().mean())
            print(f"  {name}: auc {auc(p[:, j], t):.3f} f1@own {flag_f1(p[:, j], t > 0, float(thresholds[j])):.3f} "
                  f"bestf1 {best[0]:.3f}@{best[1]:.2f} sevMAE(on true pos) {mae:.2f}")
            wrong = torch.nonzero((p[:, j] >= best[1]) != (t > 0)).flatten().tolist()
            per_group = len(items) // len(GROUPS)
            print("    missed at best:", " ".join(f"{GROUPS[i // per_group]}/{i % per_group}" for i in wrong))
        print("  clean flagged @own", round(float((p[clean] >= thresholds).any(dim=1).float().mean()), 4))


if __name__ == "__main__":
    main(sys.argv[1:])
