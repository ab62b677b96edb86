"""pytest wiring for the real-ComfyUI tests; the harness is in comfyui_harness.py."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

from comfyui_harness import missing_requirements, start_comfy_server, unavailable


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "comfyui: starts the real ComfyUI server of ../shared/comfyui"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Every test in this folder needs the real server; mark them so that
    # `-m "not comfyui"` deselects the whole folder.
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.comfyui)


@pytest.fixture(scope="session")
def comfy_server():
    """A real ComfyUI server with this pack in custom_nodes/ComfyUI-RnR (session-wide)."""
    problems = missing_requirements()
    if problems:
        unavailable("; ".join(problems))

    keep = os.environ.get("RNR_COMFYUI_KEEP", "") not in {"", "0"}
    workdir = Path(tempfile.mkdtemp(prefix="rnr-comfyui-"))
    server = None
    try:
        t0 = time.monotonic()
        try:
            server = start_comfy_server(workdir)
        except RuntimeError as exc:
            pytest.fail(str(exc), pytrace=False)
        print(
            f"\n[comfy_server] ComfyUI up at {server.url} in {time.monotonic() - t0:.1f} s "
            f"(root {server.root})",
            file=sys.stderr,
        )
        yield server
    finally:
        if server is not None:
            server.stop()
        if keep:
            print(f"\n[comfy_server] kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
