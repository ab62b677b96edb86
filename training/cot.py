"""The chain-of-thought answer the reasoner is fine-tuned to write, built from the ground truth.

For a degraded image with its ground-truth :class:`~rnr.diagnosis.Diagnosis` (from
:mod:`rnr.degrade`), :func:`cot_target` writes the answer in exactly the shape the Qwen3-VL system
prompt asks for (:mod:`rnr.reasoners.qwen3vl_prompt`): the headings Observation, Evidence, Severity,
Physical parameters, Scene and Order, one paragraph each, then the Diagnosis JSON in a ```json block,
which :func:`rnr.reasoners.qwen3vl_parse.parse_answer` reads back to the same Diagnosis.

- **Observation** is measured on the degraded image (brightness, contrast, saturation, colour cast,
  edge gradient), so it is true of what the model sees.
- **Evidence** names, for each of the four degradations, the visual cue for or against it, with the
  applied parameters (streak angle and length, blur kind and direction, noise character, veil colour).
- **Severity** gives each severity with the calibration rule that produces it.
- **Physical parameters**, **Scene** and **Order** restate the JSON's values in words.

The scene is a caption when one is given, else a short description of the *clean* image's content
(light, colours, layout, texture; see :func:`describe_content`); it never names a degradation.
Numbers in the JSON are rounded to the precision a model can reasonably estimate, and the coarse
transmission map is left out (it is optional in the schema and would dominate the answer's length).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rnr.degrade import AppliedParams
from rnr.diagnosis import (
    DEGRADATIONS,
    Diagnosis,
    calibration,
    degradation_words_in,
    severity_word,
)
from rnr.reasoners import qwen3vl_prompt as prompt
from rnr.reasoners.qwen3vl_repair import clean_scene

ROUNDING = {"transmission": 3, "atmospheric_light": 2, "density": 4, "rain_angle_deg": 1, "length_px": 1,
            "sigma_255": 1, "extent_px": 1, "blur_angle_deg": 1}
"""Decimals kept in the target JSON per physical parameter."""


@dataclass(frozen=True)
class ImageStatistics:
    """Simple measurements of one RGB image in 0..1."""

    brightness: float
    """Mean luma 0..1."""
    contrast: float
    """RMS contrast: standard deviation of the luma."""
    saturation: float
    """Mean HSV saturation 0..1."""
    warmth: float
    """Mean red minus mean blue (positive: warm cast)."""
    greenness: float
    """Mean green minus the mean of red and blue."""
    edge_gradient: float
    """Mean absolute luma gradient per pixel (central differences)."""
    dark_channel: float
    """Mean of the per-pixel channel minimum after a 7x7 minimum filter (high under a veil)."""
    top_minus_bottom: float
    """Mean luma of the top third minus that of the bottom third."""


def _luma(image: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=image.dtype, device=image.device)
    return (image * weights.view(3, 1, 1)).sum(0)


def image_statistics(image: torch.Tensor) -> ImageStatistics:
    """Measurements of ``image`` [3,H,W] (or [1,3,H,W]) in 0..1."""
    image = image.detach().float().reshape(-1, *image.shape[-3:])[0].clamp(0, 1)
    luma = _luma(image)
    high, low = image.amax(0), image.amin(0)
    saturation = ((high - low) / high.clamp_min(1e-6)).mean()
    gy = (luma[2:, 1:-1] - luma[:-2, 1:-1]).abs() / 2
    gx = (luma[1:-1, 2:] - luma[1:-1, :-2]).abs() / 2
    dark = -F.max_pool2d(-low[None, None], 7, stride=1, padding=3)[0, 0]
    third = max(1, luma.shape[0] // 3)
    red, green, blue = image.flatten(1).mean(1).tolist()
    return ImageStatistics(
        brightness=float(luma.mean()), contrast=float(luma.std()), saturation=float(saturation),
        warmth=red - blue, greenness=green - (red + blue) / 2, edge_gradient=float((gx + gy).mean()),
        dark_channel=float(dark.mean()), top_minus_bottom=float(luma[:third].mean() - luma[-third:].mean()))


def _level(value: float, bounds: tuple[float, float], words: tuple[str, str, str]) -> str:
    return words[0] if value < bounds[0] else words[1] if value < bounds[1] else words[2]


def _cast(stats: ImageStatistics) -> str:
    if stats.warmth > 0.06:
        return "a warm cast"
    if stats.warmth < -0.06:
        return "a cool, bluish cast"
    if stats.greenness > 0.06:
        return "a green cast"
    return "no strong colour cast"


def describe_observation(stats: ImageStatistics) -> str:
    """One paragraph on the overall look of the image as measured."""
    brightness = _level(stats.brightness, (0.3, 0.62), ("dark", "mid-toned", "bright"))
    contrast = _level(stats.contrast, (0.12, 0.22), ("low", "moderate", "high"))
    colours = _level(stats.saturation, (0.15, 0.35), ("muted", "moderately saturated", "vivid"))
    edges = _level(stats.edge_gradient, (0.015, 0.04), ("soft", "moderately sharp", "sharp or busy"))
    return (f"A {brightness} image (mean brightness {stats.brightness:.2f}) with {contrast} contrast "
            f"(RMS {stats.contrast:.2f}), {colours} colours (saturation {stats.saturation:.2f}) and {_cast(stats)}; "
            f"edges look {edges} (mean gradient {stats.edge_gradient:.3f}) and the darkest areas sit at "
            f"{stats.dark_channel:.2f}.")


_HUES = ("red", "orange", "yellow", "green", "green", "teal", "blue", "blue", "purple", "pink")


def _dominant_hues(image: torch.Tensor) -> list[str]:
    high, low = image.amax(0), image.amin(0)
    chroma = high - low
    keep = (chroma > 0.12) & (high > 0.15)
    if keep.float().mean() < 0.08:
        return []
    r, g, b = (c[keep] for c in image)
    hi, ch = high[keep], chroma[keep].clamp_min(1e-6)
    hue = torch.where(hi == r, ((g - b) / ch) % 6, torch.where(hi == g, (b - r) / ch + 2, (r - g) / ch + 4)) / 6
    bins = torch.bincount((hue * len(_HUES)).long().clamp(0, len(_HUES) - 1), minlength=len(_HUES)).float()
    shares: dict[str, float] = {}
    for index, name in enumerate(_HUES):
        shares[name] = shares.get(name, 0.0) + float(bins[index]) / float(bins.sum())
    ranked = sorted(shares.items(), key=lambda item: -item[1])
    return [name for name, share in ranked[:2] if share > 0.2]


def describe_content(clean: torch.Tensor) -> str:
    """A one-sentence scene from the clean image's statistics: light, main colours, layout, texture.

    It names no degradation, so it is a valid ``Diagnosis.scene``; a real caption is better when the
    photos have one (see :class:`training.dataset.SyntheticDegradations`).
    """
    image = clean.detach().float().reshape(-1, *clean.shape[-3:])[0].clamp(0, 1)
    stats = image_statistics(image)
    light = _level(stats.brightness, (0.3, 0.62), ("A dim", "An evenly lit", "A brightly lit"))
    hues = _dominant_hues(image)
    if not hues:
        colours = "in muted, nearly neutral colours" if stats.saturation < 0.15 else "in mixed colours"
    else:
        colours = f"in {' and '.join(hues)} tones"
    layout = ""
    if stats.top_minus_bottom > 0.08:
        layout = ", with a bright upper part like open sky,"
    elif stats.top_minus_bottom < -0.08:
        layout = ", with a brighter lower part,"
    texture = _level(stats.edge_gradient, (0.015, 0.04), ("large smooth areas", "some fine detail",
                                                          "much fine detail"))
    sentence = f"{light} view {colours}{layout} and {texture}"
    return sentence + "."


def scene_from_caption(caption: str) -> str:
    """A caption made safe for ``Diagnosis.scene``: degradation words and their intensifiers removed."""
    return clean_scene(caption)


# ---- the sections ----------------------------------------------------------------------------------
def _light_colour(light: tuple[float, float, float]) -> str:
    r, _, b = light
    if b - r > 0.04:
        return "bluish"
    if r - b > 0.04:
        return "yellowish"
    return "neutral grey-white" if min(light) > 0.85 else "grey"


def _haze_evidence(diagnosis: Diagnosis, applied: AppliedParams | None, stats: ImageStatistics) -> str:
    haze = diagnosis.haze
    if not haze.present:
        return (f"Haze: dark areas stay dark (dark channel {stats.dark_channel:.2f}) and distant parts keep their "
                "contrast, so there is no veil.")
    where = "evenly over the frame"
    if applied is not None and applied.haze is not None:
        where = {"uniform": "evenly over the frame", "vertical": "more strongly toward the top, where the scene is "
                 "farther away", "given": "more strongly in the distant parts"}.get(applied.haze.depth_model,
                                                                                   "more strongly in the distant parts")
    return (f"Haze ({severity_word(haze.severity)}): contrast and saturation are reduced {where}, and the image is "
            f"lifted toward a {_light_colour(haze.atmospheric_light)} veil, so even the darkest areas are not dark "
            f"(dark channel {stats.dark_channel:.2f}).")


def _rain_evidence(diagnosis: Diagnosis, applied: AppliedParams | None) -> str:
    rain = diagnosis.rain
    if not rain.present:
        return "Rain: no thin, bright, oriented streaks cross the image."
    lean = "nearly vertical" if abs(rain.angle_deg) < 3 else ("leaning right at the top" if rain.angle_deg > 0
                                                       else "leaning left at the top")
    extra = ""
    if applied is not None and applied.rain is not None:
        p = applied.rain
        extra = f", about {p.width_px:.1f} px wide"
        if p.layers and p.layers > 1:
            extra += f", in {p.layers} layers of different sizes"
    visible = "faint" if rain.severity <= 25 else "clearly visible"
    return (f"Rain ({severity_word(rain.severity)}): {visible} bright streaks about {rain.length_px:.0f} px long"
            f"{extra} cross the image at {rain.angle_deg:+.0f} degrees from vertical ({lean}).")


def _noise_evidence(diagnosis: Diagnosis, applied: AppliedParams | None) -> str:
    noise = diagnosis.noise
    if not noise.present:
        return "Noise: flat areas are clean at the pixel level."
    grain, colour, where = "fine, pixel-level", "speckle", ""
    if applied is not None and applied.noise is not None:
        p = applied.noise
        grain = "coarse, clumped" if (p.spatial_sigma_px or 0) > 0.5 else "fine, pixel-level"
        colour = "mostly grey (luminance) speckle" if (p.channel_correlation or 0) > 0.6 else "coloured speckle"
        if p.domain == "linear":
            where = ", most visible in the shadows"
    if noise.kind == "poisson":
        where += ", with a strength that follows the brightness (shot noise)"
    return f"Noise ({severity_word(noise.severity)}): flat areas show {grain} {colour}{where}."


def _blur_evidence(diagnosis: Diagnosis, applied: AppliedParams | None, stats: ImageStatistics) -> str:
    blur = diagnosis.blur
    if not blur.present:
        return f"Blur: edges and fine texture are crisp (mean gradient {stats.edge_gradient:.3f})."
    word = severity_word(blur.severity)
    if blur.kind == "motion":
        shake = applied is not None and applied.blur is not None and applied.blur.path == "shake"
        text = (f"Blur ({word}): edges are doubled and smeared along a curved camera-shake path about "
                f"{blur.extent_px:.0f} px long, mainly at {blur.angle_deg:.0f} degrees from horizontal"
                if shake else
                f"Blur ({word}): edges are smeared in one direction, about {blur.angle_deg:.0f} degrees from "
                f"horizontal, over about {blur.extent_px:.0f} px")
    elif blur.kind == "defocus":
        text = (f"Blur ({word}): edges are uniformly soft and small bright points spread into discs about "
                f"{blur.extent_px:.0f} px across")
    else:
        text = (f"Blur ({word}): edges are evenly soft with no preferred direction, spread over about "
                f"{blur.extent_px:.0f} px")
    if applied is not None and applied.blur is not None and (applied.blur.variation or 0) > 0.3:
        text += "; the softness varies across the frame"
    return text + "."


def _severity_text(diagnosis: Diagnosis) -> str:
    c = calibration
    parts = []
    for name in DEGRADATIONS:
        record = diagnosis.record(name)
        if not record.present:
            parts.append(f"{name}: none, 0")
            continue
        if name == "haze":
            rule = f"transmission {record.transmission:.3f}, 100 * (1 - t) / 0.9"
        elif name == "rain":
            rule = f"density {record.density:.4f}, 100 * density / {c.RAIN_DENSITY_AT_100:.2f}"
        elif name == "noise":
            rule = f"sigma {record.sigma_255:.1f}/255, 100 * sigma / {c.NOISE_SIGMA_255_AT_100:.0f}"
        else:
            rule = f"extent {record.extent_px:.1f} px, 100 * extent / {c.BLUR_EXTENT_PX_AT_100:.0f}"
        parts.append(f"{name}: {severity_word(record.severity)}, {record.severity}/100 ({rule})")
    overall = diagnosis.overall_severity()
    return "; ".join(parts) + f". Overall severity {overall}/100."


def _parameters_text(diagnosis: Diagnosis) -> str:
    parts = []
    if diagnosis.haze.present:
        h = diagnosis.haze
        light = ", ".join(f"{v:.2f}" for v in h.atmospheric_light)
        parts.append(f"haze: mean transmission {h.transmission:.3f}, airlight RGB ({light})")
    if diagnosis.rain.present:
        r = diagnosis.rain
        parts.append(f"rain: density {r.density:.4f}, angle {r.angle_deg:+.1f} degrees from vertical, "
                     f"length {r.length_px:.1f} px")
    if diagnosis.noise.present:
        n = diagnosis.noise
        parts.append(f"noise: {n.kind}, sigma {n.sigma_255:.1f}/255")
    if diagnosis.blur.present:
        b = diagnosis.blur
        angle = f" at {b.angle_deg:.1f} degrees from horizontal" if b.kind == "motion" else ""
        parts.append(f"blur: {b.kind}, extent {b.extent_px:.1f} px{angle}")
    if not parts:
        return "No degradation is present, so there are no parameters to estimate."
    return "; ".join(parts) + "."


_ORDER_REASONS = {
    "noise": "the sensor added it last, and it would mislead the other steps",
    "blur": "the camera and lens blurred the scene before the sensor read it",
    "rain": "the streaks sit in front of the scene",
    "haze": "it lies in the atmosphere behind everything else",
}


def _order_text(diagnosis: Diagnosis) -> str:
    order = diagnosis.effective_order()
    if not order:
        return "Nothing to remove; the photo should stay as it is."
    if len(order) == 1:
        return f"Only {order[0]} is present, so remove it alone."
    steps = [f"{i}. {name}, because {_ORDER_REASONS[name]}" for i, name in enumerate(order, 1)]
    return "Remove " + " -> ".join(order) + ": " + "; ".join(steps) + "."


# ---- the target ------------------------------------------------------------------------------------
def target_diagnosis(diagnosis: Diagnosis, scene: str) -> Diagnosis:
    """The Diagnosis the answer's JSON states: the ground truth with ``scene``, physical parameters
    rounded (:data:`ROUNDING`), no transmission map, the order made explicit, no reasoning or source."""
    r = ROUNDING
    h, rn, n, b = diagnosis.haze, diagnosis.rain, diagnosis.noise, diagnosis.blur
    return diagnosis.replace(
        haze=dataclasses.replace(h, transmission=round(h.transmission, r["transmission"]), transmission_map=None,
                                 atmospheric_light=tuple(round(v, r["atmospheric_light"]) for v in h.atmospheric_light)),
        rain=dataclasses.replace(rn, density=round(rn.density, r["density"]),
                                 angle_deg=round(rn.angle_deg, r["rain_angle_deg"]),
                                 length_px=round(rn.length_px, r["length_px"])),
        noise=dataclasses.replace(n, sigma_255=round(n.sigma_255, r["sigma_255"])),
        blur=dataclasses.replace(b, extent_px=round(b.extent_px, r["extent_px"]),
                                 angle_deg=round(b.angle_deg, r["blur_angle_deg"])),
        scene=scene, order=diagnosis.effective_order(), reasoning="", source="")


def cot_sections(diagnosis: Diagnosis, degraded: torch.Tensor, *, scene: str,
                 applied: AppliedParams | None = None) -> dict[str, str]:
    """The paragraphs of the chain of thought, keyed by the headings of
    :data:`rnr.reasoners.qwen3vl_prompt.COT_SECTIONS`."""
    stats = image_statistics(degraded)
    evidence = " ".join([_haze_evidence(diagnosis, applied, stats), _rain_evidence(diagnosis, applied),
                         _noise_evidence(diagnosis, applied), _blur_evidence(diagnosis, applied, stats)])
    sections = {
        "Observation": describe_observation(stats),
        "Evidence": evidence,
        "Severity": _severity_text(diagnosis),
        "Physical parameters": _parameters_text(diagnosis),
        "Scene": scene or "The content cannot be described from this image.",
        "Order": _order_text(diagnosis),
    }
    missing = set(prompt.COT_SECTIONS) - set(sections)
    if missing:
        raise RuntimeError(f"the reasoner's prompt has new sections {sorted(missing)}; training.cot must write them")
    return sections


def cot_target(diagnosis: Diagnosis, degraded: torch.Tensor, *, scene: str | None = None,
               clean: torch.Tensor | None = None, applied: AppliedParams | None = None) -> str:
    """The full assistant answer for one degraded image [3,H,W] and its ground-truth ``diagnosis``.

    ``scene`` (a caption) wins; else the diagnosis's own scene; else :func:`describe_content` of the
    ``clean`` image (required then). ``applied`` (from ``DegradeResult.params``) adds detail to the
    evidence.
    """
    if scene is None:
        scene = diagnosis.scene
    if not scene:
        if clean is None:
            raise ValueError("cot_target needs a scene: pass scene=..., a diagnosis with a scene, or the clean image")
        scene = describe_content(clean)
    scene = scene_from_caption(scene)
    if degradation_words_in(scene):
        raise ValueError(f"scene {scene!r} names a degradation")
    truth = target_diagnosis(diagnosis, scene)
    return prompt.format_answer(truth, cot_sections(truth, degraded, scene=scene, applied=applied))


def severity_rule_holds(diagnosis: Diagnosis) -> bool:
    """Whether every present severity follows the calibration from its rounded physical parameter
    (within 1), which the Severity paragraph states; a sanity check on the targets."""
    c = calibration
    checks = {
        "haze": lambda d: c.severity_from_transmission(d.haze.transmission),
        "rain": lambda d: c.severity_from_rain_density(d.rain.density),
        "noise": lambda d: c.severity_from_noise_sigma(d.noise.sigma_255),
        "blur": lambda d: c.severity_from_blur_extent(d.blur.extent_px),
    }
    return all(math.isclose(checks[name](diagnosis), diagnosis.record(name).severity, abs_tol=1)
               for name in diagnosis.present)


__all__ = ["ImageStatistics", "cot_sections", "cot_target", "describe_content", "describe_observation",
           "image_statistics", "scene_from_caption", "severity_rule_holds", "target_diagnosis"]
