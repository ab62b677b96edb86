"""What the Qwen3-VL reasoner is told: the system prompt, the user turn and the re-ask after a bad answer.

The answer has two parts: a structured chain of thought under fixed headings (:data:`COT_SECTIONS`),
then the Diagnosis JSON in a ```json block. The system prompt carries the calibration table of
:mod:`rnr.diagnosis.calibration` and the JSON Schema of :func:`rnr.diagnosis.json_schema`, so a model
(and the SFT targets built by ``training``) speak the one severity scale. :func:`format_answer` writes
an answer in exactly this shape; the parser of :mod:`.qwen3vl_parse` reads it back.
"""

from __future__ import annotations

import json

from ..diagnosis import DEFAULT_ORDER, Diagnosis, calibration, json_schema

COT_SECTIONS: tuple[str, ...] = ("Observation", "Evidence", "Severity", "Physical parameters", "Scene", "Order")
"""Headings of the chain of thought, in the order the model writes them, before the JSON."""

USER_INSTRUCTION = ("Diagnose this photo. Think step by step under the headings "
                    + ", ".join(COT_SECTIONS) + ", then give the Diagnosis JSON in a ```json block.")


def calibration_table() -> str:
    """The severity scale as a plain-text table (severity = 100 at the listed parameter value)."""
    c = calibration
    rows = [
        ("haze", "mean transmission t of I = J*t + A*(1-t), 1 = clear air",
         f"t = {c.HAZE_MIN_TRANSMISSION:.2f}", "severity = 100 * (1 - t) / 0.9"),
        ("rain", "streak density: opacity-weighted fraction of the area covered",
         f"density = {c.RAIN_DENSITY_AT_100:.2f}", f"severity = 100 * density / {c.RAIN_DENSITY_AT_100:.2f}"),
        ("noise", "noise standard deviation sigma_255 in 0..255 units (poisson: at mid-grey)",
         f"sigma_255 = {c.NOISE_SIGMA_255_AT_100:.0f}", f"severity = 100 * sigma_255 / {c.NOISE_SIGMA_255_AT_100:.0f}"),
        ("blur", "blur extent in pixels (motion length, defocus diameter, 4*sigma of a gaussian)",
         f"extent_px = {c.BLUR_EXTENT_PX_AT_100:.0f}", f"severity = 100 * extent_px / {c.BLUR_EXTENT_PX_AT_100:.0f}"),
    ]
    lines = ["degradation | physical parameter | severity 100 at | rule"]
    lines += [" | ".join(row) for row in rows]
    words = ", ".join(f"up to {upper}: {word}" for upper, word in c.SEVERITY_WORDS)
    lines.append(f"Severity is an integer: 0 when absent, 1..100 when present (clamped). Words: {words}.")
    return "\n".join(lines)


def system_prompt() -> str:
    """The system prompt: task, answer format, calibration table and JSON Schema."""
    schema = json.dumps(json_schema(), separators=(",", ":"))
    sections = "\n".join(f"{i}. {name}: {_SECTION_GUIDE[name]}" for i, name in enumerate(COT_SECTIONS, 1))
    return (
        "You are an image-quality analyst. You look at one photo and diagnose four degradations: haze, rain, "
        "noise and blur. For each you decide whether it is present, how severe it is on the calibrated scale "
        "below, and estimate its physical parameters.\n\n"
        "Answer in two parts. First reason step by step under these headings, one paragraph each:\n"
        f"{sections}\n"
        "Then write the Diagnosis as one JSON object in a ```json block, and nothing after it.\n\n"
        f"Calibration:\n{calibration_table()}\n\n"
        "Rules: an absent degradation has present false and severity 0; a present one has severity 1..100. "
        "The scene describes only the content (objects, place, light) and never names a degradation "
        "(no fog, haze, mist, rain, streaks, noise, grain or blur words). The order lists only present "
        f"degradations, in the order to remove them; the usual order is {' -> '.join(DEFAULT_ORDER)}. "
        "Use JSON syntax: double quotes, true/false/null, no comments, no trailing commas.\n\n"
        f"JSON Schema of the Diagnosis:\n{schema}"
    )


_SECTION_GUIDE = {
    "Observation": "what the photo shows and its overall look (contrast, colour cast, sharpness, texture)",
    "Evidence": "for each of haze, rain, noise and blur, the visual evidence for or against it",
    "Severity": "the severity of each present degradation on the calibrated scale",
    "Physical parameters": "transmission and airlight colour, streak density, angle and length, noise sigma "
                           "and kind, blur kind, extent and angle",
    "Scene": "one sentence on the content only, naming no degradation",
    "Order": "the present degradations in the order to remove them, and why",
}


def messages(instruction: str = USER_INSTRUCTION, system: str | None = None) -> list[dict]:
    """The chat of one diagnosis: system prompt, then a user turn with the image and the instruction."""
    return [
        {"role": "system", "content": [{"type": "text", "text": system if system is not None else system_prompt()}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": instruction}]},
    ]


def reask_messages(first: list[dict], answer: str, error: str) -> list[dict]:
    """The chat that asks once more after an answer whose JSON could not be read."""
    return first + [
        {"role": "assistant", "content": [{"type": "text", "text": answer}]},
        {"role": "user", "content": [{"type": "text", "text": (
            f"Your answer could not be read as the Diagnosis JSON: {error}. Answer again with only the "
            "corrected Diagnosis as one JSON object in a ```json block, following the schema exactly.")}]},
    ]


def format_answer(diagnosis: Diagnosis, sections: dict[str, str]) -> str:
    """An answer in the shape the system prompt asks for: the headed chain of thought, then the JSON.

    ``sections`` maps headings of :data:`COT_SECTIONS` to their text; missing ones are left out. The
    JSON leaves out ``reasoning`` and ``source``, which the parser fills in.
    """
    parts = [f"{name}: {sections[name].strip()}" for name in COT_SECTIONS if sections.get(name, "").strip()]
    data = diagnosis.to_dict()
    data.pop("reasoning", None)
    data.pop("source", None)
    parts.append("```json\n" + json.dumps(data, indent=2, ensure_ascii=False) + "\n```")
    return "\n\n".join(parts)
