"""LoRA on the Qwen-Image transformer: attach, export in a format both loaders accept, read back.

The exported file is one ``.safetensors`` with, per adapted linear layer ``M`` (diffusers module path,
e.g. ``transformer_blocks.0.attn.to_q``)::

    transformer.M.lora_A.weight   [rank, in]
    transformer.M.lora_B.weight   [out, rank]     (already multiplied by alpha / rank)

and no ``alpha`` keys, so every loader applies ``W + B @ A`` at strength 1:

- ComfyUI's ``LoraLoaderModelOnly`` on its native Qwen-Image model: ``comfy.lora.model_lora_keys_unet``
  maps ``transformer.<key>`` to ``diffusion_model.<key>.weight`` for ``QwenImage`` models (ComfyUI's
  module names equal diffusers' for this transformer), and ``lora_A``/``lora_B`` is one of its
  LoRA layouts; without an ``alpha`` key the scale is 1.
- diffusers' ``QwenImageLoraLoaderMixin.load_lora_weights`` (our Restore backend's ``lora`` option):
  ``transformer.``-prefixed PEFT keys, rank from the shapes, alpha defaulting to the rank (scale 1).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ..config import TrainingError

PREFIX = "transformer."
FORMAT = "rnr-qwen-image-lora/1"
DEFAULT_TARGETS: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj",
                                    "to_add_out", "img_mlp.net.0.proj", "img_mlp.net.2", "txt_mlp.net.0.proj",
                                    "txt_mlp.net.2")
"""Attention projections of both streams and both MLPs of every block (the modulation layers stay frozen)."""


def add_lora(transformer: Any, rank: int, alpha: float, targets: tuple[str, ...] = DEFAULT_TARGETS,
             dropout: float = 0.0) -> list[torch.nn.Parameter]:
    """Freeze the transformer and give the ``targets`` layers a trainable LoRA; returns its parameters.

    LoRA B starts at zero, so the adapted model starts equal to the base model.
    """
    from peft import LoraConfig

    transformer.requires_grad_(False)
    transformer.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(targets),
                                       init_lora_weights=True))
    params = [p for p in transformer.parameters() if p.requires_grad]
    if not params:
        raise TrainingError(f"no layer of the transformer matches the LoRA targets {targets}")
    for param in params:
        param.data = param.data.float()
    return params


def adapted_layers(transformer: Any) -> dict[str, Any]:
    """Module path -> peft LoRA layer, for every adapted layer."""
    return {name: module for name, module in transformer.named_modules()
            if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {})}


def export_state_dict(transformer: Any) -> dict[str, torch.Tensor]:
    """The LoRA as the exported key layout (see the module docs), float32 on the CPU."""
    out: dict[str, torch.Tensor] = {}
    for name, layer in adapted_layers(transformer).items():
        scale = float(layer.scaling["default"])
        down = layer.lora_A["default"].weight.detach().float().cpu()
        up = layer.lora_B["default"].weight.detach().float().cpu() * scale
        out[f"{PREFIX}{name}.lora_A.weight"] = down.contiguous()
        out[f"{PREFIX}{name}.lora_B.weight"] = up.contiguous()
    if not out:
        raise TrainingError("the transformer has no LoRA layers to export")
    return out


def save_lora(transformer: Any, path: str | Path, info: dict[str, Any] | None = None) -> Path:
    """Write the LoRA to ``path`` (a .safetensors file) with a small JSON metadata record."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = export_state_dict(transformer)
    ranks = {t.shape[0] for k, t in tensors.items() if k.endswith("lora_A.weight")}
    metadata = {"format": FORMAT, "rank": str(max(ranks)), "info": json.dumps(info or {})}
    save_file(tensors, str(path), metadata=metadata)
    return path


def lora_delta(path: str | Path) -> dict[str, torch.Tensor]:
    """Module path -> the weight change ``B @ A`` a saved LoRA applies (for checks and merging)."""
    tensors = load_file(str(path))
    deltas = {}
    for key, down in tensors.items():
        if key.endswith(".lora_A.weight"):
            module = key[len(PREFIX):-len(".lora_A.weight")]
            deltas[module] = tensors[f"{PREFIX}{module}.lora_B.weight"].float() @ down.float()
    return deltas


def read_metadata(path: str | Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})


def raw_state_dict(transformer: Any) -> dict[str, torch.Tensor]:
    """The adapter's own parameters (peft layout, unscaled), for resumable checkpoints."""
    from peft.utils import get_peft_model_state_dict

    return {k: v.detach().float().cpu().contiguous() for k, v in get_peft_model_state_dict(transformer).items()}


def load_raw_state_dict(transformer: Any, tensors: dict[str, torch.Tensor]) -> None:
    from peft.utils import set_peft_model_state_dict

    result = set_peft_model_state_dict(transformer, tensors)
    unexpected = getattr(result, "unexpected_keys", None)
    if unexpected:
        raise TrainingError(f"the checkpoint's LoRA does not fit this transformer (e.g. {unexpected[0]}); start a "
                            "new run with another --out")


__all__ = [
    "DEFAULT_TARGETS",
    "FORMAT",
    "PREFIX",
    "adapted_layers",
    "add_lora",
    "export_state_dict",
    "load_raw_state_dict",
    "lora_delta",
    "raw_state_dict",
    "read_metadata",
    "save_lora",
]
