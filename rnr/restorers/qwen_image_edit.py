"""The Qwen-Image-Edit restorer: an instruction-following image editor told what to remove.

Each image's :class:`~rnr.diagnosis.Diagnosis` becomes the edit instruction
(:meth:`Diagnosis.to_prompt`), and the diffusers pipeline (``QwenImageEditPipeline``, its ``Plus``
variant or ``QwenImage21Pipeline``, loaded by :mod:`.qwen_image_edit_load` from a diffusers folder or
ComfyUI's split files) edits the image at a working size of the input's aspect (at most
``max_megapixels``, a multiple of the pipeline's 16 or 32 px); the result is resized back to the
input's size. Images larger than the working size are resized down and back (``large="resize"``),
restored tile by tile with blended seams (``large="tiles"``, :func:`rnr.tiling.tiled_apply`), or
resized and then refined by a light img2img pass over full-resolution tiles (``large="refine"``).

``strength`` < 1 blends the restoration into the input (``strength_mode="blend"``) or starts the
sampler from the partly noised input, img2img-style (``strength_mode="denoise"``). Progress is
reported after every sampler step and may interrupt the work.

diffusers and transformers are imported only when this backend loads.
"""

from __future__ import annotations

import copy
import math
import sys
from typing import Any

import numpy as np
import torch

from ..devices import resolve_device, resolve_dtype
from ..diagnosis import Diagnosis
from ..errors import BackendError
from ..images import check_images
from ..reasoners.base import Progress
from ..registry import ModelSpec
from ..tiling import tile_starts, tiled_apply
from .qwen_image_edit_load import LoadedPipeline, load_pipeline

DEFAULT_STEPS = {"edit": 50, "edit_plus": 40, "qwen_image_21": 40}
NATIVE_MEGAPIXELS = 1024 * 1024 / 1e6
"""The area the Qwen-Image edit models are trained at (1024 x 1024 px), the default working area."""
DEFAULT_GUIDANCE = {"edit": 4.0, "edit_plus": 4.0, "qwen_image_21": 1.0}
LARGE_MODES = ("resize", "tiles", "refine")
STRENGTH_MODES = ("blend", "denoise")


def _to_pil(image: torch.Tensor):
    from PIL import Image

    array = image.float().clamp(0, 1).mul(255.0).round_().to(torch.uint8).permute(1, 2, 0).contiguous().cpu().numpy()
    return Image.fromarray(array, "RGB")


def _resize(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[C,H,W] float resized with antialiasing (bicubic), clamped to 0..1."""
    if tuple(image.shape[-2:]) == (height, width):
        return image
    resized = torch.nn.functional.interpolate(image[None].float(), size=(height, width), mode="bicubic",
                                              antialias=True, align_corners=False)[0]
    return resized.clamp(0.0, 1.0)


def _skipped(count: int, strength: float) -> int:
    """How many of ``count`` sampler steps an img2img call at ``strength`` skips (at least one runs)."""
    return min(count - 1, int(round((1.0 - strength) * count)))


class _StepCounter:
    """Counts sampler steps over a whole restore call and reports them to ``progress``."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self.progress = progress
        self.total = max(1, total)
        self.done = 0

    def __call__(self, pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
        self.done += 1
        if self.progress is not None:
            self.progress(min(self.done, self.total), self.total)
        return {}


class QwenImageEditRestorer:
    """Restores images with a loaded Qwen-Image edit pipeline (see the module docstring).

    ``steps`` sampler steps, ``guidance`` the true-CFG scale (>1 runs the negative prompt too),
    ``max_megapixels`` the largest working area, ``large`` how bigger images are handled, ``tile`` and
    ``tile_overlap`` the tile side and overlap in pixels, ``refine_strength`` the img2img strength of the
    refining pass, ``strength_mode`` how strength < 1 acts.
    """

    name = "qwen_image_edit"

    def __init__(self, loaded: LoadedPipeline, *, device: torch.device | str = "cpu", steps: int | None = None,
                 guidance: float | None = None, negative_prompt: str = " ", max_megapixels: float = NATIVE_MEGAPIXELS,
                 large: str = "resize", tile: int = 1024, tile_overlap: int = 128, strength_mode: str = "blend",
                 refine_strength: float = 0.3) -> None:
        if large not in LARGE_MODES:
            raise BackendError(f"qwen_image_edit large={large!r}: use one of {', '.join(LARGE_MODES)}")
        if strength_mode not in STRENGTH_MODES:
            raise BackendError(f"qwen_image_edit strength_mode={strength_mode!r}: use one of {', '.join(STRENGTH_MODES)}")
        self.loaded = loaded
        self.pipe = loaded.pipe
        self.family = loaded.family
        self.device = torch.device(device)
        self.steps = int(steps if steps is not None else DEFAULT_STEPS[self.family])
        self.guidance = float(guidance if guidance is not None else DEFAULT_GUIDANCE[self.family])
        self.negative_prompt = negative_prompt
        self.max_pixels = int(round(float(max_megapixels) * 1_000_000))
        self.multiple = 32 if self.family == "qwen_image_21" else int(self.pipe.vae_scale_factor) * 2
        if self.steps < 1 or self.max_pixels < self.multiple ** 2:
            raise BackendError(f"qwen_image_edit needs steps >= 1 and max_megapixels >= {self.multiple ** 2 / 1e6}, got "
                               f"{self.steps} and {max_megapixels}")
        if int(tile) < self.multiple or not 0 <= int(tile_overlap) < int(tile):
            raise BackendError(f"qwen_image_edit needs tile >= {self.multiple} and 0 <= tile_overlap < tile, got "
                               f"{tile} and {tile_overlap}")
        self.large = large
        self.tile = int(tile)
        self.tile_overlap = int(tile_overlap)
        self.strength_mode = strength_mode
        if not 0.0 < float(refine_strength) <= 1.0:
            raise BackendError(f"qwen_image_edit refine_strength must be in (0, 1], got {refine_strength}")
        self.refine_strength = float(refine_strength)

    # ---- sizes -------------------------------------------------------------------------------
    def working_size(self, height: int, width: int) -> tuple[int, int]:
        """The pipeline's (height, width) for an input: its aspect, at most ``max_megapixels``,
        rounded to the pipeline's multiple (16 or 32 px)."""
        scale = min(1.0, math.sqrt(self.max_pixels / float(height * width)))
        m = self.multiple
        size = (max(m, int(height * scale / m + 0.5) * m), max(m, int(width * scale / m + 0.5) * m))
        if size[0] * size[1] > self.max_pixels:
            size = (max(m, int(height * scale // m) * m), max(m, int(width * scale // m) * m))
        return size

    def _uses_tiles(self, height: int, width: int) -> bool:
        return self.large == "tiles" and (height > self.tile or width > self.tile)

    def _refines(self, height: int, width: int) -> bool:
        return self.large == "refine" and height * width > self.max_pixels

    def _tiles(self, height: int, width: int) -> int:
        return len(tile_starts(height, self.tile, self.tile_overlap)) * len(tile_starts(width, self.tile, self.tile_overlap))

    def _steps_per_image(self, height: int, width: int, strength: float) -> int:
        steps = (self._tiles(height, width) if self._uses_tiles(height, width) else 1) * self.steps_per_call(strength)
        if self._refines(height, width):
            steps += self._tiles(height, width) * self._img2img_steps(self.refine_strength)
        return steps

    # ---- one pipeline call -------------------------------------------------------------------
    def pipeline_kwargs(self, image: torch.Tensor, prompt: str, seed: int) -> dict[str, Any]:
        """The keyword arguments of the pipeline call for one [3,H,W] image at its working size.

        The benchmark calls the bare pipeline with exactly these to measure the wrapper's overhead.
        """
        height, width = self.working_size(*image.shape[-2:])
        kwargs: dict[str, Any] = {
            "image": _to_pil(_resize(image, height, width)), "prompt": prompt, "height": height, "width": width,
            "num_inference_steps": self.steps, "true_cfg_scale": self.guidance,
            "generator": torch.Generator("cpu").manual_seed(int(seed)), "output_type": "pt",
        }
        if self.guidance > 1.0:
            kwargs["negative_prompt"] = self.negative_prompt
        if self.family == "qwen_image_21":
            kwargs["output_resolution"] = int(round(math.sqrt(height * width)))
        return kwargs

    def _denoise_start(self, kwargs: dict[str, Any], strength: float) -> None:
        """Turn ``kwargs`` into an img2img call: latents = the input's latents noised to the first sigma
        of a schedule that skips the first ``1 - strength`` of the steps."""
        from diffusers.utils.torch_utils import randn_tensor

        pipe = self.pipe
        module = sys.modules[type(pipe).__module__]
        height, width = kwargs["height"], kwargs["width"]
        generator = kwargs["generator"]
        source = kwargs["image"].convert("RGBA") if self.family == "qwen_image_21" else kwargs["image"]
        device = pipe._execution_device
        dtype = pipe.transformer.dtype
        pixels = pipe.image_processor.preprocess(source, height, width).unsqueeze(2).to(device, dtype)
        with torch.no_grad():
            x0 = pipe._encode_vae_image(pixels, generator)
        channels, lh, lw = x0.shape[1], x0.shape[-2], x0.shape[-1]
        packed = pipe._pack_latents(x0, 1, channels, lh, lw)
        full = self._full_sigmas()
        sigmas = full[_skipped(len(full), strength):]
        config = pipe.scheduler.config
        mu = module.calculate_shift(packed.shape[1], config.get("base_image_seq_len", 256),
                                    config.get("max_image_seq_len", 4096), config.get("base_shift", 0.5),
                                    config.get("max_shift", 1.15))
        scheduler = copy.deepcopy(pipe.scheduler)
        scheduler.set_timesteps(sigmas=list(sigmas), mu=mu, device="cpu")
        first = float(scheduler.sigmas[0])
        noise = randn_tensor(packed.shape, generator=generator, device=device, dtype=dtype)
        kwargs["latents"] = (1.0 - first) * packed + first * noise
        kwargs["sigmas"] = list(sigmas)
        kwargs["num_inference_steps"] = len(sigmas)

    def _full_sigmas(self) -> np.ndarray:
        """The sampler's sigmas before shifting: the model's own schedule (Qwen-Image 2.1) or a linear one."""
        configured = getattr(self.pipe.config, "sample_sigmas", None) if self.family == "qwen_image_21" else None
        if configured:
            return np.asarray(configured, dtype=np.float64)
        return np.linspace(1.0, 1.0 / self.steps, self.steps)

    def _img2img_steps(self, strength: float) -> int:
        count = len(self._full_sigmas())
        return count - _skipped(count, strength)

    def steps_per_call(self, strength: float) -> int:
        """Sampler steps of one pipeline call at ``strength``."""
        if self.strength_mode == "denoise" and strength < 1.0:
            return self._img2img_steps(strength)
        return len(self._full_sigmas())

    def edit(self, image: torch.Tensor, prompt: str, seed: int, strength: float = 1.0,
             counter: _StepCounter | None = None, img2img: bool | None = None) -> torch.Tensor:
        """One pipeline call: [3,H,W] in, the edited [3,H,W] (float32, same device) out.

        ``img2img``: start from the noised input at ``strength`` (default: when ``strength_mode`` is
        ``"denoise"`` and ``strength`` < 1).
        """
        self._ensure_shared_on_device()
        kwargs = self.pipeline_kwargs(image, prompt, seed)
        if img2img is None:
            img2img = self.strength_mode == "denoise" and strength < 1.0
        if img2img and strength < 1.0:
            self._denoise_start(kwargs, strength)
        if counter is not None:
            kwargs["callback_on_step_end"] = counter
        with torch.inference_mode():
            output = self.pipe(**kwargs).images
        result = output[0, :3].float().to(image.device)
        return _resize(result, *image.shape[-2:])

    def _ensure_shared_on_device(self) -> None:
        # A text encoder shared with a reasoner may have been offloaded through the reasoner's cache entry.
        shared = self.loaded.shared_text_encoder
        if shared is not None and not self.loaded.offloaded:
            parameter = next(shared.model.parameters(), None)
            if parameter is not None and parameter.device.type != self.device.type:
                shared.to(self.device)

    # ---- the protocol ------------------------------------------------------------------------
    def restore(self, images: torch.Tensor, diagnoses: list[Diagnosis], *, strength: float = 1.0, seed: int = 0,
                progress: Progress | None = None) -> torch.Tensor:
        """Restore a batch [B,3,H,W] in 0..1; same shape, dtype and device out."""
        dtype = images.dtype if isinstance(images, torch.Tensor) and images.is_floating_point() else torch.float32
        images = check_images(images)
        if len(diagnoses) != images.shape[0]:
            raise BackendError(f"qwen_image_edit got {images.shape[0]} image(s) but {len(diagnoses)} diagnoses; "
                               "pass one diagnosis per image")
        strength = float(strength)
        if not 0.0 <= strength <= 1.0:
            raise BackendError(f"restore strength must be in [0, 1], got {strength}")
        if strength == 0.0:
            return images.to(dtype, copy=True)
        height, width = images.shape[-2:]
        counter = _StepCounter(progress, self._steps_per_image(height, width, strength) * images.shape[0])
        results = []
        for index, (image, diagnosis) in enumerate(zip(images, diagnoses)):
            prompt = diagnosis.to_prompt()
            image_seed = int(seed) + index
            if self._uses_tiles(height, width):
                restored = tiled_apply(lambda tile: self.edit(tile[0], prompt, image_seed, strength, counter)[None],
                                       image[None].float(), tile=self.tile, overlap=self.tile_overlap)[0]
            else:
                restored = self.edit(image.float(), prompt, image_seed, strength, counter)
            if self._refines(height, width):
                # Resize-and-refine: the whole image was restored at the working size and scaled back;
                # a light img2img pass over full-resolution tiles brings back detail.
                restored = tiled_apply(
                    lambda tile: self.edit(tile[0], prompt, image_seed, self.refine_strength, counter, img2img=True)[None],
                    restored[None], tile=self.tile, overlap=self.tile_overlap)[0]
            if self.strength_mode == "blend" and strength < 1.0:
                restored = image.float() + strength * (restored - image.float())
            results.append(restored.clamp(0.0, 1.0))
        return torch.stack(results).to(dtype)

    # ---- the cache ---------------------------------------------------------------------------
    def memory_bytes(self) -> int:
        """Bytes of the pipeline's weights, without a text encoder shared with a reasoner (counted there)."""
        shared = getattr(self.loaded.shared_text_encoder, "model", None)
        seen: set[int] = set()
        total = 0
        for name, component in self.pipe.components.items():
            if not isinstance(component, torch.nn.Module) or component is shared:
                continue
            for tensor in [*component.parameters(), *component.buffers()]:
                if tensor.device.type == "meta" or id(tensor) in seen:
                    continue
                seen.add(id(tensor))
                total += tensor.numel() * tensor.element_size()
        return total

    def to(self, device: torch.device | str) -> "QwenImageEditRestorer":
        """Move the pipeline (the cache offloads and restores restorers through this); a pipeline that
        offloads itself (option ``offload``) already keeps its weights on the CPU and stays as it is."""
        if self.loaded.offloaded:
            return self
        self.pipe.to(device)
        self.device = torch.device(device)
        return self


def load(spec: ModelSpec) -> QwenImageEditRestorer:
    """The Qwen-Image-Edit restorer of ``spec`` (``spec.path``: a diffusers folder or ComfyUI file/folder).

    Options: ``steps``, ``guidance`` (true CFG scale), ``negative_prompt``, ``max_megapixels`` (default
    1.048576, i.e. 1024 x 1024 px), ``large`` (resize, tiles or refine), ``tile``, ``tile_overlap``,
    ``refine_strength`` (default 0.3), ``strength_mode`` (blend or denoise), ``offload`` (none, model or sequential), ``vae_tiling``, ``lora``, ``lora_scale``,
    ``fuse_lora``, ``text_encoder`` (Qwen-Image 2.1: a Qwen3-VL folder shared with the reasoner),
    ``config``, ``tokenizer``, ``text_encoder_file``, ``vae_file``, ``variant`` (ComfyUI files).
    """
    device = resolve_device(spec.device)
    dtype = resolve_dtype(spec.dtype, device)
    loaded = load_pipeline(spec, device, dtype)
    if spec.option("vae_tiling", False):
        loaded.pipe.vae.enable_tiling()
    steps = spec.option("steps")
    guidance = spec.option("guidance")
    return QwenImageEditRestorer(
        loaded, device=device, steps=int(steps) if steps is not None else None,
        guidance=float(guidance) if guidance is not None else None,
        negative_prompt=str(spec.option("negative_prompt", " ")),
        max_megapixels=float(spec.option("max_megapixels", NATIVE_MEGAPIXELS)), large=str(spec.option("large", "resize")),
        tile=int(spec.option("tile", 1024)), tile_overlap=int(spec.option("tile_overlap", 128)),
        strength_mode=str(spec.option("strength_mode", "blend")),
        refine_strength=float(spec.option("refine_strength", 0.3)))
