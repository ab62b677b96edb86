"""rnr.cache: identity, laziness, sizes, LRU budget eviction, offload, hooks and thread safety.

The models are small real torch modules; specs name them through a test backend registered in
:mod:`rnr.registry` (or through the cache's ``loader`` argument for the budget arithmetic).
"""

from __future__ import annotations

import threading

import pytest
import torch
from safetensors.torch import save_file

from rnr import cache, registry
from rnr.cache import ModelCache, estimate_spec_bytes, model_bytes, model_device
from rnr.registry import ModelSpec

WIDTH = 32
LINEAR_BYTES = (WIDTH * WIDTH + WIDTH) * 4  # one fp32 nn.Linear(WIDTH, WIDTH)


class TinyReasoner:
    """A wrapper object holding real modules, as backends do; ``to`` makes it offloadable."""

    name = "tiny"

    def __init__(self, seed: int, layers: int = 1) -> None:
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(*[torch.nn.Linear(WIDTH, WIDTH) for _ in range(layers)])

    def to(self, device):
        self.net.to(device)
        return self


LOADS: list[ModelSpec] = []


def load(spec: ModelSpec) -> TinyReasoner:
    """The test backend's entry point (``rnr.registry`` imports this module by name)."""
    LOADS.append(spec)
    model = TinyReasoner(seed=int(spec.option("seed", 0)), layers=int(spec.option("layers", 1)))
    device = spec.device if spec.device != "auto" else "cpu"
    return model.to(device)


@pytest.fixture(autouse=True)
def tiny_backend(monkeypatch):
    """Register this module as the reasoner backend 'tiny_test' (registry imports it by name)."""
    monkeypatch.setitem(registry.REASONER_BACKENDS, "tiny_test", __name__)
    LOADS.clear()
    cache.clear()
    yield
    cache.clear()


def spec(**options) -> ModelSpec:
    return ModelSpec.make("reasoner", "tiny_test", device="cpu", **options)


def counting_loader(calls: list):
    def loader(s: ModelSpec):
        calls.append(s)
        return load(s)
    return loader


# ---- identity and laziness ----------------------------------------------------------------------
def test_equal_specs_share_one_object_through_the_process_wide_cache(tiny_backend):
    assert cache.stats()["loads"] == 0 and LOADS == []  # lazy: nothing loads before the first get
    first = cache.get(spec(seed=1))
    again = cache.get(ModelSpec.make("reasoner", "tiny_test", device="cpu", seed=1))
    other = cache.get(spec(seed=2))
    assert first is again
    assert other is not first
    assert not torch.equal(first.net[0].weight, other.net[0].weight)
    assert len(LOADS) == 2
    stats = cache.stats()
    assert (stats["loads"], stats["hits"]) == (2, 1)
    by_seed = {m["options"]["seed"]: m for m in stats["models"]}
    assert by_seed[1]["loads"] == 1 and by_seed[1]["hits"] == 1 and by_seed[1]["bytes"] == LINEAR_BYTES


def test_release_all_forgets_models_but_keeps_counts(tiny_backend):
    first = cache.get(spec(seed=1))
    assert cache.release_all() == 1
    assert cache.stats()["models"] == [] and cache.stats()["releases"] == 1
    reloaded = cache.get(spec(seed=1))
    assert reloaded is not first
    assert torch.equal(reloaded.net[0].weight, first.net[0].weight)
    assert cache.stats()["loads"] == 2
    cache.clear()
    assert cache.stats()["loads"] == 0 and cache.stats()["models"] == []


def test_a_failed_load_caches_nothing_and_is_retried():
    calls = []

    def flaky(s):
        calls.append(s)
        if len(calls) == 1:
            raise OSError("disk hiccup")
        return TinyReasoner(seed=0)

    c = ModelCache(budget_bytes=None, device_budget_bytes=None, loader=flaky)
    with pytest.raises(OSError):
        c.get(spec())
    assert c.stats()["failures"] == 1 and c.stats()["models"] == []
    assert isinstance(c.get(spec()), TinyReasoner)
    assert len(calls) == 2


def test_get_rejects_what_is_not_a_spec():
    with pytest.raises(TypeError, match="ModelSpec"):
        ModelCache(loader=load).get(("reasoner", "classic"))


# ---- sizes ---------------------------------------------------------------------------------------
def test_model_bytes_counts_parameters_and_buffers_once():
    assert model_bytes(torch.nn.Linear(WIDTH, WIDTH)) == LINEAR_BYTES
    assert model_bytes(TinyReasoner(0, layers=3)) == 3 * LINEAR_BYTES
    bn = torch.nn.BatchNorm2d(8)  # 2x8 parameters, 2x8 running stats + 1 int64 counter
    assert model_bytes(bn) == 4 * 8 * 4 + 8

    tied = torch.nn.Module()
    tied.a = torch.nn.Linear(WIDTH, WIDTH, bias=False)
    tied.b = torch.nn.Linear(WIDTH, WIDTH, bias=False)
    tied.b.weight = tied.a.weight
    assert model_bytes(tied) == WIDTH * WIDTH * 4

    class Holder:
        def __init__(self):
            self.parts = {"net": torch.nn.Linear(WIDTH, WIDTH).half(), "table": torch.zeros(10, dtype=torch.float64)}
            self.name = "x"

    assert model_bytes(Holder()) == LINEAR_BYTES // 2 + 80

    class Declared:
        def memory_bytes(self):
            return 12345

    assert model_bytes(Declared()) == 12345
    assert model_bytes(object()) == 0 and model_device(object()) == torch.device("cpu")


def test_expected_size_before_loading_is_the_weight_files_on_disk(tmp_path):
    weights = {"w": torch.zeros(256, 256)}
    save_file(weights, tmp_path / "model.safetensors")
    (tmp_path / "folder").mkdir()
    save_file(weights, tmp_path / "folder" / "part1.safetensors")
    save_file(weights, tmp_path / "folder" / "part2.safetensors")
    (tmp_path / "folder" / "config.json").write_text("{}")
    one = (tmp_path / "model.safetensors").stat().st_size
    assert one > 256 * 256 * 4
    assert estimate_spec_bytes(ModelSpec.make("reasoner", "classic", tmp_path / "model.safetensors")) == one
    assert estimate_spec_bytes(ModelSpec.make("reasoner", "classic", tmp_path / "folder")) == 2 * one
    assert estimate_spec_bytes(ModelSpec.make("reasoner", "classic")) == 0


# ---- budget --------------------------------------------------------------------------------------
def test_host_budget_evicts_the_least_recently_used_model():
    calls = []
    c = ModelCache(budget_bytes=int(2.5 * LINEAR_BYTES), device_budget_bytes=None, loader=counting_loader(calls))
    a = c.get(spec(seed=1))
    c.get(spec(seed=2))
    assert c.get(spec(seed=1)) is a  # a is now the most recently used; b the least
    c.get(spec(seed=3))
    held = {m["options"]["seed"] for m in c.stats()["models"]}
    assert held == {1, 3}
    assert c.stats()["evictions"] == 1 and c.stats()["bytes_by_location"] == {"cpu": 2 * LINEAR_BYTES}
    assert spec(seed=2) not in c and spec(seed=1) in c
    c.get(spec(seed=2))  # comes back by loading again, pushing out the LRU model (1)
    assert [s.option("seed") for s in calls] == [1, 2, 3, 2]
    assert {m["options"]["seed"] for m in c.stats()["models"]} == {3, 2}


def test_a_model_larger_than_the_budget_still_loads_and_pushes_out_the_rest():
    c = ModelCache(budget_bytes=2 * LINEAR_BYTES, device_budget_bytes=None, loader=load)
    c.get(spec(seed=1))
    c.get(spec(seed=2))
    big = c.get(spec(seed=3, layers=4))
    assert c.stats()["models"][0]["bytes"] == 4 * LINEAR_BYTES
    assert [m["options"]["seed"] for m in c.stats()["models"]] == [3]
    assert c.get(spec(seed=3, layers=4)) is big


def test_lowering_the_budget_evicts_now_and_weightless_models_are_never_evicted():
    c = ModelCache(budget_bytes=None, device_budget_bytes=None, loader=load)
    for seed in range(4):
        c.get(spec(seed=seed))
    free = ModelCache(budget_bytes=0, device_budget_bytes=None, loader=lambda s: object())
    weightless = free.get(spec(seed=9))
    c.set_budget(budget_bytes=LINEAR_BYTES)
    assert [m["options"]["seed"] for m in c.stats()["models"]] == [3]
    assert free.get(spec(seed=9)) is weightless and free.stats()["evictions"] == 0


# ---- hooks ---------------------------------------------------------------------------------------
def test_before_load_hook_gets_the_expected_size_and_device(tmp_path):
    save_file({"w": torch.zeros(64, 64)}, tmp_path / "tiny.safetensors")
    seen = []
    c = ModelCache(budget_bytes=None, device_budget_bytes=None, loader=load)
    c.add_before_load_hook(lambda nbytes, device: seen.append((nbytes, device)))
    with_file = ModelSpec.make("reasoner", "classic", tmp_path / "tiny.safetensors", device="cpu")
    c.get(with_file)
    c.get(with_file)  # a hit: no load, no hook
    assert seen == [((tmp_path / "tiny.safetensors").stat().st_size, torch.device("cpu"))]


def test_offload_all_on_a_cpu_only_cache_moves_nothing():
    c = ModelCache(budget_bytes=None, device_budget_bytes=None, loader=load)
    model = c.get(spec(seed=1))
    assert c.offload_all() == 0 and c.offload_all("cpu") == 0
    assert c.get(spec(seed=1)) is model and c.stats()["offloads"] == 0


# ---- threads -------------------------------------------------------------------------------------
def test_concurrent_gets_of_one_spec_load_it_once(tiny_backend):
    threads_n = 8
    barrier = threading.Barrier(threads_n)
    results = [None] * threads_n
    started = threading.Event()
    release = threading.Event()

    def slow_load(s):
        LOADS.append(s)
        started.set()
        release.wait(timeout=30)  # hold the load open until every thread is queued on it
        return TinyReasoner(seed=0)

    c = ModelCache(budget_bytes=None, device_budget_bytes=None, loader=slow_load)

    def worker(i):
        barrier.wait(timeout=30)
        results[i] = c.get(spec(seed=5))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    assert started.wait(timeout=30)
    release.set()
    for t in threads:
        t.join(timeout=30)
    assert len(LOADS) == 1
    assert all(r is results[0] for r in results)
    assert c.stats()["loads"] == 1 and c.stats()["hits"] == threads_n - 1


def test_different_specs_load_in_parallel():
    """The lock is per spec: spec A's load can wait for spec B's load to start without deadlock."""
    b_started = threading.Event()
    a_saw_b = []

    def loader(s):
        if s.option("seed") == 1:
            a_saw_b.append(b_started.wait(timeout=30))
        else:
            b_started.set()
        return TinyReasoner(seed=int(s.option("seed")))

    c = ModelCache(budget_bytes=None, device_budget_bytes=None, loader=loader)
    ta = threading.Thread(target=c.get, args=(spec(seed=1),))
    ta.start()
    c.get(spec(seed=2))
    ta.join(timeout=30)
    assert a_saw_b == [True]
    assert spec(seed=1) in c and spec(seed=2) in c


# ---- accelerators (run on a GPU machine; skipped on CPU-only ones) -------------------------------
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_device_budget_offloads_to_cpu_and_restores_on_next_get():
    cuda_spec = lambda seed: ModelSpec.make("reasoner", "tiny_test", device="cuda", seed=seed)
    c = ModelCache(budget_bytes=None, device_budget_bytes=int(1.5 * LINEAR_BYTES), loader=load)
    a = c.get(cuda_spec(1))
    assert a.net[0].weight.device.type == "cuda"
    b = c.get(cuda_spec(2))
    assert a.net[0].weight.device.type == "cpu" and b.net[0].weight.device.type == "cuda"
    assert c.stats()["offloads"] == 1
    assert c.get(cuda_spec(1)) is a  # restored, not reloaded
    assert a.net[0].weight.device.type == "cuda" and b.net[0].weight.device.type == "cpu"
    assert (c.stats()["loads"], c.stats()["restores"]) == (2, 1)
    assert c.offload_all() == LINEAR_BYTES
    assert a.net[0].weight.device.type == "cpu"
    c.get(cuda_spec(1))
    assert a.net[0].weight.device.type == "cuda"


class DeclaredSizeModel:
    """Stands for a model on an accelerator on machines without one: it declares its size
    (``memory_bytes``) and records the moves the cache asks for (``to``)."""

    def __init__(self, spec: ModelSpec, size: int):
        self.size, self.device, self.moves = size, torch.device(spec.device), []

    def memory_bytes(self) -> int:
        return self.size

    def to(self, device):
        self.device = torch.device(device)
        self.moves.append(str(self.device))
        return self


def test_device_budget_bookkeeping_offloads_lru_and_restores_without_reloading():
    """The 'meta' device plays the accelerator: the budget logic is the same for every non-CPU device."""
    calls = []

    def loader(s):
        calls.append(s)
        return DeclaredSizeModel(s, 100)

    on_device = lambda seed: ModelSpec.make("reasoner", "tiny_test", device="meta", seed=seed)
    c = ModelCache(budget_bytes=None, device_budget_bytes=150, loader=loader)
    a = c.get(on_device(1))
    b = c.get(on_device(2))  # does not fit beside a: a (least recently used) goes to the CPU
    assert (a.device.type, b.device.type) == ("cpu", "meta") and a.moves == ["cpu"]
    assert c.stats()["bytes_by_location"] == {"cpu": 100, "meta": 100}
    assert c.get(on_device(1)) is a  # restored, not reloaded; b makes room
    assert (a.device.type, b.device.type) == ("meta", "cpu")
    assert len(calls) == 2 and (c.stats()["offloads"], c.stats()["restores"]) == (2, 1)
    assert c.offload_all("meta") == 100 and a.device.type == "cpu"
    # a host budget below what was offloaded evicts the least recently used model from the CPU
    c.set_budget(budget_bytes=150)
    assert [m["options"]["seed"] for m in c.stats()["models"]] == [1]
    assert c.get(on_device(2)) is not b and len(calls) == 3
