"""Backend options are checked in one place, the ModelSpec (tables in ``rnr/registry.py``): unknown
names, value types, defaults and the cache key, through ``rnr.api``, the command line and the spec.

The loader node's side is in ``tests/nodes/test_node_loader_options.py``; the tables' agreement with
the document and the backends' code is in ``tests/test_backend_options_doc.py``.
"""

from __future__ import annotations

import json

import pytest
import torch

from rnr import api, cache, registry
from rnr.assets import sample_path
from rnr.cli import main
from rnr.cli.common import parse_options
from rnr.errors import OptionError, RnRError
from rnr.images import load_image, save_image
from rnr.registry import ModelSpec
from rnr.restorers import lite as lite_restorer

TIEL = ("restorer 'classic' has no option 'tiel' (did you mean 'tile'?); its options are: tile, "
        "max_untiled_pixels (see docs/backend_options.md)")


@pytest.fixture
def empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(scope="module")
def small_photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    save_image(path, load_image(sample_path("landscape")).tensor[..., 200:248, 300:348].contiguous())
    return path


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---- unknown names -------------------------------------------------------------------------------
def test_an_unknown_option_is_refused_with_the_closest_name(empty_cache):
    with pytest.raises(OptionError) as info:
        api.load_restorer("classic", device="cpu", tiel=512)
    assert str(info.value) == TIEL
    assert isinstance(info.value, RnRError)
    assert cache.stats()["models"] == []  # nothing loaded, no cache entry under the misspelt name


def test_an_unknown_option_without_a_close_name_lists_the_options():
    with pytest.raises(OptionError) as info:
        ModelSpec.make("restorer", "lite", zzz=1)
    assert str(info.value) == ("restorer 'lite' has no option 'zzz'; its options are: tile, overlap, compile "
                               "(see docs/backend_options.md)")
    with pytest.raises(OptionError, match="did you mean 'max_new_tokens'"):
        ModelSpec.make("reasoner", "qwen3vl", "/models/qwen", max_tokens=64)
    with pytest.raises(OptionError) as info:
        api.model_spec("reasoner", "classic", threshold=0.5)
    assert str(info.value) == ("reasoner 'classic' takes no options, got 'threshold'; remove it "
                               "(see docs/backend_options.md)")


def test_an_option_of_another_backend_is_refused():
    assert ModelSpec.make("restorer", "lite", overlap=64).option("overlap") == 64
    with pytest.raises(OptionError, match="restorer 'classic' has no option 'overlap'"):
        ModelSpec.make("restorer", "classic", overlap=64)


def test_an_unknown_option_on_the_command_line_exits_2_with_the_message(capsys, small_photo, tmp_path,
                                                                       empty_cache):
    code, _, err = run_cli(capsys, "restore", small_photo, "-o", tmp_path / "out.png", "--reasoner", "classic",
                           "--restorer", "classic", "--restorer-option", "tiel=512", "--quiet")
    assert code == 2
    assert err == f"rnr: error: {TIEL}\n"
    assert not (tmp_path / "out.png").exists()
    code, _, err = run_cli(capsys, "diagnose", small_photo, "--reasoner", "classic", "--reasoner-option", "x=1")
    assert code == 2 and "reasoner 'classic' takes no options, got 'x'" in err


# ---- values --------------------------------------------------------------------------------------
@pytest.mark.parametrize("given, expected", [
    (True, True), (False, False), ("true", True), ("False", False), ("FALSE", False), (" no ", False),
    ("yes", True), ("1", True), ("0", False), (1, True), (0, False),
])
def test_booleans_are_read_from_text_and_numbers(given, expected):
    spec = ModelSpec.make("reasoner", "qwen3vl", "/models/qwen", reask=given)
    assert spec.option("reask", True) is expected
    assert ModelSpec.make("restorer", "lite", compile=given).option("compile", False) is expected


@pytest.mark.parametrize("given", ["on", "maybe", "", 2, 0.5, [True]])
def test_a_boolean_refuses_anything_else(given):
    with pytest.raises(OptionError) as info:
        ModelSpec.make("restorer", "qwen_image_edit", "/models/edit", fuse_lora=given)
    message = str(info.value)
    assert message.startswith("restorer 'qwen_image_edit' option 'fuse_lora' takes true or false")
    assert f"got {json.dumps(given)}" in message and "docs/backend_options.md" in message


def test_reask_false_on_the_command_line_turns_it_off():
    """Was the text "False", read with bool() as true."""
    options = parse_options(["reask=False", "merge_adapter=false", "max_new_tokens=768", "temperature=0.5"])
    assert options == {"reask": "False", "merge_adapter": "false", "max_new_tokens": "768", "temperature": "0.5"}
    spec = api.model_spec("reasoner", "qwen3vl", "/models/qwen", **options)
    assert spec.options == (("max_new_tokens", 768), ("merge_adapter", False), ("reask", False),
                            ("temperature", 0.5))


def test_numbers_are_parsed_and_checked():
    spec = ModelSpec.make("restorer", "qwen_image_edit", "/m", steps="30", tile=512.0, guidance="4", lora_scale=1)
    assert spec.option("steps") == 30 and type(spec.option("steps")) is int
    assert spec.option("tile") == 512 and type(spec.option("tile")) is int
    assert spec.option("guidance") == 4.0 and type(spec.option("guidance")) is float
    assert spec.option("lora_scale") is None  # 1 is the default 1.0: dropped
    for name, value, expected in [("steps", 2.5, "a whole number"), ("steps", "30 steps", "a whole number"),
                                  ("steps", True, "a whole number"), ("guidance", "nan", "a number"),
                                  ("guidance", float("inf"), "a number"), ("negative_prompt", 5, "text"),
                                  ("lora", 3, "a file or folder path")]:
        with pytest.raises(OptionError, match=f"option '{name}' takes {expected}"):
            ModelSpec.make("restorer", "qwen_image_edit", "/m", **{name: value})


def test_a_real_backend_gets_the_converted_values(empty_cache):
    restorer = api.load_restorer("classic", device="cpu", tile="512", max_untiled_pixels="4096")
    assert (restorer.tile, restorer.max_untiled_pixels) == (512, 4096)


@pytest.mark.skipif(not lite_restorer.weights_available(), reason="lite weights not installed")
def test_compile_false_as_text_does_not_compile(empty_cache):
    restorer = api.load_restorer("lite", device="cpu", compile="False")
    assert restorer._forward is restorer.net  # bool("False") used to wrap the network in torch.compile
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert restorer.restore(image, [api.load_reasoner("classic", device="cpu").diagnose(image)[0]]).shape == image.shape


# ---- nested values -------------------------------------------------------------------------------
def test_nested_values_are_refused_cleanly():
    with pytest.raises(OptionError, match=r"option 'tile' takes a whole number, got \{\"a\": 1\}"):
        api.load_restorer("classic", tile={"a": 1})
    with pytest.raises(OptionError, match=r"option 'adapter' takes a file or folder path \(text\), got \[\"a\"\]"):
        ModelSpec.make("reasoner", "qwen3vl", "/models/qwen", adapter=["a"])


def test_generate_options_from_the_command_line_is_kept_as_canonical_json_text():
    """``generate_options={...}`` used to become a dict and fail with ``unhashable type: 'dict'``."""
    written = parse_options(['generate_options={"repetition_penalty": 1.05, "no_repeat_ngram_size": 3}'])
    spec = api.model_spec("reasoner", "qwen3vl", "/models/qwen", **written)
    text = '{"no_repeat_ngram_size": 3, "repetition_penalty": 1.05}'
    assert spec.option("generate_options") == text
    hash(spec)
    quoted = parse_options(['generate_options="{\\"no_repeat_ngram_size\\": 3, \\"repetition_penalty\\": 1.05}"'])
    as_object = {"repetition_penalty": 1.05, "no_repeat_ngram_size": 3}
    assert api.model_spec("reasoner", "qwen3vl", "/models/qwen", **quoted) == spec
    assert api.model_spec("reasoner", "qwen3vl", "/models/qwen", generate_options=as_object) == spec
    for empty in ("", "{}", {}, None):
        assert ModelSpec.make("reasoner", "qwen3vl", "/q", generate_options=empty).options == ()
    for bad in ("[1, 2]", "{oops", '"text"', 3, {"a": {1, 2}}):
        with pytest.raises(OptionError, match="option 'generate_options' takes a JSON object"):
            ModelSpec.make("reasoner", "qwen3vl", "/q", generate_options=bad)


def test_a_backend_without_an_options_table_keeps_plain_values_and_refuses_nested_ones(monkeypatch):
    monkeypatch.setitem(registry.REASONER_BACKENDS, "free_test", __name__)
    assert registry.declared_options("reasoner", "free_test") is None
    assert ModelSpec.make("reasoner", "free_test", seed=1, name="x").options == (("name", "x"), ("seed", 1))
    with pytest.raises(OptionError) as info:
        ModelSpec.make("reasoner", "free_test", layers=[1, 2])
    assert "option 'layers' must be a plain value" in str(info.value)
    assert "pass lists and objects as JSON text" in str(info.value)


# ---- defaults and the cache key ------------------------------------------------------------------
def test_an_option_at_its_default_shares_the_cache_entry(empty_cache):
    plain = api.load_restorer("classic", device="cpu")
    for same in ({"tile": 1024}, {"tile": "1024"}, {"tile": 1024.0}, {"tile": None},
                 {"max_untiled_pixels": 2048 * 2048}):
        assert api.load_restorer("classic", device="cpu", **same) is plain, same
    assert cache.stats()["loads"] == 1 and len(cache.stats()["models"]) == 1
    assert cache.stats()["models"][0]["options"] == {}
    assert api.load_restorer("classic", device="cpu", tile=512) is not plain
    assert cache.stats()["loads"] == 2


def test_equal_settings_give_equal_specs():
    plain = ModelSpec.make("reasoner", "qwen3vl", "/models/qwen")
    spelled_out = ModelSpec.make("reasoner", "qwen3vl", "/models/qwen", merge_adapter="true", reask=1, temperature=0,
                                 top_p="1", attn_implementation="sdpa", adapter="", processor=None, seed="0",
                                 max_pixels=1024 * 1024, generate_options="{}")
    assert spelled_out == plain and hash(spelled_out) == hash(plain) and spelled_out.options == ()
    spec = ModelSpec.make("restorer", "qwen_image_edit", "/m", steps="30", vae_tiling="yes", lora="/l.safetensors")
    again = ModelSpec.make(spec.kind, spec.backend, spec.path, spec.device, spec.dtype, **dict(spec.options))
    assert again == spec  # checking is idempotent: a spec rebuilt from its own options is equal


# ---- rnr bench -----------------------------------------------------------------------------------
def test_bench_gives_each_backend_the_options_it_takes(capsys):
    code, out, err = run_cli(capsys, "bench", "--backends", "classic", "--devices", "cpu", "--size", "64",
                             "--warmup", "0", "--repeats", "1", "--json", "--quiet", "--option", "tile=512")
    assert code == 0, err
    assert [r["error"] for r in json.loads(out)] == ["", ""]  # the classic reasoner is not given tile
    code, _, err = run_cli(capsys, "bench", "--backends", "classic", "--devices", "cpu", "--size", "64",
                           "--warmup", "0", "--repeats", "1", "--quiet", "--option", "tiel=512")
    assert code == 2
    assert "no benchmarked backend takes the option(s) tiel (restorer classic, reasoner classic)" in err
