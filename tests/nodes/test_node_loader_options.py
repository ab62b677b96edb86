"""The loader nodes' options box: checked by the registry's options tables when the node runs, so a
typo or a wrong value shows on the loader with the backend's option names, and equal settings written
differently share one model."""

from __future__ import annotations

import pytest
from comfy_calls import call, mappings, pack_module

from rnr import cache
from rnr.errors import OptionError

TIEL = ("restorer 'classic' has no option 'tiel' (did you mean 'tile'?); its options are: tile, "
        "max_untiled_pixels (see docs/backend_options.md)")


def test_a_misspelt_option_fails_on_the_loader_with_the_closest_name():
    loader = mappings()["RnRRestorerLoader"]()
    with pytest.raises(OptionError) as info:
        loader.load("classic", "(built-in)", "auto", "cpu", '{"tiel": 512}')
    assert str(info.value) == TIEL
    with pytest.raises(OptionError, match="reasoner 'lite' has no option 'crop' \\(did you mean 'crops'\\?\\)"):
        call("RnRReasonerLoader", backend="lite", options='{"crop": 4}')


@pytest.mark.parametrize("text, expected", [('{"compile": "false"}', None), ('{"compile": "False"}', None),
                                            ('{"compile": false}', None), ('{"compile": "true"}', True),
                                            ('{"compile": 1}', True)])
def test_booleans_typed_as_text_mean_what_they_say(text, expected):
    (handle,) = call("RnRRestorerLoader", backend="lite", device="cpu", options=text)
    assert handle.spec.option("compile") is expected  # false is the default: dropped from the spec


def test_a_wrong_boolean_is_refused():
    with pytest.raises(OptionError, match="option 'compile' takes true or false .*, got \"off\""):
        call("RnRRestorerLoader", backend="lite", options='{"compile": "off"}')


def test_generate_options_may_be_an_object_or_text_and_other_nested_values_are_refused():
    loaders = pack_module("nodes.loaders")
    as_text = loaders.make_spec("reasoner", "qwen3vl", options='{"generate_options": "{\\"repetition_penalty\\": 1.05}"}')
    as_object = loaders.make_spec("reasoner", "qwen3vl", options='{"generate_options": {"repetition_penalty": 1.05}}')
    assert as_text == as_object and as_text.option("generate_options") == '{"repetition_penalty": 1.05}'
    with pytest.raises(OptionError, match="option 'tile' takes a whole number, got \\[512\\]"):
        call("RnRRestorerLoader", backend="classic", options='{"tile": [512]}')


def test_options_at_their_defaults_share_the_model():
    cache.clear()
    (plain,) = call("RnRRestorerLoader", backend="classic", device="cpu")
    (spelled_out,) = call("RnRRestorerLoader", backend="classic", device="cpu",
                          options='{"tile": "1024", "max_untiled_pixels": null}')
    assert spelled_out == plain
    assert spelled_out.load() is plain.load()
    assert cache.stats()["loads"] == 1
    cache.clear()


def test_the_options_tooltip_names_the_document():
    for node in ("RnRReasonerLoader", "RnRRestorerLoader"):
        tooltip = mappings()[node].INPUT_TYPES()["optional"]["options"][1]["tooltip"]
        assert "docs/backend_options.md" in tooltip and "README" not in tooltip
