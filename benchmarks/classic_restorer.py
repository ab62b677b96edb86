"""Speed and memory of the classic restorer: seconds per megapixel per step, and the peak memory of
an 8000x8000 restoration. Quality (PSNR gains) is measured by ``rnr eval --restorers classic --guide truth``.

    python benchmarks/classic_restorer.py [--threads 2] [--device cpu|cuda] [--big]
"""

from __future__ import annotations

import argparse
import resource
import time

import torch
import torch.nn.functional as F

from rnr.assets import sample_path
from rnr.diagnosis import Blur, Diagnosis, Haze, Noise, Rain
from rnr.images import load_image
from rnr.restorers.classic import ClassicRestorer
from rnr.restorers.classic_ops import STEPS

RECORDS = {"noise": Noise(True, 50, 25.0), "blur": Blur(True, 50, "motion", 12.0, 30.0),
           "rain": Rain(True, 50, 0.06, 40.0, 15.0), "haze": Haze(True, 50)}
EVERYTHING = Diagnosis(**RECORDS)


def photo(side: int, device: torch.device) -> torch.Tensor:
    image = load_image(sample_path()).tensor
    return F.interpolate(image, size=(side, side), mode="bicubic", align_corners=False).clamp(0, 1).to(device)


def timed(fn, device: torch.device, repeats: int = 3) -> tuple[float, float]:
    """Best wall-clock and best process CPU seconds of ``repeats`` runs after a warm-up.

    CPU time is what the work costs even when other processes share the cores."""
    fn()
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best_wall = min(best_wall, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
    return best_wall, best_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--big", action="store_true", help="also restore one 8000x8000 image (all four steps)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    image = photo(1024, device)
    megapixels = image.shape[-1] * image.shape[-2] / 1e6
    print(f"device {device}, {args.threads} threads, torch {torch.__version__}")
    for name, record in RECORDS.items():
        wall, cpu = timed(lambda name=name, record=record: STEPS[name](image, record), device)
        print(f"{name:6s} {wall / megapixels:6.3f} s/MP wall, {cpu / megapixels:6.3f} CPU-s/MP")
    restorer = ClassicRestorer(device=device)
    wall, cpu = timed(lambda: restorer.restore(image, [EVERYTHING]), device)
    print(f"all 4  {wall / megapixels:6.3f} s/MP wall, {cpu / megapixels:6.3f} CPU-s/MP")
    if args.big:
        big = photo(8000, device)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        out = restorer.restore(big, [EVERYTHING], progress=lambda d, t: None)
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"8000x8000 all 4: {elapsed:.1f} s, process peak RSS {peak / 2**20:.2f} GiB "
              f"(before {before / 2**20:.2f} GiB)" + (f", GPU peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
                                                       if device.type == "cuda" else ""))
        assert out.shape == big.shape


if __name__ == "__main__":
    main()
