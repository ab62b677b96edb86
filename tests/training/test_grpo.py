"""Flow-GRPO: the SDE step and objective, rewards, the sampler against the real diffusers pipeline, a tiny
restorer whose mean reward rises, its LoRA loaded by the Restore backend, exact resume."""

from __future__ import annotations

import math

import pytest
import torch

from rnr import cache
from rnr.degrade import degrade
from rnr.images import load_image
from rnr.registry import ModelSpec
from training.config import TrainingError, from_arguments, read_log
from training.dataset import DataConfig
from training.grpo import GRPOConfig, train
from training.grpo.lora import lora_delta, read_metadata
from training.grpo.rewards import (
    CombinedReward,
    parse_reward,
    reference_ssim,
    severity_reduction,
    structure_fidelity,
)
from training.grpo.sde import gaussian_kl, group_advantages, grpo_loss, sde_step

pytestmark = [pytest.mark.usefixtures("one_thread")]


def blue_channel(prompts, images, restored, references=None):
    """The toy reward of the tests: how blue the result is (the tiny VAE's blue output moves freely)."""
    return restored[:, 2].float().flatten(1).mean(1).tolist()


def _config(edit_dir, photos_dir, out, **changes) -> GRPOConfig:
    settings = {"model": str(edit_dir), "out": str(out),
                    "data": DataConfig(source=str(photos_dir), split="all", size=32, zoom=(2.0, 8.0), p_clean=0.0),
                    "steps": 24, "train_examples": 1, "inputs_per_step": 1, "group_size": 8, "sample_steps": 3, "noise_level": 0.5,
                    "reference_pixels": 32 * 32, "reward": (f"{__name__}:blue_channel",), "lr": 5e-2, "clip_range": 0.2,
                    "kl_weight": 0.0, "lora_rank": 4, "lora_alpha": 4.0,
                    "lora_targets": ("to_q", "to_k", "to_v", "to_out.0", "img_mlp.net.0.proj", "img_mlp.net.2", "proj_out"),
                    "minibatches": 1, "eval_inputs": 1, "save_every": 0, "device": "cpu", "dtype": "float32", "progress": False}
    settings.update(changes)
    return GRPOConfig(**settings)


# ---- the algorithm --------------------------------------------------------------------------------------
def test_sde_step_is_the_euler_step_without_noise_and_gaussian_with_it():
    from diffusers import FlowMatchEulerDiscreteScheduler

    generator = torch.Generator().manual_seed(0)
    latents, velocity = torch.randn(2, 6, 8, generator=generator), torch.randn(2, 6, 8, generator=generator)
    scheduler = FlowMatchEulerDiscreteScheduler()
    scheduler.set_timesteps(sigmas=[1.0, 0.6, 0.3], device="cpu")
    euler = scheduler.step(velocity, scheduler.timesteps[1], latents, return_dict=False)[0]
    sigmas = [float(s) for s in scheduler.sigmas]
    deterministic, log_prob, mean, std = sde_step(latents, velocity, sigmas[1], sigmas[2], noise_level=0.0,
                                                  sigma_max=sigmas[1])
    torch.testing.assert_close(deterministic, euler)
    assert std == 0.0 and torch.equal(log_prob, torch.zeros(2))

    sample, log_prob, mean, std = sde_step(latents, velocity, 0.6, 0.3, noise_level=0.7, sigma_max=0.6,
                                           generator=torch.Generator().manual_seed(1))
    expected_std = 0.7 * math.sqrt(0.6 / 0.4) * math.sqrt(0.3)
    assert std == pytest.approx(expected_std)
    normal = torch.distributions.Normal(mean, expected_std)
    torch.testing.assert_close(log_prob, normal.log_prob(sample).flatten(1).mean(1))
    # Drift toward the data: the SDE mean is the Euler step plus the score correction s^2/(2t)(x + (1-t)v)dt.
    s2 = (0.7 ** 2) * 0.6 / 0.4
    torch.testing.assert_close(mean, latents + velocity * -0.3 + s2 / 1.2 * (latents + 0.4 * velocity) * -0.3)
    rescored = sde_step(latents, velocity, 0.6, 0.3, noise_level=0.7, sigma_max=0.6, sample=sample)
    torch.testing.assert_close(rescored[1], log_prob)


def test_group_advantages_and_clipped_objective():
    advantages = group_advantages(torch.tensor([1.0, 2.0, 3.0, 5.0, 5.0, 5.0]), group_size=3)
    torch.testing.assert_close(advantages[:3], torch.tensor([-1.2247, 0.0, 1.2247]), atol=1e-3, rtol=0)
    assert torch.equal(advantages[3:], torch.zeros(3))
    with pytest.raises(ValueError, match="groups of 4"):
        group_advantages(torch.zeros(6), group_size=4)

    old = torch.zeros(4)
    new = torch.tensor([0.0, 0.5, -0.5, 0.05], requires_grad=True)
    adv = torch.tensor([1.0, 1.0, -1.0, 1.0])
    parts = grpo_loss(new, old, adv, clip_range=0.2)
    parts["loss"].backward()
    # Ratios beyond the clip range in the advantage's direction give no gradient; inside they push up
    # the log-probability of better-than-average samples.
    assert new.grad[1] == 0.0 and new.grad[2] == 0.0
    assert new.grad[0] < 0 and new.grad[3] < 0
    assert parts["clip_fraction"] == pytest.approx(0.5)
    kl = gaussian_kl(torch.ones(2, 3), torch.zeros(2, 3), std=0.5)
    torch.testing.assert_close(kl, torch.full((2,), 2.0))


def test_the_objective_moves_a_toy_policy_to_its_reward():
    """A velocity that is one free vector learns, from rewards alone, to land its samples on a target."""
    sigmas = [1.0, 0.75, 0.5, 0.25, 0.0]
    theta = torch.zeros(8, requires_grad=True)
    optimizer = torch.optim.Adam([theta], lr=0.05)
    target = torch.linspace(-2, 2, 8)
    rewards = []
    for step in range(60):
        generator = torch.Generator().manual_seed(step)
        chain, old = [torch.randn(1, 8, generator=generator).expand(8, 8).clone()], []
        with torch.no_grad():
            for j in range(4):
                latents, log_prob, _, _ = sde_step(chain[-1], theta.expand(8, 8), sigmas[j], sigmas[j + 1],
                                                   noise_level=0.7, sigma_max=sigmas[1], generator=generator)
                chain.append(latents)
                old.append(log_prob)
        reward = -(chain[-1] - target).abs().mean(1)
        rewards.append(float(reward.mean()))
        advantages = group_advantages(reward, 8)
        loss = sum(grpo_loss(sde_step(chain[j], theta.expand(8, 8), sigmas[j], sigmas[j + 1], noise_level=0.7,
                                      sigma_max=sigmas[1], sample=chain[j + 1])[1], old[j], advantages,
                             clip_range=0.2)["loss"] for j in range(4)) / 4
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert sum(rewards[-10:]) / 10 > sum(rewards[:10]) / 10 + 0.3
    assert torch.corrcoef(torch.stack([theta.detach(), -target]))[0, 1] > 0.9


# ---- rewards --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def scene(photos_dir) -> torch.Tensor:
    image = load_image(photos_dir / "building.jpg").tensor
    return torch.nn.functional.interpolate(image, size=(96, 96), mode="bilinear", antialias=True).clamp(0, 1)


def test_structure_fidelity_punishes_drift_not_restoration(scene):
    hazy = degrade(scene, haze=70, seed=1).images
    noisy = degrade(scene, noise=60, seed=1).images
    shifted = torch.roll(scene, shifts=(5, 7), dims=(-2, -1))
    smeared = torch.nn.functional.avg_pool2d(scene, 9, stride=1, padding=4)
    flat = torch.full_like(scene, 0.5)

    def score(before, after):
        return structure_fidelity([""], before, after)[0]

    assert score(scene, scene) == pytest.approx(1.0, abs=1e-6)
    dehazed, denoised = score(hazy, scene), score(noisy, scene)
    assert dehazed > 0.9 and denoised > 0.8
    assert score(scene, shifted) < 0.5
    assert score(scene, smeared) < dehazed - 0.1
    assert score(scene, flat) < 0.2
    brighter = (scene * 1.3).clamp(0, 1)
    assert score(scene, brighter) > 0.95


def test_severity_reward_judges_with_a_reasoner(scene):
    from rnr.reasoners.classic import load as load_classic

    reasoner = load_classic(ModelSpec.make("reasoner", "classic", device="cpu"))
    hazy = degrade(scene, haze=80, seed=2).images
    reward = severity_reduction(reasoner)
    restored_clean, made_worse = reward(["", ""], torch.cat([hazy, scene]), torch.cat([scene, hazy]))
    assert restored_clean > 0.2 and made_worse < -0.2
    assert reference_ssim([""], hazy, scene, scene) == [pytest.approx(1.0)]
    with pytest.raises(TrainingError, match="needs clean references"):
        reference_ssim([""], hazy, scene, None)


def test_reward_specs_weights_and_user_functions(scene):
    name, function, weight = parse_reward("structure:0.5")
    assert name == "structure" and function is structure_fidelity and weight == 0.5
    name, function, weight = parse_reward(f"{__name__}:blue_channel:2")
    assert function is blue_channel and weight == 2.0
    combined = CombinedReward([parse_reward("brightness"), parse_reward(f"{__name__}:blue_channel:2")])
    values = combined([""], scene, scene, None)
    expected = float(scene.mean()) + 2 * float(scene[:, 2].mean())
    assert values == [pytest.approx(expected)]
    assert set(combined.last) == {"brightness", f"{__name__}:blue_channel"}
    with pytest.raises(TrainingError, match="unknown reward 'sharpness'"):
        parse_reward("sharpness")
    with pytest.raises(TrainingError, match="needs a reasoner"):
        parse_reward("severity")
    with pytest.raises(TrainingError, match="cannot be imported"):
        parse_reward("no.such.module:reward")


# ---- the sampler against the pipeline -------------------------------------------------------------------
def test_sampler_without_noise_reproduces_the_diffusers_pipeline(edit_dir, scene, monkeypatch):
    import sys

    from rnr.restorers.qwen_image_edit_load import load_pipeline
    from training.grpo.policy import EditPolicy

    spec = ModelSpec.make("restorer", "qwen_image_edit", str(edit_dir), "cpu", "float32")
    pipe = load_pipeline(spec, torch.device("cpu"), torch.float32).pipe
    # The pipeline resizes its reference image to 1024*1024 pixels; at that size the tiny VAE alone takes
    # many seconds on a CPU, so both sides use a 32*48 reference here (the policy's reference_pixels).
    module = sys.modules[type(pipe).__module__]
    original = module.calculate_dimensions
    monkeypatch.setattr(module, "calculate_dimensions", lambda area, ratio: original(32 * 48, ratio))
    policy = EditPolicy(pipe, steps=2, noise_level=0.0, reference_pixels=32 * 48)
    image = torch.nn.functional.interpolate(scene, size=(32, 48), mode="bilinear", antialias=True)[0].clamp(0, 1)
    prompt = "Restore this photo of a building."
    cond = policy.condition(image, prompt)
    trajectory = policy.sample(cond, 1, torch.Generator().manual_seed(3))
    ours = policy.decode(cond, trajectory.latents[-1])
    from training.grpo.policy import _to_pil

    theirs = pipe(image=_to_pil(image), prompt=prompt, height=32, width=48, num_inference_steps=2, true_cfg_scale=1.0,
                  latents=trajectory.latents[0], output_type="pt").images
    assert ours.shape == theirs.shape == (1, 3, 32, 48)
    torch.testing.assert_close(ours, theirs.float(), atol=2e-5, rtol=0)
    assert torch.equal(trajectory.log_probs, torch.zeros(2, 1))


# ---- training the tiny restorer ---------------------------------------------------------------------------
def test_grpo_raises_the_reward_and_the_lora_loads_in_the_restore_backend(edit_dir, photos_dir, tmp_path):
    result = train(_config(edit_dir, photos_dir, tmp_path / "run"))
    log = read_log(tmp_path / "run")
    rewards = [e["reward"] for e in log if "reward" in e]
    assert len(rewards) == 24
    early, late = sum(rewards[:6]) / 6, sum(rewards[-6:]) / 6
    assert late > early + 0.02, rewards
    assert log[-1]["final_eval_reward"] > log[0]["eval_reward"] + 0.03
    assert all(e["reward_std"] > 0 for e in log if "reward_std" in e)
    assert all(math.isfinite(e["loss"]) and e["kl"] == 0.0 for e in log if "loss" in e)

    metadata = read_metadata(result.lora)
    assert metadata["format"] == "rnr-qwen-image-lora/1" and metadata["rank"] == "4"
    deltas = lora_delta(result.lora)
    assert "proj_out" in deltas and "transformer_blocks.1.attn.to_q" in deltas
    assert max(float(d.abs().max()) for d in deltas.values()) > 1e-3

    from diffusers import QwenImageTransformer2DModel

    base = QwenImageTransformer2DModel.from_pretrained(str(edit_dir), subfolder="transformer").state_dict()
    cache.clear()
    try:
        restorer = cache.get(ModelSpec.make("restorer", "qwen_image_edit", str(edit_dir), "cpu", "float32",
                                            lora=str(result.lora), fuse_lora=True))
        fused = restorer.pipe.transformer.state_dict()
        for module, delta in deltas.items():
            key = f"{module}.weight" if f"{module}.weight" in fused else f"{module}.base_layer.weight"
            torch.testing.assert_close(fused[key], base[f"{module}.weight"] + delta, atol=1e-6, rtol=0)
        untouched = [k for k in base if not any(k.startswith(m + ".") for m in deltas)]
        assert all(torch.equal(fused[k], base[k]) for k in untouched if k in fused)
    finally:
        cache.clear()


def test_grpo_resume_repeats_the_uninterrupted_run(edit_dir, photos_dir, tmp_path):
    from safetensors.torch import load_file

    quick = {"steps": 3, "group_size": 2, "sample_steps": 2, "eval_inputs": 0, "kl_weight": 0.1, "minibatches": 2, "inner_epochs": 1,
                 "train_examples": 0}
    straight = train(_config(edit_dir, photos_dir, tmp_path / "straight", **quick))
    first = train(_config(edit_dir, photos_dir, tmp_path / "halves", **{**quick, "steps": 2}))
    assert first.step == 2
    with pytest.raises(TrainingError, match="already holds a run"):
        train(_config(edit_dir, photos_dir, tmp_path / "halves", **quick))
    resumed = train(_config(edit_dir, photos_dir, tmp_path / "halves", **quick, resume=True))
    assert [e["step"] for e in read_log(tmp_path / "halves")] == [1, 2, 3]
    a, b = load_file(str(straight.lora)), load_file(str(resumed.lora))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-7)
    log = read_log(tmp_path / "straight")
    # The LoRA starts at the frozen model (zero KL) and moves away; the second chunk of every step is scored
    # by an already updated policy, so its ratios leave 1.
    assert all(e["kl"] >= 0.0 for e in log) and log[-1]["kl"] > 0.0
    assert any(abs(e["ratio_mean"] - 1.0) > 1e-6 for e in log)


def test_command_line_builds_the_config(tmp_path):
    from training.cli import build_parser

    args = build_parser().parse_args(["grpo", "--model", "m", "--reward", "severity:1", "structure:0.25",
                                      "--group-size", "6", "--no-shared-start", "--data-size", "128"])
    config = from_arguments(GRPOConfig, args)
    assert config.reward == ("severity:1", "structure:0.25")
    assert config.group_size == 6 and config.shared_start is False and config.data.size == 128
    with pytest.raises(TrainingError, match="group_size must be at least 2"):
        train(GRPOConfig(model="m", out=str(tmp_path / "refused"), group_size=1, device="cpu"))
    with pytest.raises(TrainingError, match="needs --model"):
        train(GRPOConfig(model="", out=str(tmp_path / "refused"), device="cpu"))
    assert not (tmp_path / "refused").exists(), "a refused run must not write its folder"
