"""pytest wiring for the browser tests: one real ComfyUI server, one Chromium and one ComfyUI tab per session.

The server comes from the real-ComfyUI harness of tests/integration (``start_comfy_server``); the
browser helpers are in ``browser_harness.py``. Without Chromium or Playwright the tests skip with the
reason, except under CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
sys.path.insert(0, str(HERE))

from browser_harness import (
    ComfyPage,
    chromium_context,
    chromium_executable,
    playwright_problem,
)
from comfyui_harness import missing_requirements, start_comfy_server, unavailable


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives the real ComfyUI frontend in headless Chromium")
    config.addinivalue_line("markers", "comfyui: starts the real ComfyUI server of ../shared/comfyui")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Every test here needs Chromium and the real server: `-m "not browser"` or `-m "not comfyui"`
    # deselects the folder.
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.comfyui)


@pytest.fixture(scope="session")
def chromium() -> str:
    if os.environ.get("RNR_NO_CHROMIUM"):
        # .ci/run could not install Chromium on this machine: the only case where CI skips these tests.
        pytest.skip(f"browser tests need Chromium, which cannot be installed here: {os.environ['RNR_NO_CHROMIUM']}")
    problem = playwright_problem()
    if problem:
        unavailable(f"browser tests need Chromium and Playwright: {problem}")
    return chromium_executable()


@pytest.fixture(scope="session")
def comfy_server(chromium):
    """A real ComfyUI server with this pack in custom_nodes/ComfyUI-RnR (session-wide).

    Requested after ``chromium`` so that a machine without a browser does not start a server for nothing.
    """
    problems = missing_requirements()
    if problems:
        unavailable("; ".join(problems))
    keep = os.environ.get("RNR_COMFYUI_KEEP", "") not in {"", "0"}
    workdir = Path(tempfile.mkdtemp(prefix="rnr-comfyui-browser-"))
    server = None
    try:
        t0 = time.monotonic()
        try:
            server = start_comfy_server(workdir)
        except RuntimeError as exc:
            pytest.fail(str(exc), pytrace=False)
        print(f"\n[comfy_server] ComfyUI up at {server.url} in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        yield server
    finally:
        if server is not None:
            server.stop()
        if keep:
            print(f"\n[comfy_server] kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def browser_context(chromium):
    with chromium_context(chromium) as context:
        yield context


@pytest.fixture(scope="session")
def comfy_page(comfy_server, browser_context) -> ComfyPage:
    """One ComfyUI tab for the whole session, with the first-run dialogs closed."""
    page = ComfyPage(browser_context, comfy_server.url)
    yield page
    page.page.close()


@pytest.fixture
def page(comfy_page: ComfyPage) -> ComfyPage:
    """The session's tab, with no dialog left open by the previous test."""
    comfy_page.close_dialogs()
    yield comfy_page
    comfy_page.close_dialogs()
