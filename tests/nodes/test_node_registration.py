"""The pack imports as ComfyUI imports it and every node declares what the UI needs."""

from __future__ import annotations

import pytest
from comfy_calls import all_inputs, load_pack, mappings, node_info, pack_module

EXPECTED = {
    "RnRReasonerLoader": "RnR Reasoner Loader",
    "RnRRestorerLoader": "RnR Restorer Loader",
    "RnRReason": "RnR Reason",
    "RnRRestore": "RnR Restore",
    "RnRDiagnosisEdit": "RnR Diagnosis Edit",
    "RnRSeverityScore": "RnR Severity Score",
    "RnRDiagnosisToText": "RnR Diagnosis To Text",
    "RnRDiagnosisFromJSON": "RnR Diagnosis From JSON",
    "RnRDiagnosisToPrompt": "RnR Diagnosis To Prompt",
    "RnRLoadSampleImage": "RnR Load Sample Image",
    "RnRDegrade": "RnR Degrade",
}


def test_the_pack_registers_exactly_our_nodes_with_display_names():
    pack = load_pack()
    assert set(pack.NODE_CLASS_MAPPINGS) == set(EXPECTED)
    assert pack.NODE_DISPLAY_NAME_MAPPINGS == EXPECTED


def test_outside_comfyui_no_memory_hook_is_installed():
    assert pack_module("nodes.memory")._installed is False


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_node_declares_category_description_and_tooltips(name):
    cls = mappings()[name]
    info = node_info(name)
    assert info["category"] == "RnR" or info["category"].startswith("RnR/")
    assert len(info["description"]) > 40
    assert callable(getattr(cls(), cls.FUNCTION))
    assert len(cls.RETURN_NAMES) == len(cls.RETURN_TYPES) == len(cls.OUTPUT_TOOLTIPS)
    assert all(tip.strip() for tip in cls.OUTPUT_TOOLTIPS)
    for input_name, spec in all_inputs(cls).items():
        assert len(spec) == 2 and spec[1].get("tooltip", "").strip(), f"{name}.{input_name} has no tooltip"
    assert set(info["input"]) <= {"required", "optional"}
    assert not getattr(cls, "OUTPUT_NODE", False)


def test_custom_types_are_the_documented_ones():
    produced = {t for cls in mappings().values() for t in cls.RETURN_TYPES}
    consumed = {spec[0] for cls in mappings().values() for spec in all_inputs(cls).values() if isinstance(spec[0], str)}
    custom = {t for t in produced | consumed if t.startswith("RNR_")}
    assert custom == {"RNR_REASONER", "RNR_RESTORER", "RNR_DIAGNOSIS"}
    assert custom <= produced  # every custom input type can be produced by some node
