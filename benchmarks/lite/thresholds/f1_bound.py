"""How far presence thresholds alone could take the lite reasoner's flag F1 on the held-out crops.

    PYTHONPATH=. python benchmarks/lite/thresholds/f1_bound.py "" out/lite15 > benchmarks/lite/thresholds/f1_bound.txt

For each weight folder ("" is the shipped reasoner) and type: F1 at the shipped (calibrated)
threshold, and the best F1 over every threshold 0.05..0.99 chosen on the held-out crops themselves.
That choice peeks at the test set, so it is a bound for diagnosis only, never a threshold to ship:
where even it stays below a target, only a better network can reach the target.
"""

import sys

import torch

from rnr.diagnosis import DEGRADATIONS
from rnr.reasoners.lite import load
from rnr.registry import ModelSpec
from training.lite.evaluate import heldout_set

GRID = [k / 100 for k in range(5, 100)]


def f1(probabilities: torch.Tensor, present: torch.Tensor, threshold: float) -> float:
    flagged = probabilities >= threshold
    tp = int((flagged & present).sum())
    wrong = int((flagged ^ present).sum())
    return 2 * tp / (2 * tp + wrong) if tp + wrong else float("nan")


def main(paths: list[str]) -> None:
    items = heldout_set("data/packed/crops_256.safetensors", 1)
    present = torch.tensor([[it["truth"].record(n).present for n in DEGRADATIONS] for it in items])
    images = torch.cat([it["degraded"] for it in items])
    for path in paths:
        reasoner = load(ModelSpec.make("reasoner", "lite", path=path))
        raw = torch.cat([reasoner.raw_outputs(images[k:k + 8]) for k in range(0, len(images), 8)])
        probabilities = torch.sigmoid(raw[:, :len(DEGRADATIONS)])
        cells = []
        for i, name in enumerate(DEGRADATIONS):
            shipped = f1(probabilities[:, i], present[:, i], reasoner.thresholds[i])
            best, at = max((f1(probabilities[:, i], present[:, i], t), t) for t in GRID)
            cells.append(f"{name} {shipped:.3f} at {reasoner.thresholds[i]:.3f}, best {best:.3f} at {at:.2f}")
        print(f"{path or 'shipped'}: " + "; ".join(cells))


if __name__ == "__main__":
    main(sys.argv[1:] or [""])
