"""Human text from a Diagnosis: the restore instruction (``to_prompt``) and a readable report."""

from __future__ import annotations

from .calibration import severity_word
from .model import Diagnosis

_LABELS = {"haze": "haze", "rain": "rain streaks", "noise": "sensor noise", "blur": "blur"}


def _details(diagnosis: Diagnosis, name: str) -> str:
    if name == "haze":
        h = diagnosis.haze
        r, g, b = h.atmospheric_light
        return f"transmission about {h.transmission:.2f}, airlight RGB ({r:.2f}, {g:.2f}, {b:.2f})"
    if name == "rain":
        r = diagnosis.rain
        return f"streaks about {r.length_px:.0f} px long at {r.angle_deg:+.0f} degrees from vertical"
    if name == "noise":
        n = diagnosis.noise
        return f"{n.kind}, sigma about {n.sigma_255:.0f}/255"
    b = diagnosis.blur
    if b.kind == "motion":
        return f"motion blur about {b.extent_px:.0f} px at {b.angle_deg:.0f} degrees"
    return f"{b.kind} blur about {b.extent_px:.0f} px wide"


_ACTIONS = {"haze": "remove the {w} haze", "rain": "remove the {w} rain streaks",
            "noise": "remove the {w} sensor noise", "blur": "sharpen away the {w} blur"}


def to_prompt(diagnosis: Diagnosis) -> str:
    """The edit instruction a text-conditioned restorer receives: severity-aware, in restoration order."""
    scene = diagnosis.scene.strip().rstrip(".")
    subject = f"this photo of {scene[0].lower() + scene[1:]}" if scene else "this photo"
    order = diagnosis.effective_order()
    if not order:
        return (f"Keep {subject} exactly as it is: it shows no haze, rain, noise or blur. "
                "Do not change content, colours or sharpness.")
    steps = []
    for i, name in enumerate(order, 1):
        record = diagnosis.record(name)
        action = _ACTIONS[name].format(w=severity_word(record.severity))
        steps.append(f"{i}. {action} (severity {record.severity}/100; {_details(diagnosis, name)})")
    return (f"Restore {subject}. Work in this order: " + "; ".join(steps) + ". "
            "Keep the scene's structure, edges, colours and fine texture; do not add, remove or move objects.")


def to_report(diagnosis: Diagnosis) -> str:
    """A short multi-line report for people (the Reason node's STRING output)."""
    lines = []
    if diagnosis.scene:
        lines.append(f"Scene: {diagnosis.scene}")
    for name in ("haze", "rain", "noise", "blur"):
        record = diagnosis.record(name)
        if record.present:
            lines.append(f"{_LABELS[name]:>13}: {severity_word(record.severity):8} {record.severity:3d}/100  "
                         f"({_details(diagnosis, name)})")
        else:
            lines.append(f"{_LABELS[name]:>13}: none")
    lines.append(f"Overall severity: {diagnosis.overall_severity()}/100")
    order = diagnosis.effective_order()
    lines.append("Restoration order: " + (" -> ".join(order) if order else "nothing to do"))
    if diagnosis.source:
        lines.append(f"Reasoner: {diagnosis.source}")
    return "\n".join(lines)
