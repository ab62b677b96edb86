"""ComfyUI's split Qwen-Image files -> the diffusers and transformers classes.

ComfyUI users hold three files (``models/diffusion_models/qwen_image_edit*.safetensors``,
``models/text_encoders/qwen_2.5_vl_7b*.safetensors``, ``models/vae/qwen_image_vae.safetensors``), in
the original (non-diffusers) key layouts, often in fp8:

- **transformer**: ComfyUI's ``comfy/ldm/qwen_image/model.py`` names its modules as diffusers'
  ``QwenImageTransformer2DModel`` does (diffusers' own single-file table maps it unchanged), so only a
  ``model.diffusion_model.`` prefix is stripped; then diffusers' ``from_single_file`` builds the model.
- **VAE**: the Wan 2.1 layout (``encoder.downsamples.N.residual.M``), converted by diffusers'
  ``convert_wan_vae_to_diffusers`` onto ``AutoencoderKLQwenImage``.
- **text encoder**: the original Qwen2.5-VL layout (``model.layers.N``, ``visual.blocks.N``), renamed
  to transformers' current one (``model.language_model.layers.N``, ``model.visual.blocks.N``).

ComfyUI's "scaled fp8" files keep each fp8 weight with a ``<layer>.scale_weight`` factor; those weights
are dequantised (``weight * scale_weight``) and every tensor is cast to the compute dtype.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import torch

from ..errors import BackendError, ModelNotFoundError

DIFFUSION_PREFIXES = ("model.diffusion_model.", "diffusion_model.")
FP8_DTYPES = tuple(getattr(torch, name) for name in ("float8_e4m3fn", "float8_e5m2") if hasattr(torch, name))


def read_safetensors(path: Path | str, what: str) -> dict[str, torch.Tensor]:
    """All tensors of a .safetensors file (refusing other formats), on the CPU."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ModelNotFoundError(f"{what}: {path} is not a .safetensors file; pickle checkpoints (.ckpt, .pt, .bin) "
                                 "are refused because loading them can run code")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelNotFoundError(f"{what}: {path} cannot be read as safetensors ({exc}); the file is damaged or "
                                 "incomplete") from None


def dequantize(state: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Undo ComfyUI's (scaled) fp8 storage: ``weight * scale_weight`` in ``dtype``; other tensors cast.

    The ``scaled_fp8`` marker and the ``scale_weight``/``scale_input`` entries are dropped.
    """
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key == "scaled_fp8" or key.endswith(".scale_weight") or key.endswith(".scale_input"):
            continue
        if tensor.dtype in FP8_DTYPES or tensor.is_floating_point():
            value = tensor.to(torch.float32) if tensor.dtype in FP8_DTYPES else tensor
            if key.endswith(".weight"):
                scale = state.get(key[: -len("weight")] + "scale_weight")
                if scale is not None:
                    value = value.to(torch.float32) * scale.to(torch.float32)
            out[key] = value.to(dtype)
        else:
            out[key] = tensor
    return out


def strip_prefix(state: dict[str, torch.Tensor], prefixes: tuple[str, ...] = DIFFUSION_PREFIXES) -> dict[str, torch.Tensor]:
    """Keys without the first prefix of ``prefixes`` they start with."""
    out = {}
    for key, value in state.items():
        for prefix in prefixes:
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        out[key] = value
    return out


def _check_keys(what: str, path: Path, loaded: set[str], expected: set[str], optional: set[str] = frozenset()) -> None:
    missing = sorted(expected - loaded - set(optional))
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise BackendError(
            f"{what}: {path} lacks {len(missing)} of the {len(expected)} weights the model needs ({shown}); it is "
            "not a Qwen-Image checkpoint of this kind, or its config does not match it")


@contextlib.contextmanager
def _empty_weights():
    try:
        from accelerate import init_empty_weights
    except ImportError:
        yield
        return
    with init_empty_weights():
        yield


def _materialise(model: torch.nn.Module, state: dict[str, torch.Tensor], what: str, path: Path,
                 optional: set[str] = frozenset()) -> torch.nn.Module:
    current_state = model.state_dict()
    expected = set(current_state)
    _check_keys(what, path, set(state), expected, optional)
    unexpected = sorted(set(state) - expected)
    if unexpected:
        raise BackendError(f"{what}: {path} has {len(unexpected)} weights the model does not know "
                           f"({', '.join(unexpected[:5])}); it is a different architecture or size than the config")
    for key, value in state.items():
        current = current_state[key]
        if tuple(current.shape) != tuple(value.shape):
            raise BackendError(f"{what}: {path} has {key} of shape {tuple(value.shape)}, the config needs "
                               f"{tuple(current.shape)}; the file and the config are of different model sizes")
    model.load_state_dict(state, strict=False, assign=True)
    return model


def load_transformer(path: Path, config_dir: Path, dtype: torch.dtype, class_name: str = "QwenImageTransformer2DModel"):
    """The diffusion transformer from a ComfyUI file, via diffusers' ``from_single_file``."""
    import diffusers

    cls = getattr(diffusers, class_name)
    state = dequantize(strip_prefix(read_safetensors(path, "Qwen-Image transformer")), dtype)
    config = cls.load_config(str(config_dir), subfolder="transformer", local_files_only=True)
    with _empty_weights():
        probe = cls.from_config(config)
    _check_keys("Qwen-Image transformer", path, set(state), set(probe.state_dict()))
    del probe
    return cls.from_single_file(state, config=str(config_dir), subfolder="transformer", torch_dtype=dtype,
                                local_files_only=True)


def load_vae(path: Path, config_dir: Path, dtype: torch.dtype):
    """``AutoencoderKLQwenImage`` from ComfyUI's Wan-layout VAE file (diffusers' Wan converter)."""
    from diffusers import AutoencoderKLQwenImage
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

    state = dequantize(read_safetensors(path, "Qwen-Image VAE"), dtype)
    if any(key.startswith("encoder.down_blocks.") for key in state):
        converted = state
    else:
        converted = convert_wan_vae_to_diffusers(state)
    config = AutoencoderKLQwenImage.load_config(str(config_dir), subfolder="vae", local_files_only=True)
    with _empty_weights():
        vae = AutoencoderKLQwenImage.from_config(config)
    return _materialise(vae, converted, "Qwen-Image VAE", path).to(dtype).eval()


_TEXT_RENAMES = ((re.compile(r"^model\.(?!language_model\.|visual\.)"), "model.language_model."),
                 (re.compile(r"^visual\."), "model.visual."))


def comfy_text_encoder_to_transformers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original Qwen2.5-VL keys (as ComfyUI stores them) -> transformers' current module names."""
    out = {}
    for key, value in state.items():
        for pattern, replacement in _TEXT_RENAMES:
            if pattern.match(key):
                key = pattern.sub(replacement, key, count=1)
                break
        out[key] = value
    return out


def load_text_encoder(path: Path, config_dir: Path, dtype: torch.dtype):
    """``Qwen2_5_VLForConditionalGeneration`` from ComfyUI's text-encoder file.

    ComfyUI files may leave out ``lm_head`` (the edit pipeline reads hidden states, never logits); it
    is then tied to the input embedding.
    """
    from transformers import AutoConfig, Qwen2_5_VLForConditionalGeneration

    state = comfy_text_encoder_to_transformers(
        dequantize(strip_prefix(read_safetensors(path, "Qwen2.5-VL text encoder"), ("qwen25_7b.transformer.",)), dtype))
    config = AutoConfig.from_pretrained(str(config_dir / "text_encoder"), local_files_only=True, trust_remote_code=False)
    with _empty_weights():
        model = Qwen2_5_VLForConditionalGeneration(config)
    model = _materialise(model, state, "Qwen2.5-VL text encoder", path, optional={"lm_head.weight"})
    if "lm_head.weight" not in state:
        model.lm_head.weight = model.get_input_embeddings().weight
    return model.to(dtype).eval()


def component_summary(model: Any) -> dict[str, int]:
    """Parameter count and bytes of a loaded component (for logs and benchmarks)."""
    params = list(model.parameters())
    return {"parameters": sum(p.numel() for p in params), "bytes": sum(p.numel() * p.element_size() for p in params)}
