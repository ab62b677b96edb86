"""Re-creates the example workflows in this folder (UI format, as the ComfyUI frontend saves them).

    python workflows/build_workflows.py        # from the repository root

Widget order and sockets of our nodes come from their INPUT_TYPES; the ComfyUI core nodes used are
described below as ComfyUI v0.3.64 declares them (tests/integration checks every file against a
running server's /object_info).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FRONTEND_VERSION = "1.27.10"
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN"}

# Layout, in canvas units, as the frontend (LiteGraph) draws a node: the title bar above ``pos``, then one
# row per input/output slot, then one row per widget; a multiline text box takes at least TEXT_BOX_H.
TITLE_H = 30
SLOT_H = 20
WIDGET_H = 24
TEXT_BOX_H = 74
GAP = 40
"""Clear space kept between any two nodes (title bars included)."""
COLUMN_GAP = 80
"""Between a node and the next column: room for the links to curve."""


def columns(first: int, *widths: int) -> list[int]:
    """x of each column: the first at ``first``, each next one a node width and COLUMN_GAP further."""
    xs = [first]
    for width in widths:
        xs.append(xs[-1] + width + COLUMN_GAP)
    return xs


@dataclass
class NodeSpec:
    sockets: list[tuple[str, str, bool]]
    """Connection inputs: (name, type, optional)."""
    widgets: list[tuple[str, str, Any]]
    """Widget inputs in frontend order: (name, type, default); type "CONTROL" is a seed's control widget."""
    outputs: list[tuple[str, str]]
    text_boxes: int = 0
    """Multiline text boxes the frontend draws (multiline STRING widgets, PreviewAny's display)."""


def _pack_specs() -> dict[str, NodeSpec]:
    if str(REPO) not in sys.path:
        sys.path.append(str(REPO))
    name = str(REPO).replace(".", "_x_")
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, REPO / "__init__.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    specs = {}
    for node_type, cls in module.NODE_CLASS_MAPPINGS.items():
        declared = cls.INPUT_TYPES()
        sockets, widgets, text_boxes = [], [], 0
        for section in ("required", "optional"):
            for input_name, input_spec in declared.get(section, {}).items():
                kind, options = input_spec[0], (input_spec[1] if len(input_spec) > 1 else {})
                if isinstance(kind, (list, tuple)):
                    widgets.append((input_name, "COMBO", options.get("default", kind[0])))
                elif kind in WIDGET_TYPES:
                    widgets.append((input_name, kind, options.get("default")))
                    text_boxes += bool(kind == "STRING" and options.get("multiline"))
                    if kind == "INT" and (options.get("control_after_generate") or input_name in ("seed", "noise_seed")):
                        widgets.append(("control_after_generate", "CONTROL", "fixed"))
                else:
                    sockets.append((input_name, kind, section == "optional"))
        outputs = list(zip(getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES), cls.RETURN_TYPES))
        specs[node_type] = NodeSpec(sockets, widgets, outputs, text_boxes)
    return specs


CORE: dict[str, NodeSpec] = {
    "Note": NodeSpec([], [("text", "STRING", "")], [], text_boxes=1),
    "SaveImage": NodeSpec([("images", "IMAGE", False)], [("filename_prefix", "STRING", "ComfyUI")], []),
    "PreviewAny": NodeSpec([("source", "*", False)], [], [], text_boxes=1),
    "ImageBatch": NodeSpec([("image1", "IMAGE", False), ("image2", "IMAGE", False)], [], [("IMAGE", "IMAGE")]),
    "UNETLoader": NodeSpec([], [("unet_name", "COMBO", None), ("weight_dtype", "COMBO", "default")],
                           [("MODEL", "MODEL")]),
    "CLIPLoader": NodeSpec([], [("clip_name", "COMBO", None), ("type", "COMBO", "stable_diffusion"),
                                ("device", "COMBO", "default")], [("CLIP", "CLIP")]),
    "VAELoader": NodeSpec([], [("vae_name", "COMBO", None)], [("VAE", "VAE")]),
    "ModelSamplingAuraFlow": NodeSpec([("model", "MODEL", False)], [("shift", "FLOAT", 1.73)], [("MODEL", "MODEL")]),
    "CFGNorm": NodeSpec([("model", "MODEL", False)], [("strength", "FLOAT", 1.0)], [("patched_model", "MODEL")]),
    "TextEncodeQwenImageEdit": NodeSpec([("clip", "CLIP", False), ("vae", "VAE", True), ("image", "IMAGE", True)],
                                        [("prompt", "STRING", "")], [("CONDITIONING", "CONDITIONING")], text_boxes=1),
    "ImageScaleToTotalPixels": NodeSpec([("image", "IMAGE", False)],
                                        [("upscale_method", "COMBO", "nearest-exact"), ("megapixels", "FLOAT", 1.0)],
                                        [("IMAGE", "IMAGE")]),
    "VAEEncode": NodeSpec([("pixels", "IMAGE", False), ("vae", "VAE", False)], [], [("LATENT", "LATENT")]),
    "VAEDecode": NodeSpec([("samples", "LATENT", False), ("vae", "VAE", False)], [], [("IMAGE", "IMAGE")]),
    "KSampler": NodeSpec(
        [("model", "MODEL", False), ("positive", "CONDITIONING", False), ("negative", "CONDITIONING", False),
         ("latent_image", "LATENT", False)],
        [("seed", "INT", 0), ("control_after_generate", "CONTROL", "fixed"), ("steps", "INT", 20),
         ("cfg", "FLOAT", 8.0), ("sampler_name", "COMBO", "euler"), ("scheduler", "COMBO", "simple"),
         ("denoise", "FLOAT", 1.0)],
        [("LATENT", "LATENT")]),
}


@dataclass
class Node:
    id: int
    type: str
    spec: NodeSpec
    pos: tuple[int, int]
    size: tuple[int, int]
    widgets: dict[str, Any]
    title: str | None = None
    colors: tuple[str, str] | None = None
    inputs: list[dict] = field(default_factory=list)
    outputs: list[dict] = field(default_factory=list)

    @property
    def right(self) -> int:
        return self.pos[0] + self.size[0]

    @property
    def bottom(self) -> int:
        return self.pos[1] + self.size[1]

    def box(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) as drawn: the title bar sits above ``pos``."""
        return self.pos[0], self.pos[1] - TITLE_H, self.right, self.bottom

    def min_height(self) -> int:
        """At least the height the frontend gives the node (LiteGraph's computeSize, rounded up)."""
        slots = max(len(self.spec.sockets), len(self.spec.outputs))
        rows, boxes = len(self.spec.widgets), self.spec.text_boxes
        height = slots * SLOT_H + (rows - min(rows, boxes)) * WIDGET_H + boxes * TEXT_BOX_H
        return height + (14 if rows or boxes else 6)

    def input_point(self, name: str) -> tuple[float, float]:
        """Where a link ends on the canvas (the frontend puts a converted widget's socket on its row)."""
        index = [i["name"] for i in self.inputs].index(name)
        if "widget" not in self.inputs[index]:
            return self.pos[0] + 10, self.pos[1] + 14 + SLOT_H * index
        row = [w[0] for w in self.spec.widgets].index(name)
        slots = max(len(self.spec.sockets), len(self.spec.outputs))
        return self.pos[0] + 10, self.pos[1] + slots * SLOT_H + 6 + row * WIDGET_H + WIDGET_H // 2

    def output_point(self, index: int) -> tuple[float, float]:
        return self.right - 9, self.pos[1] + 14 + SLOT_H * index


class Graph:
    def __init__(self, name: str) -> None:
        self.name = name
        self.specs = {**CORE, **_pack_specs()}
        self.nodes: list[Node] = []
        self.links: list[list] = []

    def add(self, node_type: str, pos: tuple[int, int], size: tuple[int, int] = (320, 120), title: str | None = None,
            **widgets: Any) -> Node:
        spec = self.specs[node_type]
        known = {name for name, _, _ in spec.widgets}
        unknown = set(widgets) - known
        if unknown:
            raise ValueError(f"{node_type}: unknown widgets {sorted(unknown)}")
        node = Node(len(self.nodes) + 1, node_type, spec, tuple(pos), tuple(size), widgets, title)
        node.inputs = [{"name": n, "type": t, "link": None, **({"shape": 7} if optional else {})}
                       for n, t, optional in spec.sockets]
        node.outputs = [{"name": n, "type": t, "slot_index": i, "links": None} for i, (n, t) in enumerate(spec.outputs)]
        self.nodes.append(node)
        return node

    def note(self, text: str, pos: tuple[int, int], size: tuple[int, int] = (420, 300), title: str = "Read me") -> Node:
        node = self.add("Note", pos, size, title=title, text=text)
        node.colors = ("#432", "#653")
        return node

    def connect(self, source: Node, output: str, target: Node, input_name: str) -> None:
        out_index = [o["name"] for o in source.outputs].index(output)
        out_type = source.outputs[out_index]["type"]
        names = [i["name"] for i in target.inputs]
        if input_name not in names:
            widget = {n: t for n, t, _ in target.spec.widgets}.get(input_name)
            if widget is None:
                raise ValueError(f"{target.type} has no input {input_name!r}")
            target.inputs.append({"name": input_name, "type": widget, "widget": {"name": input_name}, "link": None})
            names.append(input_name)
        slot = names.index(input_name)
        link_id = len(self.links) + 1
        target.inputs[slot]["link"] = link_id
        links = source.outputs[out_index]["links"] or []
        source.outputs[out_index]["links"] = links + [link_id]
        self.links.append([link_id, source.id, out_index, target.id, slot, out_type])

    # -- layout ------------------------------------------------------------------------------------
    @staticmethod
    def right_of(*nodes: Node, gap: int = COLUMN_GAP) -> int:
        """x of a column right of ``nodes``."""
        return max(n.right for n in nodes) + gap

    @staticmethod
    def below(*nodes: Node, gap: int = GAP) -> int:
        """y of a node placed under ``nodes`` (its title bar ``gap`` under their lowest edge)."""
        return max(n.bottom for n in nodes) + gap + TITLE_H

    def layout_problems(self) -> list[str]:
        """What would make the graph hard to read: a node smaller than the frontend will draw it, two nodes
        closer than GAP, a link that does not run left to right, a link drawn behind a third node (links
        are splines with control points a quarter of their length out, as LiteGraph draws them).
        tests/browser checks the same on the graph as the real frontend renders it."""
        problems = []
        for node in self.nodes:
            if node.size[1] < node.min_height():
                problems.append(f"#{node.id} {node.type} is {node.size[1]} high, the frontend needs {node.min_height()}")
        for i, a in enumerate(self.nodes):
            for b in self.nodes[i + 1:]:
                (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = a.box(), b.box()
                gap = max(bx0 - ax1, ax0 - bx1, by0 - ay1, ay0 - by1)
                if gap < GAP:
                    problems.append(f"#{a.id} {a.type} and #{b.id} {b.type} are {gap} apart")
        by_id = {n.id: n for n in self.nodes}
        for link_id, source_id, out_index, target_id, slot, _ in self.links:
            source, target = by_id[source_id], by_id[target_id]
            label = f"link {link_id} #{source.id} {source.type} -> #{target.id} {target.type}.{target.inputs[slot]['name']}"
            if target.pos[0] < source.right + GAP:
                problems.append(f"{label} does not run left to right")
            (x0, y0), (x3, y3) = source.output_point(out_index), target.input_point(target.inputs[slot]["name"])
            reach = 0.25 * ((x3 - x0) ** 2 + (y3 - y0) ** 2) ** 0.5
            points = [(x0, y0), (x0 + reach, y0), (x3 - reach, y3), (x3, y3)]
            hidden = set()
            for k in range(1, 100):
                u = k / 100
                w = ((1 - u) ** 3, 3 * (1 - u) ** 2 * u, 3 * (1 - u) * u * u, u ** 3)
                x = sum(wi * p[0] for wi, p in zip(w, points))
                y = sum(wi * p[1] for wi, p in zip(w, points))
                for other in self.nodes:
                    left, top, right, bottom = other.box()
                    if other not in (source, target) and left + 2 < x < right - 2 and top + 2 < y < bottom - 2:
                        hidden.add(other.id)
            problems.extend(f"{label} runs behind #{i} {by_id[i].type}" for i in sorted(hidden))
        return problems

    def _order(self) -> dict[int, int]:
        incoming = {n.id: {link[1] for link in self.links if link[3] == n.id} for n in self.nodes}
        order, done = {}, set()
        while len(done) < len(self.nodes):
            ready = [n.id for n in self.nodes if n.id not in done and incoming[n.id] <= done]
            for node_id in ready:
                order[node_id] = len(order)
                done.add(node_id)
        return order

    def to_json(self) -> dict:
        order = self._order()
        nodes = []
        for node in self.nodes:
            values = []
            for name, kind, default in node.spec.widgets:
                values.append(node.widgets.get(name, default))
            item = {"id": node.id, "type": node.type, "pos": list(node.pos), "size": list(node.size), "flags": {},
                    "order": order[node.id], "mode": 0, "inputs": node.inputs, "outputs": node.outputs,
                    "properties": {} if node.type == "Note" else {"Node name for S&R": node.type},
                    "widgets_values": values}
            if node.title:
                item["title"] = node.title
            if node.colors:
                item["color"], item["bgcolor"] = node.colors
            nodes.append(item)
        return {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"comfyui-rnr/workflows/{self.name}")),
            "revision": 0, "last_node_id": len(self.nodes), "last_link_id": len(self.links),
            "nodes": nodes, "links": self.links, "groups": [], "config": {},
            "extra": {"ds": {"scale": 0.75, "offset": [40, 40]}, "frontendVersion": FRONTEND_VERSION},
            "version": 0.4,
        }

    def save(self) -> Path:
        problems = self.layout_problems()
        if problems:
            raise ValueError(f"{self.name}: layout problems:\n  " + "\n  ".join(problems))
        path = HERE / f"{self.name}.json"
        path.write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path


# ---- the workflows -------------------------------------------------------------------------------
# Layout: the note top left, then columns left to right in the order the data flows (cN is column N's x),
# so every link runs left to right; the heights are chosen so that no link is drawn behind a node.
# Graph.save refuses a layout with problems (Graph.layout_problems); tests/browser checks the same on the
# graph as the real frontend renders it.
NOTE_SAMPLES = ("The photo is one of the clean samples shipped with the pack (RnR Load Sample Image); RnR Degrade "
                "adds the degradation in the graph, so the workflow runs as is. To restore your own photo, replace "
                "both with a Load Image node.")


def restore_default() -> Graph:
    g = Graph("01_restore_default")
    note = g.note("**Restore with the built-in default**\n\nRnR Restore with nothing but an image connected diagnoses the "
           "photo itself (which of haze, rain, noise, blur are present and how strongly) and removes what it "
           "found, with the built-in restorer. No model download needed.\n\n" + NOTE_SAMPLES, (0, 0))
    sample = g.add("RnRLoadSampleImage", (0, g.below(note)), (300, 60), sample="landscape.jpg")
    degrade = g.add("RnRDegrade", (g.right_of(sample), sample.pos[1]), (300, 200), haze=60, noise=15, seed=1)
    # Lower than Degrade, so that the link to the Degraded preview passes above it.
    restore = g.add("RnRRestore", (g.right_of(degrade), degrade.pos[1] + 90), (300, 150))
    save_in = g.add("SaveImage", (g.right_of(restore), 0), (420, 330), title="Degraded",
                    filename_prefix="RnR/01_degraded")
    save_out = g.add("SaveImage", (save_in.pos[0], g.below(save_in)), (420, 330), title="Restored",
                     filename_prefix="RnR/01_restored")
    g.connect(sample, "image", degrade, "image")
    g.connect(degrade, "image", restore, "image")
    g.connect(degrade, "image", save_in, "images")
    g.connect(restore, "image", save_out, "images")
    return g


def diagnose_edit_restore() -> Graph:
    g = Graph("02_diagnose_edit_restore")
    g.note("**Diagnose, edit, restore: keep some fog on purpose**\n\nRnR Reason writes the diagnosis (read it in "
           "the text box). RnR Diagnosis Edit lowers the haze severity to 25, so the restorer removes only that "
           "much haze and the mood of the fog stays; the noise is still removed in full. The upper branch restores "
           "the unedited diagnosis for comparison.\n\nTry: haze_presence = off keeps all the fog; order changes "
           "what is removed first; json_override pastes a whole diagnosis.\n\n" + NOTE_SAMPLES, (0, 0), (420, 380))
    c1, c2, c3, c4, c5 = columns(380, 300, 300, 320, 340)
    sample = g.add("RnRLoadSampleImage", (0, 450), (300, 60), sample="landscape.jpg")
    degrade = g.add("RnRDegrade", (c1, 450), (300, 200), haze=70, noise=20, seed=2)
    reason = g.add("RnRReason", (c2, 540), (300, 60))
    edit = g.add("RnRDiagnosisEdit", (c3, 540), (320, 370), haze_severity=25)
    keep_fog = g.add("RnRRestore", (c4, 460), (340, 150), title="RnR Restore (edited: keep some fog)")
    full = g.add("RnRRestore", (c3, 230), (300, 150), title="RnR Restore (as diagnosed)")
    report = g.add("PreviewAny", (c3, 980), (320, 240), title="Diagnosis")
    edited_report = g.add("PreviewAny", (c4, 680), (320, 220), title="Edited diagnosis")
    save_in = g.add("SaveImage", (c5, 390), (380, 300), title="Degraded", filename_prefix="RnR/02_degraded")
    save_keep = g.add("SaveImage", (c5, 760), (380, 300), title="Restored, some fog kept",
                      filename_prefix="RnR/02_keep_fog")
    save_full = g.add("SaveImage", (c5, 20), (380, 300), title="Restored as diagnosed",
                      filename_prefix="RnR/02_full")
    g.connect(sample, "image", degrade, "image")
    g.connect(degrade, "image", reason, "image")
    g.connect(reason, "diagnosis", edit, "diagnosis")
    g.connect(reason, "report", report, "source")
    g.connect(edit, "report", edited_report, "source")
    g.connect(degrade, "image", keep_fog, "image")
    g.connect(edit, "diagnosis", keep_fog, "diagnosis")
    g.connect(degrade, "image", full, "image")
    g.connect(reason, "diagnosis", full, "diagnosis")
    g.connect(degrade, "image", save_in, "images")
    g.connect(keep_fog, "image", save_keep, "images")
    g.connect(full, "image", save_full, "images")
    return g


def severity_report() -> Graph:
    g = Graph("03_severity_report")
    note = g.note("**Before/after severity report**\n\nRnR Severity Score with a reference scores both images on the shared "
           "0-100 scale and outputs the reduction per degradation (positive = cleaner). The report lists before, "
           "after and reduction; the FLOAT outputs can drive other nodes.\n\n" + NOTE_SAMPLES, (0, 0))
    c1, c2, c3, c4 = columns(380, 300, 380, 380)
    sample = g.add("RnRLoadSampleImage", (0, g.below(note)), (300, 60), sample="building.jpg")
    degrade = g.add("RnRDegrade", (c1, sample.pos[1]), (300, 200), rain=50, noise=20, seed=3)
    restore = g.add("RnRRestore", (c2, 490), (300, 150))
    score = g.add("RnRSeverityScore", (c3, 360), (320, 130))
    report = g.add("PreviewAny", (c4, 380), (460, 260), title="Severity report")
    overall = g.add("PreviewAny", (c4, 190), (300, 120), title="Overall reduction")
    save_in = g.add("SaveImage", (c2, 0), (380, 290), title="Degraded", filename_prefix="RnR/03_degraded")
    save_out = g.add("SaveImage", (c3, 0), (380, 290), title="Restored", filename_prefix="RnR/03_restored")
    g.connect(sample, "image", degrade, "image")
    g.connect(degrade, "image", restore, "image")
    g.connect(restore, "image", score, "image")
    g.connect(degrade, "image", score, "reference")
    g.connect(score, "report", report, "source")
    g.connect(score, "overall", overall, "source")
    g.connect(degrade, "image", save_in, "images")
    g.connect(restore, "image", save_out, "images")
    return g


BIG_REASONER = "Qwen3-VL-8B-Instruct"
BIG_RESTORER = "Qwen-Image-Edit-2509"


def big_models() -> Graph:
    g = Graph("04_big_models")
    g.note("**The paper's models: Qwen3-VL reasons, Qwen-Image-Edit restores**\n\nNeeds a GPU with about 24 GB "
           "(more without offload) and the models on disk:\n\n"
           f"- ComfyUI/models/rnr/reasoners/{BIG_REASONER}/ (the Hugging Face folder: config.json, "
           "*.safetensors, tokenizer and processor files)\n"
           f"- ComfyUI/models/rnr/restorers/{BIG_RESTORER}/ (the diffusers folder of Qwen-Image-Edit)\n\n"
           "Pick other folders in the loaders' model lists (press R after copying files). The same reasoner also "
           "judges the result in RnR Severity Score; it is loaded once and shared.\n\n" + NOTE_SAMPLES,
           (0, 0), (460, 400))
    c1 = 380
    loaders = 460 + COLUMN_GAP
    c2, c3, c4, c5 = columns(loaders + 320 + COLUMN_GAP, 300, 320, 320)
    reasoner = g.add("RnRReasonerLoader", (loaders, 740), (320, 160), backend="qwen3vl", model=BIG_REASONER,
                     dtype="bf16")
    restorer = g.add("RnRRestorerLoader", (loaders, 240), (320, 160), backend="qwen_image_edit",
                     model=BIG_RESTORER, dtype="bf16")
    sample = g.add("RnRLoadSampleImage", (0, 470), (300, 60), sample="foliage.jpg")
    degrade = g.add("RnRDegrade", (c1, 470), (300, 200), haze=50, rain=40, seed=4)
    reason = g.add("RnRReason", (c2, 560), (300, 60))
    restore = g.add("RnRRestore", (c3, 250), (300, 150), seed=42)
    score = g.add("RnRSeverityScore", (c4, 370), (320, 130))
    report = g.add("PreviewAny", (c3, 600), (320, 260), title="Diagnosis")
    score_report = g.add("PreviewAny", (c5, 500), (420, 260), title="Severity report")
    save = g.add("SaveImage", (c5, 70), (420, 360), title="Restored", filename_prefix="RnR/04_restored")
    g.connect(sample, "image", degrade, "image")
    g.connect(degrade, "image", reason, "image")
    g.connect(reasoner, "reasoner", reason, "reasoner")
    g.connect(reason, "report", report, "source")
    g.connect(degrade, "image", restore, "image")
    g.connect(reason, "diagnosis", restore, "diagnosis")
    g.connect(restorer, "restorer", restore, "restorer")
    g.connect(restore, "image", score, "image")
    g.connect(degrade, "image", score, "reference")
    g.connect(reasoner, "reasoner", score, "reasoner")
    g.connect(score, "report", score_report, "source")
    g.connect(restore, "image", save, "images")
    return g


QWEN_UNET = "qwen_image_edit_2509_fp8_e4m3fn.safetensors"
QWEN_CLIP = "qwen_2.5_vl_7b_fp8_scaled.safetensors"
QWEN_VAE = "qwen_image_vae.safetensors"


def comfy_qwen_image_edit() -> Graph:
    g = Graph("05_diagnosis_prompt_to_qwen_image_edit")
    g.note("**The diagnosis drives ComfyUI's own Qwen-Image-Edit nodes**\n\nRnR Reason diagnoses the photo and RnR "
           "Diagnosis To Prompt writes the restore instruction (severity-aware, in restoration order) into "
           "TextEncodeQwenImageEdit. The rest is ComfyUI's standard Qwen-Image-Edit graph. Models (from "
           "Comfy-Org's Qwen-Image-Edit repackaging):\n\n"
           f"- models/diffusion_models/{QWEN_UNET}\n- models/text_encoders/{QWEN_CLIP}\n- models/vae/{QWEN_VAE}\n\n"
           "RnR Severity Score at the end measures what the edit removed.\n\n" + NOTE_SAMPLES, (0, 0), (460, 420))
    c1, c2, c3, c4, c5, c6, c7, c8 = columns(460 + COLUMN_GAP, 330, 300, 330, 360, 300, 200, 420)
    unet = g.add("UNETLoader", (c1, 0), (330, 90), unet_name=QWEN_UNET)
    clip = g.add("CLIPLoader", (c3, 140), (330, 110), clip_name=QWEN_CLIP, type="qwen_image")
    vae = g.add("VAELoader", (c3, 700), (330, 60), vae_name=QWEN_VAE)
    sample = g.add("RnRLoadSampleImage", (0, 540), (300, 60), sample="landscape.jpg")
    degrade = g.add("RnRDegrade", (c1, 540), (300, 200), haze=55, noise=10, seed=5)
    reason = g.add("RnRReason", (c2, 780), (300, 60))
    prompt = g.add("RnRDiagnosisToPrompt", (c3, 840), (300, 60))
    show_prompt = g.add("PreviewAny", (c4, 840), (300, 200), title="Restore instruction")
    scale = g.add("ImageScaleToTotalPixels", (c2, 600), (300, 90), upscale_method="lanczos", megapixels=1.0)
    sampling = g.add("ModelSamplingAuraFlow", (c2, 0), (300, 60), shift=3.0)
    norm = g.add("CFGNorm", (c3, 0), (300, 60), strength=1.0)
    positive = g.add("TextEncodeQwenImageEdit", (c4, 320), (360, 160), title="TextEncodeQwenImageEdit (positive)")
    negative = g.add("TextEncodeQwenImageEdit", (c4, 560), (360, 160), title="TextEncodeQwenImageEdit (negative)")
    encode = g.add("VAEEncode", (c4, 200), (200, 50))
    sampler = g.add("KSampler", (c5, 220), (300, 270), seed=42, steps=20, cfg=2.5, sampler_name="euler",
                    scheduler="simple", denoise=1.0)
    decode = g.add("VAEDecode", (c6, 800), (200, 50))
    score = g.add("RnRSeverityScore", (c7, 460), (320, 130))
    score_report = g.add("PreviewAny", (c8, 560), (420, 260), title="Severity report")
    save = g.add("SaveImage", (c7, 680), (420, 360), title="Restored", filename_prefix="RnR/05_qwen_image_edit")
    g.connect(sample, "image", degrade, "image")
    g.connect(degrade, "image", reason, "image")
    g.connect(reason, "diagnosis", prompt, "diagnosis")
    g.connect(prompt, "prompt", show_prompt, "source")
    g.connect(degrade, "image", scale, "image")
    g.connect(unet, "MODEL", sampling, "model")
    g.connect(sampling, "MODEL", norm, "model")
    g.connect(clip, "CLIP", positive, "clip")
    g.connect(vae, "VAE", positive, "vae")
    g.connect(scale, "IMAGE", positive, "image")
    g.connect(prompt, "prompt", positive, "prompt")
    g.connect(clip, "CLIP", negative, "clip")
    g.connect(vae, "VAE", negative, "vae")
    g.connect(scale, "IMAGE", negative, "image")
    g.connect(scale, "IMAGE", encode, "pixels")
    g.connect(vae, "VAE", encode, "vae")
    g.connect(norm, "patched_model", sampler, "model")
    g.connect(positive, "CONDITIONING", sampler, "positive")
    g.connect(negative, "CONDITIONING", sampler, "negative")
    g.connect(encode, "LATENT", sampler, "latent_image")
    g.connect(sampler, "LATENT", decode, "samples")
    g.connect(vae, "VAE", decode, "vae")
    g.connect(decode, "IMAGE", score, "image")
    g.connect(degrade, "image", score, "reference")
    g.connect(score, "report", score_report, "source")
    g.connect(decode, "IMAGE", save, "images")
    return g


def batch_of_photos() -> Graph:
    g = Graph("06_batch_of_photos")
    g.note("**A batch of photos through one graph**\n\nThree photos, each with a different problem (haze, rain, "
           "noise with blur), are batched with ComfyUI's Batch Images node (which resizes to the first image). RnR "
           "Reason writes one diagnosis per image and RnR Restore follows each image's own diagnosis. Every RnR "
           "node works on batches.\n\n" + NOTE_SAMPLES, (0, 0), (420, 320))
    c1, c2, c3, c4, c5, c6, c7 = columns(380, 300, 200, 200, 300, 300, 320)
    photos = []
    for row, (sample, severities, seed) in enumerate([
            ("building.jpg", {"haze": 75}, 11), ("landscape.jpg", {"rain": 50}, 12),
            ("foliage.jpg", {"noise": 30, "blur": 25}, 13)]):
        load = g.add("RnRLoadSampleImage", (0, 390 + 270 * row), (300, 60), sample=sample)
        degrade = g.add("RnRDegrade", (c1, 390 + 270 * row), (300, 200), seed=seed, **severities)
        g.connect(load, "image", degrade, "image")
        photos.append(degrade)
    first = g.add("ImageBatch", (c2, 640), (200, 50))
    second = g.add("ImageBatch", (c3, 650), (200, 50))
    g.connect(photos[0], "image", first, "image1")
    g.connect(photos[1], "image", first, "image2")
    g.connect(first, "IMAGE", second, "image1")
    g.connect(photos[2], "image", second, "image2")
    reason = g.add("RnRReason", (c4, 720), (300, 60))
    restore = g.add("RnRRestore", (c5, 460), (300, 150))
    score = g.add("RnRSeverityScore", (c6, 580), (320, 130))
    report = g.add("PreviewAny", (c5, 710), (300, 420), title="Diagnoses")
    score_report = g.add("PreviewAny", (c7, 680), (460, 300), title="Severity report")
    save_in = g.add("SaveImage", (c5, -60), (420, 330), title="Degraded batch", filename_prefix="RnR/06_degraded")
    save_out = g.add("SaveImage", (c6 + 100, 180), (420, 330), title="Restored batch",
                     filename_prefix="RnR/06_restored")
    g.connect(second, "IMAGE", reason, "image")
    g.connect(reason, "report", report, "source")
    g.connect(second, "IMAGE", restore, "image")
    g.connect(reason, "diagnosis", restore, "diagnosis")
    g.connect(restore, "image", score, "image")
    g.connect(second, "IMAGE", score, "reference")
    g.connect(score, "report", score_report, "source")
    g.connect(second, "IMAGE", save_in, "images")
    g.connect(restore, "image", save_out, "images")
    return g


BUILDERS = (restore_default, diagnose_edit_restore, severity_report, big_models, comfy_qwen_image_edit,
            batch_of_photos)


def main() -> None:
    for build in BUILDERS:
        print(build().save().relative_to(REPO))


if __name__ == "__main__":
    main()
