"""Checkpoints of the lite models (safetensors: weights and their moving average) and the EMA itself."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from rnr.lite.nets import LiteReasonerNet, LiteRestorerNet, ReasonerConfig, RestorerConfig
from rnr.lite.weights import FILE_NAMES, load_network

NETS = {"reasoner": (LiteReasonerNet, ReasonerConfig), "restorer": (LiteRestorerNet, RestorerConfig)}


class EMA:
    """Exponential moving average of a model's parameters (the weights that get exported)."""

    def __init__(self, model: torch.nn.Module, decay: float = 0.999) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        # Short warm-up: early on the average follows the weights closely.
        decay = min(self.decay, (1 + step) / (10 + step))
        ema = [p for p in self.model.state_dict().values() if p.is_floating_point()]
        new = [p for p in model.state_dict().values() if p.is_floating_point()]
        torch._foreach_lerp_(ema, new, 1.0 - decay)


def save_checkpoint(path: str | Path, kind: str, model: torch.nn.Module, ema: EMA, step: int,
                    extra: dict | None = None) -> Path:
    """Weights and EMA weights (float32) of one model, with its config and the step count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"ema.{k}": v.detach().float().cpu().contiguous() for k, v in ema.model.state_dict().items()})
    metadata = {"kind": kind, "step": str(step), "config": json.dumps(model.config.to_dict()),
                "extra": json.dumps(extra or {})}
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.replace(path)
    return path


def load_checkpoint(path: str | Path, kind: str, device: torch.device) -> tuple[torch.nn.Module, torch.nn.Module, int]:
    """(model, ema_model, step) from :func:`save_checkpoint` output, or from an exported weight file
    (``rnr/weights/lite_*.safetensors``, whose weights then start both the model and its EMA)."""
    path = Path(path)
    if path.is_dir():
        candidates = [path / f"ckpt_{kind}.safetensors", path / FILE_NAMES[f"lite_{kind}"]]
        found = [c for c in candidates if c.is_file()]
        if not found:
            raise FileNotFoundError(f"no {kind} checkpoint in {str(path)!r}: looked for "
                                    + ", ".join(c.name for c in candidates))
        path = found[0]
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        keys = list(handle.keys())
        tensors = {k: handle.get_tensor(k) for k in keys}
    if not any(k.startswith("model.") for k in keys):
        net, _ = load_network(f"lite_{kind}", path, device)
        return net.train(), copy.deepcopy(net).eval(), 0
    net_class, config_class = NETS[kind]
    config = config_class.from_dict(json.loads(metadata["config"]))
    model, ema = net_class(config), net_class(config)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    return model.to(device).train(), ema.to(device).eval(), int(metadata.get("step", 0))
