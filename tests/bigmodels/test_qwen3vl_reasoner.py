"""The qwen3vl reasoner on a tiny real Qwen3-VL: loading, generation, re-ask, adapters, errors."""

from __future__ import annotations

import shutil

import pytest
import torch

from rnr.diagnosis import Diagnosis, Haze
from rnr.errors import BackendError, Interrupted, ModelNotFoundError
from rnr.reasoners import qwen3vl_prompt as prompt
from rnr.reasoners.qwen3vl import Qwen3VLReasoner
from rnr.reasoners.qwen3vl_parse import AnswerParseError
from rnr.registry import ModelSpec

from .conftest import ADAPTER_ANSWER, ADAPTER_SYSTEM_PROMPT, training_images

EXPECTED = Diagnosis(haze=Haze(present=True, severity=40, transmission=0.64), scene="A street")


def spec(path, **options) -> ModelSpec:
    return ModelSpec.make("reasoner", "qwen3vl", str(path), "cpu", "fp32", **options)


def spy_generate(reasoner: Qwen3VLReasoner) -> list[list]:
    """Record the chats of every real generate call."""
    calls: list[list] = []
    real = reasoner.generate

    def recording(images, chats, *args, **kwargs):
        calls.append(chats)
        return real(images, chats, *args, **kwargs)

    reasoner.generate = recording  # type: ignore[method-assign]
    return calls


def test_random_model_answers_are_reasked_once_then_fail_with_the_raw_text(qwen3vl_dir, fresh_cache):
    reasoner = fresh_cache.get(spec(qwen3vl_dir, max_new_tokens=12))
    assert isinstance(reasoner, Qwen3VLReasoner) and fresh_cache.get(spec(qwen3vl_dir, max_new_tokens=12)) is reasoner
    calls = spy_generate(reasoner)
    with pytest.raises(AnswerParseError) as info:
        reasoner.diagnose(training_images(2))
    assert len(calls) == 2, "one generation, then one re-ask of the failed answers"
    first_answer = calls[1][0][2]["content"][0]["text"]
    assert calls[1][0][:2] == prompt.messages()
    assert "could not be read as the Diagnosis JSON" in calls[1][0][3]["content"][0]["text"]
    assert first_answer.strip() == first_answer and calls[1][0][2]["role"] == "assistant"
    assert info.value.raw == reasoner.last_answers[0]
    assert "Raw answer:" in str(info.value) and info.value.raw[:20] in str(info.value)
    assert "the first answer failed too" in str(info.value)


def test_left_padded_batches_answer_like_single_prompts(qwen3vl_dir):
    from transformers import AutoProcessor, Qwen3VLForConditionalGeneration

    model = Qwen3VLForConditionalGeneration.from_pretrained(str(qwen3vl_dir)).eval()
    processor = AutoProcessor.from_pretrained(str(qwen3vl_dir))
    reasoner = Qwen3VLReasoner(model, processor, max_new_tokens=10)
    images = [reasoner._pil(image) for image in training_images(2)]
    chats = [prompt.messages(system="Short."), prompt.messages(system="A much longer system prompt than the other.")]
    batched = reasoner.generate(images, chats)
    single = [reasoner.generate([image], [chat])[0] for image, chat in zip(images, chats)]
    assert batched == single
    assert all(answer for answer in batched)


def test_adapter_makes_the_reasoner_write_its_diagnosis(qwen3vl_dir, adapter_dir, fresh_cache):
    for merge in (True, False):
        reasoner = fresh_cache.get(spec(qwen3vl_dir, adapter=str(adapter_dir), merge_adapter=merge,
                                        system_prompt=ADAPTER_SYSTEM_PROMPT, max_new_tokens=96, batch_size=2))
        calls = spy_generate(reasoner)
        done = []
        diagnoses = reasoner.diagnose(training_images(3), progress=lambda d, t: done.append((d, t)))
        assert len(calls) == 2, "two batches, no re-ask"
        assert reasoner.last_answers == [ADAPTER_ANSWER] * 3
        for diagnosis in diagnoses:
            assert diagnosis.haze == EXPECTED.haze and diagnosis.rain == EXPECTED.rain
            assert diagnosis.scene == "A street" and diagnosis.source == "qwen3vl"
            assert diagnosis.reasoning == "Observation: a street."
        assert done[-1] == (3, 3) and (2, 3) in done
    without = fresh_cache.get(spec(qwen3vl_dir, system_prompt=ADAPTER_SYSTEM_PROMPT, max_new_tokens=24, reask=False))
    with pytest.raises(AnswerParseError):
        without.diagnose(training_images(1))


def test_progress_can_interrupt_a_long_generation(qwen3vl_dir, fresh_cache):
    reasoner = fresh_cache.get(spec(qwen3vl_dir, max_new_tokens=40, reask=False))
    seen = []

    def stop(done, total):
        seen.append((done, total))
        raise Interrupted("stop")

    with pytest.raises(Interrupted):
        reasoner.diagnose(training_images(1), progress=stop)
    assert seen == [(0, 1)]


def test_missing_or_wrong_folders_name_the_folder_and_the_expected_files(qwen3vl_dir, edit_dir, tmp_path, fresh_cache):
    missing = tmp_path / "nowhere"
    with pytest.raises(ModelNotFoundError) as info:
        fresh_cache.get(spec(missing))
    assert str(missing) in str(info.value) and "config.json" in str(info.value) and "*.safetensors" in str(info.value)
    assert "does not exist" in str(info.value)

    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    for name in ("config.json", "tokenizer.json", "processor_config.json"):
        shutil.copy(qwen3vl_dir / name, no_weights / name)
    with pytest.raises(ModelNotFoundError) as info:
        fresh_cache.get(spec(no_weights))
    assert str(no_weights) in str(info.value) and "*.safetensors" in str(info.value)

    pickled = tmp_path / "pickled"
    shutil.copytree(no_weights, pickled)
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ModelNotFoundError, match="pickle"):
        fresh_cache.get(spec(pickled))

    no_tokenizer = tmp_path / "no_tokenizer"
    no_tokenizer.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(qwen3vl_dir / name, no_tokenizer / name)
    with pytest.raises(ModelNotFoundError) as info:
        fresh_cache.get(spec(no_tokenizer))
    assert "tokenizer.json" in str(info.value) and str(no_tokenizer) in str(info.value)

    with pytest.raises(BackendError, match="qwen3_vl"):
        fresh_cache.get(spec(edit_dir / "text_encoder"))
    with pytest.raises(ModelNotFoundError, match="model folder"):
        fresh_cache.get(ModelSpec.make("reasoner", "qwen3vl", "", "cpu", "fp32"))


def test_adapter_folders_are_checked(qwen3vl_dir, tmp_path, fresh_cache):
    with pytest.raises(ModelNotFoundError) as info:
        fresh_cache.get(spec(qwen3vl_dir, adapter=str(tmp_path / "no_adapter")))
    assert "adapter_config.json" in str(info.value) and "adapter_model.safetensors" in str(info.value)
    pickled = tmp_path / "pickled_adapter"
    pickled.mkdir()
    (pickled / "adapter_config.json").write_text('{"peft_type": "LORA"}')
    (pickled / "adapter_model.bin").write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match="pickle"):
        fresh_cache.get(spec(qwen3vl_dir, adapter=str(pickled)))


def test_reasoner_moves_between_devices_for_the_cache(qwen3vl_dir, fresh_cache):
    reasoner = fresh_cache.get(spec(qwen3vl_dir))
    assert reasoner.to("cpu") is reasoner and reasoner.device == torch.device("cpu")
    assert next(reasoner.model.parameters()).dtype == torch.float32
    with pytest.raises(BackendError, match="attn_implementation"):
        fresh_cache.get(spec(qwen3vl_dir, attn_implementation="magic"))


def test_the_image_the_model_sees_is_the_rounded_tensor():
    """The tensor -> PIL conversion (quantised on the image's device, planes merged by PIL) keeps every
    pixel: round half to even of clamp(x, 0, 1) * 255 in float32, the channels in RGB order, exactly
    the HWC conversion it replaced; larger images are scaled down to ``max_pixels``, aspect kept."""
    import numpy as np

    reasoner = Qwen3VLReasoner(None, None, max_pixels=64 * 64)
    image = torch.rand(3, 40, 56, generator=torch.Generator().manual_seed(3))
    image[:, 0, :4] = torch.tensor([0.5, 2.5, 127.5, 254.5]) / 255.0  # (near) halves
    image[0, 1, 0], image[1, 1, 0], image[2, 1, 0] = 1.0004, -0.0003, 1.0  # just outside 0..1 is clamped
    picture = reasoner._pil(image)
    assert picture.mode == "RGB" and picture.size == (56, 40)
    hwc = image.clamp(0, 1).mul(255.0).round_().to(torch.uint8).permute(1, 2, 0).numpy()  # the old way
    assert np.array_equal(np.asarray(picture), hwc)
    pixels = np.round(np.clip(image.permute(1, 2, 0).numpy(), 0, 1) * np.float32(255.0)).astype(np.uint8)
    assert np.array_equal(np.asarray(picture), pixels)
    assert tuple(np.asarray(picture)[1, 0]) == (255, 0, 255)
    large = reasoner._pil(torch.rand(3, 128, 96, generator=torch.Generator().manual_seed(4)))
    assert large.size == (55, 73)  # 96x128 scaled by sqrt(4096 / 12288), aspect kept
