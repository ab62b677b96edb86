"""Our nodes inside the real ComfyUI server: registration as declared, the cache stats route, the
memory hooks (the UI's "Unload models" releases our models) and readable errors for user mistakes."""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "nodes"))

from comfy_calls import mappings, node_info
from comfyui_harness import REPO_ROOT

pytestmark = pytest.mark.comfyui
WORKFLOWS = REPO_ROOT / "workflows"


def post_json(server, path: str, data: dict) -> None:
    request = urllib.request.Request(server.url + path, data=json.dumps(data).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def cache_stats(server) -> dict:
    return server.get_json("/rnr/cache")


def wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def normalised(value):
    return json.loads(json.dumps(value))


def test_object_info_lists_every_node_with_the_inputs_we_declare(comfy_server):
    info = comfy_server.object_info()
    ours = {name: entry for name, entry in info.items() if entry.get("python_module", "").endswith("ComfyUI-RnR")}
    assert set(ours) == set(mappings())
    for name in mappings():
        local, served = normalised(node_info(name)), info[name]
        for key in ("input_order", "output", "output_name", "display_name", "description", "category",
                    "output_tooltips", "output_node"):
            assert served[key] == local[key], f"{name}.{key}"
        for section in ("required", "optional"):
            for input_name, spec in local["input"].get(section, {}).items():
                served_spec = served["input"][section][input_name]
                if input_name == "model":  # the server lists its own models folder
                    assert served_spec[0][0] == "(built-in)" and served_spec[1] == spec[1]
                else:
                    assert served_spec == spec, f"{name}.{input_name}"


def test_model_folders_are_registered_with_comfyui(comfy_server, tmp_path):
    folder = comfy_server.root / "models" / "rnr" / "reasoners" / "my-test-vlm"
    folder.mkdir(parents=True)
    try:
        info = comfy_server.get_json("/object_info/RnRReasonerLoader")["RnRReasonerLoader"]
        assert "my-test-vlm" in info["input"]["required"]["model"][0]
    finally:
        folder.rmdir()


def test_unload_models_in_the_ui_releases_our_cache(comfy_server):
    comfy_server.run_workflow(WORKFLOWS / "01_restore_default.json")
    assert cache_stats(comfy_server)["models"], "the workflow loaded nothing into the RnR cache"
    post_json(comfy_server, "/free", {"unload_models": True})

    def released():
        stats = cache_stats(comfy_server)
        return stats if not stats["models"] else None

    assert wait_for(released, what="the RnR cache to be released")["releases"] >= 1


def test_a_user_mistake_shows_a_readable_one_line_message(comfy_server, tmp_path):
    workflow = json.loads((WORKFLOWS / "02_diagnose_edit_restore.json").read_text())
    edit = next(n for n in workflow["nodes"] if n["type"] == "RnRDiagnosisEdit")
    edit["widgets_values"][9] = "noise, fog"  # the order widget
    path = tmp_path / "bad_order.json"
    path.write_text(json.dumps(workflow))
    result = comfy_server.run_workflow(path, check=False)
    assert not result.ok
    # comfy-cli relays the server's execution_error: what the UI's error dialog shows
    error = (result.envelope.get("error") or {}).get("details") or {}
    assert error.get("node_type") == "RnRDiagnosisEdit", result.envelope
    assert error["exception_type"].startswith("rnr.errors.")
    first_line = error["exception_message"].strip().splitlines()[0]
    assert "order[1]" in first_line and "'fog'" in first_line and "haze, rain, noise, blur" in first_line
