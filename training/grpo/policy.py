"""The Qwen-Image-Edit transformer as a stochastic policy: conditioning, SDE sampling with
log-probabilities, re-scoring of sampled steps, decoding.

The pieces mirror ``diffusers.QwenImageEditPipeline.__call__`` step for step (prompt encoding with the
image, reference latents concatenated to the noisy latents along the sequence, the pipeline's shifted
sigma schedule, optional true CFG with the norm rescale, VAE decoding), with the Euler step replaced by
the Flow-GRPO SDE step of :mod:`.sde`. The text encoder and VAE stay frozen: their outputs are computed
once per input (:meth:`EditPolicy.condition`) without gradients.
"""

from __future__ import annotations

import copy
import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..config import TrainingError
from .sde import gaussian_kl, sde_step, step_std


@dataclass
class EditCondition:
    """The frozen conditioning of one input image."""

    prompt: str
    prompt_embeds: torch.Tensor
    prompt_mask: torch.Tensor | None
    negative_embeds: torch.Tensor | None
    negative_mask: torch.Tensor | None
    image_latents: torch.Tensor
    """Packed reference latents [1, N_ref, 4*C]."""
    img_shapes: list[tuple[int, int, int]]
    height: int
    width: int
    latent_shape: tuple[int, int]
    """(tokens, channels) of the packed output latents."""
    sigmas: list[float]
    """The sampler's sigmas, first 1.0-ish, last 0."""


@dataclass
class Trajectory:
    """G sampled chains of one input: latents [T+1, G, N, C] (noise first) and step log-probs [T, G]."""

    latents: torch.Tensor
    log_probs: torch.Tensor


def _pipeline_module(pipe: Any):
    return sys.modules[type(pipe).__module__]


def _to_pil(image: torch.Tensor):
    from PIL import Image

    array = (image.float().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, "RGB")


def _resize(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    if tuple(image.shape[-2:]) == (height, width):
        return image
    return torch.nn.functional.interpolate(image[None].float(), size=(height, width), mode="bicubic", antialias=True,
                                           align_corners=False)[0].clamp(0, 1)


class EditPolicy:
    """Samples and scores edits of a ``QwenImageEditPipeline`` whose transformer is being trained.

    ``steps`` sampler steps with SDE ``noise_level``; ``guidance`` > 1 runs true CFG with
    ``negative_prompt`` (twice the transformer calls); ``reference_pixels`` is the area the
    reference image is resized to (the pipeline's 1024*1024 by default).
    """

    def __init__(self, pipe: Any, *, steps: int = 10, noise_level: float = 0.7, guidance: float = 1.0,
                 negative_prompt: str = " ", reference_pixels: int = 1024 * 1024,
                 offload_text_encoder: bool = False) -> None:
        if type(pipe).__name__ != "QwenImageEditPipeline":
            raise TrainingError(f"GRPO trains the QwenImageEditPipeline family; this model loads as "
                                f"{type(pipe).__name__}, which is not supported yet")
        self.pipe = pipe
        self.transformer = pipe.transformer
        self.steps = int(steps)
        self.noise_level = float(noise_level)
        self.guidance = float(guidance)
        self.negative_prompt = negative_prompt
        self.reference_pixels = int(reference_pixels)
        self.offload_text_encoder = bool(offload_text_encoder)
        self.multiple = int(pipe.vae_scale_factor) * 2

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    # ---- conditioning ------------------------------------------------------------------------------
    def output_size(self, height: int, width: int) -> tuple[int, int]:
        m = self.multiple
        return max(m, height // m * m), max(m, width // m * m)

    @torch.no_grad()
    def condition(self, image: torch.Tensor, prompt: str) -> EditCondition:
        """Prompt embeddings, reference latents and sigma schedule for one input [3,H,W] in 0..1."""
        pipe, module = self.pipe, _pipeline_module(self.pipe)
        device, dtype = self.device, self.transformer.dtype
        height, width = self.output_size(*image.shape[-2:])
        source = _to_pil(_resize(image, height, width))
        ref_width, ref_height = module.calculate_dimensions(self.reference_pixels, width / height)[:2]
        reference = pipe.image_processor.resize(source, ref_height, ref_width)
        if self.offload_text_encoder:
            pipe.text_encoder.to(device)
        embeds, mask = pipe.encode_prompt(prompt=[prompt], image=reference, device=device)
        negative_embeds = negative_mask = None
        if self.guidance > 1.0:
            negative_embeds, negative_mask = pipe.encode_prompt(prompt=[self.negative_prompt], image=reference,
                                                                device=device)
        if self.offload_text_encoder:
            pipe.text_encoder.to("cpu")
        pixels = pipe.image_processor.preprocess(reference, ref_height, ref_width).unsqueeze(2).to(device, dtype)
        channels = self.transformer.config.in_channels // 4
        _, image_latents = pipe.prepare_latents(pixels, 1, channels, height, width, dtype, device, None,
                                                latents=torch.zeros(1, 1, 1, device=device, dtype=dtype))
        latent_h, latent_w = 2 * (height // (pipe.vae_scale_factor * 2)), 2 * (width // (pipe.vae_scale_factor * 2))
        tokens = (latent_h // 2) * (latent_w // 2)
        vsf = pipe.vae_scale_factor
        img_shapes = [(1, height // vsf // 2, width // vsf // 2), (1, ref_height // vsf // 2, ref_width // vsf // 2)]
        return EditCondition(prompt=prompt, prompt_embeds=embeds, prompt_mask=mask, negative_embeds=negative_embeds,
                             negative_mask=negative_mask, image_latents=image_latents, img_shapes=img_shapes,
                             height=height, width=width, latent_shape=(tokens, channels * 4),
                             sigmas=self.sigmas(tokens))

    def sigmas(self, image_tokens: int) -> list[float]:
        """The pipeline's shifted schedule for this many output tokens, with the final 0."""
        module = _pipeline_module(self.pipe)
        scheduler = copy.deepcopy(self.pipe.scheduler)
        config = scheduler.config
        mu = module.calculate_shift(image_tokens, config.get("base_image_seq_len", 256),
                                    config.get("max_image_seq_len", 4096), config.get("base_shift", 0.5),
                                    config.get("max_shift", 1.15))
        base = np.linspace(1.0, 1.0 / self.steps, self.steps)
        scheduler.set_timesteps(sigmas=list(base), mu=mu, device="cpu")
        return [float(s) for s in scheduler.sigmas]

    # ---- the model ---------------------------------------------------------------------------------
    def _transformer(self, latents: torch.Tensor, cond: EditCondition, sigma: float, embeds: torch.Tensor,
                     mask: torch.Tensor | None) -> torch.Tensor:
        count = latents.shape[0]
        dtype = self.transformer.dtype
        model_input = torch.cat([latents.to(dtype), cond.image_latents.expand(count, -1, -1)], dim=1)
        output = self.transformer(
            hidden_states=model_input,
            timestep=torch.full((count,), sigma, device=latents.device, dtype=dtype),
            guidance=None,
            encoder_hidden_states_mask=mask.expand(count, -1) if mask is not None else None,
            encoder_hidden_states=embeds.expand(count, -1, -1),
            img_shapes=[cond.img_shapes] * count,
            return_dict=False,
        )[0]
        return output[:, :latents.shape[1]].float()

    def velocity(self, latents: torch.Tensor, cond: EditCondition, sigma: float) -> torch.Tensor:
        """The (guided) velocity for latents [G,N,C] at ``sigma``, float32."""
        velocity = self._transformer(latents, cond, sigma, cond.prompt_embeds, cond.prompt_mask)
        if self.guidance > 1.0:
            negative = self._transformer(latents, cond, sigma, cond.negative_embeds, cond.negative_mask)
            combined = negative + self.guidance * (velocity - negative)
            velocity = combined * (velocity.norm(dim=-1, keepdim=True) / combined.norm(dim=-1, keepdim=True))
        return velocity

    # ---- sampling and scoring ----------------------------------------------------------------------
    def _sigma_max(self, cond: EditCondition) -> float:
        return cond.sigmas[1] if len(cond.sigmas) > 2 else 0.0

    @torch.no_grad()
    def sample(self, cond: EditCondition, group_size: int, generator: torch.Generator,
               noise_level: float | None = None, shared_start: bool = False) -> Trajectory:
        """``group_size`` chains (``noise_level`` 0: the deterministic sampler). ``shared_start``: all chains
        start from the same noise, so that their differences come only from the scored SDE steps."""
        level = self.noise_level if noise_level is None else noise_level
        tokens, channels = cond.latent_shape
        count = 1 if shared_start else group_size
        latents = torch.randn((count, tokens, channels), generator=generator, device=generator.device)
        latents = latents.expand(group_size, -1, -1).contiguous().to(self.device)
        chain, log_probs = [latents], []
        for j in range(len(cond.sigmas) - 1):
            velocity = self.velocity(latents, cond, cond.sigmas[j])
            latents, log_prob, _, _ = sde_step(latents, velocity, cond.sigmas[j], cond.sigmas[j + 1],
                                               noise_level=level, sigma_max=self._sigma_max(cond),
                                               generator=generator)
            chain.append(latents)
            log_probs.append(log_prob)
        return Trajectory(torch.stack(chain), torch.stack(log_probs))

    def step_log_prob(self, cond: EditCondition, trajectory: Trajectory, step: int, rows: torch.Tensor,
                      reference: bool = False) -> tuple[torch.Tensor, torch.Tensor, float]:
        """(log-prob [R] of the sampled step ``step`` of chains ``rows`` under the current policy, the step
        mean, its std). ``reference``: under the frozen model (LoRA disabled), without gradients."""
        latents = trajectory.latents[step, rows]
        sample = trajectory.latents[step + 1, rows]
        sigma, sigma_next = cond.sigmas[step], cond.sigmas[step + 1]
        if reference:
            with torch.no_grad(), adapters_disabled(self.transformer):
                velocity = self.velocity(latents, cond, sigma)
        else:
            velocity = self.velocity(latents, cond, sigma)
        _, log_prob, mean, std = sde_step(latents, velocity, sigma, sigma_next, noise_level=self.noise_level,
                                          sigma_max=self._sigma_max(cond), sample=sample)
        return log_prob, mean, std

    def kl_to_reference(self, cond: EditCondition, trajectory: Trajectory, step: int, rows: torch.Tensor,
                        mean: torch.Tensor, std: float) -> torch.Tensor:
        _, reference_mean, _ = self.step_log_prob(cond, trajectory, step, rows, reference=True)
        return gaussian_kl(mean, reference_mean, std)

    def step_has_noise(self, cond: EditCondition, step: int) -> bool:
        return step_std(cond.sigmas[step], cond.sigmas[step + 1], self.noise_level, self._sigma_max(cond))[1] > 0

    @torch.no_grad()
    def decode(self, cond: EditCondition, latents: torch.Tensor) -> torch.Tensor:
        """Images [G,3,H,W] in 0..1 from packed latents [G,N,C] (as the pipeline decodes them)."""
        pipe = self.pipe
        vae = pipe.vae
        unpacked = pipe._unpack_latents(latents, cond.height, cond.width, pipe.vae_scale_factor).to(vae.dtype)
        z_dim = vae.config.z_dim
        mean = torch.tensor(vae.config.latents_mean).view(1, z_dim, 1, 1, 1).to(unpacked.device, unpacked.dtype)
        std = torch.tensor(vae.config.latents_std).view(1, z_dim, 1, 1, 1).to(unpacked.device, unpacked.dtype)
        images = vae.decode(unpacked * std + mean, return_dict=False)[0][:, :, 0]
        return (images.float() / 2 + 0.5).clamp(0, 1)


class adapters_disabled:
    """Context in which a diffusers model with PEFT adapters runs as its base model."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __enter__(self) -> None:
        self.model.disable_adapters()

    def __exit__(self, *exc: object) -> None:
        self.model.enable_adapters()


def mean_and_spread(values: list[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


__all__ = ["EditCondition", "EditPolicy", "Trajectory", "adapters_disabled", "mean_and_spread"]
