"""The shipped workflows: valid UI-format files for our node definitions and up to date with their
builder. One of them is also converted to API format by comfy-cli's own converter and executed node by
node through ComfyUI's calling convention; tests/integration runs every runnable one in the real server."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
import torch
from comfy_calls import REPO_ROOT, call, mappings, node_info
from workflow_checks import check_workflow, load, notes

from rnr import cache

WORKFLOWS = REPO_ROOT / "workflows"
RUNNABLE = ["01_restore_default", "02_diagnose_edit_restore", "03_severity_report", "06_batch_of_photos"]
NEEDS_MODELS = ["04_big_models", "05_diagnosis_prompt_to_qwen_image_edit"]


def builder():
    """workflows/build_workflows.py, imported once."""
    name = "rnr_build_workflows"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, WORKFLOWS / "build_workflows.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the file executes
        spec.loader.exec_module(module)
    return sys.modules[name]


def core_definitions() -> dict[str, dict]:
    """/object_info-shaped entries for the ComfyUI core nodes the workflows use, from the builder's
    description of them (sockets and widget order; the real values are checked against a server)."""
    out = {}
    for name, spec in builder().CORE.items():
        required, optional = {}, {}
        for socket, kind, is_optional in spec.sockets:
            (optional if is_optional else required)[socket] = (kind, {})
        for widget, kind, default in spec.widgets:
            if kind == "CONTROL":
                continue
            required[widget] = ([default], {}) if kind == "COMBO" else (kind, {"default": default})
        out[name] = {"input": {"required": required, "optional": optional},
                     "input_order": {"required": list(required), "optional": list(optional)},
                     "output": [t for _, t in spec.outputs], "output_name": [n for n, _ in spec.outputs]}
    return out


def definitions() -> dict[str, dict]:
    return {**core_definitions(), **{name: node_info(name) for name in mappings()}}


def test_every_workflow_is_shipped_and_up_to_date_with_its_builder():
    shipped = sorted(p.stem for p in WORKFLOWS.glob("*.json"))
    assert shipped == sorted(RUNNABLE + NEEDS_MODELS)
    for build in builder().BUILDERS:
        graph = build()
        on_disk = load(WORKFLOWS / f"{graph.name}.json")
        assert on_disk == json.loads(json.dumps(graph.to_json())), \
            f"{graph.name}.json is stale: run python workflows/build_workflows.py"


@pytest.mark.parametrize("name", RUNNABLE + NEEDS_MODELS)
def test_workflow_is_valid_for_our_node_definitions(name):
    workflow = load(WORKFLOWS / f"{name}.json")
    (text,) = notes(workflow)
    assert len(text) > 200
    allowed = set()
    if name in NEEDS_MODELS:
        # model names the user must add: each is named in the note with the folder it goes in
        b = builder()
        allowed = {b.BIG_REASONER, b.BIG_RESTORER}
        assert all(model in text for model in allowed | {b.QWEN_UNET, b.QWEN_CLIP, b.QWEN_VAE}
                   if model in json.dumps(workflow["nodes"][1:]))
    check_workflow(workflow, definitions(), allowed_missing=allowed, unchecked_values=set(core_definitions()))
    ours = [n for n in workflow["nodes"] if n["type"].startswith("RnR")]
    assert ours and all(n["type"] in mappings() for n in ours)


# ---- running the runnable ones without ComfyUI ---------------------------------------------------
def to_api(workflow: dict) -> dict:
    converter = pytest.importorskip("comfy_cli.workflow_to_api")
    info = definitions()
    return converter.convert_ui_to_api(workflow, info)


class MiniComfy:
    """Executes an API-format prompt: our nodes through comfy_calls.call, three core nodes by stand-ins."""

    def __init__(self, prompt: dict):
        self.prompt, self.outputs, self.saved, self.previews = prompt, {}, {}, {}

    def value(self, ref):
        node_id, slot = ref
        return self.output(node_id)[slot]

    def output(self, node_id: str):
        if node_id not in self.outputs:
            entry = self.prompt[node_id]
            inputs = {k: (self.value(v) if isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) else v)
                      for k, v in entry["inputs"].items()}
            kind = entry["class_type"]
            if kind == "SaveImage":
                self.saved[inputs["filename_prefix"]] = inputs["images"]
                result = ()
            elif kind == "PreviewAny":
                source = inputs["source"]
                self.previews[node_id] = source if isinstance(source, str) else json.dumps(source)
                result = ()
            elif kind == "ImageBatch":
                first, second = inputs["image1"], inputs["image2"]
                if first.shape[1:] != second.shape[1:]:
                    second = torch.nn.functional.interpolate(second.movedim(-1, 1), size=first.shape[1:3],
                                                             mode="bilinear").movedim(1, -1)
                result = (torch.cat([first, second]),)
            else:
                result = call(kind, defaults=False, **inputs)
            self.outputs[node_id] = result
        return self.outputs[node_id]

    def run(self) -> MiniComfy:
        for node_id, entry in self.prompt.items():
            if entry["class_type"] in ("SaveImage", "PreviewAny"):
                self.output(node_id)
        return self


def run(name: str) -> MiniComfy:
    return MiniComfy(to_api(load(WORKFLOWS / f"{name}.json"))).run()


def mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b) ** 2).mean())


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


def test_edit_workflow_keeps_some_fog():
    result = run("02_diagnose_edit_restore")
    degraded = result.saved["RnR/02_degraded"]
    keep, full = result.saved["RnR/02_keep_fog"], result.saved["RnR/02_full"]
    assert keep.shape == full.shape == degraded.shape
    # the edited restore removed less haze: it stays closer to the degraded input, and hazier (brighter dark channel)
    assert mse(keep, degraded) < mse(full, degraded)
    assert float(keep.min(dim=-1).values.mean()) > float(full.min(dim=-1).values.mean())
    assert any("haze" in text and "25/100" in text for text in result.previews.values())
