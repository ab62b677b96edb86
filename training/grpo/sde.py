"""Flow-GRPO's stochastic sampler step and the GRPO objective, independent of any model.

A rectified-flow model predicts the velocity ``v`` of ``x_t = (1 - t) x_0 + t eps``; the deterministic
(Euler) sampler steps ``x_{t+dt} = x_t + v dt`` with ``dt < 0``. Flow-GRPO (Liu et al., 2025) replaces it by
the SDE with the same marginals

    x_{t+dt} = x_t + [v + s_t^2 / (2 t) (x_t + (1 - t) v)] dt + s_t sqrt(-dt) eps,   s_t = a sqrt(t / (1 - t)),

whose steps are Gaussian, so each sampled step has a log-probability under the current policy. ``a`` is
the noise level (0 gives back the Euler step exactly). Log-probabilities are averaged over the latent's
elements, as Flow-GRPO does, which keeps the ratios near 1 whatever the image size.
"""

from __future__ import annotations

import math

import torch

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def step_std(sigma: float, sigma_next: float, noise_level: float, sigma_max: float) -> tuple[float, float]:
    """(s_t, the step's standard deviation s_t * sqrt(-dt)). At ``sigma == 1`` the ``1 - sigma`` of the
    formula uses ``sigma_max`` (the first sigma below 1), as Flow-GRPO does, to stay finite."""
    denominator = 1.0 - (sigma_max if sigma >= 1.0 else sigma)
    s_t = noise_level * math.sqrt(sigma / max(denominator, 1e-6))
    return s_t, s_t * math.sqrt(max(sigma - sigma_next, 0.0))


def sde_mean(latents: torch.Tensor, velocity: torch.Tensor, sigma: float, sigma_next: float, s_t: float) -> torch.Tensor:
    """Mean of the next latent given the current one and the predicted velocity."""
    dt = sigma_next - sigma
    return (latents * (1.0 + s_t ** 2 / (2.0 * sigma) * dt)
            + velocity * (1.0 + s_t ** 2 * (1.0 - sigma) / (2.0 * sigma)) * dt)


def gaussian_log_prob(sample: torch.Tensor, mean: torch.Tensor, std: float) -> torch.Tensor:
    """log N(sample; mean, std^2), averaged over all but the first dimension: [B]."""
    log_prob = -((sample.detach() - mean) ** 2) / (2.0 * std ** 2) - math.log(std) - LOG_SQRT_2PI
    return log_prob.flatten(1).mean(1)


def sde_step(latents: torch.Tensor, velocity: torch.Tensor, sigma: float, sigma_next: float, *, noise_level: float,
             sigma_max: float, generator: torch.Generator | None = None,
             sample: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """One step from ``sigma`` to ``sigma_next``: (next latent, its log-probability [B], the mean, the std).

    With ``sample`` given, that latent is scored instead of drawing a new one (the training pass).
    """
    s_t, std = step_std(sigma, sigma_next, noise_level, sigma_max)
    mean = sde_mean(latents, velocity, sigma, sigma_next, s_t)
    if std <= 0.0:
        next_latents = mean if sample is None else sample
        return next_latents, torch.zeros(latents.shape[0], device=latents.device), mean, std
    if sample is None:
        noise = torch.randn(latents.shape, generator=generator, device=generator.device if generator else latents.device,
                            dtype=latents.dtype).to(latents.device)
        sample = mean + std * noise
    return sample, gaussian_log_prob(sample, mean, std), mean, std


def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-4) -> torch.Tensor:
    """GRPO advantages: each reward minus its group's mean, over the group's standard deviation.

    ``rewards`` [N] holds consecutive groups of ``group_size`` samples of one input each. A group whose
    rewards are all equal gets advantages 0 (it says nothing about which sample is better).
    """
    if rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    groups = rewards.float().view(-1, group_size)
    mean = groups.mean(1, keepdim=True)
    std = groups.std(1, keepdim=True, unbiased=False)
    return ((groups - mean) / (std + eps)).view(-1)


def grpo_loss(log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor, *, clip_range: float,
              adv_clip: float = 5.0, kl: torch.Tensor | None = None, kl_weight: float = 0.0) -> dict[str, torch.Tensor]:
    """The clipped policy objective (to minimise) plus ``kl_weight`` times the KL term, and diagnostics."""
    advantages = advantages.clamp(-adv_clip, adv_clip)
    ratio = torch.exp(log_prob - old_log_prob)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_range, 1.0 + clip_range)
    policy = torch.maximum(unclipped, clipped).mean()
    loss = policy
    kl_mean = torch.zeros((), device=log_prob.device)
    if kl is not None:
        kl_mean = kl.mean()
        loss = loss + kl_weight * kl_mean
    return {"loss": loss, "policy_loss": policy.detach(), "kl": kl_mean.detach(),
            "clip_fraction": ((ratio - 1.0).abs() > clip_range).float().mean().detach(),
            "ratio_mean": ratio.mean().detach()}


def gaussian_kl(mean: torch.Tensor, reference_mean: torch.Tensor, std: float) -> torch.Tensor:
    """KL between two Gaussians of the same std, per element, averaged over all but the first dimension."""
    return ((mean - reference_mean) ** 2).flatten(1).mean(1) / (2.0 * std ** 2)


__all__ = ["gaussian_kl", "gaussian_log_prob", "group_advantages", "grpo_loss", "sde_mean", "sde_step", "step_std"]
