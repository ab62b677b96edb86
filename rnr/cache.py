"""The process-wide model cache: one loaded object per :class:`~rnr.registry.ModelSpec`.

Every node and the CLI load models through :func:`get`, so a model named by equal specs is loaded
once and shared. The cache is lazy (nothing loads before the first ``get``), thread-safe (each spec
has its own lock, so concurrent gets of one spec load it once while other specs load in parallel)
and bounded by two memory budgets:

- ``budget_bytes`` caps the models held in host memory (loaded on the CPU or offloaded there);
  past it the least recently used model is evicted (the cache drops its reference).
- ``device_budget_bytes`` caps the models resident on each accelerator; past it the least recently
  used model there is offloaded to the CPU first (``model.to("cpu")``) and moved back by its next
  ``get``. A model without a ``to(device)`` method cannot be offloaded and is evicted instead.

Model sizes come from ``model.memory_bytes()`` when a backend defines it, else from the parameters,
buffers and tensors reachable from the model object. Backends with no weights (classic) weigh 0
bytes and still go through the cache.

The cache never imports ComfyUI. A host application cooperates through two neutral hooks:
:func:`add_before_load_hook` (called with the expected size and device before every load, e.g. to
free the host's own models first) and :func:`release_all` / :func:`offload_all` (to call when the host
frees its memory). ComfyUI's glue lives in the pack's ``nodes/memory.py``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import registry
from .devices import resolve_device
from .errors import RnRError
from .registry import ModelSpec

log = logging.getLogger("rnr.cache")

BeforeLoadHook = Callable[[int, torch.device], None]
"""``hook(bytes_needed, device)``: called before a model of about ``bytes_needed`` loads onto ``device``."""

_CPU = torch.device("cpu")
_WALK_DEPTH = 4


# ---- sizes ---------------------------------------------------------------------------------------
def _reachable_tensors(obj: Any, depth: int, seen: set[int]) -> list[torch.Tensor]:
    """Tensors held by ``obj``: module parameters and buffers, and tensors in attributes/containers."""
    if id(obj) in seen or depth > _WALK_DEPTH:
        return []
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, torch.nn.Module):
        return [*obj.parameters(), *obj.buffers()]
    if isinstance(obj, dict):
        items: Any = obj.values()
    elif isinstance(obj, (list, tuple, set, frozenset)):
        items = obj
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        items = vars(obj).values()
    else:
        return []
    found: list[torch.Tensor] = []
    for item in items:
        if isinstance(item, (str, bytes, int, float, bool)) or item is None:
            continue
        found.extend(_reachable_tensors(item, depth + 1, seen))
    return found


def _unique_tensors(model: Any) -> list[torch.Tensor]:
    unique: dict[tuple, torch.Tensor] = {}
    for tensor in _reachable_tensors(model, 0, set()):
        if tensor.device.type == "meta":
            continue
        # Tied weights and views share storage: count each storage once.
        try:
            key = (str(tensor.device), tensor.untyped_storage().data_ptr())
        except RuntimeError:
            key = (str(tensor.device), id(tensor))
        if key not in unique or tensor.untyped_storage().nbytes() > unique[key].untyped_storage().nbytes():
            unique[key] = tensor
    return list(unique.values())


def model_bytes(model: Any) -> int:
    """Memory held by a loaded model in bytes (``model.memory_bytes()`` when it defines one)."""
    measure = getattr(model, "memory_bytes", None)
    if callable(measure):
        return int(measure())
    return sum(t.untyped_storage().nbytes() for t in _unique_tensors(model))


def model_device(model: Any, default: torch.device = _CPU) -> torch.device:
    """The device holding most of a model's memory (``default`` when no tensor is reachable)."""
    by_device: dict[torch.device, int] = {}
    for tensor in _unique_tensors(model):
        by_device[tensor.device] = by_device.get(tensor.device, 0) + tensor.untyped_storage().nbytes()
    if not by_device:
        return default
    return _normalize(max(by_device, key=lambda d: by_device[d]))


def estimate_spec_bytes(spec: ModelSpec) -> int:
    """Expected size of a model before it loads: its weight files on disk (0 for built-in weights)."""
    if not spec.path:
        return 0
    path = Path(spec.path)
    try:
        if path.is_file():
            return path.stat().st_size
        if path.is_dir():
            return sum(p.stat().st_size for p in path.rglob("*.safetensors") if p.is_file())
    except OSError:
        return 0
    return 0


def _physical_memory_bytes() -> int | None:
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def _env_gib(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        return int(float(value) * 2**30)
    except ValueError:
        log.warning("ignoring %s=%r: expected a number of GiB", name, value)
        return None


def default_budget_bytes() -> int | None:
    """Host-memory budget: ``$RNR_CACHE_BUDGET_GB`` GiB, else 75 % of the machine's RAM.

    Generous on purpose: evicting a model that the next run needs again costs a full reload, and the
    host application (ComfyUI) frees memory through the hooks when it needs it.
    """
    from_env = _env_gib("RNR_CACHE_BUDGET_GB")
    if from_env is not None:
        return from_env
    physical = _physical_memory_bytes()
    return physical * 3 // 4 if physical else None


def default_device_budget_bytes(device: torch.device) -> int | None:
    """Per-accelerator budget: ``$RNR_CACHE_DEVICE_BUDGET_GB`` GiB, else 90 % of the device's memory."""
    from_env = _env_gib("RNR_CACHE_DEVICE_BUDGET_GB")
    if from_env is not None:
        return from_env
    if device.type == "cuda" and torch.cuda.is_available():
        index = device.index if device.index is not None else torch.cuda.current_device()
        return int(torch.cuda.get_device_properties(index).total_memory * 0.9)
    return None


def _normalize(device: torch.device) -> torch.device:
    """``cuda`` -> ``cuda:N`` (the current device) so that one device has one name."""
    if device.type == "cuda" and device.index is None and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return device


def _target_device(spec: ModelSpec) -> torch.device:
    try:
        return _normalize(resolve_device(spec.device))
    except (RnRError, RuntimeError):  # the backend reports unusable devices when it loads
        return _CPU


def _describe(spec: ModelSpec) -> str:
    where = spec.path or "built-in"
    return f"{spec.kind} '{spec.backend}' ({where}, device={spec.device}, dtype={spec.dtype})"


# ---- the cache -----------------------------------------------------------------------------------
@dataclass
class _Entry:
    spec: ModelSpec
    model: Any
    bytes: int
    home: torch.device
    """Where the model runs (resolved from the spec); it returns there after an offload."""
    location: torch.device
    """Where its memory is now: ``home``, or the CPU while offloaded."""

    @property
    def offloaded(self) -> bool:
        return self.location != self.home


@dataclass
class _SpecCounters:
    loads: int = 0
    hits: int = 0
    offloads: int = 0
    restores: int = 0
    evictions: int = 0
    last_load_seconds: float = 0.0


@dataclass
class _Totals:
    loads: int = 0
    hits: int = 0
    failures: int = 0
    offloads: int = 0
    restores: int = 0
    evictions: int = 0
    releases: int = 0
    per_spec: dict[ModelSpec, _SpecCounters] = field(default_factory=dict)

    def of(self, spec: ModelSpec) -> _SpecCounters:
        return self.per_spec.setdefault(spec, _SpecCounters())


class ModelCache:
    """Loaded models by spec, least recently used last out; see the module docstring.

    ``budget_bytes`` / ``device_budget_bytes``: ``None`` means "no limit"; the string ``"auto"``
    picks :func:`default_budget_bytes` / :func:`default_device_budget_bytes`. ``loader`` builds a model
    from a spec (default :func:`rnr.registry.build`).
    """

    def __init__(self, budget_bytes: int | str | None = "auto", device_budget_bytes: int | str | None = "auto",
                 loader: Callable[[ModelSpec], Any] = registry.build) -> None:
        self._lock = threading.RLock()
        self._spec_locks: dict[ModelSpec, threading.Lock] = {}
        self._entries: OrderedDict[ModelSpec, _Entry] = OrderedDict()
        self._hooks: list[BeforeLoadHook] = []
        self._totals = _Totals()
        self._loader = loader
        self.budget_bytes = default_budget_bytes() if budget_bytes == "auto" else budget_bytes
        self._device_budget = device_budget_bytes

    # ---- configuration ---------------------------------------------------------------------------
    def set_budget(self, budget_bytes: int | str | None = "keep", device_budget_bytes: int | str | None = "keep") -> None:
        """Change the budgets ("keep" leaves one as it is) and evict or offload to meet them now."""
        with self._lock:
            if budget_bytes != "keep":
                self.budget_bytes = default_budget_bytes() if budget_bytes == "auto" else budget_bytes
            if device_budget_bytes != "keep":
                self._device_budget = device_budget_bytes
            for device in {e.location for e in self._entries.values()}:
                self._make_room(device, 0, keep=None)

    def device_budget_bytes(self, device: torch.device) -> int | None:
        """The budget for models resident on ``device`` (``None`` for the CPU: see ``budget_bytes``)."""
        if device.type == "cpu":
            return None
        if self._device_budget == "auto":
            return default_device_budget_bytes(device)
        return self._device_budget  # type: ignore[return-value]

    def add_before_load_hook(self, hook: BeforeLoadHook) -> None:
        """Call ``hook(bytes_needed, device)`` before each load (outside the cache's locks)."""
        with self._lock:
            if hook not in self._hooks:
                self._hooks.append(hook)

    def remove_before_load_hook(self, hook: BeforeLoadHook) -> None:
        with self._lock:
            if hook in self._hooks:
                self._hooks.remove(hook)

    # ---- the one call nodes make -----------------------------------------------------------------
    def get(self, spec: ModelSpec) -> Any:
        """The loaded model for ``spec``, loading it on first use; equal specs give the same object."""
        if not isinstance(spec, ModelSpec):
            raise TypeError(f"rnr.cache.get expects a ModelSpec, got {type(spec).__name__}")
        with self._lock:
            entry = self._entries.get(spec)
            if entry is not None and not entry.offloaded:
                return self._hit(entry)
            spec_lock = self._spec_locks.setdefault(spec, threading.Lock())
        with spec_lock:
            with self._lock:
                entry = self._entries.get(spec)
                if entry is not None and not entry.offloaded:
                    return self._hit(entry)
            if entry is not None:
                return self._restore(entry)
            return self._load(spec)

    def _hit(self, entry: _Entry) -> Any:
        self._entries.move_to_end(entry.spec)
        self._totals.hits += 1
        self._totals.of(entry.spec).hits += 1
        return entry.model

    def _load(self, spec: ModelSpec) -> Any:
        home = _target_device(spec)
        expected = estimate_spec_bytes(spec)
        with self._lock:
            self._make_room(home, expected, keep=None)
            hooks = list(self._hooks)
        for hook in hooks:
            hook(expected, home)
        start = time.perf_counter()
        try:
            model = self._loader(spec)
        except BaseException:
            with self._lock:
                self._totals.failures += 1
            raise
        seconds = time.perf_counter() - start
        size = model_bytes(model)
        # The backend decides where its weights go; that place is the model's home from now on.
        location = model_device(model, default=home)
        with self._lock:
            entry = _Entry(spec, model, size, home=location, location=location)
            self._entries[spec] = entry
            counters = self._totals.of(spec)
            counters.loads += 1
            counters.last_load_seconds = seconds
            self._totals.loads += 1
            self._make_room(entry.location, 0, keep=spec)
        log.info("loaded %s in %.2f s: %.1f MB on %s", _describe(spec), seconds, size / 2**20, entry.location)
        return model

    def _restore(self, entry: _Entry) -> Any:
        with self._lock:
            self._make_room(entry.home, entry.bytes, keep=entry.spec)
            hooks = list(self._hooks)
        for hook in hooks:
            hook(entry.bytes, entry.home)
        with self._lock:
            self._move(entry, entry.home)
            self._totals.restores += 1
            self._totals.of(entry.spec).restores += 1
            return self._hit(entry)

    # ---- budgets ---------------------------------------------------------------------------------
    def _resident_bytes(self, device: torch.device) -> int:
        return sum(e.bytes for e in self._entries.values() if e.location == device)

    def _make_room(self, device: torch.device, incoming: int, keep: ModelSpec | None) -> None:
        """Offload (accelerators) or evict (host memory) least recently used models to fit ``incoming``."""
        if device.type != "cpu":
            limit = self.device_budget_bytes(device)
            if limit is not None:
                for entry in list(self._entries.values()):
                    if self._resident_bytes(device) + incoming <= limit:
                        break
                    if entry.spec == keep or entry.location != device or entry.bytes == 0:
                        continue
                    if callable(getattr(entry.model, "to", None)):
                        self._offload(entry)
                    else:
                        self._evict(entry, f"over the {device} budget and not offloadable")
            incoming = 0
        if self.budget_bytes is None:
            return
        for entry in list(self._entries.values()):
            if self._resident_bytes(_CPU) + incoming <= self.budget_bytes:
                break
            if entry.spec == keep or entry.location != _CPU or entry.bytes == 0:
                continue
            self._evict(entry, "over the host-memory budget")

    def _move(self, entry: _Entry, device: torch.device) -> None:
        moved = entry.model.to(device)
        if moved is not None:
            entry.model = moved
        entry.location = device

    def _offload(self, entry: _Entry) -> None:
        self._move(entry, _CPU)
        self._totals.offloads += 1
        self._totals.of(entry.spec).offloads += 1
        log.info("offloaded %s to the CPU (%.1f MB)", _describe(entry.spec), entry.bytes / 2**20)
        self._make_room(_CPU, 0, keep=entry.spec)

    def _evict(self, entry: _Entry, why: str) -> None:
        del self._entries[entry.spec]
        self._totals.evictions += 1
        self._totals.of(entry.spec).evictions += 1
        log.info("evicted %s (%s, %.1f MB)", _describe(entry.spec), why, entry.bytes / 2**20)

    # ---- host cooperation ------------------------------------------------------------------------
    def offload_all(self, device: torch.device | str | None = None) -> int:
        """Move every model on an accelerator (or only on ``device``) to the CPU; returns bytes moved."""
        wanted = _normalize(torch.device(device)) if device is not None else None
        moved = 0
        with self._lock:
            for entry in list(self._entries.values()):
                if entry.location.type == "cpu" or entry.bytes == 0:
                    continue
                if wanted is not None and not _same_device(entry.location, wanted):
                    continue
                if callable(getattr(entry.model, "to", None)):
                    self._offload(entry)
                    moved += entry.bytes
                else:
                    self._evict(entry, "host asked to free the device and it is not offloadable")
                    moved += entry.bytes
        return moved

    def release(self, spec: ModelSpec) -> bool:
        """Forget one model; returns whether it was loaded."""
        with self._lock:
            entry = self._entries.pop(spec, None)
            if entry is not None:
                self._totals.releases += 1
            return entry is not None

    def release_all(self) -> int:
        """Forget every loaded model (statistics are kept); returns how many were released."""
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
            self._totals.releases += count
        if count:
            log.info("released %d model(s)", count)
        return count

    def clear(self) -> None:
        """Forget every loaded model and reset the statistics."""
        with self._lock:
            self._entries.clear()
            self._totals = _Totals()

    # ---- inspection ------------------------------------------------------------------------------
    def __contains__(self, spec: object) -> bool:
        with self._lock:
            return spec in self._entries

    def stats(self) -> dict[str, Any]:
        """Counters and the loaded models, as plain JSON-ready data."""
        with self._lock:
            models = []
            for spec, entry in self._entries.items():
                counters = self._totals.of(spec)
                models.append({
                    "kind": spec.kind, "backend": spec.backend, "path": spec.path, "device": spec.device,
                    "dtype": spec.dtype, "options": dict(spec.options), "bytes": entry.bytes,
                    "location": str(entry.location), "offloaded": entry.offloaded, "loads": counters.loads,
                    "hits": counters.hits, "last_load_seconds": round(counters.last_load_seconds, 4),
                })
            by_location: dict[str, int] = {}
            for entry in self._entries.values():
                by_location[str(entry.location)] = by_location.get(str(entry.location), 0) + entry.bytes
            t = self._totals
            return {
                "models": models, "loads": t.loads, "hits": t.hits, "failures": t.failures,
                "offloads": t.offloads, "restores": t.restores, "evictions": t.evictions, "releases": t.releases,
                "bytes_by_location": by_location, "budget_bytes": self.budget_bytes,
                "device_budget_bytes": self._device_budget if self._device_budget != "auto" else "auto",
            }


def _same_device(a: torch.device, b: torch.device) -> bool:
    if a.type != b.type:
        return False
    if a.index is None or b.index is None:
        return True
    return a.index == b.index


# ---- the process-wide cache ----------------------------------------------------------------------
_default = ModelCache()


def default_cache() -> ModelCache:
    """The one cache every node and the CLI share."""
    return _default


def get(spec: ModelSpec) -> Any:
    """The loaded model for ``spec``, loading it on first use; equal specs return the same object."""
    return _default.get(spec)


def clear() -> None:
    """Forget every loaded model and reset the statistics."""
    _default.clear()


def stats() -> dict[str, Any]:
    """Counters and loaded models of the process-wide cache."""
    return _default.stats()


def release(spec: ModelSpec) -> bool:
    return _default.release(spec)


def release_all() -> int:
    """Forget every loaded model; returns how many were released."""
    return _default.release_all()


def offload_all(device: torch.device | str | None = None) -> int:
    """Move accelerator-resident models to the CPU; returns bytes moved."""
    return _default.offload_all(device)


def set_budget(budget_bytes: int | str | None = "keep", device_budget_bytes: int | str | None = "keep") -> None:
    _default.set_budget(budget_bytes, device_budget_bytes)


def add_before_load_hook(hook: BeforeLoadHook) -> None:
    """Call ``hook(bytes_needed, device)`` before every load of the process-wide cache."""
    _default.add_before_load_hook(hook)


def remove_before_load_hook(hook: BeforeLoadHook) -> None:
    _default.remove_before_load_hook(hook)
