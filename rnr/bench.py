"""Speed and memory of each backend: time per megapixel and peak memory, on the CPU and the GPU.

Every backend runs on the same synthetic photo degraded by all four degradations (so a classical
chain runs every step) with its ground-truth diagnosis. Each measurement warms up first, then
reports the median (and minimum) of several timed repeats; GPU timings synchronise the device.
Peak memory is the growth of ``torch.cuda.max_memory_allocated`` on a GPU, and of the process's
resident set (sampled every millisecond) on the CPU.
"""

from __future__ import annotations

import math
import os
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from . import api, registry
from .devices import resolve_device, resolve_dtype
from .diagnosis import Diagnosis
from .errors import BackendError, OptionError

BENCH_SEVERITIES = {"haze": 50, "rain": 30, "noise": 30, "blur": 30}


@dataclass
class BenchResult:
    """One backend on one device: median seconds per call and per megapixel, peak memory in MiB."""

    kind: str
    backend: str
    device: str
    dtype: str
    height: int
    width: int
    batch: int
    seconds: float
    seconds_min: float
    ms_per_megapixel: float
    peak_memory_mib: float | None
    repeats: int
    warmup: int
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN of a failed run becomes null)."""
        return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in asdict(self).items()}


def bench_image(height: int, width: int, batch: int = 1, seed: int = 0) -> tuple[torch.Tensor, list[Diagnosis]]:
    """A smooth synthetic scene degraded by all four degradations, with its ground-truth diagnoses."""
    from .degrade import degrade

    y = torch.linspace(0, 1, height)[:, None]
    x = torch.linspace(0, 1, width)[None]
    scene = torch.stack([0.5 + 0.3 * torch.sin(9 * x + 4 * y), 0.45 + 0.25 * torch.cos(7 * y - 3 * x),
                         0.4 + 0.2 * torch.sin(13 * x * y + 1)])
    edges = ((torch.sin(40 * x) > 0) ^ (torch.sin(31 * y) > 0)).float() * 0.15
    clean = (scene + edges).clamp(0, 1)[None].expand(batch, -1, -1, -1).contiguous()
    result = degrade(clean, seed=seed, **BENCH_SEVERITIES)
    return result.images, result.diagnoses


class _PeakRSS:
    """Samples this process's resident set size in a thread; ``peak - start`` in bytes."""

    def __init__(self, interval_s: float = 0.001) -> None:
        self.interval_s = interval_s
        self.start = self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(self.interval_s)

    def __enter__(self) -> "_PeakRSS":
        self.start = self.peak = _rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())

    @property
    def growth(self) -> int:
        return max(0, self.peak - self.start)


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def measure(call: Callable[[], Any], device: torch.device, warmup: int = 2, repeats: int = 5) -> tuple[list[float], float | None]:
    """(seconds of each timed repeat, peak memory growth in MiB or None) of ``call()`` on ``device``."""
    for _ in range(warmup):
        call()
    _sync(device)
    times: list[float] = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            _sync(device)
            times.append(time.perf_counter() - start)
        peak = (torch.cuda.max_memory_allocated(device) - base) / 2 ** 20
        return times, peak
    with _PeakRSS() as sampler:
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
    return times, (sampler.growth / 2 ** 20 if _rss_bytes() else None)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def default_devices() -> list[str]:
    """The CPU, and the first GPU when there is one."""
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def run_bench(kinds: Sequence[str] = ("restorer", "reasoner"), backends: Sequence[str] | None = None,
              devices: Sequence[str] | None = None, size: tuple[int, int] = (1024, 1024), batch: int = 1,
              warmup: int = 2, repeats: int = 5, dtype: str = "auto", options: dict[str, Any] | None = None,
              progress: Callable[[str], None] | None = None) -> list[BenchResult]:
    """Benchmark each backend of each kind on each device; a backend that fails gets a row with its error."""
    from .eval import default_backends

    if backends:
        known = {name for kind in kinds for name in registry.available(kind)}
        unknown = [name for name in backends if name not in known]
        if unknown:
            raise BackendError(f"unknown backend(s) {', '.join(unknown)}; available: {', '.join(sorted(known))}")
    plan = [(kind, name) for kind in kinds
            for name in ([n for n in backends if n in registry.available(kind)] if backends else default_backends(kind))]
    options = _options_by_backend(plan, options or {})
    height, width = size
    images, diagnoses = bench_image(height, width, batch)
    results: list[BenchResult] = []
    for device_name in devices or default_devices():
        device = resolve_device(device_name)
        on_device = images.to(device)
        for kind, name in plan:
            if progress is not None:
                progress(f"{kind} {name} on {device}")
            results.append(_bench_one(kind, name, device, dtype, on_device, diagnoses, warmup, repeats,
                                      options[(kind, name)]))
    return results


def _options_by_backend(plan: Sequence[tuple[str, str]], options: dict[str, Any]) -> dict[tuple[str, str], dict]:
    """Each benchmarked backend gets the options it takes; an option none of them takes is an error."""
    taken: dict[tuple[str, str], dict[str, Any]] = {}
    for kind, name in plan:
        declared = registry.declared_options(kind, name)
        taken[(kind, name)] = {k: v for k, v in options.items() if declared is None or k in declared}
    unused = [k for k in options if not any(k in chosen for chosen in taken.values())]
    if unused:
        raise OptionError(f"no benchmarked backend takes the option(s) {', '.join(unused)} "
                          f"({', '.join(f'{kind} {name}' for kind, name in plan)}); see {registry.DOC}")
    return taken


def _bench_one(kind: str, name: str, device: torch.device, dtype: str, images: torch.Tensor,
               diagnoses: list[Diagnosis], warmup: int, repeats: int, options: dict[str, Any]) -> BenchResult:
    batch, _, height, width = images.shape
    dtype_name = str(resolve_dtype(dtype, device)).replace("torch.", "") if dtype in ("", "auto") else dtype
    row = dict(kind=kind, backend=name, device=str(device), dtype=dtype_name, height=height, width=width, batch=batch,
               repeats=repeats, warmup=warmup)
    try:
        loader = api.load_reasoner if kind == "reasoner" else api.load_restorer
        model = loader(name, device=str(device), dtype=dtype, **options)
        if kind == "reasoner":
            def call() -> Any:
                return model.diagnose(images)
        else:
            def call() -> Any:
                return model.restore(images, diagnoses)
        with torch.inference_mode():
            times, peak = measure(call, device, warmup, repeats)
    except Exception as exc:  # a backend that cannot run here still gets a row saying why
        return BenchResult(**row, seconds=math.nan, seconds_min=math.nan, ms_per_megapixel=math.nan,
                           peak_memory_mib=None, error=f"{type(exc).__name__}: {exc}")
    median = statistics.median(times)
    megapixels = batch * height * width / 1e6
    return BenchResult(**row, seconds=median, seconds_min=min(times), ms_per_megapixel=1000 * median / megapixels,
                       peak_memory_mib=peak)


def to_markdown(results: Sequence[BenchResult]) -> str:
    """A table: kind, backend, device, dtype, size, median ms, ms per MP, peak MiB."""
    lines = ["| kind | backend | device | dtype | size | median ms | ms / MP | peak MiB |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        size = f"{r.width}x{r.height}" + (f" (batch {r.batch})" if r.batch > 1 else "")
        if r.error:
            lines.append(f"| {r.kind} | {r.backend} | {r.device} | {r.dtype} | {size} | failed: {r.error} | | |")
            continue
        peak = "n/a" if r.peak_memory_mib is None else f"{r.peak_memory_mib:.0f}"
        lines.append(f"| {r.kind} | {r.backend} | {r.device} | {r.dtype} | {size} | {1000 * r.seconds:.1f} | "
                     f"{r.ms_per_megapixel:.1f} | {peak} |")
    return "\n".join(lines)


__all__ = ["BenchResult", "bench_image", "default_devices", "measure", "run_bench", "to_markdown"]
