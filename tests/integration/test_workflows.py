"""Every shipped workflow in the real ComfyUI: the runnable ones run through comfy-cli and write images of
the right size that differ from the input where they should; the ones needing big models are checked
against the server's /object_info. A second run reuses the loaded models (measured by /rnr/cache)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "nodes"))

from comfyui_harness import REPO_ROOT
from workflow_checks import check_workflow

pytestmark = pytest.mark.comfyui
WORKFLOWS = REPO_ROOT / "workflows"
SAMPLES = REPO_ROOT / "rnr" / "assets" / "samples"


def load(name: str) -> dict:
    return json.loads((WORKFLOWS / f"{name}.json").read_text())


def saved(result, workflow: dict, title: str) -> list[np.ndarray]:
    """The images a SaveImage node (found by its title) wrote, as float arrays [H,W,3] in 0..1."""
    node = next(n for n in workflow["nodes"] if n["type"] == "SaveImage" and n.get("title") == title)
    files = result.image_files(node_id=node["id"])
    assert files, f"no images from '{title}' in {result.envelope}"
    arrays = []
    for path in files:
        assert path.is_file(), path
        with Image.open(path) as image:
            arrays.append(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0)
    return arrays


def clean(sample: str) -> np.ndarray:
    with Image.open(SAMPLES / sample) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a - b) ** 2).mean())


def previews(server, result) -> list[str]:
    """Texts shown by the PreviewAny nodes of a finished run."""
    history = server.get_json(f"/history/{result.prompt_id}")
    texts = []
    for entry in history.values():
        for output in entry.get("outputs", {}).values():
            texts.extend(str(t) for t in output.get("text", []))
    return texts


def test_01_restore_default(comfy_server):
    workflow = load("01_restore_default")
    result = comfy_server.run_workflow(WORKFLOWS / "01_restore_default.json")
    (degraded,), (restored,) = saved(result, workflow, "Degraded"), saved(result, workflow, "Restored")
    reference = clean("landscape.jpg")
    assert degraded.shape == restored.shape == reference.shape == (576, 768, 3)
    assert mse(restored, degraded) > 1e-4
    assert mse(restored, reference) < mse(degraded, reference)


def test_02_diagnose_edit_restore_keeps_some_fog(comfy_server):
    workflow = load("02_diagnose_edit_restore")
    result = comfy_server.run_workflow(WORKFLOWS / "02_diagnose_edit_restore.json")
    (degraded,) = saved(result, workflow, "Degraded")
    (keep,) = saved(result, workflow, "Restored, some fog kept")
    (full,) = saved(result, workflow, "Restored as diagnosed")
    assert keep.shape == full.shape == degraded.shape == (576, 768, 3)
    assert mse(keep, degraded) < mse(full, degraded)
    assert keep.min(axis=-1).mean() > full.min(axis=-1).mean()  # hazier: a brighter dark channel
    assert any("25/100" in text for text in previews(comfy_server, result))


def test_03_severity_report(comfy_server):
    workflow = load("03_severity_report")
    result = comfy_server.run_workflow(WORKFLOWS / "03_severity_report.json")
    (degraded,), (restored,) = saved(result, workflow, "Degraded"), saved(result, workflow, "Restored")
    assert degraded.shape == restored.shape == (480, 768, 3)
    assert mse(restored, degraded) > 1e-4
    texts = previews(comfy_server, result)
    report = next(t for t in texts if "reduction" in t)
    overall = float(next(t for t in texts if "reduction" not in t))
    assert overall > 0, report


def test_06_batch_of_photos(comfy_server):
    workflow = load("06_batch_of_photos")
    result = comfy_server.run_workflow(WORKFLOWS / "06_batch_of_photos.json")
    degraded, restored = saved(result, workflow, "Degraded batch"), saved(result, workflow, "Restored batch")
    assert len(degraded) == len(restored) == 3
    for before, after in zip(degraded, restored):
        assert before.shape == after.shape == (480, 768, 3)
        assert mse(after, before) > 1e-4
    assert any("Image 3 of 3" in text for text in previews(comfy_server, result))


def model_load_lines(log: str) -> int:
    """rnr.cache logs one line per model load."""
    return log.count("loaded reasoner '") + log.count("loaded restorer '")


def test_second_run_reuses_the_loaded_models(comfy_server, tmp_path):
    """Like pressing Queue again with a new seed: the nodes run again, the models do not load again."""
    name = "01_restore_default"
    if not comfy_server.get_json("/rnr/cache")["models"]:  # run alone: load the models first
        comfy_server.run_workflow(WORKFLOWS / f"{name}.json")
    before = comfy_server.get_json("/rnr/cache")
    workflow = load(name)
    degrade = next(n for n in workflow["nodes"] if n["type"] == "RnRDegrade")
    degrade["widgets_values"][4] += 1  # the seed: Degrade and Restore must execute again
    path = tmp_path / "rerun.json"
    path.write_text(json.dumps(workflow))
    log_before = model_load_lines(comfy_server.log_text())
    comfy_server.run_workflow(path)
    after = comfy_server.get_json("/rnr/cache")
    assert before["models"], "nothing was loaded through the cache"
    assert after["loads"] == before["loads"], (before, after)
    assert after["hits"] > before["hits"], (before, after)
    per_model = {(m["kind"], m["backend"], m["path"]): m["loads"] for m in before["models"]}
    assert {(m["kind"], m["backend"], m["path"]): m["loads"] for m in after["models"]} == per_model
    assert model_load_lines(comfy_server.log_text()) == log_before


# ---- the workflows whose models cannot be on this machine ----------------------------------------
@pytest.fixture
def placeholder_models(comfy_server):
    """Empty stand-ins for the model files (d) and (e) name, so that /object_info lists them."""
    spec = importlib.util.spec_from_file_location("rnr_build_workflows", WORKFLOWS / "build_workflows.py")
    builder = sys.modules.setdefault("rnr_build_workflows", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(builder)
    models = comfy_server.root / "models"
    created = [models / "rnr" / "reasoners" / builder.BIG_REASONER, models / "rnr" / "restorers" / builder.BIG_RESTORER]
    for folder in created:
        folder.mkdir(parents=True)
    files = [models / "diffusion_models" / builder.QWEN_UNET, models / "text_encoders" / builder.QWEN_CLIP,
             models / "vae" / builder.QWEN_VAE]
    for file in files:
        file.write_bytes(b"")
    yield
    for file in files:
        file.unlink()
    for folder in created:
        folder.rmdir()


@pytest.mark.parametrize("name", ["04_big_models", "05_diagnosis_prompt_to_qwen_image_edit"])
def test_big_model_workflows_are_valid_for_the_real_server(comfy_server, placeholder_models, name):
    info = comfy_server.object_info()
    workflow = load(name)
    check_workflow(workflow, info)
    converter = pytest.importorskip("comfy_cli.workflow_to_api")
    prompt = converter.convert_ui_to_api(workflow, info)
    runnable = [n for n in workflow["nodes"] if n["type"] not in ("Note", "MarkdownNote")]
    assert set(prompt) == {str(n["id"]) for n in runnable}
    for node_id, entry in prompt.items():
        required = info[entry["class_type"]]["input"].get("required", {})
        assert set(required) <= set(entry["inputs"]), (node_id, entry)
