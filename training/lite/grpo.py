"""IRPO-style GRPO fine-tune of the lite restorer, with the lite reasoner as the judge.

The restorer is deterministic, so the policy is a gaussian around its output: for each image, G
samples ``y = restore(x) + eps`` with smooth random perturbations ``eps`` (IRPO, arXiv 2512.00814,
samples around a deterministic restorer's output). Each sample gets a reward: how much the judge's
severity drops from the degraded input plus a fidelity term to the clean image. Advantages are
normalised within each image's group (GRPO), and the policy-gradient loss ``A * |y - mu|^2 / 2 sigma``
pulls the output towards the better samples. As in IRPO, only the hardest images of each batch are
post-trained on, and a supervised term plus a penalty for drifting from the starting model keep it
anchored. Rewards are plain functions.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from rnr.lite.condition import O_PRESENT, O_SEVERITY
from rnr.lite.nets import reasoner_views
from rnr.lite.weights import FILE_NAMES, save_network

from .checkpoint import EMA, load_checkpoint, save_checkpoint
from .data import SynthConfig, load_crops, loader, synthesize


# ---- rewards (plain functions of images) ---------------------------------------------------------
@torch.no_grad()
def judged_severity(judge: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The judge's expected total severity per image (sum over types of p_present * fraction), [N]."""
    global_view, crops = reasoner_views(images.float().clamp(0, 1), judge.config, crops=4)
    outputs = judge(global_view, crops).float()
    return (torch.sigmoid(outputs[:, O_PRESENT]) * outputs[:, O_SEVERITY].clamp(0, 1)).sum(dim=1)


def severity_drop_reward(judge: torch.nn.Module, degraded: torch.Tensor, restored: torch.Tensor) -> torch.Tensor:
    """Judge severity of the input minus that of the restoration (1.0 = one full severity scale)."""
    return judged_severity(judge, degraded) - judged_severity(judge, restored)


def fidelity_reward(restored: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """PSNR to the clean image in units of 10 dB."""
    mse = ((restored.float() - clean.float()) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    return -torch.log10(mse)


def perturbations(shape: tuple[int, ...], sigma: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Smooth random output perturbations [G,N,3,H,W]: a coarse field, a mid-frequency field and a
    per-channel offset (colour and contrast are what the judge's haze severity reacts to)."""
    g, n, c, h, w = shape
    out = torch.zeros(shape, device=device)
    for cells, weight in ((4, 0.5), (16, 0.5)):
        field = torch.randn(g * n, c, cells, cells, generator=generator).to(device)
        out += weight * F.interpolate(field, size=(h, w), mode="bicubic", align_corners=False).view(shape)
    out += 0.5 * torch.randn(g, n, c, 1, 1, generator=generator).to(device)
    return sigma * out


def group_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """GRPO advantages: rewards [G,N] normalised within each image's group of G samples."""
    return (rewards - rewards.mean(dim=0, keepdim=True)) / (rewards.std(dim=0, keepdim=True) + 1e-6)


# ---- the loop -----------------------------------------------------------------------------------
def run_grpo(cfg, device: torch.device, log, out: Path, command: str, start: float) -> int:
    if not cfg.resume:
        raise SystemExit("--stage grpo needs --resume DIR holding the supervised restorer and reasoner")
    _, policy, step0 = load_checkpoint(cfg.resume, "restorer", device)
    _, judge, _ = load_checkpoint(cfg.resume, "reasoner", device)
    policy = policy.train().requires_grad_(True).to(memory_format=torch.channels_last)
    reference = copy.deepcopy(policy).eval().requires_grad_(False)
    judge = judge.eval().requires_grad_(False)
    ema = EMA(policy, decay=0.995)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=cfg.lr_restorer * 0.1, weight_decay=0.0)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    generator = torch.Generator().manual_seed(cfg.seed + 99)
    plain = dict(p_keep=0.0, p_partial=0.0, p_spurious=0.0)
    val = synthesize(load_crops(cfg.data, "train"), 10**9 + 7,
                     SynthConfig(batch=cfg.val_images, crop=cfg.crop, p_jpeg=0.0, p_down_up=0.0, severity_jitter=0.0, **plain))
    data = loader(cfg.data, SynthConfig(batch=cfg.batch, crop=cfg.crop, **plain), cfg.workers, base_seed=cfg.seed * 10**8 + 7 * 10**7)
    before = evaluate_policy(reference, judge, val, device)
    log.write({"event": "grpo_start", "from_step": step0, **{f"before_{k}": v for k, v in before.items()}})
    budget = cfg.minutes * 60.0 - cfg.export_minutes * 60.0 - (time.time() - start)
    t0 = time.time()
    step = 0
    for batch in data:
        if time.time() - t0 > budget or (cfg.max_steps and step >= cfg.max_steps):
            break
        x = batch["restorer_input"].to(device).float().div_(255.0).contiguous(memory_format=torch.channels_last)
        clean = batch["clean"].to(device).float().div_(255.0)
        condition = batch["condition"].to(device)
        with torch.no_grad(), autocast:
            errors = (policy(x, condition).float() - clean).abs().mean(dim=(1, 2, 3))
        hardest = errors.argsort(descending=True)[:cfg.grpo_images]
        x, clean, condition = x[hardest], clean[hardest], condition[hardest]
        with autocast:
            mu = policy(x, condition).float()
        with torch.no_grad(), autocast:
            anchor = reference(x, condition).float()
        g, sigma = cfg.grpo_group, cfg.grpo_sigma
        samples = (mu.detach()[None] + perturbations((g, *mu.shape), sigma, generator, device)).clamp(0, 1)
        flat = samples.flatten(0, 1)
        degraded = x.float()[None].expand(g, *x.shape).flatten(0, 1)
        with autocast:
            drop = severity_drop_reward(judge, degraded, flat).view(g, -1)
        fidelity = fidelity_reward(flat, clean[None].expand(g, *clean.shape).flatten(0, 1)).view(g, -1)
        rewards = drop + fidelity
        advantages = group_advantages(rewards)
        policy_loss = (advantages[:, :, None, None, None] * (samples - mu[None]) ** 2).mean() / (2 * sigma)
        supervised = torch.sqrt((mu - clean) ** 2 + 1e-6).mean()
        drift = ((mu - anchor) ** 2).mean()
        loss = policy_loss + supervised + 10.0 * drift
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        optimizer.step()
        ema.update(policy, step0 + step + 1000)
        step += 1
        if step % cfg.log_every == 0 or step == 1:
            log.write({"step": step, "time_s": round(time.time() - start, 1), "loss": round(float(loss.detach()), 5),
                       "policy_loss": round(float(policy_loss.detach()), 5),
                       "supervised": round(float(supervised.detach()), 5), "drift": round(float(drift.detach()), 7), "reward": round(float(rewards.mean()), 4),
                       "severity_drop": round(float(drop.mean()), 4), "fidelity_10db": round(float(fidelity.mean()), 4)})
        if step % cfg.val_every == 0:
            log.write({"step": step, "event": "val", **evaluate_policy(ema.model, judge, val, device)})
    after = evaluate_policy(ema.model, judge, val, device)
    report = {"steps": step, **{f"before_{k}": v for k, v in before.items()}, **{f"after_{k}": v for k, v in after.items()}}
    log.write({"event": "grpo_done", **report})
    save_checkpoint(out / "ckpt_restorer.safetensors", "restorer", policy, ema, step0 + step, {"grpo": report})
    save_network(ema.model.eval(), "lite_restorer", out / FILE_NAMES["lite_restorer"],
                 {"training_command": command, "stage": "grpo", "grpo": report, "data": str(cfg.data)})
    log.write({"event": "done", "time_s": round(time.time() - start, 1)})
    return 0


@torch.no_grad()
def evaluate_policy(model: torch.nn.Module, judge: torch.nn.Module, val: dict, device: torch.device) -> dict:
    """Validation PSNR (degraded images only) and the judge's mean residual severity of the outputs."""
    x = val["restorer_input"].to(device).float() / 255.0
    clean = val["clean"].to(device).float() / 255.0
    keep = torch.tensor([bool(t) for t in val["types"]], device=device)
    y = model.eval()(x, val["condition"].to(device)).float().clamp(0, 1)
    model.train()
    mse = ((y - clean) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    return {"val_psnr": round(float((-10 * torch.log10(mse[keep])).mean()), 4),
            "judge_severity_out": round(float(judged_severity(judge, y[keep]).mean()), 4),
            "judge_severity_in": round(float(judged_severity(judge, x[keep]).mean()), 4)}
