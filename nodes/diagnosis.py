"""Diagnosis helpers: edit a diagnosis, turn it into text, JSON or a restore instruction, or read it from JSON."""

from __future__ import annotations

import json

from rnr.diagnosis import DEGRADATIONS, Diagnosis, from_dict, to_dict
from rnr.edit import KEEP_SEVERITY, PRESENCE_CHOICES, edit_diagnosis, parse_order
from rnr.errors import DiagnosisError, RnRError

from ._convert import batch_report, check_diagnoses

CATEGORY = "RnR/diagnosis"
_DIAGNOSIS_IN = ("RNR_DIAGNOSIS", {"tooltip": "Diagnoses from RnR Reason (one per image) or another diagnosis node."})


def diagnoses_to_json(diagnoses: list[Diagnosis]) -> str:
    """One diagnosis as a JSON object, several as a JSON array."""
    if len(diagnoses) == 1:
        return diagnoses[0].to_json()
    return json.dumps([to_dict(d) for d in diagnoses], indent=2, ensure_ascii=False)


def diagnoses_from_json(text: str) -> list[Diagnosis]:
    """A JSON object (one diagnosis) or array (one per image), validated field by field."""
    if not isinstance(text, str) or not text.strip():
        raise DiagnosisError("$", "a Diagnosis JSON object or an array of them", text,
                             "The text is empty; paste the JSON from Diagnosis To Text.")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DiagnosisError("$", "valid JSON", text[max(0, exc.pos - 20): exc.pos + 20],
                             f"JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}.") from None
    if isinstance(data, list):
        if not data:
            raise DiagnosisError("$", "a non-empty array of diagnoses", data)
        result = []
        for i, item in enumerate(data):
            try:
                result.append(from_dict(item))
            except DiagnosisError as exc:
                raise DiagnosisError(f"[{i}].{exc.path}", exc.expected, exc.got) from None
        return result
    return [from_dict(data)]


class RnRDiagnosisEdit:
    DESCRIPTION = ("Overrides what the restorer will do, for every image of the batch: switch each degradation "
                   "on or off, set its severity (the restorer removes exactly that much, so a lower haze severity "
                   "keeps some fog), rewrite the scene text or the restoration order, or replace the whole "
                   "diagnosis with edited JSON. Widgets left at keep / -1 / empty change nothing.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("RNR_DIAGNOSIS", "STRING")
    RETURN_NAMES = ("diagnosis", "report")
    OUTPUT_TOOLTIPS = ("The edited diagnoses (one per image).", "The edited diagnoses as readable text.")
    FUNCTION = "edit"

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        required: dict = {"diagnosis": _DIAGNOSIS_IN}
        for name in DEGRADATIONS:
            required[f"{name}_presence"] = (list(PRESENCE_CHOICES), {
                "default": "keep",
                "tooltip": f"keep: as diagnosed; on: make the restorer remove {name} (needs a severity if the "
                           f"image had none); off: leave any {name} in the picture."})
            required[f"{name}_severity"] = ("INT", {
                "default": KEEP_SEVERITY, "min": KEEP_SEVERITY, "max": 100, "step": 1,
                "tooltip": f"{name} severity the restorer should remove: -1 keeps the diagnosed value, 0 switches "
                           "it off, 1-100 sets it (lower = remove less)."})
        return {
            "required": required,
            "optional": {
                "scene": ("STRING", {"default": "", "multiline": False,
                                     "tooltip": "New scene description (content only, never a degradation word); "
                                                "empty keeps the diagnosed one."}),
                "order": ("STRING", {"default": "", "multiline": False,
                                     "tooltip": "Restoration order, e.g. 'noise, blur, haze'; empty keeps the "
                                                "diagnosed order. Degradations an image lacks are skipped."}),
                "json_override": ("STRING", {"default": "", "multiline": True,
                                             "tooltip": "Diagnosis JSON (from Diagnosis To Text) that replaces the "
                                                        "incoming one for every image before the widgets above "
                                                        "apply; empty = no replacement."}),
            },
        }

    def edit(self, diagnosis: list[Diagnosis], scene: str = "", order: str = "", json_override: str = "",
             **widgets: object) -> tuple[list[Diagnosis], str]:
        diagnoses = check_diagnoses(diagnosis)
        if json_override and json_override.strip():
            replacement = diagnoses_from_json(json_override)
            if len(replacement) == 1:
                diagnoses = replacement * len(diagnoses)
            elif len(replacement) == len(diagnoses):
                diagnoses = replacement
            else:
                raise RnRError(f"json_override holds {len(replacement)} diagnoses but {len(diagnoses)} came in; "
                               "give one object (used for every image) or one per image")
        presence = {name: str(widgets.get(f"{name}_presence", "keep")) for name in DEGRADATIONS}
        severity = {name: int(widgets.get(f"{name}_severity", KEEP_SEVERITY)) for name in DEGRADATIONS}
        unknown = sorted(set(widgets) - {f"{n}_{w}" for n in DEGRADATIONS for w in ("presence", "severity")})
        if unknown:
            raise RnRError(f"Diagnosis Edit got unknown inputs {unknown}; reload the node (right click > Fix node)")
        new_order = parse_order(order) if order and order.strip() else None
        new_scene = scene if scene and scene.strip() else None
        edited = []
        for i, item in enumerate(diagnoses):
            try:
                edited.append(edit_diagnosis(item, presence=presence, severity=severity, scene=new_scene,
                                             order=new_order))
            except DiagnosisError as exc:
                where = f" (image {i + 1} of {len(diagnoses)})" if len(diagnoses) > 1 else ""
                raise RnRError(f"Diagnosis Edit{where}: {exc}") from None
        return (edited, batch_report(edited))


class RnRDiagnosisToText:
    DESCRIPTION = "Shows diagnoses as a readable report and as JSON (edit the JSON and feed it to Diagnosis From JSON)."
    CATEGORY = CATEGORY
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("report", "json")
    OUTPUT_TOOLTIPS = ("A readable report, one block per image.",
                       "The diagnoses as JSON: an object for one image, an array for a batch.")
    FUNCTION = "to_text"

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": {"diagnosis": _DIAGNOSIS_IN}}

    def to_text(self, diagnosis: list[Diagnosis]) -> tuple[str, str]:
        diagnoses = check_diagnoses(diagnosis)
        return (batch_report(diagnoses), diagnoses_to_json(diagnoses))


class RnRDiagnosisFromJSON:
    DESCRIPTION = ("Reads diagnoses from JSON text: one object (for every image) or an array (one per image). "
                   "Invalid JSON gives an error naming the field and what was expected.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("RNR_DIAGNOSIS",)
    RETURN_NAMES = ("diagnosis",)
    OUTPUT_TOOLTIPS = ("The validated diagnoses.",)
    FUNCTION = "from_json"

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": {"json": ("STRING", {
            "default": "", "multiline": True,
            "tooltip": "Diagnosis JSON as Diagnosis To Text writes it (see the schema in the README)."})}}

    def from_json(self, json: str) -> tuple[list[Diagnosis]]:
        return (diagnoses_from_json(json),)


class RnRDiagnosisToPrompt:
    DESCRIPTION = ("Turns a diagnosis into the restore instruction a text-guided editor follows (severity-aware, "
                   "in restoration order), e.g. for ComfyUI's TextEncodeQwenImageEdit.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("prompt",)
    OUTPUT_TOOLTIPS = ("The instruction text of the chosen image's diagnosis.",)
    FUNCTION = "to_prompt"

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": {
            "diagnosis": _DIAGNOSIS_IN,
            "index": ("INT", {"default": 0, "min": 0, "max": 4096,
                              "tooltip": "Which image of the batch to write the instruction for (0 = first). "
                                         "Text encoders take one prompt per batch."}),
        }}

    def to_prompt(self, diagnosis: list[Diagnosis], index: int) -> tuple[str]:
        diagnoses = check_diagnoses(diagnosis)
        if not 0 <= index < len(diagnoses):
            raise RnRError(f"index {index} is out of range: the diagnosis input holds {len(diagnoses)} "
                           f"diagnos{'is' if len(diagnoses) == 1 else 'es'} (use 0..{len(diagnoses) - 1})")
        return (diagnoses[index].to_prompt(),)


NODE_CLASS_MAPPINGS = {
    "RnRDiagnosisEdit": RnRDiagnosisEdit,
    "RnRDiagnosisToText": RnRDiagnosisToText,
    "RnRDiagnosisFromJSON": RnRDiagnosisFromJSON,
    "RnRDiagnosisToPrompt": RnRDiagnosisToPrompt,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "RnRDiagnosisEdit": "RnR Diagnosis Edit",
    "RnRDiagnosisToText": "RnR Diagnosis To Text",
    "RnRDiagnosisFromJSON": "RnR Diagnosis From JSON",
    "RnRDiagnosisToPrompt": "RnR Diagnosis To Prompt",
}
