"""The ComfyUI glue (progress bar, Cancel, memory hooks, model folders) against stand-ins of the few
ComfyUI functions it calls. The real server exercises the same code in tests/integration."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch
from comfy_calls import call, pack_module

from rnr import cache, registry
from rnr.diagnosis import Diagnosis
from rnr.registry import ModelSpec


class Reasoner:
    """A test reasoner that reports progress once per image, as backends do."""

    name = "steps_test"

    def __init__(self):
        self.net = torch.nn.Linear(4, 4)

    def diagnose(self, images, progress=None):
        out = []
        for i in range(images.shape[0]):
            out.append(Diagnosis.clean(source=self.name))
            if progress is not None:
                progress(i + 1, images.shape[0])
        return out


def load(spec):
    return Reasoner()


class FakeComfy:
    """Stand-ins for comfy.utils, comfy.model_management, folder_paths and server."""

    def __init__(self, tmp_path):
        self.bars, self.calls = [], []
        self.interrupted = False
        self.free_bytes = 10**12
        fake = self

        class ProgressBar:
            def __init__(self, total, node_id=None):
                self.total, self.updates = total, []
                fake.bars.append(self)

            def update_absolute(self, value, total=None, preview=None):
                self.updates.append((value, total))

        class InterruptProcessingException(Exception):
            pass

        def throw_exception_if_processing_interrupted():
            if fake.interrupted:
                fake.interrupted = False
                raise InterruptProcessingException()

        utils = types.ModuleType("comfy.utils")
        utils.ProgressBar = ProgressBar
        mm = types.ModuleType("comfy.model_management")
        mm.InterruptProcessingException = InterruptProcessingException
        mm.processing_interrupted = lambda: fake.interrupted
        mm.throw_exception_if_processing_interrupted = throw_exception_if_processing_interrupted
        mm.get_torch_device = lambda: torch.device("cpu")
        mm.unload_all_models = lambda: fake.calls.append("unload_all_models")
        mm.free_memory = lambda required, device, keep_loaded=[]: fake.calls.append(("free_memory", required, device))
        mm.get_free_memory = lambda device=None: fake.free_bytes
        mm.soft_empty_cache = lambda force=False: fake.calls.append("soft_empty_cache")
        comfy = types.ModuleType("comfy")
        comfy.utils, comfy.model_management = utils, mm
        folder_paths = types.ModuleType("folder_paths")
        folder_paths.models_dir = str(tmp_path / "models")
        folder_paths.folder_names_and_paths = {}

        def add_model_folder_path(name, path, is_default=False):
            paths = folder_paths.folder_names_and_paths.setdefault(name, ([], set()))[0]
            if path not in paths:
                paths.insert(0, path) if is_default else paths.append(path)

        folder_paths.add_model_folder_path = add_model_folder_path
        folder_paths.get_folder_paths = lambda name: list(folder_paths.folder_names_and_paths[name][0])
        diffusion_models = tmp_path / "models" / "diffusion_models"
        folder_paths.folder_names_and_paths["diffusion_models"] = ([str(diffusion_models)], {".safetensors"})
        folder_paths.get_filename_list = lambda name: sorted(
            p.name for p in Path(folder_paths.folder_names_and_paths[name][0][0]).glob("*.safetensors"))
        folder_paths.get_full_path = lambda name, file: str(Path(folder_paths.folder_names_and_paths[name][0][0]) / file)
        from aiohttp import web
        server = types.ModuleType("server")
        server.PromptServer = type("PromptServer", (), {"instance": types.SimpleNamespace(routes=web.RouteTableDef())})
        self.modules = {"comfy": comfy, "comfy.utils": utils, "comfy.model_management": mm,
                        "folder_paths": folder_paths, "server": server}
        self.mm, self.folder_paths, self.server = mm, folder_paths, server


@pytest.fixture
def comfy(tmp_path, monkeypatch):
    fake = FakeComfy(tmp_path)
    for name, module in fake.modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setitem(registry.REASONER_BACKENDS, "steps_test", __name__)
    cache.clear()
    yield fake
    cache.clear()


def image(batch=3):
    return torch.rand(batch, 24, 32, 3, generator=torch.Generator().manual_seed(0))


def test_reason_drives_the_progress_bar(comfy):
    (handle,) = call("RnRReasonerLoader", backend="steps_test")
    assert handle.spec.device == "cpu"  # "auto" became ComfyUI's device
    diagnoses, report = call("RnRReason", image=image(3), reasoner=handle)
    assert len(diagnoses) == 3 and "Image 3 of 3" in report
    assert len(comfy.bars) == 1 and comfy.bars[0].updates == [(1, 3), (2, 3), (3, 3)]


def test_cancel_stops_between_steps_as_a_comfyui_interrupt(comfy):
    (handle,) = call("RnRReasonerLoader", backend="steps_test")
    comfy.interrupted = True
    with pytest.raises(comfy.mm.InterruptProcessingException):
        call("RnRReason", image=image(3), reasoner=handle)
    assert comfy.bars[0].updates == [(1, 3)]  # stopped after the first image
    assert comfy.interrupted is False  # the flag is consumed, as ComfyUI's own nodes do


def test_without_comfyui_cancel_is_rnr_interrupted():
    glue = pack_module("nodes._comfy")
    from rnr.errors import Interrupted

    with pytest.raises(Interrupted), glue.comfy_interrupts():
        raise Interrupted("stop")
    progress = glue.progress_callback()
    progress(1, 2)  # no ComfyUI: a no-op


def test_install_hooks_folders_and_stats_route(comfy, monkeypatch):
    memory = pack_module("nodes.memory")
    monkeypatch.setattr(memory, "_installed", False)
    original_unload, original_free = comfy.mm.unload_all_models, comfy.mm.free_memory
    try:
        assert memory.install() is True
        paths = comfy.folder_paths.folder_names_and_paths
        assert paths["rnr_reasoners"][0][0].endswith("models/rnr/reasoners")
        assert paths["rnr_restorers"][0][0].endswith("models/rnr/restorers")
        assert [r.path for r in comfy.server.PromptServer.instance.routes] == ["/rnr/cache"]

        # "Unload models" / "Free model and node cache" in the UI: ComfyUI's models and ours go
        model = cache.get(ModelSpec.make("reasoner", "steps_test", device="cpu"))
        assert cache.stats()["models"]
        comfy.mm.unload_all_models()
        assert comfy.calls == ["unload_all_models"]
        assert cache.stats()["models"] == [] and cache.stats()["releases"] == 1
        assert cache.get(ModelSpec.make("reasoner", "steps_test", device="cpu")) is not model

        # before one of our loads, ComfyUI frees memory for it (nothing to free for weightless files)
        weights = comfy.folder_paths.models_dir
        import os

        from safetensors.torch import save_file
        os.makedirs(weights, exist_ok=True)
        save_file({"w": torch.zeros(100)}, os.path.join(weights, "w.safetensors"))
        comfy.calls.clear()
        cache.get(ModelSpec.make("reasoner", "steps_test", os.path.join(weights, "w.safetensors"), device="cpu"))
        size = os.path.getsize(os.path.join(weights, "w.safetensors"))
        assert comfy.calls == [("free_memory", size, torch.device("cpu")), "soft_empty_cache"]

        # ComfyUI short of memory on an accelerator: our models there are offloaded
        offloaded = []
        monkeypatch.setattr(cache, "offload_all", lambda device=None: offloaded.append(device) or 0)
        comfy.free_bytes = 0
        comfy.mm.free_memory(10**9, torch.device("cuda", 0))
        assert offloaded == [torch.device("cuda", 0)]
        comfy.mm.free_memory(10**9, torch.device("cpu"))  # models on the CPU stay
        assert offloaded == [torch.device("cuda", 0)]
    finally:
        cache.remove_before_load_hook(memory._free_comfy_memory)
        comfy.mm.unload_all_models, comfy.mm.free_memory = original_unload, original_free


def test_models_folders_inside_comfyui(comfy, tmp_path):
    (tmp_path / "models" / "rnr" / "restorers" / "my-edit-model").mkdir(parents=True)
    (tmp_path / "models" / "diffusion_models").mkdir(parents=True)
    for name in ("qwen_image_edit_2509_fp8_e4m3fn.safetensors", "flux1-dev.safetensors"):
        (tmp_path / "models" / "diffusion_models" / name).write_bytes(b"")
    loaders = pack_module("nodes.loaders")
    assert loaders.model_choices("restorer") == [
        "(built-in)", "my-edit-model", "diffusion_models/qwen_image_edit_2509_fp8_e4m3fn.safetensors"]
    assert loaders.model_choices("reasoner") == ["(built-in)"]
    assert loaders.resolve_model_path("restorer", "my-edit-model") == str(
        tmp_path / "models" / "rnr" / "restorers" / "my-edit-model")
    assert loaders.resolve_model_path(
        "restorer", "diffusion_models/qwen_image_edit_2509_fp8_e4m3fn.safetensors") == str(
        tmp_path / "models" / "diffusion_models" / "qwen_image_edit_2509_fp8_e4m3fn.safetensors")
