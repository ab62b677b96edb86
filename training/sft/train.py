"""LoRA fine-tuning of the Qwen3-VL reasoner on degraded images and their chain-of-thought targets.

    rnr-train sft --model models/Qwen3-VL-2B-Instruct --data-source data/packed/crops_256.safetensors \
        --steps 500 --out runs/sft

Reads top to bottom: config, model (the reasoner backend's own loader, plus a peft LoRA on the language
model's projections), data (:class:`training.dataset.SyntheticDegradations`: example ``i`` is fixed by the
seed, so a resumed run sees exactly the examples it would have seen), the loop (cross-entropy on the
answer tokens only, AdamW, warm-up then cosine learning rate, gradient clipping), evaluation through the
reasoner's own generation and parser (:mod:`training.sft.evaluate`), and saving. The adapter in
``OUT/final/adapter`` (``adapter_config.json`` + ``adapter_model.safetensors``) is what the Reason node
loads: ``ModelSpec.make("reasoner", "qwen3vl", MODEL, adapter="OUT/final/adapter")``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rnr.reasoners import qwen3vl
from rnr.reasoners import qwen3vl_prompt as prompt

from .. import runloop
from ..config import (
    FINAL_DIR,
    TrainingError,
    option,
    read_log,
    save_config,
    seed_everything,
)
from ..dataset import DataConfig, LabelledSet, Sample, SyntheticDegradations
from .data import answer_token_count, collate, encode_example
from .evaluate import evaluate, flat_scores, format_scores

ADAPTER_DIR = "adapter"
# Settings a resumed run may change; any other change means a different run.
RESUMABLE_CHANGES = {"steps", "log_every", "eval_every", "save_every", "eval_samples", "max_minutes", "resume",
                     "progress", "workers", "max_new_tokens", "device"}


@dataclass
class SFTConfig:
    """Reasoner SFT settings (every field is a ``--flag`` of ``rnr-train sft``)."""

    model: str = option("", "Qwen3-VL checkpoint folder (Hugging Face layout)")
    processor: str = option("", "folder of the processor/tokenizer files when they are not beside the weights")
    out: str = option("runs/sft", "run folder: config.json, log.jsonl, checkpoint/, final/adapter")
    data: DataConfig = option(DataConfig(), "training examples")  # noqa: RUF009 (a default_factory)
    eval_data: str = option("", "labelled set folder (rnr-train data) to evaluate on; default: examples of the "
                            "held-out split of the training source")
    eval_samples: int = option(32, "examples evaluated (0: no evaluation)")
    train_examples: int = option(0, "cycle over only the first N training examples (0: a new example every time); "
                                 "a small N checks that the model can fit a fixed set")
    steps: int = option(500, "optimizer steps")
    batch_size: int = option(4, "examples per micro-batch")
    grad_accum: int = option(1, "micro-batches per optimizer step")
    lr: float = option(2e-4, "peak learning rate")
    min_lr_ratio: float = option(0.1, "final learning rate as a share of the peak (cosine decay)")
    warmup_steps: int = option(10, "linear warm-up steps")
    weight_decay: float = option(0.0, "AdamW weight decay")
    grad_clip: float = option(1.0, "clip the gradient norm to this (0: off)")
    lora_rank: int = option(16, "LoRA rank")
    lora_alpha: float = option(32.0, "LoRA alpha (scale = alpha / rank)")
    lora_dropout: float = option(0.05, "dropout on the LoRA input")
    lora_targets: tuple[str, ...] = option(("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                            "down_proj"), "language-model projections that get a LoRA (add lm_head "
                                           "to adapt the output layer too)")
    max_pixels: int = option(1024 * 1024, "largest image area the model sees (the reasoner's max_pixels)")
    max_length: int = option(0, "truncate examples to this many tokens (0: keep all)")
    system_prompt: str = option("", "system prompt (empty: the reasoner's own, which inference uses)")
    device: str = option("auto", "auto, cpu, cuda, cuda:N")
    dtype: str = option("auto", "weights dtype: auto (bf16 on GPU), float32, bfloat16, float16")
    attn_implementation: str = option("sdpa", "sdpa, eager, flash_attention_2")
    gradient_checkpointing: bool = option(False, "recompute activations in the backward pass (less memory)")
    workers: int = option(0, "data-loader processes (degradation on the CPU in parallel)")
    log_every: int = option(1, "log every N steps")
    eval_every: int = option(0, "evaluate every N steps (0: only at the end)")
    save_every: int = option(100, "write the resumable checkpoint every N steps")
    max_new_tokens: int = option(1024, "answer length bound during evaluation")
    max_minutes: float = option(0.0, "stop (with a checkpoint) after this many minutes; 0: no limit")
    seed: int = option(0, "seed of the LoRA initialisation, dropout and data order")
    resume: bool = option(False, "continue from OUT/checkpoint")
    progress: bool = option(True, "show a progress bar")


@dataclass
class SFTResult:
    out: Path
    adapter: Path | None
    """``OUT/final/adapter`` once the run has finished all its steps, else None (stopped by max_minutes)."""
    step: int
    log: list[dict[str, Any]]
    scores: dict[str, Any] | None


def learning_rate(config: SFTConfig, step: int) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``lr * min_lr_ratio`` at the last step."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps)
    progress_ = min(1.0, (step - config.warmup_steps) / span)
    floor = config.lr * config.min_lr_ratio
    return floor + (config.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress_))


# ---- model ------------------------------------------------------------------------------------------------
def require_model(config: SFTConfig) -> None:
    if not config.model:
        raise TrainingError("sft needs --model: a Qwen3-VL checkpoint folder (config.json, *.safetensors, tokenizer "
                            "and processor files)")


def load_base(config: SFTConfig, device: torch.device, dtype: torch.dtype):
    """(model, processor) through the reasoner backend's loader."""
    require_model(config)
    return qwen3vl.load_model(config.model, device, dtype, attn_implementation=config.attn_implementation,
                              processor_path=config.processor or None)


def add_lora(model: Any, config: SFTConfig) -> Any:
    from peft import LoraConfig, get_peft_model

    inner = "|".join(t for t in config.lora_targets if t != "lm_head")
    pattern = rf".*language_model.*\.({inner})"
    if "lm_head" in config.lora_targets:
        pattern = rf"({pattern}|lm_head)"
    lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=pattern, task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    return model


def trainable_names(model: Any) -> dict[torch.nn.Parameter, str]:
    return {param: name for name, param in model.named_parameters() if param.requires_grad}


def reasoner_for(model: Any, processor: Any, config: SFTConfig, device: torch.device) -> qwen3vl.Qwen3VLReasoner:
    """The inference wrapper around the model being trained (same prompt, image sizing, decoding, parser)."""
    return qwen3vl.Qwen3VLReasoner(model, processor, device=device, max_new_tokens=config.max_new_tokens,
                                   batch_size=config.batch_size, max_pixels=config.max_pixels, reask=False,
                                   system=config.system_prompt or None)


# ---- data -------------------------------------------------------------------------------------------------
def eval_samples(config: SFTConfig) -> list[Sample]:
    if config.eval_samples <= 0:
        return []
    if config.eval_data:
        return LabelledSet.read(config.eval_data).samples[:config.eval_samples]
    return runloop.held_out_samples(config.data, config.eval_samples)


def batches(dataset: SyntheticDegradations, config: SFTConfig, start_step: int):
    """Micro-batches of samples for steps ``start_step ..``: example indices follow from the step alone."""
    per_step = config.batch_size * config.grad_accum
    cycle = config.train_examples or None
    indices = [[(step * per_step + micro * config.batch_size + j) % (cycle or 2**62) for j in range(config.batch_size)]
               for step in range(start_step, config.steps) for micro in range(config.grad_accum)]
    if cycle:
        fixed = dataset.batch(list(range(cycle)))
        for chunk in indices:
            yield [fixed[i] for i in chunk]
    elif config.workers > 0:
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=indices, collate_fn=list,
                                             num_workers=config.workers)
        yield from loader
    else:
        for chunk in indices:
            yield dataset.batch(chunk)


# ---- checkpoints ------------------------------------------------------------------------------------------
def save_checkpoint(out: Path, model: Any, optimizer: torch.optim.Optimizer, step: int) -> None:
    def write_adapter(folder: Path) -> None:
        model.save_pretrained(str(folder / ADAPTER_DIR), save_embedding_layers=False)

    runloop.save_checkpoint(out, step, optimizer, trainable_names(model), write_adapter)


def load_checkpoint(out: Path, model: Any, optimizer: torch.optim.Optimizer) -> int:
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    def read_adapter(folder: Path) -> None:
        weights = load_file(str(folder / ADAPTER_DIR / "adapter_model.safetensors"))
        result = set_peft_model_state_dict(model, weights)
        if getattr(result, "unexpected_keys", None):
            raise TrainingError(f"the checkpoint in {folder} does not fit this model (unexpected keys such as "
                                f"{result.unexpected_keys[0]}); start a new run with another --out")

    return runloop.load_checkpoint(out, optimizer, trainable_names(model), read_adapter)


# ---- the run ----------------------------------------------------------------------------------------------
def train(config: SFTConfig, model: Any = None, processor: Any = None) -> SFTResult:
    """Run (or resume) SFT; ``model`` and ``processor`` replace loading ``config.model`` (e.g. built in memory)."""
    if model is None:
        require_model(config)  # before anything is written
    run = runloop.check_run_folder(config, RESUMABLE_CHANGES)
    out, device, dtype = run.out, run.device, run.dtype
    save_config(config, out)
    seed_everything(config.seed)

    if model is None:
        model, processor = load_base(config, device, dtype)
    model = add_lora(model, config)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    start = load_checkpoint(out, model, optimizer) if run.resuming else 0
    system = config.system_prompt or prompt.system_prompt()
    pad_id = processor.tokenizer.pad_token_id
    if pad_id is None:
        pad_id = processor.tokenizer.eos_token_id
    reasoner = reasoner_for(model, processor, config, device)

    dataset = SyntheticDegradations(config.data, length=config.steps * config.batch_size * config.grad_accum)
    held_out = eval_samples(config)
    loop = runloop.StepLoop(config, out, start, "sft", save=lambda step: save_checkpoint(out, model, optimizer, step))
    micro_batches = batches(dataset, config, start)
    model.train()
    for step in loop.steps():
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        loss_sum, correct, tokens, t0 = 0.0, 0, 0, time.monotonic()
        for _ in range(config.grad_accum):
            samples = next(micro_batches)
            encoded = [encode_example(processor, reasoner._pil(s.degraded.float().cpu()), s.target, system)
                       for s in samples]
            batch = collate(encoded, pad_id, config.max_length or None)
            batch = {k: v.to(device) for k, v in batch.items()}
            batch["pixel_values"] = batch["pixel_values"].to(dtype)
            output = model(**batch)
            (output.loss / config.grad_accum).backward()
            loss_sum += float(output.loss.detach()) / config.grad_accum
            with torch.no_grad():
                predicted = output.logits[:, :-1].argmax(-1)
                target = batch["labels"][:, 1:]
                mask = target != -100
                correct += int((predicted[mask] == target[mask]).sum())
                tokens += answer_token_count(batch)
        grad_norm = torch.nn.utils.clip_grad_norm_(params, config.grad_clip if config.grad_clip > 0 else float("inf"))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        entry: dict[str, Any] = {}
        if loop.log_due(step):
            entry = {"loss": loss_sum, "token_accuracy": correct / max(1, tokens), "answer_tokens": tokens,
                     "grad_norm": float(grad_norm), "lr": optimizer.param_groups[0]["lr"],
                     "step_s": round(time.monotonic() - t0, 4)}
        if held_out and loop.eval_due(step):
            model.eval()
            scores, _ = evaluate(reasoner, held_out, config.batch_size)
            model.train()
            entry.update(flat_scores(scores))
        loop.end_step(step, entry, loss=f"{loss_sum:.3f}")
    step = loop.done

    if loop.stopped_early:
        return SFTResult(out, None, step, read_log(out), None)
    save_checkpoint(out, model, optimizer, step)
    adapter = out / FINAL_DIR / ADAPTER_DIR
    model.save_pretrained(str(adapter), save_embedding_layers=False)
    scores = None
    if held_out:
        model.eval()
        scores, answers = evaluate(reasoner, held_out, config.batch_size)
        (out / FINAL_DIR / "eval.json").write_text(json.dumps({"scores": scores, "answers": answers}, indent=1,
                                                              default=str) + "\n", encoding="utf-8")
        loop.log.log(step, **flat_scores(scores, prefix="final_"))
        if config.progress:
            print(format_scores(scores))
    return SFTResult(out, adapter, step, read_log(out), scores)


__all__ = ["SFTConfig", "SFTResult", "add_lora", "learning_rate", "train"]
