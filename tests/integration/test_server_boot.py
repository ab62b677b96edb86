"""The real ComfyUI server starts with this pack linked into custom_nodes/ and runs
a UI-format workflow submitted through comfy-cli, as a user would."""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from comfyui_harness import PACK_DIR_NAME, REPO_ROOT

pytestmark = pytest.mark.comfyui

WIDTH, HEIGHT, BATCH = 96, 64, 2
COLOR = 0x336699  # EmptyImage's colour widget: 0xRRGGBB


def empty_image_to_save_image_workflow(prefix: str) -> dict:
    """A two-node workflow in the UI format that ComfyUI saves (EmptyImage -> SaveImage)."""
    return {
        "id": "6b1f6c1e-3d0b-4c59-9a55-2d1c0e7f0a01",
        "revision": 0,
        "last_node_id": 2,
        "last_link_id": 1,
        "nodes": [
            {
                "id": 1,
                "type": "EmptyImage",
                "pos": [100, 100],
                "size": [315, 130],
                "flags": {},
                "order": 0,
                "mode": 0,
                "inputs": [],
                "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]}],
                "properties": {"Node name for S&R": "EmptyImage"},
                "widgets_values": [WIDTH, HEIGHT, BATCH, COLOR],
            },
            {
                "id": 2,
                "type": "SaveImage",
                "pos": [500, 100],
                "size": [315, 270],
                "flags": {},
                "order": 1,
                "mode": 0,
                "inputs": [{"name": "images", "type": "IMAGE", "link": 1}],
                "outputs": [],
                "properties": {"Node name for S&R": "SaveImage"},
                "widgets_values": [prefix],
            },
        ],
        "links": [[1, 1, 0, 2, 0, "IMAGE"]],
        "groups": [],
        "config": {},
        "extra": {},
        "version": 0.4,
    }


def import_time_lines(log: str) -> list[str]:
    """ComfyUI's 'Import times for custom nodes' lines that name our folder."""
    pattern = re.compile(r"^\s*\d+\.\d+ seconds.*:\s+(\S+)\s*$")
    lines = []
    for line in log.splitlines():
        m = pattern.match(line)
        if m and Path(m.group(1)).name == PACK_DIR_NAME:
            lines.append(line.strip())
    return lines


def test_server_lists_core_nodes(comfy_server):
    info = comfy_server.object_info()
    assert "EmptyImage" in info and "SaveImage" in info
    assert comfy_server.pack_dir.resolve() == REPO_ROOT


def test_pack_is_imported_without_failure(comfy_server):
    if not (REPO_ROOT / "__init__.py").is_file():
        pytest.skip("the pack has no root __init__.py yet, so ComfyUI cannot import it")
    log = comfy_server.log_text()
    lines = import_time_lines(log)
    assert lines, f"ComfyUI did not try to import custom_nodes/{PACK_DIR_NAME}; log:\n{log}"
    assert not any("IMPORT FAILED" in line for line in lines), "\n".join(lines) + "\n\n" + log
    assert f"{PACK_DIR_NAME} module for custom nodes" not in log, log


def test_ui_workflow_runs_through_comfy_cli(comfy_server, tmp_path):
    prefix = "rnr_boot/empty"
    wf = tmp_path / "empty_to_save.json"
    wf.write_text(json.dumps(empty_image_to_save_image_workflow(prefix), indent=2))

    result = comfy_server.run_workflow(wf)

    assert result.ok, result.envelope
    assert result.data.get("status", "completed") == "completed", result.envelope
    files = result.image_files(node_id=2)
    assert len(files) == BATCH, result.envelope
    for path in files:
        assert path.is_file(), f"{path} reported by comfy-cli but not written"
        assert path.parent == comfy_server.output_dir / "rnr_boot"
        with Image.open(path) as im:
            assert im.size == (WIDTH, HEIGHT)
            pixels = np.asarray(im.convert("RGB"), dtype=np.int16)
        expected = np.array([0x33, 0x66, 0x99], dtype=np.int16)
        assert np.abs(pixels - expected).max() <= 1, pixels[0, 0]
    # The same files are what output_images() finds on disk.
    on_disk = comfy_server.output_images("rnr_boot/*.png")
    assert set(files) <= set(on_disk)


def test_pack_workflows_are_served_as_templates(comfy_server):
    """ComfyUI serves <pack>/workflows/*.json under /api/workflow_templates."""
    shipped = sorted(p.stem for p in (REPO_ROOT / "workflows").glob("*.json"))
    if not shipped:
        pytest.skip("the pack ships no workflows/*.json yet")
    listing = comfy_server.get_json("/api/workflow_templates")
    assert sorted(listing.get(PACK_DIR_NAME, [])) == shipped, listing
    if not (REPO_ROOT / "__init__.py").is_file():
        return  # files are served only for packs that import successfully
    for name in shipped:
        quoted = urllib.parse.quote(f"{name}.json")
        served = comfy_server.get_json(f"/api/workflow_templates/{PACK_DIR_NAME}/{quoted}")
        on_disk = json.loads((REPO_ROOT / "workflows" / f"{name}.json").read_text())
        assert served == on_disk, name
