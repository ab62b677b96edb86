"""Reasoner SFT on the tiny real Qwen3-VL: exact loss masking, a falling loss, an adapter the Reason backend
loads, evaluation scores from parsed answers, exact resume."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from rnr import cache
from rnr.diagnosis import Diagnosis
from rnr.reasoners import qwen3vl_prompt as prompt
from rnr.registry import ModelSpec
from training.cli import build_parser
from training.config import TrainingError, from_arguments, read_log
from training.dataset import DataConfig, SyntheticDegradations
from training.sft import SFTConfig, score_answers, train
from training.sft.data import IGNORE_INDEX, collate, encode_example

pytestmark = [pytest.mark.usefixtures("one_thread")]
SYSTEM = "Diagnose the photo."
TARGETS = ("q_proj", "v_proj", "o_proj", "up_proj", "down_proj", "lm_head")


def _config(qwen3vl_dir, photos_dir, out, **changes) -> SFTConfig:
    settings = {"model": str(qwen3vl_dir), "out": str(out),
                    "data": DataConfig(source=str(photos_dir), split="all", size=32, zoom=(4.0, 8.0)),
                    "train_examples": 2, "eval_samples": 0, "steps": 20, "batch_size": 1, "lr": 1e-2, "warmup_steps": 2,
                    "lora_rank": 8, "lora_alpha": 16.0, "lora_dropout": 0.0, "lora_targets": TARGETS, "system_prompt": SYSTEM,
                    "device": "cpu", "dtype": "float32", "max_new_tokens": 8, "save_every": 0, "progress": False}
    settings.update(changes)
    return SFTConfig(**settings)


@pytest.fixture(scope="module")
def processor(qwen3vl_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(str(qwen3vl_dir), local_files_only=True)


@pytest.fixture(scope="module")
def examples(photos_dir):
    dataset = SyntheticDegradations(DataConfig(source=str(photos_dir), split="all", size=32, zoom=(4.0, 8.0)), length=2)
    return [dataset[0], dataset[1]]


def test_loss_is_on_the_answer_only_and_the_prompt_is_the_reasoners(processor, examples):
    from rnr.reasoners.qwen3vl import Qwen3VLReasoner

    reasoner = Qwen3VLReasoner(None, processor, system=SYSTEM)
    image = reasoner._pil(examples[0].degraded)
    encoded = encode_example(processor, image, examples[0].target, SYSTEM)
    # The prompt part is exactly what the reasoner feeds the model at inference.
    chat_text = processor.apply_chat_template(prompt.messages(system=SYSTEM), tokenize=False, add_generation_prompt=True)
    reference = processor(text=[chat_text], images=[image], return_tensors="pt")
    prompt_length = reference["input_ids"].shape[1]
    assert torch.equal(encoded["input_ids"][:prompt_length], reference["input_ids"][0])
    assert torch.equal(encoded["pixel_values"], reference["pixel_values"])
    assert (encoded["labels"][:prompt_length] == IGNORE_INDEX).all()
    answer = encoded["labels"][prompt_length:]
    assert (answer != IGNORE_INDEX).all()
    assert int(answer[-1]) == processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert processor.tokenizer.decode(answer[:-1]) == examples[0].target
    assert torch.equal(encoded["labels"][prompt_length:], encoded["input_ids"][prompt_length:])

    other = encode_example(processor, reasoner._pil(examples[1].degraded), examples[1].target, SYSTEM)
    batch = collate([encoded, other], pad_id=processor.tokenizer.pad_token_id)
    lengths = [len(encoded["input_ids"]), len(other["input_ids"])]
    assert batch["input_ids"].shape == (2, max(lengths))
    assert batch["attention_mask"].sum(1).tolist() == lengths
    short = lengths.index(min(lengths))
    assert (batch["labels"][short, min(lengths):] == IGNORE_INDEX).all()
    assert (batch["input_ids"][short, min(lengths):] == processor.tokenizer.pad_token_id).all()
    assert batch["pixel_values"].shape[0] == encoded["pixel_values"].shape[0] + other["pixel_values"].shape[0]
    if "mm_token_type_ids" in encoded:
        assert batch["mm_token_type_ids"].sum() == encoded["mm_token_type_ids"].sum() + other["mm_token_type_ids"].sum()


def _answer_loss(model, processor, sample) -> float:
    from rnr.reasoners.qwen3vl import Qwen3VLReasoner

    image = Qwen3VLReasoner(None, processor)._pil(sample.degraded)
    batch = collate([encode_example(processor, image, sample.target, SYSTEM)], processor.tokenizer.pad_token_id)
    with torch.no_grad():
        return float(model(**batch).loss)


def test_sft_loss_falls_and_the_adapter_loads_in_the_reason_backend(qwen3vl_dir, photos_dir, processor, examples,
                                                                    tmp_path):
    config = _config(qwen3vl_dir, photos_dir, tmp_path / "run", eval_samples=1)
    result = train(config)
    losses = [entry["loss"] for entry in result.log if "loss" in entry]
    assert len(losses) == 20
    first, last = sum(losses[:2]) / 2, sum(losses[-4:]) / 4
    assert last < 0.8 * first, losses
    assert all(entry["answer_tokens"] > 300 for entry in result.log if "loss" in entry)
    assert sorted(p.name for p in result.adapter.iterdir()) == ["README.md", "adapter_config.json",
                                                                 "adapter_model.safetensors"] or \
        {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in result.adapter.iterdir()}
    assert not list(result.adapter.glob("*.bin"))
    evaluation = json.loads((tmp_path / "run" / "final" / "eval.json").read_text())
    assert evaluation["scores"]["count"] == 1 and len(evaluation["answers"]) == 1
    assert read_log(tmp_path / "run")[-1]["final_parse_failure_rate"] == 1.0  # 8 new tokens hold no JSON

    cache.clear()
    try:
        base = cache.get(ModelSpec.make("reasoner", "qwen3vl", str(qwen3vl_dir), "cpu", "float32"))
        tuned = cache.get(ModelSpec.make("reasoner", "qwen3vl", str(qwen3vl_dir), "cpu", "float32",
                                         adapter=str(result.adapter)))
        assert tuned is not base
        base_loss = _answer_loss(base.model, processor, examples[0])
        tuned_loss = _answer_loss(tuned.model, processor, examples[0])
        # The adapter carries what was learnt: the loaded reasoner fits the training answer as the run ended.
        assert base_loss == pytest.approx(first, rel=0.05)
        assert tuned_loss < 0.85 * base_loss
        assert tuned_loss == pytest.approx(sum(losses[-2:]) / 2, rel=0.15)
    finally:
        cache.clear()


def test_scores_come_from_parsed_answers(examples):
    truths = [s.diagnosis for s in examples]
    perfect = score_answers([s.target for s in examples], truths)
    assert perfect["parse_failure_rate"] == 0.0
    for name in examples[0].diagnosis.present:
        assert perfect[name]["f1"] == 1.0 and perfect[name]["severity_mae"] == 0.0
    wrong = Diagnosis.from_json(json.dumps({**json.loads(examples[0].diagnosis.to_json()), "reasoning": ""}))
    missed = prompt.format_answer(Diagnosis(), {"Observation": "nothing to see"})
    scores = score_answers([missed, "no json at all", examples[1].target], [wrong, truths[1], truths[1]])
    assert scores["parse_failure_rate"] == pytest.approx(1 / 3)
    for name in wrong.present:
        assert scores[name]["recall"] < 1.0


def test_resume_repeats_the_uninterrupted_run(qwen3vl_dir, photos_dir, tmp_path):
    quick = {"steps": 3, "max_length": 160, "eval_samples": 0}
    straight = train(_config(qwen3vl_dir, photos_dir, tmp_path / "straight", **quick))
    first_half = train(_config(qwen3vl_dir, photos_dir, tmp_path / "halves", **{**quick, "steps": 2}))
    assert first_half.step == 2
    with pytest.raises(TrainingError, match="already holds a run"):
        train(_config(qwen3vl_dir, photos_dir, tmp_path / "halves", **quick))
    with pytest.raises(TrainingError, match="lr"):
        train(_config(qwen3vl_dir, photos_dir, tmp_path / "halves", **quick, resume=True, lr=1e-3))
    resumed = train(_config(qwen3vl_dir, photos_dir, tmp_path / "halves", **quick, resume=True))
    assert resumed.step == 3
    assert [e["step"] for e in read_log(tmp_path / "halves")] == [1, 2, 3]
    a = load_file(str(straight.adapter / "adapter_model.safetensors"))
    b = load_file(str(resumed.adapter / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6)
    assert read_log(tmp_path / "halves")[-1]["loss"] == pytest.approx(read_log(tmp_path / "straight")[-1]["loss"],
                                                                      rel=1e-4)


def test_command_line_builds_the_config(tmp_path):
    args = build_parser().parse_args(["sft", "--model", "m", "--data-size", "64", "--data-zoom", "1", "2",
                                      "--lora-targets", "q_proj", "v_proj", "--no-progress", "--steps", "7"])
    config = from_arguments(SFTConfig, args)
    assert config.model == "m" and config.steps == 7 and config.progress is False
    assert config.data.size == 64 and config.data.zoom == (1.0, 2.0)
    assert config.lora_targets == ("q_proj", "v_proj")
    with pytest.raises(TrainingError, match="needs --model"):
        train(SFTConfig(model="", out=str(tmp_path / "refused"), device="cpu"))
    assert not (tmp_path / "refused").exists(), "a refused run must not write its folder"
