"""Harness that runs the pack inside a real ComfyUI server.

Used by ``conftest.py`` (fixture ``comfy_server``); tests may import the helpers
from here. The session fixture copies the ComfyUI source tree (default
``<repo>/../shared/comfyui/ComfyUI``, override with ``RNR_COMFYUI_DIR``) into a
temporary folder, links this repository into ``custom_nodes/ComfyUI-RnR``,
starts ``main.py --cpu --listen 127.0.0.1 --port <free port>`` with the
interpreter running pytest and waits until ``/object_info`` answers.

Workflow files are run the way a user runs them, through comfy-cli
(``comfy run --workflow FILE --wait``), which converts UI-format files against
the server's ``/object_info`` and prints one JSON envelope.

When the ComfyUI tree or one of its dependencies is missing, the tests are
skipped with a message saying what is missing -- except under CI (``CI=true``),
where a missing dependency is a failure.

Environment knobs:
  RNR_COMFYUI_DIR            ComfyUI source tree to copy.
  RNR_COMFYUI_START_TIMEOUT  seconds to wait for /object_info (default 180).
  RNR_COMFYUI_KEEP=1         keep the temporary ComfyUI copy and print where.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PACK_DIR_NAME = "ComfyUI-RnR"
DEFAULT_COMFYUI_DIR = REPO_ROOT.parent / "shared" / "comfyui" / "ComfyUI"

# Import names of what ComfyUI v0.3.64 needs to start (its requirements.txt,
# plus `requests`, which its server imports but does not list).
COMFYUI_IMPORTS = (
    "torch",
    "torchvision",
    "torchsde",
    "numpy",
    "einops",
    "transformers",
    "tokenizers",
    "sentencepiece",
    "safetensors",
    "aiohttp",
    "yarl",
    "yaml",
    "PIL",
    "scipy",
    "tqdm",
    "psutil",
    "alembic",
    "sqlalchemy",
    "av",
    "kornia",
    "spandrel",
    "pydantic",
    "pydantic_settings",
    "comfyui_frontend_package",
    "comfyui_workflow_templates",
    "requests",
)

# Environment for every child process: no telemetry, no network look-ups.
CHILD_ENV = {
    "PYTHONUNBUFFERED": "1",
    "DO_NOT_TRACK": "1",
    "COMFY_NO_TELEMETRY": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> None:
    """Skip locally, fail under CI: CI must never silently skip the real-server tests."""
    if in_ci():
        pytest.fail(f"CI=true and the real-ComfyUI tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


def comfyui_source_dir() -> Path:
    return Path(os.environ.get("RNR_COMFYUI_DIR") or DEFAULT_COMFYUI_DIR).resolve()


def comfy_cli_executable() -> str | None:
    """The `comfy` entry point next to this interpreter, else one on PATH."""
    beside = Path(sys.executable).parent / "comfy"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("comfy")


def missing_requirements() -> list[str]:
    """What keeps the real-server tests from running here (empty when nothing)."""
    problems = []
    src = comfyui_source_dir()
    if not (src / "main.py").is_file():
        problems.append(
            f"no ComfyUI source tree at {src} (set RNR_COMFYUI_DIR to a ComfyUI checkout)"
        )
    missing = [name for name in COMFYUI_IMPORTS if importlib.util.find_spec(name) is None]
    if missing:
        problems.append(
            f"{sys.executable} lacks ComfyUI's dependencies {missing} "
            "(install ComfyUI's requirements.txt without torch/torchvision/torchaudio, "
            "plus requests; see .ci/run)"
        )
    if comfy_cli_executable() is None:
        problems.append("the `comfy` command of comfy-cli==1.23.0 is not installed")
    return problems


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _make_writable(root: Path) -> None:
    # The shared tree is read-only; the copy must be writable for ComfyUI
    # (output/, user/, its database, __pycache__) and for clean-up.
    for dirpath, _dirnames, _filenames in os.walk(root):
        os.chmod(dirpath, 0o755)


class WorkflowRunError(AssertionError):
    pass


@dataclass
class WorkflowResult:
    """What `comfy run --workflow FILE --wait` reported."""

    returncode: int
    envelope: dict[str, Any]
    stdout: str
    stderr: str
    output_dir: Path
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and bool(self.envelope.get("ok"))

    @property
    def data(self) -> dict[str, Any]:
        return self.envelope.get("data") or {}

    @property
    def prompt_id(self) -> str | None:
        return self.data.get("prompt_id")

    @property
    def error(self) -> dict[str, Any] | None:
        """comfy-cli's error object (code, message, hint, details) of a failed run."""
        return self.envelope.get("error")

    @property
    def executed_node_ids(self) -> list[str]:
        return [str(n) for n in self.data.get("executed_node_ids") or []]

    @property
    def cached_node_ids(self) -> list[str]:
        """Nodes ComfyUI answered from its cache (a repeated run re-executes none of them)."""
        return [str(n) for n in self.data.get("cached_node_ids") or []]

    def image_files(self, node_id: str | int | None = None) -> list[Path]:
        """Output image files of the run (of one node when `node_id` is given), on disk."""
        return image_files_from_envelope(self.envelope, self.output_dir, node_id)


def _iter_output_entries(data: dict[str, Any], node_id: str | None):
    by_node = data.get("outputs_by_node")
    if isinstance(by_node, dict):
        for nid, entries in by_node.items():
            if node_id is not None and str(nid) != node_id:
                continue
            if isinstance(entries, dict):
                # {"images": [...]} or similar per-kind grouping
                for value in entries.values():
                    if isinstance(value, list):
                        yield from value
            elif isinstance(entries, list):
                yield from entries
        return
    if node_id is None:
        yield from data.get("outputs") or []


def _entry_to_path(entry: Any, output_dir: Path) -> Path | None:
    """An output entry is a dict (filename/subfolder/type) or a /view URL."""
    from urllib.parse import parse_qs, urlparse

    if isinstance(entry, dict):
        if "url" in entry and "filename" not in entry:
            return _entry_to_path(entry["url"], output_dir)
        filename, subfolder, kind = (
            entry.get("filename"),
            entry.get("subfolder", ""),
            entry.get("type", "output"),
        )
    elif isinstance(entry, str):
        query = parse_qs(urlparse(entry).query)
        filename = (query.get("filename") or [None])[0]
        subfolder = (query.get("subfolder") or [""])[0]
        kind = (query.get("type") or ["output"])[0]
    else:
        return None
    if not filename or kind != "output":
        return None
    return output_dir / subfolder / filename


def image_files_from_envelope(
    envelope: dict[str, Any], output_dir: Path, node_id: str | int | None = None
) -> list[Path]:
    data = envelope.get("data") or {}
    nid = None if node_id is None else str(node_id)
    paths: list[Path] = []
    for entry in _iter_output_entries(data, nid):
        path = _entry_to_path(entry, output_dir)
        if path is not None and path not in paths:
            paths.append(path)
    return paths


def _parse_cli_output(stdout: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """comfy-cli prints one JSON envelope (or NDJSON events ending in one)."""
    text = stdout.strip()
    try:
        obj = json.loads(text)
        if isinstance(obj, dict):
            return obj, []
    except json.JSONDecodeError:
        pass
    events = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            events.append(obj)
    for obj in reversed(events):
        if obj.get("type") == "envelope" or "ok" in obj:
            return obj, events
    raise WorkflowRunError(f"comfy-cli printed no JSON envelope; stdout was:\n{stdout}")


@dataclass
class ComfyServer:
    root: Path
    host: str
    port: int
    process: subprocess.Popen
    log_path: Path
    comfy_cli: str

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def input_dir(self) -> Path:
        return self.root / "input"

    @property
    def pack_dir(self) -> Path:
        return self.root / "custom_nodes" / PACK_DIR_NAME

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def get_json(self, path: str, timeout: float = 30.0) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as resp:
            return json.loads(resp.read().decode("utf-8"))

    def object_info(self) -> dict[str, Any]:
        return self.get_json("/object_info")

    def alive(self) -> bool:
        return self.process.poll() is None

    def run_workflow(
        self, path: str | os.PathLike, *, timeout: float = 600.0, check: bool = True
    ) -> WorkflowResult:
        """Run a workflow file (UI or API format) with comfy-cli and wait for it.

        With ``check`` (default) a failed run raises, showing the envelope and the
        tail of the server log.
        """
        cmd = [
            self.comfy_cli,
            "--skip-prompt",
            "--no-enable-telemetry",
            "run",
            "--workflow",
            str(Path(path).resolve()),
            "--wait",
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]
        env = {**os.environ, **CHILD_ENV, "COLUMNS": "200"}
        proc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
        try:
            envelope, events = _parse_cli_output(proc.stdout)
        except WorkflowRunError:
            if check:
                raise WorkflowRunError(self._describe_failure(cmd, proc, None)) from None
            envelope, events = {}, []
        result = WorkflowResult(
            returncode=proc.returncode,
            envelope=envelope,
            stdout=proc.stdout,
            stderr=proc.stderr,
            output_dir=self.output_dir,
            events=events,
        )
        if check and not result.ok:
            raise WorkflowRunError(self._describe_failure(cmd, proc, envelope))
        return result

    def api_prompt(self, path: str | os.PathLike, *, timeout: float = 120.0) -> dict[str, Any]:
        """The API-format graph comfy-cli would submit for a (UI-format) workflow file.

        It converts against this server's /object_info but does NOT validate node
        types or values (`--print-prompt`); it runs nothing.
        """
        cmd = [
            self.comfy_cli,
            "--skip-prompt",
            "--no-enable-telemetry",
            "run",
            "--workflow",
            str(Path(path).resolve()),
            "--print-prompt",
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]
        proc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **CHILD_ENV, "COLUMNS": "200"},
        )
        envelope, _ = _parse_cli_output(proc.stdout)
        if proc.returncode != 0 or not envelope.get("ok"):
            raise WorkflowRunError(self._describe_failure(cmd, proc, envelope))
        return envelope["data"]["prompt"]

    def output_images(self, pattern: str = "**/*.png") -> list[Path]:
        """Every image file under the copied ComfyUI's output/ folder, oldest first."""
        return sorted(self.output_dir.glob(pattern), key=lambda p: p.stat().st_mtime_ns)

    def _describe_failure(self, cmd, proc, envelope) -> str:
        return (
            f"`{' '.join(cmd)}` failed (exit {proc.returncode}).\n"
            f"envelope: {json.dumps(envelope, indent=2) if envelope else '(none)'}\n"
            f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}\n"
            f"server log (tail):\n{self.log_text()[-6000:]}"
        )

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        # The server was started in its own session: signal its process group.
        try:
            os.killpg(self.process.pid, signal.SIGINT)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=20)


def start_comfy_server(workdir: Path) -> ComfyServer:
    src = comfyui_source_dir()
    root = workdir / "ComfyUI"
    shutil.copytree(src, root, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", ".git"))
    _make_writable(root)
    (root / "custom_nodes" / PACK_DIR_NAME).symlink_to(REPO_ROOT, target_is_directory=True)

    host, port = "127.0.0.1", free_port()
    log_path = workdir / "comfyui.log"
    log_file = open(log_path, "wb")
    process = subprocess.Popen(
        [sys.executable, "main.py", "--cpu", "--listen", host, "--port", str(port)],
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env={**os.environ, **CHILD_ENV},
        start_new_session=True,
    )
    log_file.close()
    server = ComfyServer(
        root=root,
        host=host,
        port=port,
        process=process,
        log_path=log_path,
        comfy_cli=comfy_cli_executable() or "comfy",
    )

    timeout = float(os.environ.get("RNR_COMFYUI_START_TIMEOUT", "180"))
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"ComfyUI exited with code {process.returncode} while starting.\n"
                f"server log:\n{server.log_text()}"
            )
        try:
            info = server.get_json("/object_info", timeout=10)
            if isinstance(info, dict) and info:
                return server
        except (urllib.error.URLError, ConnectionError, OSError, ValueError) as exc:
            last_error = exc
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(
        f"ComfyUI did not answer /object_info on {server.url} within {timeout:.0f} s "
        f"(last error: {last_error!r}).\nserver log:\n{server.log_text()}"
    )
