"""Lite restorers guided by the ground truth on the held-out crops (one draw per group, seed 0).

    PYTHONPATH=. python benchmarks/lite/run16/compare_restorers.py "" out/lite12 out/lite13 out/lite14 out/lite16 > benchmarks/lite/run16/compare_restorers.txt

Mean PSNR (dB) per group and over all degraded groups; "" is the shipped restorer (run 15). Guided by
the truth, so the numbers measure the restorer alone, not the reasoner in front of it.
"""

import sys

from rnr.metrics import mean_finite, psnr
from rnr.registry import ModelSpec
from rnr.restorers.lite import load
from training.lite.evaluate import heldout_set


def main(paths: list[str]) -> None:
    items = heldout_set("data/packed/crops_256.safetensors", 1)
    for path in paths:
        restorer = load(ModelSpec.make("restorer", "lite", path=path))
        scores: dict[str, list[float]] = {}
        for item in items:
            out = restorer.restore(item["degraded"], [item["truth"]])
            scores.setdefault(item["group"], []).append(float(psnr(out, item["clean"])))
        degraded = [x for group, values in scores.items() if group != "clean" for x in values]
        cells = " ".join(f"{group} {mean_finite(values):.2f}" for group, values in scores.items())
        print(f"{path or 'shipped'}: {cells} | all degraded {mean_finite(degraded):.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
