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
from training.lite.data import WIDE_DATA
from training.lite.train import TrainConfig, validate, validation_batch


def main(folders: list[str]) -> None:
    val = validation_batch(WIDE_DATA, TrainConfig.val_images, TrainConfig.crop)
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
