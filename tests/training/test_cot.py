"""The chain-of-thought targets: shape of the reasoner's prompt, JSON read back exactly by its parser,
true statements about the image and the ground truth, scenes that never name a degradation."""

from __future__ import annotations

import re

import pytest
import torch

from rnr.degrade import BlurParams, NoiseParams, degrade
from rnr.diagnosis import DEGRADATIONS, degradation_words_in
from rnr.images import load_image
from rnr.reasoners import qwen3vl_prompt as prompt
from rnr.reasoners.qwen3vl_parse import parse_answer
from training.cot import (
    cot_target,
    describe_content,
    image_statistics,
    scene_from_caption,
    severity_rule_holds,
    target_diagnosis,
)


@pytest.fixture(scope="module")
def photo(photos_dir) -> torch.Tensor:
    image = load_image(photos_dir / "landscape.jpg").tensor
    return torch.nn.functional.interpolate(image, size=(96, 128), mode="bilinear", antialias=True).clamp(0, 1)


@pytest.fixture(scope="module")
def degraded(photo):
    """Six images: all four types at once, each alone with a different kind, and a clean one."""
    batch = photo.repeat(6, 1, 1, 1)
    return degrade(batch, seed=5,
                   haze=[70, 40, 0, 0, 0, 0], rain=[30, 0, 55, 0, 0, 0],
                   noise=[25, 0, 0, NoiseParams(sigma_255=30.0, kind="poisson"), 0, 0],
                   blur=[40, 0, 0, 0, BlurParams(kind="motion", extent_px=12.0, angle_deg=30.0, path="linear", variation=0.0), 0])


def _without_free_text(diagnosis):
    data = diagnosis.to_dict()
    data.pop("reasoning")
    data.pop("source")
    return data


def test_target_json_reads_back_to_the_rounded_ground_truth(degraded, photo):
    for image, truth, applied in zip(degraded.images, degraded.diagnoses, degraded.params):
        answer = cot_target(truth, image, clean=photo[0], applied=applied)
        parsed = parse_answer(answer)
        expected = target_diagnosis(truth, describe_content(photo[0]))
        assert _without_free_text(parsed) == _without_free_text(expected)
        assert parsed.present == truth.present
        assert parsed.severities() == truth.severities()
        assert parsed.haze.transmission == pytest.approx(truth.haze.transmission, abs=5e-4)
        assert parsed.rain.density == pytest.approx(truth.rain.density, abs=5e-5)
        assert parsed.blur.angle_deg == pytest.approx(truth.blur.angle_deg, abs=0.05)
        assert parsed.haze.transmission_map is None
        assert severity_rule_holds(expected)


def test_answer_has_the_prompt_headings_in_order_then_only_the_json(degraded, photo):
    answer = cot_target(degraded.diagnoses[0], degraded.images[0], clean=photo[0], applied=degraded.params[0])
    positions = [answer.index(f"{name}: ") for name in prompt.COT_SECTIONS]
    assert positions == sorted(positions) and positions[0] == 0
    json_start = answer.index("```json\n")
    assert json_start > positions[-1]
    assert answer.endswith("\n```")
    assert answer.count("```") == 2
    # Exactly the writer the reasoner's own prompt module defines.
    truth = target_diagnosis(degraded.diagnoses[0], describe_content(photo[0]))
    assert answer[json_start:] == prompt.format_answer(truth, {})


def test_sections_state_the_ground_truth(degraded, photo):
    answers = [cot_target(d, i, clean=photo[0], applied=p)
               for i, d, p in zip(degraded.images, degraded.diagnoses, degraded.params)]
    everything, haze_only, rain_only, poisson, motion, clean = answers
    truth = degraded.diagnoses[0]
    severity_line = everything.split("Severity: ")[1].split("\n")[0]
    for name in DEGRADATIONS:
        assert f"{name}: " in severity_line and f"{truth.record(name).severity}/100" in severity_line
    assert f"Overall severity {truth.overall_severity()}/100" in severity_line
    assert "Remove noise -> blur -> rain -> haze" in everything
    assert "Haze (moderate)" in haze_only and "Rain: no thin" in haze_only and "Blur: edges and fine texture are crisp" in haze_only
    rain = target_diagnosis(degraded.diagnoses[2], "").rain
    assert f"{rain.angle_deg:+.0f} degrees from vertical" in rain_only
    assert f"rain: density {rain.density:.4f}, angle {rain.angle_deg:+.1f} degrees from vertical" in rain_only
    assert "shot noise" in poisson and "noise: poisson, sigma 30.0/255" in poisson
    assert "smeared in one direction, about 30 degrees from horizontal" in motion
    assert "blur: motion, extent 12.0 px at 30.0 degrees from horizontal" in motion
    assert "Nothing to remove" in clean and "Overall severity 0/100" in clean
    assert "no parameters to estimate" in clean


def test_observation_is_measured_on_the_degraded_image(degraded, photo):
    hazy, clean_photo = degraded.images[1], photo[0]
    hazy_stats, clean_stats = image_statistics(hazy), image_statistics(clean_photo)
    # Haze lifts the dark channel and lowers the contrast; the text reports the measured numbers.
    assert hazy_stats.dark_channel > clean_stats.dark_channel + 0.1
    assert hazy_stats.contrast < clean_stats.contrast
    answer = cot_target(degraded.diagnoses[1], hazy, clean=clean_photo)
    assert f"(RMS {hazy_stats.contrast:.2f})" in answer
    assert f"dark channel {hazy_stats.dark_channel:.2f}" in answer
    flat = image_statistics(torch.full((3, 32, 32), 0.5))
    assert flat.contrast == pytest.approx(0.0, abs=1e-6) and flat.edge_gradient == pytest.approx(0.0, abs=1e-6)


def test_scene_describes_content_and_never_a_degradation():
    sky_over_grass = torch.zeros(3, 60, 60)
    sky_over_grass[:, :30] = torch.tensor([0.35, 0.55, 0.95]).view(3, 1, 1)
    sky_over_grass[:, 30:] = torch.tensor([0.2, 0.6, 0.15]).view(3, 1, 1)
    scene = describe_content(sky_over_grass)
    assert "blue" in scene and "green" in scene and "bright upper part" in scene
    assert "large smooth areas" in scene
    dark = describe_content(torch.full((3, 40, 40), 0.1))
    assert dark.startswith("A dim view") and "neutral" in dark
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        assert degradation_words_in(describe_content(torch.rand(3, 48, 48, generator=generator))) == []


def test_captions_win_and_lose_their_degradation_words(degraded, photo):
    answer = cot_target(degraded.diagnoses[0], degraded.images[0], scene="A harbour with boats on a misty morning")
    parsed = parse_answer(answer)
    assert parsed.scene.startswith("A harbour with boats")
    assert degradation_words_in(parsed.scene) == []
    assert scene_from_caption("Rain drops on a red leaf") == scene_from_caption("Rain drops on a red leaf")
    assert "rain" not in scene_from_caption("Rain drops on a red leaf").lower()


def test_a_scene_is_required(degraded):
    with pytest.raises(ValueError, match="needs a scene"):
        cot_target(degraded.diagnoses[0], degraded.images[0])


def test_numbers_in_the_json_are_rounded(degraded, photo):
    answer = cot_target(degraded.diagnoses[0], degraded.images[0], clean=photo[0])
    json_text = answer[answer.index("```json"):]
    decimals = [len(m.group(1)) for m in re.finditer(r"\d+\.(\d+)", json_text)]
    assert decimals and max(decimals) <= 4
