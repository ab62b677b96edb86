"""Drive the real ComfyUI frontend (comfyui-frontend-package) in headless Chromium with Playwright.

Used by the browser tests (``conftest.py`` next to this file) and by ``scripts/make_pictures.py``.
Everything here does what a user does, through the frontend's own code paths:

- a workflow file is *dropped on the canvas* (a synthetic ``drop`` event carrying a ``File`` in a
  ``DataTransfer``), which the frontend hands to ``app.handleFile`` -> ``app.loadGraphData``;
- "missing nodes" are seen where the user sees them: the frontend's "Some Nodes Are Missing" dialog,
  plus the list the frontend passes to its extensions' ``afterConfigureGraph`` hook, plus nodes that
  the canvas draws as broken (``has_errors``);
- a workflow is queued by clicking the Run button; completion is watched on the frontend's websocket
  events (``execution_success`` / ``execution_error``) and the outputs are read from ``/history``.

Chromium is Debian's (``/usr/bin/chromium`` or ``RNR_CHROMIUM``), launched with ``executable_path``;
Playwright never downloads a browser here.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
VIEWPORT = {"width": 1600, "height": 1000}
MISSING_NODES_TITLE = "Some Nodes Are Missing"  # the frontend's English text (loadWorkflowWarning.missingNodesTitle)
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
UI_ONLY_TYPES = {"Note", "MarkdownNote", "PrimitiveNode", "Reroute"}


def chromium_executable() -> str | None:
    """Debian's Chromium: ``RNR_CHROMIUM`` (exported by .ci/run), else ``chromium`` on PATH, else None."""
    candidates = [os.environ.get("RNR_CHROMIUM", ""), shutil.which("chromium") or "", "/usr/bin/chromium",
                  shutil.which("chromium-browser") or ""]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def playwright_problem() -> str | None:
    """Why Playwright cannot drive Chromium here (None when it can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"the `playwright` Python package is not installed ({exc}); pip install playwright (no browser download needed)"
    if chromium_executable() is None:
        return ("no Chromium found (RNR_CHROMIUM, `chromium` on PATH or /usr/bin/chromium); "
                "install Debian's package: apt-get install chromium")
    return None


@contextmanager
def chromium_context(executable: str | None = None) -> Iterator[Any]:
    """A fresh Chromium (new ``--user-data-dir``) as a Playwright persistent context, closed afterwards."""
    from playwright.sync_api import sync_playwright

    executable = executable or chromium_executable()
    profile = tempfile.mkdtemp(prefix="rnr-chromium-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=executable, headless=True, args=CHROMIUM_ARGS, viewport=VIEWPORT,
                device_scale_factor=1, accept_downloads=False)
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


# ---- the page ------------------------------------------------------------------------------------
_INSTALL_PROBES = """() => {
  if (window.__rnr) return;
  const api = window.comfyAPI.api.api;
  const state = window.__rnr = {loads: 0, missing: [], events: [], queued: []};
  // The frontend tells its extensions which node types it could not find when a graph loads.
  app.registerExtension({
    name: 'rnr.browser-tests.probes',
    afterConfigureGraph(missing) {
      state.loads += 1;
      state.missing = (missing || []).map(m => typeof m === 'string' ? m : m.type);
    },
  });
  for (const type of ['execution_start', 'execution_cached', 'execution_success', 'execution_error',
                      'execution_interrupted', 'executed']) {
    api.addEventListener(type, e => state.events.push({type, detail: JSON.parse(JSON.stringify(e.detail ?? null))}));
  }
  // Remember what the server answered to each queued prompt (its id, or the validation errors).
  const queuePrompt = api.queuePrompt.bind(api);
  api.queuePrompt = async (...args) => {
    try {
      const res = await queuePrompt(...args);
      state.queued.push({ok: true, prompt_id: res.prompt_id, node_errors: res.node_errors ?? null});
      return res;
    } catch (err) {
      state.queued.push({ok: false, error: String(err), node_errors: err?.response?.node_errors ?? null});
      throw err;
    }
  };
}"""

_DROP_FILE = """([text, name]) => {
  const transfer = new DataTransfer();
  transfer.items.add(new File([text], name, {type: 'application/json'}));
  const canvas = document.querySelector('#graph-canvas') || app.canvasEl;
  const box = canvas.getBoundingClientRect();
  const at = {bubbles: true, cancelable: true, dataTransfer: transfer,
              clientX: box.x + box.width / 2, clientY: box.y + box.height / 2};
  for (const type of ['dragenter', 'dragover', 'drop']) canvas.dispatchEvent(new DragEvent(type, at));
}"""

_GRAPH_STATE = """() => app.graph.nodes.map(node => ({
  id: node.id,
  type: node.type,
  comfyClass: node.comfyClass ?? null,
  title: node.title,
  has_errors: !!node.has_errors,
  registered: node.type in LiteGraph.registered_node_types,
  widgets: (node.widgets || []).map(w => ({name: w.name, type: w.type, value: w.value ?? null,
                                           tooltip: w.tooltip ?? null})),
  inputs: (node.inputs || []).map(i => ({name: i.name, type: i.type, link: i.link ?? null,
                                         widget: i.widget ? i.widget.name : null})),
  outputs: (node.outputs || []).map(o => ({name: o.name, type: o.type})),
}))"""

_LAYOUT_PROBLEMS = """(minGap) => {
  const problems = [];
  const nodes = app.graph.nodes;
  const name = n => `#${n.id} ${n.title}`;
  const box = n => { const [x, y, w, h] = n.boundingRect; return {x, y, w, h}; };
  for (let i = 0; i < nodes.length; i++) for (let j = i + 1; j < nodes.length; j++) {
    const [a, b] = [box(nodes[i]), box(nodes[j])];
    const dx = Math.max(b.x - (a.x + a.w), a.x - (b.x + b.w));
    const dy = Math.max(b.y - (a.y + a.h), a.y - (b.y + b.h));
    const gap = Math.max(dx, dy);
    if (gap < minGap) {
      problems.push(gap < 0 ? `${name(nodes[i])} overlaps ${name(nodes[j])}`
                            : `${name(nodes[i])} and ${name(nodes[j])} are ${Math.round(gap)} px apart`);
    }
  }
  const links = app.graph.links instanceof Map ? [...app.graph.links.values()] : Object.values(app.graph.links || {});
  for (const link of links) {
    if (!link) continue;
    const source = app.graph.getNodeById(link.origin_id), target = app.graph.getNodeById(link.target_id);
    const label = `link ${name(source)}.${source.outputs[link.origin_slot]?.name} -> ` +
                  `${name(target)}.${target.inputs[link.target_slot]?.name}`;
    const [s, t] = [box(source), box(target)];
    if (t.x < s.x + s.w + minGap) problems.push(`${label} does not run left to right`);
    const a = source.getOutputPos(link.origin_slot), b = target.getInputPos(link.target_slot);
    const d = Math.hypot(b[0] - a[0], b[1] - a[1]) * 0.25;
    const p = [a, [a[0] + d, a[1]], [b[0] - d, b[1]], b];
    const hidden = new Set();
    for (let k = 1; k < 100; k++) {
      const u = k / 100, v = 1 - u;
      const w = [v * v * v, 3 * v * v * u, 3 * v * u * u, u * u * u];
      const x = w.reduce((sum, wi, i) => sum + wi * p[i][0], 0);
      const y = w.reduce((sum, wi, i) => sum + wi * p[i][1], 0);
      for (const node of nodes) {
        if (node === source || node === target) continue;
        const r = box(node);
        if (x > r.x + 2 && x < r.x + r.w - 2 && y > r.y + 2 && y < r.y + r.h - 2) hidden.add(name(node));
      }
    }
    for (const other of hidden) problems.push(`${label} runs behind ${other}`);
  }
  return problems;
}"""

_VISIBLE_DIALOGS = """() => [...document.querySelectorAll('.p-dialog')]
  .filter(d => d.offsetParent !== null || d.getClientRects().length)
  .map(d => d.innerText)"""


@dataclass
class LoadResult:
    """What the page showed after a workflow file was dropped on it."""

    name: str
    workflow: dict
    missing: list[str]
    """Node types the frontend reported missing (afterConfigureGraph)."""
    dialogs: list[str]
    """Text of every dialog open after loading."""
    nodes: list[dict]
    """Every node of the loaded graph as the page has it (type, has_errors, widgets, inputs, ...)."""
    registered_types: list[str] = field(default_factory=list)

    @property
    def missing_nodes_dialog(self) -> str | None:
        return next((text for text in self.dialogs if MISSING_NODES_TITLE in text), None)

    def node(self, node_id: int) -> dict:
        return next(n for n in self.nodes if n["id"] == node_id)


@dataclass
class RunResult:
    """One queued run: the server's prompt id, its websocket events, and /history's record."""

    prompt_id: str
    status: str
    """'success', 'error' or 'interrupted' (from the websocket)."""
    events: list[dict]
    history: dict

    @property
    def error(self) -> dict | None:
        return next((e["detail"] for e in self.events if e["type"] == "execution_error"), None)

    def outputs(self, node_id: int | str) -> dict:
        return (self.history.get("outputs") or {}).get(str(node_id)) or {}

    def image_files(self, output_dir: Path, node_id: int | str) -> list[Path]:
        files = []
        for image in self.outputs(node_id).get("images", []):
            if image.get("type", "output") == "output":
                files.append(Path(output_dir) / image.get("subfolder", "") / image["filename"])
        return files

    def texts(self) -> list[str]:
        """Everything PreviewAny-like nodes displayed."""
        texts = []
        for output in (self.history.get("outputs") or {}).values():
            texts.extend(str(t) for t in output.get("text", []))
        return texts


# Settings stored on the server before the page opens: no first-run template browser popping up at a
# random moment (the template test opens it itself), no minimap over the graph.
DEFAULT_SETTINGS = {
    "Comfy.TutorialCompleted": True,
    "Comfy.Minimap.Visible": False,
}
# For pictures: full detail at any zoom, no canvas statistics or zoom buttons over the graph.
PICTURE_SETTINGS = {
    **DEFAULT_SETTINGS,
    "LiteGraph.Canvas.MinFontSizeForLOD": 0,
    "Comfy.Graph.CanvasInfo": False,
    "Comfy.Graph.CanvasMenu": False,
}


def post_settings(url: str, settings: dict[str, Any]) -> None:
    import urllib.request

    request = urllib.request.Request(url.rstrip("/") + "/api/settings", data=json.dumps(settings).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


class ComfyPage:
    """One ComfyUI tab in Chromium, opened on ``url`` and ready for workflows."""

    def __init__(self, context: Any, url: str, *, timeout_s: float = 90.0,
                 settings: dict[str, Any] | None = None) -> None:
        self.url = url.rstrip("/")
        post_settings(self.url, DEFAULT_SETTINGS if settings is None else settings)
        self.page = context.new_page()
        self.console_errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.console_errors.append(str(exc)))
        self.page.set_default_timeout(timeout_s * 1000)
        self.page.goto(self.url + "/")
        self.page.wait_for_function(
            "() => window.app && app.graph && app.canvas && window.LiteGraph && app.extensionManager "
            "&& window.comfyAPI && comfyAPI.api && app.extensionManager.setting", timeout=timeout_s * 1000)
        self.page.evaluate(_INSTALL_PROBES)
        self.close_dialogs()

    # -- settings and view -------------------------------------------------------------------------
    def set_setting(self, key: str, value: Any) -> None:
        self.page.evaluate("([k, v]) => app.extensionManager.setting.set(k, v)", [key, value])

    def command(self, command_id: str) -> None:
        self.page.evaluate("(id) => app.extensionManager.command.execute(id)", command_id)

    def dialogs(self) -> list[str]:
        return self.page.evaluate(_VISIBLE_DIALOGS)

    def close_dialogs(self) -> None:
        """Close every open dialog with its own close button (the first-run template browser, warnings)."""
        from playwright.sync_api import Error as PlaywrightError

        for _ in range(5):
            buttons = self.page.locator(".p-dialog .p-dialog-close-button")
            if buttons.count() == 0:
                return
            try:
                # A dialog may close itself (or animate away) between count() and click(): short timeout, retry.
                buttons.first.click(timeout=3000)
            except PlaywrightError:
                self.page.keyboard.press("Escape")
            self.page.wait_for_timeout(150)
        if self.page.locator(".p-dialog .p-dialog-close-button").count():
            raise AssertionError(f"dialogs still open after 5 tries to close them: {self.dialogs()}")

    def fit_view(self, zoom: float = 0.75) -> None:
        """Fit every node in view, as the Fit View command does (``zoom`` = share of the canvas to fill)."""
        self.page.evaluate(
            """(zoom) => {
                 const rects = app.graph.nodes.map(n => n.boundingRect);
                 const x0 = Math.min(...rects.map(r => r[0])), y0 = Math.min(...rects.map(r => r[1]));
                 const x1 = Math.max(...rects.map(r => r[0] + r[2])), y1 = Math.max(...rects.map(r => r[1] + r[3]));
                 app.canvas.ds.fitToBounds([x0, y0, x1 - x0, y1 - y0], {zoom});
                 app.canvas.setDirty(true, true);
               }""", zoom)
        self.page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")

    # -- loading -----------------------------------------------------------------------------------
    def drop_workflow(self, path: str | os.PathLike, *, text: str | None = None) -> LoadResult:
        """Drop a workflow file on the canvas and wait until the frontend has loaded it."""
        path = Path(path)
        text = path.read_text(encoding="utf-8") if text is None else text
        workflow = json.loads(text)
        self.close_dialogs()
        loads = self.page.evaluate("() => window.__rnr.loads")
        self.page.evaluate(_DROP_FILE, [text, path.name])
        self.page.wait_for_function("(n) => window.__rnr.loads > n", arg=loads)
        return self._load_result(path.stem, workflow)

    def load_graph_data(self, workflow: dict, name: str) -> LoadResult:
        """Load through ``app.loadGraphData`` (what the template browser and the Workflows tab call)."""
        self.close_dialogs()
        loads = self.page.evaluate("() => window.__rnr.loads")
        self.page.evaluate("([wf, name]) => app.loadGraphData(wf, true, true, name)", [workflow, name])
        self.page.wait_for_function("(n) => window.__rnr.loads > n", arg=loads)
        return self._load_result(name, workflow)

    def wait_for_load(self, previous_loads: int) -> int:
        self.page.wait_for_function("(n) => window.__rnr.loads > n", arg=previous_loads)
        return self.page.evaluate("() => window.__rnr.loads")

    def loads(self) -> int:
        return self.page.evaluate("() => window.__rnr.loads")

    def _load_result(self, name: str, workflow: dict) -> LoadResult:
        # Dialogs open after the load hook; give them two frames.
        self.page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        self.page.wait_for_timeout(100)
        types = sorted({n["type"] for n in workflow.get("nodes", [])})
        return LoadResult(
            name=name,
            workflow=workflow,
            missing=self.page.evaluate("() => [...window.__rnr.missing]"),
            dialogs=self.dialogs(),
            nodes=self.page.evaluate(_GRAPH_STATE),
            registered_types=self.page.evaluate(
                "(types) => types.filter(t => t in LiteGraph.registered_node_types)", types),
        )

    def overlapping_nodes(self) -> list[tuple[str, str]]:
        """Pairs of nodes whose drawn boxes (title included, after the frontend sized them) overlap."""
        return [tuple(pair) for pair in self.page.evaluate(
            """() => {
                 const boxes = app.graph.nodes.map(n => ({name: `#${n.id} ${n.title}`, r: n.boundingRect}));
                 const pairs = [];
                 for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
                   const [a, b] = [boxes[i].r, boxes[j].r];
                   const w = Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0]);
                   const h = Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]);
                   if (w > 1 && h > 1) pairs.push([boxes[i].name, boxes[j].name]);
                 }
                 return pairs;
               }""")]

    def layout_problems(self, min_gap: float = 20.0) -> list[str]:
        """What makes the loaded graph hard to read, measured on the nodes as the frontend sized them
        (``boundingRect``: title bar included) and on the links as it draws them (splines between the
        slots' positions, control points a quarter of the distance out, as LiteGraph's SPLINE_LINK):

        - two nodes closer than ``min_gap`` (or overlapping);
        - a link whose target does not start at least ``min_gap`` right of its source's right edge
          (links read left to right);
        - a link drawn behind a node that is neither its source nor its target (links are drawn under
          the nodes, so the user cannot follow it)."""
        return self.page.evaluate(_LAYOUT_PROBLEMS, min_gap)

    def node_definition(self, node_type: str) -> dict | None:
        """The node definition the frontend registered the type with (the server's /object_info entry)."""
        return self.page.evaluate("(t) => LiteGraph.registered_node_types[t]?.nodeData ?? null", node_type)

    # -- widgets -----------------------------------------------------------------------------------
    def set_widget(self, node_id: int, widget_name: str, value: Any) -> Any:
        """Set a widget's value the way the canvas does after a user edit: value, then its callback."""
        return self.page.evaluate(
            """([id, name, value]) => {
                 const node = app.graph.getNodeById(id);
                 const widget = node.widgets.find(w => w.name === name);
                 widget.value = value;
                 widget.callback?.(widget.value, app.canvas, node, app.canvas.graph_mouse, undefined);
                 app.graph.setDirtyCanvas(true, true);
                 return widget.value;
               }""", [node_id, widget_name, value])

    def widget_screen_point(self, node_id: int, widget_name: str) -> tuple[float, float]:
        """Viewport coordinates of the middle of a canvas-drawn widget (to hover it like a user)."""
        return tuple(self.page.evaluate(
            """([id, name]) => {
                 const node = app.graph.getNodeById(id);
                 const widget = node.widgets.find(w => w.name === name);
                 const x = node.pos[0] + node.size[0] / 2;
                 const y = node.pos[1] + widget.y + (widget.computedHeight ?? LiteGraph.NODE_WIDGET_HEIGHT) / 2;
                 const [cx, cy] = app.canvas.ds.convertOffsetToCanvas([x, y]);
                 const box = app.canvas.canvas.getBoundingClientRect();
                 return [box.x + cx, box.y + cy];
               }""", [node_id, widget_name]))

    def center_on_node(self, node_id: int) -> None:
        self.page.evaluate(
            """(id) => { const node = app.graph.getNodeById(id); app.canvas.centerOnNode(node);
                         app.canvas.setDirty(true, true); }""", node_id)
        self.page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")

    def hover_tooltip(self, node_id: int, widget_name: str, *, timeout_s: float = 5.0) -> str:
        """Hover a widget like a user and return the text of the tooltip the frontend shows."""
        self.center_on_node(node_id)
        x, y = self.widget_screen_point(node_id, widget_name)
        self.page.mouse.move(x - 40, y + 1)
        self.page.mouse.move(x, y, steps=4)
        tooltip = self.page.locator(".node-tooltip")
        tooltip.wait_for(state="visible", timeout=timeout_s * 1000)
        text = tooltip.inner_text()
        self.page.mouse.move(5, VIEWPORT["height"] - 5)
        return text

    # -- running -----------------------------------------------------------------------------------
    def click_run(self) -> None:
        self.page.locator('[data-testid="queue-button"] button').first.click()

    def queue_and_wait(self, server_url: str | None = None, *, timeout_s: float = 300.0,
                       use_button: bool = True) -> RunResult:
        """Queue the loaded graph (the Run button, or ``app.queuePrompt(0)``), wait for the end of the run
        on the websocket, and fetch its ``/history`` record."""
        queued_before = self.page.evaluate("() => window.__rnr.queued.length")
        events_before = self.page.evaluate("() => window.__rnr.events.length")
        if use_button:
            self.click_run()
        else:
            self.page.evaluate("() => app.queuePrompt(0)")
        self.page.wait_for_function("(n) => window.__rnr.queued.length > n", arg=queued_before,
                                    timeout=60_000)
        queued = self.page.evaluate("(n) => window.__rnr.queued[n]", queued_before)
        if not queued["ok"] or not queued.get("prompt_id"):
            raise AssertionError(f"the server refused the prompt: {json.dumps(queued, indent=2)}")
        prompt_id = queued["prompt_id"]
        done = self.page.wait_for_function(
            """([n, id]) => window.__rnr.events.slice(n).find(e => e.detail && e.detail.prompt_id === id &&
                 ['execution_success', 'execution_error', 'execution_interrupted'].includes(e.type))?.type""",
            arg=[events_before, prompt_id], timeout=timeout_s * 1000).json_value()
        events = self.page.evaluate(
            "([n, id]) => window.__rnr.events.slice(n).filter(e => e.detail && e.detail.prompt_id === id)",
            [events_before, prompt_id])
        history = self._history(server_url or self.url, prompt_id)
        return RunResult(prompt_id=prompt_id, status=done.replace("execution_", ""), events=events,
                         history=history)

    def _history(self, server_url: str, prompt_id: str, timeout_s: float = 30.0) -> dict:
        import urllib.request

        deadline = time.monotonic() + timeout_s
        while True:
            with urllib.request.urlopen(f"{server_url}/history/{prompt_id}", timeout=30) as response:
                record = json.loads(response.read().decode("utf-8")).get(prompt_id)
            if record and record.get("status", {}).get("completed") is not None:
                return record
            if time.monotonic() > deadline:
                return record or {}
            time.sleep(0.2)

    def loaded_preview_sizes(self, node_id: int) -> list[tuple[int, int]]:
        """Sizes of the images the page shows on a node (SaveImage's previews), once they are decoded.

        The canvas loads a node's previews when it draws the node, so the view moves to it first (as a
        user scrolls to look)."""
        self.center_on_node(node_id)
        self.page.wait_for_function(
            "(id) => { const n = app.graph.getNodeById(id); return n.imgs?.length && n.imgs.every(i => i.complete && i.naturalWidth); }",
            arg=node_id, timeout=30_000)
        return [tuple(size) for size in self.page.evaluate(
            "(id) => app.graph.getNodeById(id).imgs.map(i => [i.naturalWidth, i.naturalHeight])", node_id)]


# ---- checks shared by the tests (and by make_pictures, which refuses to photograph a broken graph) -------
def expected_widgets(definition: dict) -> list[str]:
    """Widget names the frontend should create for a node definition (an /object_info entry), in order:
    every INT/FLOAT/STRING/BOOLEAN/combo input, and a ``control_after_generate`` after seed-like INTs."""
    names = []
    order = definition.get("input_order") or {}
    for section in ("required", "optional"):
        inputs = (definition.get("input") or {}).get(section) or {}
        for name in order.get(section) or list(inputs):
            spec = inputs[name]
            kind = "COMBO" if isinstance(spec[0], list) else spec[0]
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            if kind not in WIDGET_TYPES:
                continue
            names.append(name)
            if kind == "INT" and (options.get("control_after_generate") or name in ("seed", "noise_seed")):
                names.append("control_after_generate")
    return names


def declared_tooltips(definition: dict) -> dict[str, str]:
    """Input name -> tooltip, as declared in INPUT_TYPES (served by /object_info)."""
    tooltips = {}
    for section in ("required", "optional"):
        for name, spec in ((definition.get("input") or {}).get(section) or {}).items():
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            tooltips[name] = options.get("tooltip") or ""
    return tooltips


def load_problems(result: LoadResult) -> list[str]:
    """Everything a user would see as broken after loading: missing node types (the frontend's list and
    its dialog), node types the page has not registered, nodes drawn with errors, nodes lost on the way."""
    problems = []
    if result.missing:
        problems.append(f"the frontend reported missing node types {result.missing}")
    if result.missing_nodes_dialog:
        problems.append(f"the '{MISSING_NODES_TITLE}' dialog is open: {result.missing_nodes_dialog!r}")
    wanted = {n["type"] for n in result.workflow.get("nodes", [])}
    unregistered = sorted(wanted - set(result.registered_types))
    if unregistered:
        problems.append(f"LiteGraph.registered_node_types lacks {unregistered}")
    broken = [f"#{n['id']} {n['type']}" for n in result.nodes if n["has_errors"]]
    if broken:
        problems.append(f"nodes drawn with errors (has_errors): {broken}")
    ids_file = sorted(n["id"] for n in result.workflow.get("nodes", []))
    ids_page = sorted(n["id"] for n in result.nodes)
    if ids_file != ids_page:
        problems.append(f"the page has nodes {ids_page}, the file {ids_file}")
    return problems
