"""Qwen-Image-Edit from a diffusers folder and from ComfyUI's split files load the same weights.

The split files are written in ComfyUI's own key layouts (see ``tiny.write_comfyui_layout``); the
slow tests run the whole edit pipeline from both layouts and check ComfyUI's key names against a
live ComfyUI source tree."""

from __future__ import annotations

import json

import pytest
import torch

from rnr.diagnosis import Diagnosis, Haze
from rnr.registry import ModelSpec
from rnr.restorers import qwen_image_edit_convert as convert

from . import tiny
from .conftest import comfyui_dir

HAZY = Diagnosis(haze=Haze(present=True, severity=50, transmission=0.55), scene="A street")
TIED_IN_COMFY = {"lm_head.weight"}
"""ComfyUI's text-encoder files carry no lm_head (the pipeline reads hidden states, never logits)."""


def spec(path, **options) -> ModelSpec:
    options.setdefault("steps", 2)
    return ModelSpec.make("restorer", "qwen_image_edit", str(path), "cpu", "fp32", **options)


def states(restorer, name):
    return getattr(restorer.pipe, name).state_dict()


def test_comfyui_files_load_the_same_weights_as_the_diffusers_folder(edit_dir, comfy_layout, fresh_cache):
    from_diffusers = fresh_cache.get(spec(edit_dir))
    from_comfy = fresh_cache.get(spec(comfy_layout["transformer"], config=str(comfy_layout["config"])))
    assert from_diffusers.family == from_comfy.family == "edit"
    assert from_comfy.loaded.layout == "comfyui" and from_comfy.loaded.files["vae"] == str(comfy_layout["vae"])
    for name in ("transformer", "vae", "text_encoder"):
        a, b = states(from_diffusers, name), states(from_comfy, name)
        assert set(a) == set(b), name
        for key in set(a) - TIED_IN_COMFY:
            assert torch.equal(a[key], b[key]), f"{name}.{key}"
    assert torch.equal(states(from_comfy, "text_encoder")["lm_head.weight"],
                       states(from_comfy, "text_encoder")["model.language_model.embed_tokens.weight"])

    torch.manual_seed(0)
    hidden = torch.randn(1, 16, 16)
    text = torch.randn(1, 5, 16)
    kwargs = {"hidden_states": hidden, "encoder_hidden_states": text, "timestep": torch.tensor([0.5]),
              "img_shapes": [[(1, 4, 4)]], "return_dict": False}
    with torch.no_grad():
        out_a = from_diffusers.pipe.transformer(**kwargs)[0]
        out_b = from_comfy.pipe.transformer(**kwargs)[0]
        ids = torch.tensor([[5, 9, 11, 30, 2]])
        enc_a = from_diffusers.pipe.text_encoder(input_ids=ids, output_hidden_states=True).hidden_states[-1]
        enc_b = from_comfy.pipe.text_encoder(input_ids=ids, output_hidden_states=True).hidden_states[-1]
    assert torch.equal(out_a, out_b) and torch.equal(enc_a, enc_b)
    assert from_diffusers.working_size(40, 70) == from_comfy.working_size(40, 70) == (48, 64)


def test_scaled_fp8_files_and_unprefixed_keys_dequantise(edit_dir, models_dir, fresh_cache):
    paths = tiny.write_comfyui_layout(edit_dir, models_dir / "comfy_fp8", prefix="", fp8=True)
    loaded = fresh_cache.get(spec(paths["transformer"].parents[1], config=str(paths["config"])))
    reference = fresh_cache.get(spec(edit_dir))
    a, b = states(reference, "transformer"), states(loaded, "transformer")
    for key, value in a.items():
        assert b[key].dtype == torch.float32
        tolerance = 0.07 * value.abs().max() + 1e-6 if value.dim() == 2 else 0.0
        assert (b[key] - value).abs().max() <= tolerance, key
    raw = {"layer.weight": torch.full((2, 2), 100.0, dtype=torch.float8_e4m3fn), "layer.scale_weight": torch.tensor(0.5),
           "layer.bias": torch.ones(2, dtype=torch.bfloat16), "scaled_fp8": torch.empty(0),
           "layer.scale_input": torch.ones(())}
    out = convert.dequantize(raw, torch.float32)
    assert set(out) == {"layer.weight", "layer.bias"} and torch.equal(out["layer.weight"], torch.full((2, 2), 48.0))


def test_wrong_file_for_a_component_is_named(edit_dir, comfy_layout, models_dir, fresh_cache):
    from safetensors.torch import save_file

    wrong = models_dir / "wrong_vae.safetensors"
    save_file({"encoder.conv1.weight": torch.zeros(1)}, str(wrong))
    with pytest.raises(Exception) as info:
        fresh_cache.get(spec(comfy_layout["transformer"], config=str(comfy_layout["config"]), vae_file=str(wrong)))
    assert str(wrong) in str(info.value) and "lacks" in str(info.value)


@pytest.mark.slow
def test_both_layouts_restore_identically_end_to_end(edit_dir, comfy_layout, fresh_cache):
    from_diffusers = fresh_cache.get(spec(edit_dir, guidance=2.0))
    from_comfy = fresh_cache.get(spec(comfy_layout["transformer"], config=str(comfy_layout["config"]), guidance=2.0))
    image = torch.rand(1, 3, 40, 70, generator=torch.Generator().manual_seed(1))
    steps = []
    a = from_diffusers.restore(image, [HAZY], seed=3, progress=lambda d, t: steps.append((d, t)))
    b = from_comfy.restore(image, [HAZY], seed=3)
    assert a.shape == image.shape and torch.equal(a, b)
    assert steps == [(1, 2), (2, 2)]


@pytest.mark.slow
def test_edit_plus_folder_loads_the_plus_pipeline(models_dir, fresh_cache):
    folder = tiny.build_edit_pipeline(models_dir / "edit_plus", family="edit_plus", seed=1)
    restorer = fresh_cache.get(spec(folder))
    assert restorer.family == "edit_plus" and type(restorer.pipe).__name__ == "QwenImageEditPlusPipeline"
    out = restorer.restore(torch.rand(1, 3, 32, 48), [HAZY])
    assert out.shape == (1, 3, 32, 48)


@pytest.mark.slow
def test_comfyui_key_names_match_comfyui_itself(edit_dir):
    source = comfyui_dir()
    if source is None:
        pytest.skip("no ComfyUI source tree (set RNR_COMFYUI_DIR)")
    from diffusers import QwenImageTransformer2DModel

    keys = tiny.comfyui_key_names(source)
    assert keys["vae"] == json.loads(tiny.COMFY_KEYS_FILE.read_text())["vae"]
    ours = QwenImageTransformer2DModel.from_pretrained(str(edit_dir), subfolder="transformer").state_dict()
    assert set(keys["transformer"]) == set(ours), "ComfyUI names the Qwen-Image transformer as diffusers does"
