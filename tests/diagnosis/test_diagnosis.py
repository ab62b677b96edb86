"""The Diagnosis contract: round trips, strict validation with field paths, schema, prompt text."""

from __future__ import annotations

import json
import random

import jsonschema
import pytest

from rnr.diagnosis import (DEFAULT_ORDER, DEGRADATIONS, Blur, Diagnosis, Haze, Noise, Rain, calibration,
                           from_dict, from_json, json_schema)
from rnr.errors import DiagnosisError


def random_diagnosis(rng: random.Random) -> Diagnosis:
    def presence() -> tuple[bool, int]:
        on = rng.random() < 0.5
        return on, (rng.randint(1, 100) if on else 0)

    p, s = presence()
    tmap = None
    if rng.random() < 0.5:
        rows, cols = rng.randint(1, 8), rng.randint(1, 8)
        tmap = tuple(tuple(round(rng.random(), 4) for _ in range(cols)) for _ in range(rows))
    haze = Haze(p, s, tuple(round(rng.random(), 3) for _ in range(3)), round(rng.random(), 3), tmap)
    p, s = presence()
    rain = Rain(p, s, round(rng.random() * 0.2, 4), round(rng.uniform(-90, 90), 2), round(rng.uniform(0, 80), 1))
    p, s = presence()
    noise = Noise(p, s, round(rng.uniform(0, 60), 2), rng.choice(["gaussian", "poisson"]))
    p, s = presence()
    blur = Blur(p, s, rng.choice(["motion", "defocus", "gaussian"]), round(rng.uniform(0, 40), 2),
                round(rng.uniform(0, 180), 2))
    diagnosis = Diagnosis(haze=haze, rain=rain, noise=noise, blur=blur,
                          scene=rng.choice(["", "A city street with tall buildings", "Green hills under a blue sky"]),
                          reasoning=rng.choice(["", "dark channel mean 0.4 -> transmission 0.5", "ünïcode ✓"]),
                          source=rng.choice(["", "classic", "lite"]))
    present = list(diagnosis.present)
    rng.shuffle(present)
    return diagnosis.replace(order=tuple(present[: rng.randint(0, len(present))]))


@pytest.mark.parametrize("seed", range(60))
def test_round_trip_is_identical(seed: int) -> None:
    diagnosis = random_diagnosis(random.Random(seed))
    text = diagnosis.to_json()
    assert from_json(text) == diagnosis
    assert Diagnosis.from_json(diagnosis.to_json(indent=None)) == diagnosis
    assert from_dict(json.loads(text)) == diagnosis


@pytest.mark.parametrize("seed", range(30))
def test_every_diagnosis_satisfies_the_schema(seed: int) -> None:
    jsonschema.validate(random_diagnosis(random.Random(seed)).to_dict(), json_schema())


def test_schema_is_a_valid_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(json_schema())


def valid() -> dict:
    return Diagnosis(haze=Haze(True, 60, (0.8, 0.8, 0.85), 0.46), noise=Noise(True, 30, 15.0),
                     scene="A harbour with boats", order=("noise", "haze")).to_dict()


def mutate(path: str, value: object) -> dict:
    data = valid()
    keys = path.split(".")
    target = data
    for key in keys[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return data


_DELETE = object()

MALFORMED = [
    ("haze.severity", mutate("haze.severity", 0)),                # present but 0
    ("haze.severity", mutate("haze.severity", 101)),
    ("haze.severity", mutate("haze.severity", "60")),
    ("haze.severity", mutate("haze.severity", 60.5)),
    ("haze.severity", mutate("haze.severity", True)),
    ("haze.present", mutate("haze.present", "yes")),
    ("haze.present", mutate("haze.present", _DELETE)),
    ("haze.severity", mutate("haze.severity", _DELETE)),
    ("rain.severity", mutate("rain.severity", 20)),               # absent but non-zero
    ("haze.atmospheric_light", mutate("haze.atmospheric_light", [0.5, 0.5])),
    ("haze.atmospheric_light[1]", mutate("haze.atmospheric_light", [0.5, 1.5, 0.5])),
    ("haze.atmospheric_light[2]", mutate("haze.atmospheric_light", [0.5, 0.5, "x"])),
    ("haze.transmission", mutate("haze.transmission", -0.1)),
    ("haze.transmission", mutate("haze.transmission", float("nan"))),
    ("haze.transmission_map[1]", mutate("haze.transmission_map", [[0.1, 0.2], [0.3]])),
    ("haze.transmission_map[0][0]", mutate("haze.transmission_map", [[2.0]])),
    ("haze.transmision", mutate("haze.transmision", 0.5)),       # misspelt field
    ("noise.kind", mutate("noise.kind", "salt")),
    ("noise.sigma_255", mutate("noise.sigma_255", 300)),
    ("blur.kind", mutate("blur.kind", "zoom")),
    ("blur.angle_deg", mutate("blur.angle_deg", 270)),
    ("rain.angle_deg", mutate("rain.angle_deg", -120)),
    ("rain.density", mutate("rain.density", None)),
    ("order[1]", mutate("order", ["noise", "noise"])),
    ("order[0]", mutate("order", ["fog"])),
    ("order[0]", mutate("order", ["rain"])),                      # rain is absent
    ("order", mutate("order", "noise,haze")),
    ("scene", mutate("scene", "A foggy harbour")),               # names a degradation
    ("scene", mutate("scene", 42)),
    ("version", mutate("version", "2.0")),
    ("blur", mutate("blur", _DELETE)),
    ("noise", mutate("noise", [])),
    ("colour", mutate("colour", "red")),
]


@pytest.mark.parametrize("path, data", MALFORMED, ids=[f"{i}-{p}" for i, (p, _) in enumerate(MALFORMED)])
def test_malformed_input_names_the_field(path: str, data: dict) -> None:
    with pytest.raises(DiagnosisError) as info:
        from_json(json.dumps(data))
    assert info.value.path == path
    assert f"'{path}'" in str(info.value)
    assert "expected" in str(info.value)


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"), ("   ", "empty"), ("{", "JSON syntax error"), ("[1, 2]", "an object"),
    ('{"haze": {"present": true, "severity": 50}', "JSON syntax error"), ("null", "an object"),
])
def test_malformed_json_text(text: str, fragment: str) -> None:
    with pytest.raises(DiagnosisError) as info:
        from_json(text)
    assert fragment in str(info.value)
    assert info.value.path == "$"


def test_minimal_json_fills_defaults_and_order() -> None:
    text = json.dumps({name: {"present": name in ("haze", "blur"), "severity": 40 if name in ("haze", "blur") else 0}
                       for name in DEGRADATIONS})
    diagnosis = from_json(text)
    assert diagnosis.present == ("haze", "blur")
    assert diagnosis.effective_order() == ("blur", "haze")
    assert diagnosis.version == "1.0"


def test_order_given_first_then_defaults() -> None:
    d = Diagnosis(haze=Haze(True, 50), rain=Rain(True, 20), noise=Noise(True, 30), order=("haze",))
    assert d.effective_order() == ("haze", "noise", "rain")


def test_with_degradation_turns_off_and_drops_from_order() -> None:
    d = Diagnosis(haze=Haze(True, 50), noise=Noise(True, 30), order=("haze", "noise"))
    off = d.with_degradation("haze", present=False)
    assert not off.haze.present and off.haze.severity == 0 and off.order == ("noise",)
    lighter = d.with_degradation("haze", severity=10)
    assert lighter.haze.severity == 10 and lighter.haze.present
    assert d.with_degradation("haze", severity=0).haze.present is False
    with pytest.raises(DiagnosisError, match="rain.severity"):
        d.with_degradation("rain", present=True)


def test_prompt_follows_order_and_severity_words() -> None:
    d = Diagnosis(haze=Haze(True, 80, transmission=0.28), noise=Noise(True, 20, 10.0), blur=Blur(True, 45, "motion", 11, 30),
                  scene="A harbour with boats", order=("haze",))
    prompt = d.to_prompt()
    assert prompt.index("haze") < prompt.index("sensor noise") < prompt.index("blur")
    assert "severe haze" in prompt and "light sensor noise" in prompt and "moderate blur" in prompt
    assert "harbour with boats" in prompt
    assert "1. remove the severe haze" in prompt
    clean = Diagnosis.clean(scene="A quiet street").to_prompt()
    assert "exactly as it is" in clean and "Work in this order" not in clean


def test_report_lists_every_degradation() -> None:
    report = Diagnosis(rain=Rain(True, 55, 0.06, 10, 30), source="classic").to_report()
    for word in ("haze: none", "rain streaks: strong", "sensor noise: none", "blur: none", "Reasoner: classic"):
        assert word in report
    assert "Overall severity: 55/100" in report


def test_calibration_round_trips_between_severity_and_parameters() -> None:
    for severity in (1, 10, 37, 64, 100):
        assert calibration.severity_from_transmission(calibration.transmission_from_severity(severity)) == severity
        assert calibration.severity_from_rain_density(calibration.rain_density_from_severity(severity)) == severity
        assert calibration.severity_from_noise_sigma(calibration.noise_sigma_from_severity(severity)) == severity
        assert calibration.severity_from_blur_extent(calibration.blur_extent_from_severity(severity)) == severity
    assert calibration.severity_from_transmission(1.0) == 0
    assert calibration.severity_from_noise_sigma(500) == 100
    assert calibration.severity_from_noise_sigma(float("nan")) == 0
    assert calibration.combined_severity({"haze": 50, "noise": 50}) == 75
    assert calibration.combined_severity([0, 0]) == 0
    assert set(DEFAULT_ORDER) == set(DEGRADATIONS)


def test_diagnosis_is_frozen_and_hashable() -> None:
    d = Diagnosis(haze=Haze(True, 50, transmission_map=((0.5, 0.6),)))
    with pytest.raises(AttributeError):
        d.scene = "x"  # type: ignore[misc]
    assert hash(d) == hash(from_json(d.to_json()))
