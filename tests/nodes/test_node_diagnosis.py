"""Diagnosis Edit, To Text, From JSON and To Prompt, called as ComfyUI calls them."""

from __future__ import annotations

import json

import pytest
from comfy_calls import Link, ValidationError, call, frontend_widget_values, mappings

from rnr.diagnosis import Blur, Diagnosis, Haze, Noise, calibration
from rnr.errors import RnRError

FOGGY = Diagnosis(haze=Haze(present=True, severity=80, atmospheric_light=(0.9, 0.9, 0.92),
                            transmission=calibration.transmission_from_severity(80),
                            transmission_map=((0.2, 0.4), (0.3, 0.5))),
                  noise=Noise(present=True, severity=20, sigma_255=10.0),
                  scene="a harbour with boats", order=("noise", "haze"), source="classic")
CLEAN = Diagnosis(scene="a street", source="classic")


def wire(*diagnoses: Diagnosis) -> Link:
    return Link(list(diagnoses), "RNR_DIAGNOSIS")


def test_edit_with_default_widgets_changes_nothing():
    out = call("RnRDiagnosisEdit", diagnosis=wire(FOGGY, CLEAN))
    assert out[0] == [FOGGY, CLEAN]
    assert "Image 1 of 2" in out[1] and "Image 2 of 2" in out[1]


def test_edit_lowers_haze_and_keeps_the_physics_consistent():
    edited = call("RnRDiagnosisEdit", diagnosis=wire(FOGGY), haze_severity=30)[0][0]
    assert edited.haze.present and edited.haze.severity == 30
    assert edited.haze.transmission == pytest.approx(calibration.transmission_from_severity(30))
    assert calibration.severity_from_transmission(edited.haze.transmission) == 30
    # the map keeps its shape but carries less haze, in proportion
    old = [1 - v for row in FOGGY.haze.transmission_map for v in row]
    new = [1 - v for row in edited.haze.transmission_map for v in row]
    factor = (1 - edited.haze.transmission) / (1 - FOGGY.haze.transmission)
    assert new == pytest.approx([v * factor for v in old])
    assert edited.noise == FOGGY.noise and edited.order == ("noise", "haze") and edited.source == "edited"


def test_edit_switches_degradations_off_and_on_for_the_whole_batch():
    out = call("RnRDiagnosisEdit", diagnosis=wire(FOGGY, CLEAN), haze_presence="off", blur_presence="on",
               blur_severity=50)
    for before, after in zip([FOGGY, CLEAN], out[0]):
        assert not after.haze.present and after.haze.severity == 0 and "haze" not in after.order
        assert after.blur.present and after.blur.severity == 50
        assert after.blur.extent_px == pytest.approx(calibration.blur_extent_from_severity(50))
        assert after.noise == before.noise
    assert "blur" in out[1] and "50/100" in out[1]


def test_edit_severity_zero_switches_off_and_severity_alone_switches_on():
    out = call("RnRDiagnosisEdit", diagnosis=wire(FOGGY), noise_severity=0, rain_severity=40)[0][0]
    assert not out.noise.present and out.rain.present and out.rain.severity == 40
    assert out.rain.density == pytest.approx(calibration.rain_density_from_severity(40))
    assert out.effective_order() == ("haze", "rain")  # the kept order first, then the new one


def test_edit_scene_and_order():
    out = call("RnRDiagnosisEdit", diagnosis=wire(FOGGY, CLEAN), scene="boats in a small harbour",
               order="haze -> noise")[0]
    assert out[0].scene == "boats in a small harbour" and out[0].order == ("haze", "noise")
    assert out[1].scene == "boats in a small harbour" and out[1].order == ()  # absent names are skipped


def test_edit_json_override_replaces_then_widgets_apply():
    replacement = Diagnosis(blur=Blur(present=True, severity=70, kind="motion", extent_px=16.8, angle_deg=30.0),
                            scene="a bridge")
    out = call("RnRDiagnosisEdit", diagnosis=wire(FOGGY, CLEAN), json_override=replacement.to_json(),
               blur_severity=35)[0]
    assert len(out) == 2
    for item in out:
        assert item.present == ("blur",) and item.blur.severity == 35 and item.blur.kind == "motion"
        assert item.blur.angle_deg == 30.0 and item.scene == "a bridge"


@pytest.mark.parametrize("widgets, message", [
    ({"blur_presence": "on"}, "blur.severity"),                    # no severity to switch on with
    ({"haze_presence": "on", "haze_severity": 0}, "haze.severity"),
    ({"order": "noise, fog"}, "order[1]"),
    ({"order": "noise, noise"}, "at most once"),
    ({"scene": "a foggy harbour"}, "scene"),
    ({"json_override": "{not json"}, "JSON syntax error"),
    ({"json_override": '{"haze": {"present": true}, "rain": {"present": false}, "noise": {"present": false}, '
                       '"blur": {"present": false}}'}, "haze.severity"),
    ({"json_override": json.dumps([CLEAN.to_dict()] * 3)}, "3 diagnoses but 2 came in"),
])
def test_invalid_edits_give_one_line_errors_naming_the_field(widgets, message):
    with pytest.raises(RnRError) as info:
        call("RnRDiagnosisEdit", diagnosis=wire(CLEAN, CLEAN), **widgets)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_out_of_range_severity_is_rejected_by_comfyui_validation():
    with pytest.raises(ValidationError, match="bigger than max"):
        call("RnRDiagnosisEdit", diagnosis=wire(CLEAN), haze_severity=101)
    with pytest.raises(ValidationError, match="not in list"):
        call("RnRDiagnosisEdit", diagnosis=wire(CLEAN), haze_presence="maybe")


def test_to_text_and_from_json_round_trip_a_batch():
    report, text = call("RnRDiagnosisToText", diagnosis=wire(FOGGY, CLEAN))
    assert "harbour" in report and "Image 2 of 2" in report
    assert isinstance(json.loads(text), list)
    assert call("RnRDiagnosisFromJSON", json=text)[0] == [FOGGY, CLEAN]
    single = call("RnRDiagnosisToText", diagnosis=wire(FOGGY))[1]
    assert json.loads(single)["haze"]["severity"] == 80
    assert call("RnRDiagnosisFromJSON", json=single)[0] == [FOGGY]


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("[]", "non-empty array"),
    ('{"haze": {"present": false}}', "rain"),
    (('[{"haze": {"present": false}, "rain": {"present": false}, "noise": {"present": false}, '
      '"blur": {"present": true, "severity": 500}}]'), "[0].blur.severity"),
])
def test_from_json_errors_name_the_field(text, message):
    with pytest.raises(RnRError, match=message.replace("[", r"\[").replace("]", r"\]")):
        call("RnRDiagnosisFromJSON", json=text)


def test_to_prompt_gives_the_instruction_of_the_chosen_image():
    prompt = call("RnRDiagnosisToPrompt", diagnosis=wire(CLEAN, FOGGY), index=1)[0]
    assert prompt == FOGGY.to_prompt()
    assert "haze" in prompt and prompt.index("noise") < prompt.index("haze")
    assert call("RnRDiagnosisToPrompt", diagnosis=wire(CLEAN))[0] == CLEAN.to_prompt()
    with pytest.raises(RnRError, match="index 2 is out of range"):
        call("RnRDiagnosisToPrompt", diagnosis=wire(CLEAN, FOGGY), index=2)


def test_a_wrong_wire_type_is_rejected_before_running():
    with pytest.raises(ValidationError, match="mismatch"):
        call("RnRDiagnosisToPrompt", diagnosis=Link("text", "STRING"))


def test_widgets_values_order_matches_the_frontend():
    values = frontend_widget_values(mappings()["RnRDiagnosisEdit"], {"haze_severity": 30})
    assert values == ["keep", 30, "keep", -1, "keep", -1, "keep", -1, "", "", ""]
