"""Device and dtype policy, in one place."""

from __future__ import annotations

import torch

from .errors import BackendError

DTYPES = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
          "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` -> the first CUDA GPU if there is one, else the CPU; otherwise ``torch.device(name)``."""
    if isinstance(name, torch.device):
        return name
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise BackendError(f"unknown device {name!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BackendError(f"device {name!r} was asked for but no CUDA GPU is available; use 'auto' or 'cpu'")
    return device


def resolve_dtype(name: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``"auto"`` -> bf16 on GPUs that support it, fp16 on other GPUs, fp32 on the CPU."""
    if isinstance(name, torch.dtype):
        return name
    if name in (None, "", "auto"):
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if name not in DTYPES:
        raise BackendError(f"unknown dtype {name!r}: use 'auto', " + ", ".join(sorted(set(DTYPES))))
    return DTYPES[name]
