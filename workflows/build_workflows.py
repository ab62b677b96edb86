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


@dataclass
class NodeSpec:
    sockets: list[tuple[str, str, bool]]
    """Connection inputs: (name, type, optional)."""
    widgets: list[tuple[str, str, Any]]
    """Widget inputs in frontend order: (name, type, default); type "CONTROL" is a seed's control widget."""
    outputs: list[tuple[str, str]]


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
        sockets, widgets = [], []
        for section in ("required", "optional"):
            for input_name, input_spec in declared.get(section, {}).items():
                kind, options = input_spec[0], (input_spec[1] if len(input_spec) > 1 else {})
                if isinstance(kind, (list, tuple)):
                    widgets.append((input_name, "COMBO", options.get("default", kind[0])))
                elif kind in WIDGET_TYPES:
                    widgets.append((input_name, kind, options.get("default")))
                    if kind == "INT" and (options.get("control_after_generate") or input_name in ("seed", "noise_seed")):
                        widgets.append(("control_after_generate", "CONTROL", "fixed"))
                else:
                    sockets.append((input_name, kind, section == "optional"))
        outputs = list(zip(getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES), cls.RETURN_TYPES))
        specs[node_type] = NodeSpec(sockets, widgets, outputs)
    return specs


CORE: dict[str, NodeSpec] = {
    "Note": NodeSpec([], [("text", "STRING", "")], []),
    "SaveImage": NodeSpec([("images", "IMAGE", False)], [("filename_prefix", "STRING", "ComfyUI")], []),
    "PreviewAny": NodeSpec([("source", "*", False)], [], []),
    "ImageBatch": NodeSpec([("image1", "IMAGE", False), ("image2", "IMAGE", False)], [], [("IMAGE", "IMAGE")]),
    "UNETLoader": NodeSpec([], [("unet_name", "COMBO", None), ("weight_dtype", "COMBO", "default")],
                           [("MODEL", "MODEL")]),
    "CLIPLoader": NodeSpec([], [("clip_name", "COMBO", None), ("type", "COMBO", "stable_diffusion"),
                                ("device", "COMBO", "default")], [("CLIP", "CLIP")]),
    "VAELoader": NodeSpec([], [("vae_name", "COMBO", None)], [("VAE", "VAE")]),
    "ModelSamplingAuraFlow": NodeSpec([("model", "MODEL", False)], [("shift", "FLOAT", 1.73)], [("MODEL", "MODEL")]),
    "CFGNorm": NodeSpec([("model", "MODEL", False)], [("strength", "FLOAT", 1.0)], [("patched_model", "MODEL")]),
    "TextEncodeQwenImageEdit": NodeSpec([("clip", "CLIP", False), ("vae", "VAE", True), ("image", "IMAGE", True)],
                                        [("prompt", "STRING", "")], [("CONDITIONING", "CONDITIONING")]),
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
        node = Node(len(self.nodes) + 1, node_type, spec, pos, size, widgets, title)
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
        path = HERE / f"{self.name}.json"
        path.write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path


# ---- the workflows -------------------------------------------------------------------------------
NOTE_SAMPLES = ("The photo is one of the clean samples shipped with the pack (RnR Load Sample Image); RnR Degrade "
                "adds the degradation in the graph, so the workflow runs as is. To restore your own photo, replace "
                "both with a Load Image node.")


def restore_default() -> Graph:
    g = Graph("01_restore_default")
    g.note("**Restore with the built-in default**\n\nRnR Restore with nothing but an image connected diagnoses the "
           "photo itself (which of haze, rain, noise, blur are present and how strongly) and removes what it "
           "found, with the built-in restorer. No model download needed.\n\n" + NOTE_SAMPLES, (0, 0))
    sample = g.add("RnRLoadSampleImage", (0, 340), (300, 90), sample="landscape.jpg")
    degrade = g.add("RnRDegrade", (340, 340), (300, 220), haze=60, noise=15, seed=1)
    restore = g.add("RnRRestore", (680, 340), (300, 150))
    save_in = g.add("SaveImage", (1020, 0), (420, 330), title="Degraded", filename_prefix="RnR/01_degraded")
    save_out = g.add("SaveImage", (1020, 380), (420, 330), title="Restored", filename_prefix="RnR/01_restored")
    g.connect(sample, "image", degrade, "image")
    g.connect(degrade, "image", restore, "image")
    g.connect(degrade, "image", save_in, "images")
    g.connect(restore, "image", save_out, "images")
    return g


def diagnose_edit_restore() -> Graph:
    g = Graph("02_diagnose_edit_restore")
    g.note("**Diagnose, edit, restore: keep some fog on purpose**\n\nRnR Reason writes the diagnosis (read it in "
           "the text box). RnR Diagnosis Edit lowers the haze severity to 25, so the restorer removes only that "
           "much haze and the mood of the fog stays; the noise is still removed in full. The lower branch restores "
           "the unedited diagnosis for comparison.\n\nTry: haze_presence = off keeps all the fog; order changes "
           "what is removed first; json_override pastes a whole diagnosis.\n\n" + NOTE_SAMPLES, (0, 0), (420, 360))
    sample = g.add("RnRLoadSampleImage", (0, 400), (300, 90), sample="landscape.jpg")
    degrade = g.add("RnRDegrade", (0, 530), (300, 220), haze=70, noise=20, seed=2)
    reason = g.add("RnRReason", (340, 400), (300, 80))
    edit = g.add("RnRDiagnosisEdit", (680, 0), (320, 400), haze_severity=25)
    keep_fog = g.add("RnRRestore", (1040, 0), (300, 150), title="RnR Restore (edited: keep some fog)")
    full = g.add("RnRRestore", (1040, 560), (300, 150), title="RnR Restore (as diagnosed)")
    report = g.add("PreviewAny", (340, 560), (300, 300), title="Diagnosis")
    edited_report = g.add("PreviewAny", (680, 460), (320, 300), title="Edited diagnosis")
    save_in = g.add("SaveImage", (1380, 560), (380, 330), title="Degraded", filename_prefix="RnR/02_degraded")
    save_keep = g.add("SaveImage", (1380, 0), (380, 330), title="Restored, some fog kept",
                      filename_prefix="RnR/02_keep_fog")
    save_full = g.add("SaveImage", (1780, 0), (380, 330), title="Restored as diagnosed",
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
    g.note("**Before/after severity report**\n\nRnR Severity Score with a reference scores both images on the shared "
           "0-100 scale and outputs the reduction per degradation (positive = cleaner). The report lists before, "
           "after and reduction; the FLOAT outputs can drive other nodes.\n\n" + NOTE_SAMPLES, (0, 0))
    sample = g.add("RnRLoadSampleImage", (0, 340), (300, 90), sample="building.jpg")
    degrade = g.add("RnRDegrade", (340, 340), (300, 220), rain=50, noise=20, seed=3)
    restore = g.add("RnRRestore", (680, 340), (300, 150))
    score = g.add("RnRSeverityScore", (1020, 340), (320, 170))
    report = g.add("PreviewAny", (1380, 340), (460, 260), title="Severity report")
    overall = g.add("PreviewAny", (1380, 640), (300, 120), title="Overall reduction")
    save_in = g.add("SaveImage", (1020, -360), (380, 330), title="Degraded", filename_prefix="RnR/03_degraded")
    save_out = g.add("SaveImage", (1420, -360), (380, 330), title="Restored", filename_prefix="RnR/03_restored")
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
           (0, 0), (460, 420))
    reasoner = g.add("RnRReasonerLoader", (0, 460), (320, 170), backend="qwen3vl", model=BIG_REASONER, dtype="bf16")
    restorer = g.add("RnRRestorerLoader", (0, 680), (320, 170), backend="qwen_image_edit", model=BIG_RESTORER,
                     dtype="bf16")
    sample = g.add("RnRLoadSampleImage", (360, 0), (300, 90), sample="foliage.jpg")
    degrade = g.add("RnRDegrade", (360, 140), (300, 220), haze=50, rain=40, seed=4)
    reason = g.add("RnRReason", (700, 140), (300, 100))
    restore = g.add("RnRRestore", (1040, 140), (300, 170), seed=42)
    score = g.add("RnRSeverityScore", (1380, 140), (320, 170))
    report = g.add("PreviewAny", (700, 360), (320, 300), title="Diagnosis")
    score_report = g.add("PreviewAny", (1380, 360), (420, 260), title="Severity report")
    save = g.add("SaveImage", (1740, 140), (420, 360), title="Restored", filename_prefix="RnR/04_restored")
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
    unet = g.add("UNETLoader", (0, 460), (330, 90), unet_name=QWEN_UNET)
    clip = g.add("CLIPLoader", (0, 590), (330, 110), clip_name=QWEN_CLIP, type="qwen_image")
    vae = g.add("VAELoader", (0, 740), (330, 60), vae_name=QWEN_VAE)
    sample = g.add("RnRLoadSampleImage", (380, 0), (300, 90), sample="landscape.jpg")
    degrade = g.add("RnRDegrade", (380, 130), (300, 220), haze=55, noise=10, seed=5)
    reason = g.add("RnRReason", (720, 0), (300, 80))
    prompt = g.add("RnRDiagnosisToPrompt", (720, 130), (300, 80))
    show_prompt = g.add("PreviewAny", (720, 250), (300, 200), title="Restore instruction")
    scale = g.add("ImageScaleToTotalPixels", (380, 400), (300, 90), upscale_method="lanczos", megapixels=1.0)
    sampling = g.add("ModelSamplingAuraFlow", (380, 540), (300, 60), shift=3.0)
    norm = g.add("CFGNorm", (380, 640), (300, 60), strength=1.0)
    positive = g.add("TextEncodeQwenImageEdit", (1060, 0), (360, 150), title="TextEncodeQwenImageEdit (positive)")
    negative = g.add("TextEncodeQwenImageEdit", (1060, 200), (360, 150), title="TextEncodeQwenImageEdit (negative)")
    encode = g.add("VAEEncode", (1060, 400), (200, 50))
    sampler = g.add("KSampler", (1460, 0), (300, 480), seed=42, steps=20, cfg=2.5, sampler_name="euler",
                    scheduler="simple", denoise=1.0)
    decode = g.add("VAEDecode", (1800, 0), (200, 50))
    score = g.add("RnRSeverityScore", (1800, 120), (320, 170))
    score_report = g.add("PreviewAny", (1800, 330), (420, 260), title="Severity report")
    save = g.add("SaveImage", (2160, 0), (420, 360), title="Restored", filename_prefix="RnR/05_qwen_image_edit")
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
    photos = []
    for row, (sample, severities, seed) in enumerate([
            ("building.jpg", {"haze": 60}, 11), ("landscape.jpg", {"rain": 50}, 12),
            ("foliage.jpg", {"noise": 30, "blur": 25}, 13)]):
        load = g.add("RnRLoadSampleImage", (0, 360 + 260 * row), (300, 90), sample=sample)
        degrade = g.add("RnRDegrade", (340, 360 + 260 * row), (300, 220), seed=seed, **severities)
        g.connect(load, "image", degrade, "image")
        photos.append(degrade)
    first = g.add("ImageBatch", (680, 360), (200, 50))
    second = g.add("ImageBatch", (680, 620), (200, 50))
    g.connect(photos[0], "image", first, "image1")
    g.connect(photos[1], "image", first, "image2")
    g.connect(first, "IMAGE", second, "image1")
    g.connect(photos[2], "image", second, "image2")
    reason = g.add("RnRReason", (920, 360), (300, 80))
    restore = g.add("RnRRestore", (1260, 360), (300, 150))
    score = g.add("RnRSeverityScore", (1600, 600), (320, 170))
    report = g.add("PreviewAny", (920, 520), (300, 420), title="Diagnoses")
    score_report = g.add("PreviewAny", (1600, 820), (460, 300), title="Severity report")
    save_in = g.add("SaveImage", (1600, -100), (420, 330), title="Degraded batch", filename_prefix="RnR/06_degraded")
    save_out = g.add("SaveImage", (2060, -100), (420, 330), title="Restored batch", filename_prefix="RnR/06_restored")
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
