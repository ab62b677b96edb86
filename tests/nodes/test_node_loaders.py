"""RnR Reasoner/Restorer Loader: combos, model folders, specs shared through the cache, clear errors."""

from __future__ import annotations

import pytest
import torch
from comfy_calls import ValidationError, call, mappings, pack_module
from safetensors.torch import save_file

from rnr import api, cache, registry
from rnr.errors import BackendError, ModelNotFoundError, RnRError


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    (tmp_path / "reasoners" / "my-vlm").mkdir(parents=True)
    (tmp_path / "reasoners" / "my-vlm" / "config.json").write_text("{}")
    save_file({"w": torch.zeros(4)}, tmp_path / "reasoners" / "tuned.safetensors")
    (tmp_path / "reasoners" / "notes.txt").write_text("not a model")
    (tmp_path / "reasoners" / ".cache").mkdir()
    (tmp_path / "restorers").mkdir()
    monkeypatch.setenv("RNR_MODELS_DIR", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("node, kind", [("RnRReasonerLoader", "reasoner"), ("RnRRestorerLoader", "restorer")])
def test_combos_list_backends_dtypes_devices_and_the_builtin_model(node, kind):
    required = mappings()[node].INPUT_TYPES()["required"]
    assert required["backend"][0] == registry.available(kind)
    assert required["backend"][1]["default"] == api.default_backend(kind)
    assert required["model"][0][0] == "(built-in)"
    assert required["dtype"][0] == ["auto", "fp32", "fp16", "bf16"]
    assert required["device"][0][:2] == ["auto", "cpu"]


def test_model_combo_lists_model_files_and_folders(models_dir):
    models = mappings()["RnRReasonerLoader"].INPUT_TYPES()["required"]["model"][0]
    assert models == ["(built-in)", "my-vlm", "tuned.safetensors"]
    assert mappings()["RnRRestorerLoader"].INPUT_TYPES()["required"]["model"][0] == ["(built-in)"]


def test_loader_outputs_a_handle_whose_spec_names_the_model(models_dir):
    (handle,) = call("RnRReasonerLoader", backend="lite", model="tuned.safetensors", dtype="fp32",
                     options='{"crops": 5}')
    spec = handle.spec
    assert (spec.kind, spec.backend, spec.dtype, spec.device) == ("reasoner", "lite", "fp32", "auto")
    assert spec.path == str(models_dir / "reasoners" / "tuned.safetensors")
    assert spec.option("crops") == 5
    (restorer,) = call("RnRRestorerLoader", backend="classic")
    assert restorer.spec.kind == "restorer" and restorer.spec.path == ""


def test_equal_settings_share_one_model_and_match_the_default():
    cache.clear()
    (a,) = call("RnRReasonerLoader", backend="classic")
    (b,) = call("RnRReasonerLoader", backend="classic")
    assert a == b
    assert a.load() is b.load()
    loaders = pack_module("nodes.loaders")
    if api.default_backend("reasoner") == "classic":
        assert loaders.default_handle("reasoner") == a  # an unconnected reasoner input uses this same copy
    assert cache.stats()["loads"] == 1
    cache.clear()


def test_a_missing_model_names_the_folders_searched(models_dir):
    loaders = pack_module("nodes.loaders")
    with pytest.raises(ModelNotFoundError) as info:
        loaders.make_spec("reasoner", "classic", "gone.safetensors")
    assert str(models_dir / "reasoners") in str(info.value) and "models/rnr/reasoners" in str(info.value)
    with pytest.raises(ValidationError, match="not in list"):  # ComfyUI itself rejects unknown combo values
        call("RnRReasonerLoader", backend="classic", model="gone.safetensors")


@pytest.mark.parametrize("options, message", [
    ("{oops", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"tile": [1, 2]}', "option 'tile' takes a whole number"),
    ('{"tiel": 512}', "has no option 'tiel'"),
])
def test_bad_options_are_explained(options, message):
    with pytest.raises(RnRError, match=message):
        call("RnRRestorerLoader", backend="classic", options=options)


def test_a_backend_that_cannot_be_imported_fails_on_the_loader(monkeypatch):
    monkeypatch.setitem(registry.REASONER_BACKENDS, "broken_test", "rnr.reasoners.does_not_exist")
    with pytest.raises(BackendError, match="'broken_test' cannot be imported"):
        call("RnRReasonerLoader", backend="broken_test")
