"""Flow-GRPO for the Qwen-Image-Edit restorer: LoRA on the transformer, rewards judged on its samples.

    rnr-train grpo --model models/Qwen-Image-Edit --data-source data/packed/crops_256.safetensors \
        --reward severity:1 structure:0.5 --reward-reasoner lite --steps 200 --out runs/grpo

Reads top to bottom: config; model (the Restore backend's own loader, diffusers folder or ComfyUI files,
then a LoRA on the transformer, :mod:`.lora`); data (degraded crops; the edit instruction is the
ground-truth diagnosis's ``to_prompt()`` or a reasoner's); the loop, per step:

1. for each of ``inputs_per_step`` inputs, sample ``group_size`` edits with the SDE sampler, keeping every
   step's latent and log-probability (:class:`.policy.EditPolicy`);
2. decode them and score them with the rewards (:mod:`.rewards`), normalise the rewards within each
   group (the advantages);
3. for ``inner_epochs`` passes over ``minibatches`` chunks of the samples, re-score every sampled step
   under the current policy and minimise the clipped objective plus ``kl_weight`` times the KL to the
   frozen model (:func:`.sde.grpo_loss`), one AdamW step per chunk.

Every step logs reward (mean, spread, per term), loss, KL, clip fraction and time to ``log.jsonl``;
``eval_every`` scores deterministic samples of fixed held-out inputs. The LoRA in
``OUT/final/qwen_image_edit_rnr_lora.safetensors`` loads in the Restore node (option ``lora``) and in
ComfyUI's ``LoraLoaderModelOnly``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from rnr.registry import ModelSpec

from .. import runloop
from ..config import (
    FINAL_DIR,
    TrainingError,
    option,
    read_log,
    save_config,
    seed_everything,
    step_seed,
)
from ..dataset import DataConfig, Sample, SyntheticDegradations
from . import lora as lora_io
from .policy import EditCondition, EditPolicy, Trajectory, mean_and_spread
from .rewards import CombinedReward, downscale_for_reward, load_reasoner, parse_reward
from .sde import group_advantages, grpo_loss

LORA_FILE = "qwen_image_edit_rnr_lora.safetensors"
RESUMABLE_CHANGES = {"steps", "log_every", "save_every", "eval_every", "max_minutes", "resume", "progress", "device"}


@dataclass
class GRPOConfig:
    """Restorer GRPO settings (every field is a ``--flag`` of ``rnr-train grpo``)."""

    model: str = option("", "Qwen-Image-Edit: a diffusers folder or ComfyUI's qwen_image_edit*.safetensors / models folder")
    model_options: tuple[str, ...] = option((), "extra restorer options as key=value (config=..., tokenizer=..., "
                                            "text_encoder_file=..., vae_file=...)")
    out: str = option("runs/grpo", "run folder: config.json, log.jsonl, checkpoint/, final/")
    data: DataConfig = option(DataConfig(size=256, p_clean=0.0),  # noqa: RUF009 (a default_factory)
                              "training inputs (degraded crops)")
    prompts: str = option("truth", "edit instructions from: truth (the ground-truth diagnosis) or a reasoner backend "
                          "(lite, classic, qwen3vl)")
    prompt_reasoner_path: str = option("", "model folder of the prompt reasoner (qwen3vl)")
    steps: int = option(100, "GRPO steps (one batch of rollouts each)")
    train_examples: int = option(0, "cycle over only the first N inputs (0: new inputs every step); a small N "
                                 "checks that the policy can improve on a fixed set")
    inputs_per_step: int = option(2, "input images per step")
    group_size: int = option(4, "samples per input (the GRPO group)")
    sample_steps: int = option(10, "sampler steps per sample")
    noise_level: float = option(0.7, "SDE noise level a (0: deterministic sampler)")
    shared_start: bool = option(True, "the samples of a group start from the same noise (as DanceGRPO), so reward "
                                "differences within a group come only from the scored steps")
    guidance: float = option(1.0, "true-CFG scale while sampling (>1 doubles the transformer calls)")
    negative_prompt: str = option(" ", "negative prompt when guidance > 1")
    reference_pixels: int = option(1024 * 1024, "area of the reference image (the pipeline uses 1024*1024)")
    reward: tuple[str, ...] = option(("severity:1.0", "structure:0.5"), "rewards NAME[:WEIGHT] or "
                                     "module.path:function[:WEIGHT], summed")
    reward_reasoner: str = option("lite", "reasoner backend that judges severity (lite, classic, qwen3vl)")
    reward_reasoner_path: str = option("", "model folder of the judging reasoner (qwen3vl)")
    reward_max_side: int = option(512, "rewards see the images downscaled to this long side")
    lr: float = option(3e-4, "learning rate (constant after warm-up)")
    warmup_steps: int = option(0, "linear warm-up steps")
    weight_decay: float = option(1e-4, "AdamW weight decay")
    grad_clip: float = option(1.0, "clip the gradient norm to this (0: off)")
    inner_epochs: int = option(1, "passes over each batch of rollouts")
    minibatches: int = option(1, "optimizer steps per pass (the samples split into this many chunks)")
    clip_range: float = option(1e-4, "PPO clip range of the probability ratio")
    adv_clip: float = option(5.0, "clip advantages to +-this")
    kl_weight: float = option(0.04, "weight of the KL to the frozen model")
    lora_rank: int = option(32, "LoRA rank")
    lora_alpha: float = option(64.0, "LoRA alpha (scale = alpha / rank)")
    lora_targets: tuple[str, ...] = option(lora_io.DEFAULT_TARGETS, "transformer layers that get a LoRA")
    device: str = option("auto", "auto, cpu, cuda, cuda:N")
    dtype: str = option("auto", "weights dtype: auto (bf16 on GPU), float32, bfloat16")
    gradient_checkpointing: bool = option(False, "recompute transformer activations in the backward pass")
    offload_text_encoder: bool = option(False, "keep the frozen text encoder on the CPU, on the GPU only while it "
                                        "encodes a step's prompts (frees its memory for training)")
    log_every: int = option(1, "log every N steps")
    save_every: int = option(25, "write the resumable checkpoint every N steps")
    eval_every: int = option(0, "score deterministic samples of held-out inputs every N steps (0: start and end only)")
    eval_inputs: int = option(4, "held-out inputs of the evaluation (0: no evaluation)")
    max_minutes: float = option(0.0, "stop (with a checkpoint) after this many minutes; 0: no limit")
    seed: int = option(0, "seed of data, sampling noise and chunking")
    resume: bool = option(False, "continue from OUT/checkpoint")
    progress: bool = option(True, "show a progress bar")


@dataclass
class GRPOResult:
    out: Path
    lora: Path | None
    """``OUT/final/qwen_image_edit_rnr_lora.safetensors`` once all steps ran, else None (stopped by max_minutes)."""
    step: int
    log: list[dict[str, Any]]


# ---- model ------------------------------------------------------------------------------------------------
def require_model(config: GRPOConfig) -> None:
    if not config.model:
        raise TrainingError("grpo needs --model: a Qwen-Image-Edit diffusers folder or ComfyUI's "
                            "qwen_image_edit*.safetensors (with the text encoder and VAE in the same models folder)")


def restorer_spec(config: GRPOConfig, device: torch.device, dtype: torch.dtype) -> ModelSpec:
    require_model(config)
    options = {}
    for item in config.model_options:
        key, sep, value = item.partition("=")
        if not sep:
            raise TrainingError(f"--model-options takes key=value items, got {item!r}")
        options[key] = value
    return ModelSpec.make("restorer", "qwen_image_edit", config.model, str(device), str(dtype).replace("torch.", ""),
                          **options)


def load_policy(config: GRPOConfig, device: torch.device, dtype: torch.dtype,
                pipeline: Any = None) -> tuple[EditPolicy, list]:
    """The pipeline through the Restore backend's loader (or ``pipeline`` when given, e.g. one built in
    memory), a LoRA on its transformer, the sampler around it."""
    from rnr.restorers.qwen_image_edit_load import load_pipeline

    pipe = pipeline if pipeline is not None else load_pipeline(restorer_spec(config, device, dtype), device, dtype).pipe
    if config.offload_text_encoder:
        pipe.text_encoder.to("cpu")
    for component in ("text_encoder", "vae"):
        getattr(pipe, component).requires_grad_(False).eval()
    params = lora_io.add_lora(pipe.transformer, config.lora_rank, config.lora_alpha, tuple(config.lora_targets))
    if config.gradient_checkpointing:
        pipe.transformer.enable_gradient_checkpointing()
    policy = EditPolicy(pipe, steps=config.sample_steps, noise_level=config.noise_level, guidance=config.guidance,
                        negative_prompt=config.negative_prompt, reference_pixels=config.reference_pixels,
                        offload_text_encoder=config.offload_text_encoder)
    return policy, params


# ---- data and prompts -------------------------------------------------------------------------------------
class Prompter:
    """The edit instruction of an input: its ground-truth diagnosis or a reasoner's, as ``to_prompt()``."""

    def __init__(self, config: GRPOConfig, device: torch.device) -> None:
        self.source = config.prompts
        self.reasoner = None
        if self.source != "truth":
            self.reasoner = load_reasoner(self.source, config.prompt_reasoner_path, str(device))

    def __call__(self, sample: Sample) -> str:
        if self.reasoner is None:
            return sample.diagnosis.to_prompt()
        return self.reasoner.diagnose(sample.degraded[None].float().clamp(0, 1))[0].to_prompt()


def make_reward(config: GRPOConfig, device: torch.device) -> CombinedReward:
    cached: list[Any] = []

    def reasoner() -> Any:
        if not cached:
            cached.append(load_reasoner(config.reward_reasoner, config.reward_reasoner_path, str(device)))
        return cached[0]

    return CombinedReward([parse_reward(spec, reasoner) for spec in config.reward])


def fit(image: torch.Tensor | None, cond: EditCondition, count: int, device: torch.device) -> torch.Tensor | None:
    """An input or reference [3,H,W] at the output size, repeated for the group."""
    if image is None:
        return None
    image = image.float().to(device)
    if tuple(image.shape[-2:]) != (cond.height, cond.width):
        image = F.interpolate(image[None], size=(cond.height, cond.width), mode="bicubic", antialias=True,
                              align_corners=False)[0].clamp(0, 1)
    return image[None].expand(count, -1, -1, -1)


@dataclass
class Rollout:
    cond: EditCondition
    trajectory: Trajectory
    restored: torch.Tensor
    rewards: list[float]


def roll_out(policy: EditPolicy, reward: CombinedReward, samples: list[Sample], prompts: list[str], group_size: int,
             seed: int, max_side: int, noise_level: float | None = None,
             shared_start: bool = False) -> tuple[list[Rollout], dict[str, list[float]]]:
    """Sample a group per input, decode and score it; also returns every reward term's values."""
    device = policy.device
    rollouts, terms = [], {}
    for index, (sample, prompt) in enumerate(zip(samples, prompts)):
        cond = policy.condition(sample.degraded.float().to(device), prompt)
        generator = torch.Generator(device="cpu").manual_seed(step_seed(seed, index, 5))
        trajectory = policy.sample(cond, group_size, generator, noise_level=noise_level, shared_start=shared_start)
        restored = policy.decode(cond, trajectory.latents[-1])
        inputs = fit(sample.degraded, cond, group_size, device)
        references = fit(sample.clean, cond, group_size, device)
        values = reward([prompt] * group_size, downscale_for_reward(inputs, max_side),
                        downscale_for_reward(restored, max_side),
                        None if references is None else downscale_for_reward(references, max_side))
        for name, term in reward.last.items():
            terms.setdefault(name, []).extend(term)
        rollouts.append(Rollout(cond, trajectory, restored, values))
    return rollouts, terms


# ---- the update -------------------------------------------------------------------------------------------
def update(policy: EditPolicy, rollouts: list[Rollout], advantages: torch.Tensor, config: GRPOConfig,
           optimizer: torch.optim.Optimizer, params: list, generator: torch.Generator) -> dict[str, float]:
    """``inner_epochs`` x ``minibatches`` optimizer steps on one batch of rollouts; mean diagnostics."""
    group = config.group_size
    pairs = [(i, g) for i in range(len(rollouts)) for g in range(group)]
    totals = {"loss": 0.0, "policy_loss": 0.0, "kl": 0.0, "clip_fraction": 0.0, "ratio_mean": 0.0, "grad_norm": 0.0}
    updates = 0
    for _ in range(config.inner_epochs):
        order = torch.randperm(len(pairs), generator=generator).tolist()
        chunks = [order[k::config.minibatches] for k in range(config.minibatches)]
        for chunk in chunks:
            if not chunk:
                continue
            by_input: dict[int, list[int]] = {}
            for k in chunk:
                by_input.setdefault(pairs[k][0], []).append(pairs[k][1])
            steps = [j for j in range(len(rollouts[0].cond.sigmas) - 1) if policy.step_has_noise(rollouts[0].cond, j)]
            terms = sum(len(rows) for rows in by_input.values()) * len(steps)
            for input_index, rows in by_input.items():
                rollout = rollouts[input_index]
                row_index = torch.tensor(rows, device=rollout.trajectory.latents.device)
                adv = advantages[[input_index * group + g for g in rows]].to(policy.device)
                for j in steps:
                    log_prob, mean, std = policy.step_log_prob(rollout.cond, rollout.trajectory, j, row_index)
                    kl = None
                    if config.kl_weight > 0:
                        kl = policy.kl_to_reference(rollout.cond, rollout.trajectory, j, row_index, mean, std)
                    parts = grpo_loss(log_prob, rollout.trajectory.log_probs[j, row_index].to(log_prob.device), adv,
                                      clip_range=config.clip_range, adv_clip=config.adv_clip, kl=kl,
                                      kl_weight=config.kl_weight)
                    (parts["loss"] * len(rows) / terms).backward()
                    for key in ("loss", "policy_loss", "kl", "clip_fraction", "ratio_mean"):
                        totals[key] += float(parts[key].detach()) * len(rows) / terms
            norm = torch.nn.utils.clip_grad_norm_(params, config.grad_clip if config.grad_clip > 0 else float("inf"))
            totals["grad_norm"] += float(norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            updates += 1
    return {k: v / max(1, updates) for k, v in totals.items()}


# ---- checkpoints ------------------------------------------------------------------------------------------
def save_checkpoint(out: Path, policy: EditPolicy, optimizer: torch.optim.Optimizer, params: list, step: int) -> None:
    from safetensors.torch import save_file

    def write_lora(folder: Path) -> None:
        save_file(lora_io.raw_state_dict(policy.transformer), str(folder / "lora_raw.safetensors"))

    runloop.save_checkpoint(out, step, optimizer, _names(policy, params), write_lora)


def load_checkpoint(out: Path, policy: EditPolicy, optimizer: torch.optim.Optimizer, params: list) -> int:
    from safetensors.torch import load_file

    def read_lora(folder: Path) -> None:
        lora_io.load_raw_state_dict(policy.transformer, load_file(str(folder / "lora_raw.safetensors")))
        for param in params:
            param.data = param.data.float()

    return runloop.load_checkpoint(out, optimizer, _names(policy, params), read_lora)


def _names(policy: EditPolicy, params: list) -> dict:
    wanted = {id(p) for p in params}
    return {p: name for name, p in policy.transformer.named_parameters() if id(p) in wanted}


def evaluate(policy: EditPolicy, reward: CombinedReward, samples: list[Sample], prompts: list[str], seed: int,
             max_side: int) -> dict[str, float]:
    """Mean reward (and terms) of deterministic samples (noise level 0, fixed noise) of fixed inputs."""
    rollouts, terms = roll_out(policy, reward, samples, prompts, 1, seed, max_side, noise_level=0.0)
    values = [v for r in rollouts for v in r.rewards]
    out = {"eval_reward": mean_and_spread(values)[0]}
    out.update({f"eval_{name}": mean_and_spread(v)[0] for name, v in terms.items()})
    return out


# ---- the run ----------------------------------------------------------------------------------------------
def train(config: GRPOConfig, pipeline: Any = None) -> GRPOResult:
    """Run (or resume) GRPO; ``pipeline`` replaces loading ``config.model`` (a pipeline built in memory)."""
    if config.group_size < 2:
        raise TrainingError(f"group_size must be at least 2 (advantages compare samples of one input), got "
                            f"{config.group_size}")
    if pipeline is None:
        require_model(config)  # before anything is written
    run = runloop.check_run_folder(config, RESUMABLE_CHANGES)
    out, device, dtype = run.out, run.device, run.dtype
    save_config(config, out)
    seed_everything(config.seed)
    policy, params = load_policy(config, device, dtype, pipeline)
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    start = load_checkpoint(out, policy, optimizer, params) if run.resuming else 0
    reward = make_reward(config, device)
    prompter = Prompter(config, device)
    dataset = SyntheticDegradations(config.data, length=config.steps * config.inputs_per_step, targets=False)
    held_out = runloop.held_out_samples(config.data, config.eval_inputs, targets=False)
    held_prompts = [prompter(s) for s in held_out]

    loop = runloop.StepLoop(config, out, start, "grpo",
                            save=lambda step: save_checkpoint(out, policy, optimizer, params, step))
    if held_out and start == 0:
        loop.log.log(0, **evaluate(policy, reward, held_out, held_prompts, config.seed, config.reward_max_side))
    for step in loop.steps():
        t0 = time.monotonic()
        for group in optimizer.param_groups:
            group["lr"] = config.lr * min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else config.lr
        indices = [step * config.inputs_per_step + k for k in range(config.inputs_per_step)]
        samples = dataset.batch([i % config.train_examples if config.train_examples else i for i in indices])
        prompts = [prompter(s) for s in samples]
        policy.transformer.eval()
        rollouts, terms = roll_out(policy, reward, samples, prompts, config.group_size,
                                   step_seed(config.seed, step, 4), config.reward_max_side,
                                   shared_start=config.shared_start)
        rewards = torch.tensor([v for r in rollouts for v in r.rewards])
        advantages = group_advantages(rewards, config.group_size)
        policy.transformer.train()
        stats = update(policy, rollouts, advantages, config, optimizer, params,
                       torch.Generator().manual_seed(step_seed(config.seed, step, 6)))
        mean, spread = mean_and_spread(rewards.tolist())
        entry: dict[str, Any] = {}
        if loop.log_due(step):
            entry = {"reward": mean, "reward_std": spread, **{f"reward_{k}": mean_and_spread(v)[0] for k, v in terms.items()},
                     **stats, "lr": optimizer.param_groups[0]["lr"], "step_s": round(time.monotonic() - t0, 4)}
        if held_out and loop.eval_due(step):
            policy.transformer.eval()
            entry.update(evaluate(policy, reward, held_out, held_prompts, config.seed, config.reward_max_side))
        loop.end_step(step, entry, reward=f"{mean:.4f}", kl=f"{stats['kl']:.2e}")
    step = loop.done
    if loop.stopped_early:
        return GRPOResult(out, None, step, read_log(out))

    save_checkpoint(out, policy, optimizer, params, step)
    policy.transformer.eval()
    if held_out:
        loop.log.log(step, **{f"final_{k}": v for k, v in
                         evaluate(policy, reward, held_out, held_prompts, config.seed, config.reward_max_side).items()})
    lora = lora_io.save_lora(policy.transformer, out / FINAL_DIR / LORA_FILE,
                             {"base": config.model, "steps": step, "rank": config.lora_rank,
                              "targets": list(config.lora_targets), "rewards": list(config.reward)})
    (out / FINAL_DIR / "README.txt").write_text(
        f"LoRA for Qwen-Image-Edit trained by rnr-train grpo ({step} steps).\n"
        f"ComfyUI: copy {LORA_FILE} to models/loras and load it with LoraLoaderModelOnly on the Qwen-Image-Edit model.\n"
        f"ComfyUI-RnR: restorer qwen_image_edit with the option lora={LORA_FILE}.\n", encoding="utf-8")
    return GRPOResult(out, lora, step, read_log(out))


__all__ = ["LORA_FILE", "GRPOConfig", "GRPOResult", "train"]
