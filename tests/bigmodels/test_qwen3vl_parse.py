"""Reading Diagnoses out of model answers: 26 malformed answers repaired, hopeless ones refused with
the raw text, and the prompt's own answer format read back exactly."""

from __future__ import annotations

import json

import pytest

from rnr.diagnosis import Blur, Diagnosis, Haze, Noise, Rain, json_schema
from rnr.errors import RnRError
from rnr.reasoners import qwen3vl_prompt as prompt
from rnr.reasoners.qwen3vl_parse import AnswerParseError, parse_answer, read_lenient

HAZE40 = Diagnosis(haze=Haze(present=True, severity=40))
HAZE60_NOISE30 = Diagnosis(haze=Haze(present=True, severity=60), noise=Noise(present=True, severity=30))
CLEAN = Diagnosis()


def same(found: Diagnosis, expected: Diagnosis) -> None:
    """Equal in everything a restorer reads (reasoning and source aside)."""
    got = found.to_dict()
    want = expected.to_dict()
    for key in ("reasoning", "source"):
        got.pop(key)
        want.pop(key)
    assert got == want


CASES = [
    ("fenced", 'Observation: hazy.\n```json\n{"haze": {"present": true, "severity": 40}, "rain": {"present": false},'
               ' "noise": {"present": false}, "blur": {"present": false}}\n```', HAZE40),
    ("trailing_commas", '{"haze": {"present": true, "severity": 40,}, "rain": {"present": false,}, '
                        '"noise": {"present": false}, "blur": {"present": false},}', HAZE40),
    ("single_quotes", "{'haze': {'present': true, 'severity': 40}, 'rain': {'present': false}, "
                      "'noise': {'present': false}, 'blur': {'present': false}}", HAZE40),
    ("python_literals", "{'haze': {'present': True, 'severity': 40, 'transmission_map': None}, "
                        "'rain': {'present': False}, 'noise': {'present': False}, 'blur': {'present': False}}", HAZE40),
    ("line_comments", '{\n "haze": {"present": true, "severity": 40}, // thick\n "rain": {"present": false}, # none\n'
                      ' "noise": {"present": false},\n "blur": {"present": false}\n}', HAZE40),
    ("block_comment", '{"haze": {"present": true, /* estimated */ "severity": 40}, "rain": {"present": false}, '
                      '"noise": {"present": false}, "blur": {"present": false}}', HAZE40),
    ("missing_closing_braces", 'Evidence: low contrast.\n```json\n{"haze": {"present": true, "severity": 40}, '
                               '"rain": {"present": false}, "noise": {"present": false}, "blur": {"present": false',
     HAZE40),
    ("severity_string", '{"haze": {"present": true, "severity": "40"}, "rain": {"present": false}, '
                        '"noise": {"present": false}, "blur": {"present": false}}', HAZE40),
    ("severity_out_of_100", '{"haze": {"present": true, "severity": "40/100"}, "rain": {"present": false}, '
                            '"noise": {"present": false}, "blur": {"present": false}}', HAZE40),
    ("bare_fraction_number", '{"haze": {"present": true, "severity": 40/100}, "rain": {"present": false}, '
                             '"noise": {"present": false}, "blur": {"present": false}}', HAZE40),
    ("severity_percent", '{"haze": {"present": true, "severity": "40%"}, "rain": {"present": false}, '
                         '"noise": {"present": false}, "blur": {"present": false}}', HAZE40),
    ("severity_fraction", '{"haze": {"present": true, "severity": 0.4}, "rain": {"present": false}, '
                          '"noise": {"present": false}, "blur": {"present": false}}', HAZE40),
    ("present_yes_no", '{"haze": {"present": "yes", "severity": 40}, "rain": {"present": "no"}, '
                       '"noise": {"present": "No"}, "blur": {"present": "false"}}', HAZE40),
    ("severity_above_100", '{"haze": {"present": true, "severity": 140}, "rain": {"present": false}, '
                           '"noise": {"present": false}, "blur": {"present": false}}',
     Diagnosis(haze=Haze(present=True, severity=100))),
    ("params_out_of_range", '{"haze": {"present": true, "severity": 40, "transmission": 1.7, '
                            '"atmospheric_light": [255, 255, 230]}, "rain": {"present": false}, '
                            '"noise": {"present": false}, "blur": {"present": true, "severity": 20, "kind": "motion", '
                            '"extent_px": 5, "angle_deg": -30}}',
     Diagnosis(haze=Haze(present=True, severity=40, transmission=1.0, atmospheric_light=(1.0, 1.0, 230 / 255)),
               blur=Blur(present=True, severity=20, kind="motion", extent_px=5.0, angle_deg=150.0))),
    ("absent_with_severity", '{"haze": {"present": true, "severity": 40}, "rain": {"present": false, "severity": 12}, '
                             '"noise": {"present": false}, "blur": {"present": false}}', HAZE40),
    ("presence_from_severity", '{"haze": {"severity": 40}, "rain": {"severity": 0}, "noise": {}, "blur": {}}', HAZE40),
    ("records_as_booleans_and_numbers", '{"haze": 40, "rain": false, "noise": null, "blur": "no"}', HAZE40),
    ("missing_degradations", '{"haze": {"present": true, "severity": 40}}', HAZE40),
    ("scene_names_degradations", '{"haze": {"present": true, "severity": 40}, "rain": {"present": false}, '
                                 '"noise": {"present": false}, "blur": {"present": false}, '
                                 '"scene": "A foggy harbour with boats in heavy haze"}',
     Diagnosis(haze=Haze(present=True, severity=40), scene="A harbour with boats")),
    ("order_with_absent_and_unknown", '{"haze": {"present": true, "severity": 60}, "rain": {"present": false}, '
                                      '"noise": {"present": true, "severity": 30}, "blur": {"present": false}, '
                                      '"order": ["denoise", "rain", "sharpen", "dehaze", "haze", "colour"]}',
     HAZE60_NOISE30.replace(order=("noise", "haze"))),
    ("order_as_string", '{"haze": {"present": true, "severity": 60}, "rain": {"present": false}, '
                        '"noise": {"present": true, "severity": 30}, "blur": {"present": false}, '
                        '"order": "noise -> haze"}', HAZE60_NOISE30.replace(order=("noise", "haze"))),
    ("wrapped_and_synonyms", '{"diagnosis": {"fog": {"detected": true, "level": "moderate", "t": "64%"}, '
                             '"rain_streaks": {"detected": false}, "sensor_noise": {"is_present": true, "severity": 30, '
                             '"sigma": "15 (0..255)", "type": "Poisson shot noise"}, "blur": {"present": false}}}',
     Diagnosis(haze=Haze(present=True, severity=38, transmission=0.64),
               noise=Noise(present=True, severity=30, sigma_255=15.0, kind="poisson"))),
    ("unquoted_keys_missing_commas", '{haze: {present: true severity: 40} rain: {present: false} '
                                     'noise: {present: false} blur: {present: false}}', HAZE40),
    ("last_object_wins", 'A first draft: {"haze": {"present": false}, "rain": {"present": false}, '
                         '"noise": {"present": false}, "blur": {"present": false}}\nFinal answer:\n'
                         '{"haze": {"present": true, "severity": 40}, "rain": {"present": false}, '
                         '"noise": {"present": false}, "blur": {"present": false}}', HAZE40),
    ("severity_from_parameter", '{"haze": {"present": true, "transmission": 0.55}, "rain": {"present": true, '
                                '"density": 0.06, "angle_deg": 200, "length_px": "30 px"}, "noise": {"present": false}, '
                                '"blur": {"present": false}, "unknown_field": 3}',
     Diagnosis(haze=Haze(present=True, severity=50, transmission=0.55),
               rain=Rain(present=True, severity=50, density=0.06, angle_deg=90.0, length_px=30.0))),
    ("tuple_and_typographic_quotes", '{“haze”: {“present”: True, “severity”: 40, '
                                     '“atmospheric_light”: (0.9, 0.9, 0.9)}, “rain”: False, “noise”: False, “blur”: False}',
     Diagnosis(haze=Haze(present=True, severity=40, atmospheric_light=(0.9, 0.9, 0.9)))),
]


@pytest.mark.parametrize("name,text,expected", CASES, ids=[case[0] for case in CASES])
def test_malformed_answers_are_repaired(name, text, expected):
    found = parse_answer(text)
    same(found, expected)
    assert found.source == "qwen3vl"


def test_there_are_more_than_twenty_repaired_cases():
    assert len(CASES) >= 20


def test_chain_of_thought_before_the_json_becomes_the_reasoning():
    text = CASES[0][1]
    assert parse_answer(text).reasoning == "Observation: hazy."


HOPELESS = [
    ("empty", "   "),
    ("prose_only", "The photo looks hazy with some rain, severity about forty."),
    ("refusal_json", '{"answer": "I cannot diagnose this image"}'),
    ("list_not_object", '[{"present": true}, {"present": false}]'),
    ("present_without_severity", '{"haze": {"present": true}, "rain": false, "noise": false, "blur": false}'),
    ("unreadable_severity", '{"haze": "very", "rain": false, "noise": false, "blur": false}'),
]


@pytest.mark.parametrize("name,text", HOPELESS, ids=[case[0] for case in HOPELESS])
def test_hopeless_answers_fail_with_the_raw_text(name, text):
    with pytest.raises(AnswerParseError) as info:
        parse_answer(text)
    error = info.value
    assert isinstance(error, RnRError)
    assert error.raw == text
    assert "Raw answer:" in str(error) and text.strip()[:40] in str(error)


def test_long_raw_answers_are_shortened_in_the_message_but_kept_whole():
    text = "no json here " * 400
    with pytest.raises(AnswerParseError) as info:
        parse_answer(text)
    assert info.value.raw == text
    assert len(str(info.value)) < len(text)
    assert f"{len(text)} characters in all" in str(info.value)


def test_the_prompts_own_answer_format_reads_back_exactly():
    diagnosis = Diagnosis(haze=Haze(present=True, severity=55, atmospheric_light=(0.8, 0.82, 0.9), transmission=0.5),
                          rain=Rain(present=True, severity=25, density=0.03, angle_deg=-12.0, length_px=40.0),
                          noise=Noise(present=True, severity=30, sigma_255=15.0, kind="poisson"),
                          blur=Blur(present=True, severity=50, kind="motion", extent_px=12.0, angle_deg=30.0),
                          scene="A city street at dusk", order=("noise", "blur", "rain", "haze"))
    sections = {name: f"The {name.lower()} step." for name in prompt.COT_SECTIONS}
    text = prompt.format_answer(diagnosis, sections)
    found = parse_answer(text)
    same(found, diagnosis)
    assert found.reasoning.startswith("Observation: The observation step.")
    assert "Order: The order step." in found.reasoning


def test_system_prompt_carries_schema_calibration_and_sections():
    text = prompt.system_prompt()
    assert json.dumps(json_schema(), separators=(",", ":")) in text
    assert "t = 0.10" in text and "density = 0.12" in text and "sigma_255 = 50" in text and "extent_px = 24" in text
    for name in prompt.COT_SECTIONS:
        assert f"{name}:" in text
    chat = prompt.messages()
    assert chat[0]["role"] == "system" and chat[1]["content"][0] == {"type": "image"}
    again = prompt.reask_messages(chat, "bad answer", "no JSON")
    assert again[2] == {"role": "assistant", "content": [{"type": "text", "text": "bad answer"}]}
    assert "no JSON" in again[3]["content"][0]["text"]


def test_lenient_reader_values():
    assert read_lenient("{a: 'x', b: [1, 2,], c: True, d: None}")[0] == {"a": "x", "b": [1, 2], "c": True, "d": None}
    assert read_lenient('"unterminated')[0] == "unterminated"
    assert read_lenient('{"k": "tab\\tand \\u00e9"}')[0] == {"k": "tab\tand é"}
    with pytest.raises(ValueError):
        read_lenient("{]")


# ---- degenerate answers: the work stays linear in the answer's length --------------------------------
# A random-weight or looping model writes the same bracket-heavy token for its whole budget. Every "{"
# starts a read, and each such read used to run on to the end of the text: quadratic work, seconds at
# 256 tokens and minutes at the default 1024 (measured in benchmarks/bigmodels/README.md). The reads are
# counted (Python function calls in the parser), not timed.
DEGENERATE = [
    ("open_braces", " {{{" * 1024),
    ("nested_values", '{"a": ' * 600),
    ("nested_lists", '{"a": [' * 400),
    ("tuples_and_bare_keys", "{a:(" * 500),
    ("braces_and_lists", "{[" * 1000),
    ("curly_quotes", "{\u201c" * 1000),
    ("one_brace_per_char", "{" * 5000),
]


def _parser_calls(text: str) -> int:
    import sys

    from rnr.reasoners import qwen3vl_parse

    calls = 0

    def count(frame, event, arg):
        nonlocal calls
        if event == "call" and frame.f_code.co_filename == qwen3vl_parse.__file__:
            calls += 1

    sys.setprofile(count)
    try:
        with pytest.raises(AnswerParseError):
            parse_answer(text)
        still_counting = sys.getprofile() is count  # Python drops a profiler that hits the recursion limit
    finally:
        sys.setprofile(None)
    assert still_counting
    return calls


@pytest.mark.parametrize("name,text", DEGENERATE, ids=[case[0] for case in DEGENERATE])
def test_degenerate_answers_are_refused_with_linear_work(name, text):
    calls = _parser_calls(text)
    assert calls <= 20 * len(text), f"{calls} parser calls for {len(text)} characters"


def test_a_diagnosis_after_degenerate_text_is_still_found():
    fenced = CASES[0][1].split("\n", 1)[1]
    same(parse_answer(" {{{" * 300 + "\n" + fenced), HAZE40)
    same(parse_answer('{"a": ' * 300 + "\n" + fenced), HAZE40)
    bare_json = '{"haze": {"present": true, "severity": 40}, "rain": false, "noise": false, "blur": false}'
    same(parse_answer("{[(" * 300 + " " + bare_json), HAZE40)


def test_nesting_beyond_the_limit_is_refused_and_a_shallower_inner_diagnosis_found():
    from rnr.reasoners.qwen3vl_parse import MAX_NESTING

    inner = '{"haze": {"present": true, "severity": 40}, "rain": false, "noise": false, "blur": false}'
    deep = '{"wrap": ' * (MAX_NESTING + 10) + inner + "}" * (MAX_NESTING + 10)
    with pytest.raises(ValueError):
        read_lenient(deep)
    assert read_lenient('{"wrap": ' * (MAX_NESTING - 2) + inner + "}" * (MAX_NESTING - 2))[0]["wrap"]
    # Read from a "{" deep enough inside, the wrapped diagnosis nests within the limit and is found.
    same(parse_answer(deep), HAZE40)
    with pytest.raises(AnswerParseError):
        parse_answer("[" * 5000 + "{" * 5000)
