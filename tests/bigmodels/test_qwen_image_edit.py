"""The qwen_image_edit restorer on tiny real pipelines: sizes, seeds, strength, tiles, progress,
LoRA, the text encoder shared with the reasoner, and the errors of missing or wrong folders.

Behaviour is tested on the Qwen-Image 2.1 family (its condition image follows the working size, so a
call takes a fraction of a second); the Edit family, whose pipeline always encodes a 1-megapixel
condition image, runs in ``test_qwen_image_layouts.py``."""

from __future__ import annotations

import shutil

import pytest
import torch

from rnr.diagnosis import Diagnosis, Haze, Noise
from rnr.errors import BackendError, Interrupted, ModelNotFoundError
from rnr.registry import ModelSpec
from rnr.restorers.qwen_image_edit import QwenImageEditRestorer

HAZY = Diagnosis(haze=Haze(present=True, severity=50, transmission=0.55), scene="A street")
NOISY = Diagnosis(noise=Noise(present=True, severity=30, sigma_255=15.0))


def spec(path, **options) -> ModelSpec:
    options.setdefault("steps", 2)
    return ModelSpec.make("restorer", "qwen_image_edit", str(path), "cpu", "fp32", **options)


def images(count: int = 1, height: int = 40, width: int = 70) -> torch.Tensor:
    return torch.rand(count, 3, height, width, generator=torch.Generator().manual_seed(3))


def test_restore_keeps_size_and_is_seeded(qwen21_dir, fresh_cache):
    restorer = fresh_cache.get(spec(qwen21_dir))
    assert isinstance(restorer, QwenImageEditRestorer) and restorer.family == "qwen_image_21"
    batch = images(2)
    out = restorer.restore(batch, [HAZY, NOISY], seed=5)
    assert out.shape == batch.shape and out.dtype == batch.dtype
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert torch.equal(out, restorer.restore(batch, [HAZY, NOISY], seed=5))
    assert torch.equal(out[1], restorer.restore(batch[1:], [NOISY], seed=6)[0]), "image i uses seed + i"
    assert not torch.allclose(out[1], restorer.restore(batch[1:], [NOISY], seed=5)[0])
    assert not torch.allclose(out[0], restorer.restore(batch[:1], [NOISY], seed=5)[0]), "the diagnosis is the prompt"
    half = restorer.restore(batch.half(), [HAZY, NOISY], seed=5)
    assert half.dtype == torch.float16 and half.shape == batch.shape


def test_working_size_keeps_aspect_within_the_pixel_budget(qwen21_dir, fresh_cache):
    restorer = fresh_cache.get(spec(qwen21_dir, max_megapixels=0.01))
    assert restorer.working_size(40, 70) == (32, 64)
    height, width = restorer.working_size(300, 200)
    assert height % 32 == 0 and width % 32 == 0 and height * width <= 10000
    assert abs(height / width - 1.5) < 0.2
    kwargs = restorer.pipeline_kwargs(images(1, 300, 200)[0], "x", seed=1)
    assert (kwargs["height"], kwargs["width"]) == (height, width) and kwargs["image"].size == (width, height)
    assert kwargs["output_resolution"] == round((height * width) ** 0.5) and "negative_prompt" not in kwargs
    assert restorer.restore(images(1, 300, 200), [HAZY]).shape == (1, 3, 300, 200)


def test_strength_blends_or_denoises_from_the_input(qwen21_dir, fresh_cache):
    blend = fresh_cache.get(spec(qwen21_dir, steps=4))
    batch = images()
    calls = []
    assert torch.equal(blend.restore(batch, [HAZY], strength=0.0, progress=lambda d, t: calls.append(d)), batch)
    assert calls == [], "strength 0 runs no sampler step"
    full = blend.restore(batch, [HAZY], seed=1)
    half = blend.restore(batch, [HAZY], seed=1, strength=0.5)
    assert torch.allclose(half, (batch + 0.5 * (full - batch)).clamp(0, 1), atol=1e-6)
    denoise = fresh_cache.get(spec(qwen21_dir, steps=4, strength_mode="denoise"))
    steps = []
    partial = denoise.restore(batch, [HAZY], seed=1, strength=0.5, progress=lambda d, t: steps.append((d, t)))
    assert steps == [(1, 2), (2, 2)], "half the schedule runs"
    assert not torch.allclose(partial, half, atol=1e-3) and partial.shape == batch.shape
    assert torch.equal(denoise.restore(batch, [HAZY], seed=1), full), "strength 1 is the full restoration"
    with pytest.raises(BackendError, match="strength"):
        blend.restore(batch, [HAZY], strength=1.5)
    with pytest.raises(BackendError, match="one diagnosis per image"):
        blend.restore(images(2), [HAZY])


def test_large_images_by_tiles_report_every_step(qwen21_dir, fresh_cache):
    tiled = fresh_cache.get(spec(qwen21_dir, large="tiles", tile=32, tile_overlap=8))
    seen = []
    out = tiled.restore(images(1, 40, 70), [HAZY], progress=lambda d, t: seen.append((d, t)))
    assert out.shape == (1, 3, 40, 70)
    assert seen == [(i, 12) for i in range(1, 13)], "2 x 3 tiles of 2 steps"
    resized = fresh_cache.get(spec(qwen21_dir)).restore(images(1, 40, 70), [HAZY])
    assert not torch.allclose(out, resized, atol=1e-3)


def test_large_images_by_resize_and_refine(qwen21_dir, fresh_cache):
    refine = fresh_cache.get(spec(qwen21_dir, steps=4, large="refine", max_megapixels=0.0041, tile=64, tile_overlap=16))
    seen = []
    big = images(1, 96, 96)
    out = refine.restore(big, [HAZY], progress=lambda d, t: seen.append((d, t)))
    assert out.shape == big.shape
    assert seen == [(i, 8) for i in range(1, 9)], "4 steps at 64x64, then 2 x 2 tiles of one img2img step"
    resized = fresh_cache.get(spec(qwen21_dir, steps=4, max_megapixels=0.0041)).restore(big, [HAZY])
    assert not torch.allclose(out, resized, atol=1e-3)
    small = images(1, 40, 60)
    assert torch.equal(refine.restore(small, [HAZY]), fresh_cache.get(spec(qwen21_dir, steps=4,
                       max_megapixels=0.0041)).restore(small, [HAZY])), "images within the budget are not refined"


def test_progress_interrupts_between_steps(qwen21_dir, fresh_cache):
    restorer = fresh_cache.get(spec(qwen21_dir, steps=3))
    seen = []

    def stop(done, total):
        seen.append((done, total))
        if done == 2:
            raise Interrupted("stop")

    with pytest.raises(Interrupted):
        restorer.restore(images(2), [HAZY, HAZY], progress=stop)
    assert seen == [(1, 6), (2, 6)]


def test_text_encoder_shared_with_the_reasoner_is_one_copy(qwen21_dir, qwen3vl_dir, fresh_cache):
    restorer = fresh_cache.get(spec(qwen21_dir))
    reasoner = fresh_cache.get(ModelSpec.make("reasoner", "qwen3vl", str(qwen21_dir / "text_encoder"), "cpu", "fp32",
                                              max_new_tokens=8))
    assert reasoner.model is restorer.pipe.text_encoder and reasoner.processor is restorer.pipe.processor
    def size(module):
        return sum(t.numel() * t.element_size() for t in [*module.parameters(), *module.buffers()])

    others = [c for name, c in restorer.pipe.components.items() if isinstance(c, torch.nn.Module)
              and name != "text_encoder"]
    assert restorer.memory_bytes() == sum(size(c) for c in others)
    assert size(reasoner.model) > restorer.memory_bytes()

    fresh_cache.clear()
    first = fresh_cache.get(ModelSpec.make("reasoner", "qwen3vl", str(qwen3vl_dir), "cpu", "fp32", max_new_tokens=8))
    shared = fresh_cache.get(spec(qwen21_dir, text_encoder=str(qwen3vl_dir)))
    assert shared.pipe.text_encoder is first.model
    entries = [m for m in fresh_cache.stats()["models"] if m["path"] == str(qwen3vl_dir)]
    assert [m["options"] for m in entries] == [{"max_new_tokens": 8}, {}], "two reasoner entries ..."
    plain = fresh_cache.get(ModelSpec.make("reasoner", "qwen3vl", str(qwen3vl_dir), "cpu", "fp32"))
    assert plain.model is first.model, "... holding one model"


def make_lora(qwen21_dir, folder, seed=0):
    """A LoRA for the tiny Qwen-Image 2.1 transformer, saved by diffusers (peft format, safetensors)."""
    from diffusers import QwenImage21Pipeline, QwenImage21Transformer2DModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    transformer = QwenImage21Transformer2DModel.from_pretrained(str(qwen21_dir), subfolder="transformer")
    transformer.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v"],
                                       init_lora_weights=False))
    torch.manual_seed(seed)
    for name, parameter in transformer.named_parameters():
        if "lora_" in name:
            parameter.data.normal_(0.0, 0.5)
    QwenImage21Pipeline.save_lora_weights(str(folder), transformer_lora_layers=get_peft_model_state_dict(transformer),
                                          safe_serialization=True)
    return folder


def test_lora_loads_and_changes_the_restoration(qwen21_dir, tmp_path, fresh_cache):
    lora = make_lora(qwen21_dir, tmp_path / "lora")
    batch = images()
    base = fresh_cache.get(spec(qwen21_dir)).restore(batch, [HAZY])
    with_lora = fresh_cache.get(spec(qwen21_dir, lora=str(lora))).restore(batch, [HAZY])
    assert (with_lora - base).abs().max() > 1e-3
    off = fresh_cache.get(spec(qwen21_dir, lora=str(lora), lora_scale=0.0)).restore(batch, [HAZY])
    assert torch.allclose(off, base, atol=1e-5)
    file = next(lora.glob("*.safetensors"))
    fused = fresh_cache.get(spec(qwen21_dir, lora=str(file), fuse_lora=True)).restore(batch, [HAZY])
    assert torch.allclose(fused, with_lora, atol=1e-4)

    pickled = tmp_path / "lora.ckpt"
    pickled.write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match="safetensors"):
        fresh_cache.get(spec(qwen21_dir, lora=str(pickled)))
    shutil.copy(file, lora / "second.safetensors")
    with pytest.raises(BackendError, match="several"):
        fresh_cache.get(spec(qwen21_dir, lora=str(lora), lora_scale=0.5))


def test_missing_or_wrong_folders_name_what_was_searched(qwen21_dir, comfy_layout, tmp_path, fresh_cache, monkeypatch):
    # .ci/run points RNR_COMFYUI_DIR at a real ComfyUI, whose own tokenizer the loader would then find.
    monkeypatch.delenv("RNR_COMFYUI_DIR", raising=False)
    missing = tmp_path / "nothing"
    with pytest.raises(ModelNotFoundError) as info:
        fresh_cache.get(spec(missing))
    message = str(info.value)
    assert str(missing) in message and "model_index.json" in message and "qwen_image_edit*.safetensors" in message

    broken = tmp_path / "broken"
    shutil.copytree(qwen21_dir, broken)
    for file in (broken / "transformer").glob("*.safetensors"):
        file.unlink()
    with pytest.raises(ModelNotFoundError) as info:
        fresh_cache.get(spec(broken))
    assert str(broken / "transformer") in str(info.value) and "*.safetensors" in str(info.value)

    other = tmp_path / "other"
    other.mkdir()
    (other / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    with pytest.raises(BackendError, match="QwenImageEditPipeline"):
        fresh_cache.get(spec(other))

    comfy = tmp_path / "comfy"
    shutil.copytree(comfy_layout["transformer"].parents[2], comfy, ignore=shutil.ignore_patterns("config"))
    models = comfy / "models"
    (models / "vae" / "qwen_image_vae.safetensors").unlink()
    with pytest.raises(ModelNotFoundError) as info:
        fresh_cache.get(spec(comfy, config=str(comfy_layout["config"])))
    assert str(models / "vae") in str(info.value) and "qwen_image_vae*.safetensors" in str(info.value)
    shutil.copy(comfy_layout["vae"], models / "vae" / "qwen_image_vae.safetensors")
    shutil.copy(comfy_layout["transformer"], models / "diffusion_models" / "qwen_image_edit_2509_tiny.safetensors")
    with pytest.raises(BackendError, match="qwen_image_edit_2509_tiny.safetensors"):
        fresh_cache.get(spec(models, config=str(comfy_layout["config"])))
    with pytest.raises(ModelNotFoundError) as info:
        fresh_cache.get(spec(comfy_layout["transformer"], tokenizer=str(tmp_path)))
    assert str(tmp_path) in str(info.value) and "qwen25_tokenizer" in str(info.value)


def test_bad_options_are_refused(qwen21_dir, fresh_cache):
    with pytest.raises(BackendError, match="offload"):
        fresh_cache.get(spec(qwen21_dir, offload="model"))
    with pytest.raises(BackendError, match="large"):
        fresh_cache.get(spec(qwen21_dir, large="crop"))
    with pytest.raises(BackendError, match="strength_mode"):
        fresh_cache.get(spec(qwen21_dir, strength_mode="mix"))
    with pytest.raises(ModelNotFoundError, match="model path"):
        fresh_cache.get(ModelSpec.make("restorer", "qwen_image_edit", "", "cpu", "fp32"))
