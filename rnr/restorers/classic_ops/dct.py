"""The 8x8 DCT shared by the denoiser and its noise model."""

from __future__ import annotations

import math

import torch

BLOCK = 8


def dct_matrix(size: int = BLOCK, *, device: torch.device | None = None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The orthonormal DCT-II matrix ``[size, size]`` (rows are frequencies)."""
    n = torch.arange(size, dtype=torch.float64)
    k = n[:, None]
    matrix = torch.cos(math.pi * (2 * n[None, :] + 1) * k / (2 * size)) * math.sqrt(2.0 / size)
    matrix[0] /= math.sqrt(2.0)
    return matrix.to(device=device, dtype=dtype)


def basis_filters(device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The 64 2-D DCT basis blocks as convolution filters ``[64,1,8,8]``, index ``8*ky + kx`` (DC first)."""
    basis = dct_matrix(BLOCK, device=device, dtype=dtype)
    return torch.einsum("ka,lb->klab", basis, basis).reshape(BLOCK * BLOCK, 1, BLOCK, BLOCK)
