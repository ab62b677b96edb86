"""The GRPO LoRA file: its key layout, ComfyUI's own LoRA loading on its native Qwen-Image model (the real
``comfy.lora.model_lora_keys_unet`` and ``LoraLoaderModelOnly``, run in a child process from the ComfyUI
source tree), and our Restore backend's loading without fusing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rnr import cache
from rnr.registry import ModelSpec
from training.grpo.lora import PREFIX, adapted_layers, add_lora, lora_delta, save_lora

pytestmark = [pytest.mark.usefixtures("one_thread")]
REPO = Path(__file__).resolve().parents[2]
TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out",
           "img_mlp.net.0.proj", "img_mlp.net.2", "txt_mlp.net.0.proj", "txt_mlp.net.2", "img_mod.1", "proj_out")

# Runs inside ComfyUI: build its native Qwen-Image model at the tiny size, load the diffusers weights by
# name, apply the LoRA with the LoraLoaderModelOnly node, patch the weights and report what happened.
COMFY_CHECK = r"""
import json, logging, os, sys
comfy_dir, transformer_file, lora_file, config_json = sys.argv[1:5]
sys.argv = ["comfy", "--cpu"]
sys.path.insert(0, comfy_dir)
import comfy.options
comfy.options.enable_args_parsing()
import torch
from safetensors.torch import load_file
import comfy.lora, comfy.model_patcher, comfy.supported_models
import folder_paths, nodes

messages = []
class Collect(logging.Handler):
    def emit(self, record):
        messages.append(record.getMessage())
logging.getLogger().addHandler(Collect())

config = comfy.supported_models.QwenImage({"image_model": "qwen_image", **json.loads(config_json)})
config.set_inference_dtype(torch.float32, None)
model = config.get_model({})
base = load_file(transformer_file)
loaded = model.diffusion_model.load_state_dict(base, strict=False)
patcher = comfy.model_patcher.ModelPatcher(model, load_device=torch.device("cpu"), offload_device=torch.device("cpu"))
key_map = comfy.lora.model_lora_keys_unet(model, {})
folder_paths.folder_names_and_paths["loras"] = ([os.path.dirname(lora_file)], {".safetensors"})
(patched,) = nodes.LoraLoaderModelOnly().load_lora_model_only(patcher, os.path.basename(lora_file), 1.0)
patched.patch_model(device_to=torch.device("cpu"))
weights = patched.model.diffusion_model.state_dict()
lora = load_file(lora_file)
modules = sorted(k[len("transformer."):-len(".lora_A.weight")] for k in lora if k.endswith(".lora_A.weight"))
print(json.dumps({
    "model_class": type(model).__name__, "missing": loaded.missing_keys, "unexpected": loaded.unexpected_keys,
    "mapped": {m: key_map.get("transformer." + m) for m in modules}, "patched": sorted(patched.patches),
    "not_loaded": [m for m in messages if "lora key not loaded" in m],
    "changes": {m: (weights[m + ".weight"].float() - base[m + ".weight"].float()).tolist() for m in modules},
}))
"""


def comfyui_dir() -> Path | None:
    """The ComfyUI source tree (``$RNR_COMFYUI_DIR`` or ``../shared/comfyui/ComfyUI``), if present."""
    path = Path(os.environ.get("RNR_COMFYUI_DIR") or REPO.parent / "shared" / "comfyui" / "ComfyUI")
    return path if (path / "comfy").is_dir() else None


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@pytest.fixture(scope="module")
def lora_file(edit_dir, tmp_path_factory):
    """A LoRA on every kind of layer (both streams' attention and MLPs, a modulation layer, the output
    projection) with seeded random non-zero weights, exported as GRPO exports it."""
    from diffusers import QwenImageTransformer2DModel

    transformer = QwenImageTransformer2DModel.from_pretrained(str(edit_dir), subfolder="transformer")
    add_lora(transformer, rank=4, alpha=8.0, targets=TARGETS)
    generator = torch.Generator().manual_seed(0)
    for layer in adapted_layers(transformer).values():
        layer.lora_B["default"].weight.data = torch.randn(layer.lora_B["default"].weight.shape, generator=generator) * 0.05
    expected = {name: layer.get_delta_weight("default").detach().clone()
                for name, layer in adapted_layers(transformer).items()}
    path = save_lora(transformer, tmp_path_factory.mktemp("lora") / "rnr_test_lora.safetensors", {"test": True})
    return path, expected


def test_keys_are_prefixed_lora_a_b_with_the_scale_folded_in(lora_file):
    path, expected = lora_file
    tensors = load_file(str(path))
    assert all(key.startswith(PREFIX) and key.endswith((".lora_A.weight", ".lora_B.weight")) for key in tensors)
    assert not [key for key in tensors if "alpha" in key]
    modules = {key[len(PREFIX):].rsplit(".lora_", 1)[0] for key in tensors}
    assert modules == set(expected)
    assert {"proj_out", "transformer_blocks.0.img_mod.1", "transformer_blocks.1.attn.to_add_out",
            "transformer_blocks.0.txt_mlp.net.2"} <= modules
    assert all(tensors[f"{PREFIX}{m}.lora_A.weight"].shape[0] == 4 for m in modules)
    deltas = lora_delta(path)
    for module, delta in expected.items():
        torch.testing.assert_close(deltas[module], delta, atol=1e-6, rtol=1e-5)  # alpha/rank = 2 is inside B


def test_comfyui_loads_the_lora_on_its_native_qwen_image_model(lora_file, edit_dir):
    comfy = comfyui_dir()
    if comfy is None:
        message = "the ComfyUI source tree (../shared/comfyui/ComfyUI or $RNR_COMFYUI_DIR) is not here"
        if in_ci():
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message)
    path, expected = lora_file
    config = json.loads((edit_dir / "transformer" / "config.json").read_text())
    dims = {k: config[k] for k in ("patch_size", "in_channels", "out_channels", "num_layers", "attention_head_dim",
                                   "num_attention_heads", "joint_attention_dim", "axes_dims_rope")}
    weights = edit_dir / "transformer" / "diffusion_pytorch_model.safetensors"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", COMFY_CHECK, str(comfy), str(weights), str(path), json.dumps(dims)],
                          capture_output=True, text=True, timeout=600, cwd=str(path.parent), env=env, check=False)
    if done.returncode != 0:
        pytest.fail(f"the ComfyUI check failed:\n{done.stderr[-4000:]}", pytrace=False)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["model_class"] == "QwenImage"
    # ComfyUI's native module names are diffusers' names: the weights load by name, nothing left over.
    assert report["missing"] == [] and report["unexpected"] == []
    assert report["mapped"] == {m: f"diffusion_model.{m}.weight" for m in expected}
    assert report["not_loaded"] == []
    assert sorted(report["patched"]) == sorted(f"diffusion_model.{m}.weight" for m in expected)
    for module, delta in expected.items():
        torch.testing.assert_close(torch.tensor(report["changes"][module]), delta, atol=1e-6, rtol=1e-5)


def test_the_restore_backend_applies_the_lora_unfused(lora_file, edit_dir):
    from diffusers import QwenImageTransformer2DModel

    path, expected = lora_file
    merged = QwenImageTransformer2DModel.from_pretrained(str(edit_dir), subfolder="transformer").eval()
    with torch.no_grad():
        for module, delta in expected.items():
            merged.get_submodule(module).weight += delta
    cache.clear()
    try:
        restorer = cache.get(ModelSpec.make("restorer", "qwen_image_edit", str(edit_dir), "cpu", "float32",
                                            lora=str(path)))
        transformer = restorer.pipe.transformer
        assert any("lora" in name for name, _ in transformer.named_parameters())
        generator = torch.Generator().manual_seed(1)
        inputs = {"hidden_states": torch.randn(1, 8, 16, generator=generator),
                      "encoder_hidden_states": torch.randn(1, 5, 16, generator=generator),
                      "encoder_hidden_states_mask": None, "timestep": torch.tensor([0.7]),
                      "img_shapes": [[(1, 2, 2), (1, 2, 2)]], "return_dict": False}
        with torch.no_grad():
            ours = transformer(**inputs)[0]
            reference = merged(**inputs)[0]
        torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-4)
    finally:
        cache.clear()
