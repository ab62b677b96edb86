"""The training runs' validation numbers for saved weights, on the validation batch runs 10-12 used.

    PYTHONPATH=. python benchmarks/lite/run12/val_baseline.py out/lite7 out/lite12

Runs 10-12 changed the batch synthesis (commit 91ac779), so their validation batch differs from run 7's;
this scores any weight folder on the new batch with ``training.lite.train.validate``.
"""

import sys
from pathlib import Path
from types import SimpleNamespace

import torch

from rnr.lite.weights import load_network
from training.lite.data import WIDE_DATA, SynthConfig, load_crops, synthesize
from training.lite.train import validate


def main(folders: list[str]) -> None:
    val = synthesize(load_crops(WIDE_DATA, "train"), 10**9 + 7,
                     SynthConfig(batch=64, crop=256, p_keep=0.0, p_partial=0.0, p_spurious=0.0, p_jpeg=0.0,
                                 p_down_up=0.0, severity_jitter=0.0))
    for folder in folders:
        trainees = {}
        for kind in ("reasoner", "restorer"):
            if (Path(folder) / f"lite_{kind}.safetensors").is_file():  # a run may save only one network
                net, _ = load_network(f"lite_{kind}", folder)
                trainees[kind] = SimpleNamespace(ema=SimpleNamespace(model=net.eval()))
        with torch.no_grad():
            print(folder, {k: round(v, 3) for k, v in validate(trainees, val, torch.device("cpu")).items()})


if __name__ == "__main__":
    main(sys.argv[1:])
