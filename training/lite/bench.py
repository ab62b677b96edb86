"""Speed of the lite restorer at one megapixel, batch 1: tuned against the untuned baseline, same run.

    python -m training.lite.bench --weights rnr/weights --json benchmarks/lite/speed_gpu.json

On CUDA: baseline = float32 weights, NCHW, eager; tuned = bf16 weights, channels_last,
``torch.compile`` (and with CUDA graphs, ``mode="reduce-overhead"``); each timed with CUDA events after
warm-up, median of ``--repeats``, on random (not zero) inputs. On the CPU: float32 eager NCHW against
float32 channels_last (the backend's CPU path), wall clock, median. Also checks that the tuned output
matches the float32 reference (relative L2 error) and reports peak GPU memory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from rnr.diagnosis import Diagnosis, Haze, Noise
from rnr.lite.condition import condition_tensor
from rnr.lite.nets import LiteRestorerNet, RestorerConfig, conv_macs_per_pixel, parameter_count
from rnr.lite.weights import load_network


def _time_cuda(fn, x, c, warmup: int, repeats: int) -> list[float]:
    for _ in range(warmup):
        fn(x, c)
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn(x, c)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return times


_CPU_TIMES: list[float] = []


def _time_cpu(fn, x, c, warmup: int, repeats: int) -> list[float]:
    """Wall-clock ms per call; the process CPU time per thread of each call goes to ``_CPU_TIMES``
    (on a shared machine other processes inflate the wall clock, not the CPU time)."""
    for _ in range(warmup):
        fn(x, c)
    times = []
    _CPU_TIMES.clear()
    threads = torch.get_num_threads()
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        fn(x, c)
        times.append((time.perf_counter() - start) * 1000.0)
        _CPU_TIMES.append((time.process_time() - cpu) * 1000.0 / threads)
    return times


def _cpu_extra() -> dict:
    if not _CPU_TIMES:
        return {}
    return {"cpu_ms_per_thread_median": statistics.median(_CPU_TIMES), "load_average_1min": os.getloadavg()[0]}


def _rel_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out.float() - ref.float()).norm() / ref.float().norm())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.lite.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="", help="lite restorer weights (default: shipped; random if missing)")
    parser.add_argument("--side", type=int, default=1024, help="square image side (1024 = 1 MP)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--modes", default="default,reduce-overhead", help="torch.compile modes to try (CUDA)")
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    try:
        net, _ = load_network("lite_restorer", args.weights or None, "cpu")
        source = args.weights or "shipped"
    except Exception:
        net, source = LiteRestorerNet(RestorerConfig()).eval(), "random init (no weights found)"
    diagnosis = Diagnosis(haze=Haze(True, 50, (0.9, 0.9, 0.92), 0.55), noise=Noise(True, 30, 15.0, "gaussian"))
    condition = condition_tensor([diagnosis])
    x = torch.rand(1, 3, args.side, args.side)
    report = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
              "torch": torch.__version__, "side": args.side, "megapixels": args.side ** 2 / 1e6, "weights": source,
              "parameters": parameter_count(net), "macs_per_pixel": round(conv_macs_per_pixel(net)),
              "repeats": args.repeats, "results": {}}
    timer = _time_cuda if device.type == "cuda" else _time_cpu
    with torch.inference_mode():
        base = net.float().to(device)
        xb, cb = x.to(device), condition.to(device)
        reference = base(xb, cb)
        times = timer(base, xb, cb, args.warmup, args.repeats)
        report["results"]["baseline_fp32_eager_nchw"] = {"median_ms": statistics.median(times), "min_ms": min(times),
                                                         **_cpu_extra()}
        if device.type == "cuda":
            tuned = LiteRestorerNet(net.config).eval()
            tuned.load_state_dict(net.state_dict())
            tuned = tuned.to(device, torch.bfloat16).to(memory_format=torch.channels_last)
            xt = xb.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
            ct = cb.to(torch.bfloat16)
            times = timer(tuned, xt, ct, args.warmup, args.repeats)
            report["results"]["bf16_channels_last_eager"] = {"median_ms": statistics.median(times), "min_ms": min(times),
                                                             "rel_error_vs_fp32": _rel_error(tuned(xt, ct), reference)}
            for mode in [m for m in args.modes.split(",") if m]:
                start = time.time()
                compiled = torch.compile(tuned, mode=mode)
                out = compiled(xt, ct).clone()  # CUDA-graph outputs are overwritten by the next replay
                compile_s = time.time() - start
                torch.cuda.reset_peak_memory_stats()
                times = timer(compiled, xt, ct, args.warmup, args.repeats)
                report["results"][f"bf16_channels_last_compile_{mode}"] = {
                    "median_ms": statistics.median(times), "min_ms": min(times), "compile_s": round(compile_s, 1),
                    "rel_error_vs_fp32": _rel_error(out, reference),
                    "peak_memory_mib": torch.cuda.max_memory_allocated() / 2 ** 20}
                print(json.dumps({mode: report["results"][f"bf16_channels_last_compile_{mode}"]}), flush=True)
        else:
            tuned = net.to(memory_format=torch.channels_last)
            xt = xb.contiguous(memory_format=torch.channels_last)
            times = timer(tuned, xt, cb, args.warmup, args.repeats)
            report["results"]["fp32_channels_last_eager"] = {"median_ms": statistics.median(times), "min_ms": min(times),
                                                             **_cpu_extra(),
                                                             "rel_error_vs_fp32": _rel_error(tuned(xt, cb), reference)}
            from rnr.restorers.lite import LiteRestorer

            backend = LiteRestorer(net, device="cpu")
            times = timer(lambda images, _c: backend.restore(images, [diagnosis]), x, None, 1, args.repeats)
            report["results"]["backend_restore_fp32_cpu"] = {"median_ms": statistics.median(times), "min_ms": min(times),
                                                             **_cpu_extra()}
    baseline = report["results"]["baseline_fp32_eager_nchw"]["median_ms"]
    best = min(report["results"].items(), key=lambda kv: kv[1]["median_ms"])
    report["best"] = {"variant": best[0], "median_ms": best[1]["median_ms"], "speedup_vs_baseline": baseline / best[1]["median_ms"]}
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
