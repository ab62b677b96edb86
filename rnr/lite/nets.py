"""The two lite networks: a small diagnosing CNN and a diagnosis-conditioned restoration UNet.

Both are plain ``torch.nn.Module`` built from a frozen config dataclass, so a state dict plus the
config (stored as JSON beside the safetensors) recreates them exactly.

Design choices that matter:

* **Restorer** (``LiteRestorerNet``): FFDNet-style pixel-unshuffle by 2 at the input, a UNet of
  dense 3x3 residual blocks from half resolution down (no normalisation layers, no global pooling:
  every output pixel depends on a bounded neighbourhood, so tiles join without seams), and
  feature-wise modulation (FiLM) of every block by the encoded diagnosis. The output head predicts a per-pixel colour gain and offset applied to
  the input, ``out = x * (1 + gain) + offset``: dehazing (``J = I/t - A(1-t)/t``) is exactly such an
  affine map with smooth coefficients, and detail passes through the multiplication untouched.
* **Reasoner** (``LiteReasonerNet``): a global branch on a fixed-size downscaled copy of the image (haze,
  colour cast, large rain layers) and a local branch on a few crops at native resolution (noise sigma,
  blur extent and rain streak width live there), pooled over crops so any number of crops works.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .condition import CONDITION_DIM, OUTPUT_DIM


# ------------------------------------------------------------------------------------------------
# Restorer
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RestorerConfig:
    """Architecture of :class:`LiteRestorerNet`.

    ``widths[i]`` is the channel count at level ``i`` (level 0 at half resolution after the unshuffle,
    each further level halves the resolution again); ``enc_blocks``/``dec_blocks`` count the residual
    blocks per level on the way down and up (the last level is the bottleneck and has ``middle_blocks``).
    """

    widths: tuple[int, ...] = (24, 48, 96, 128)
    enc_blocks: tuple[int, ...] = (0, 1, 1)
    middle_blocks: int = 2
    dec_blocks: tuple[int, ...] = (1, 1, 1)
    cond_dim: int = CONDITION_DIM
    cond_hidden: int = 128

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RestorerConfig":
        data = dict(data)
        for key in ("widths", "enc_blocks", "dec_blocks"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    @property
    def multiple(self) -> int:
        """Input sides are padded to a multiple of this (unshuffle by 2, then one halving per level)."""
        return 2 * 2 ** (len(self.widths) - 1)


class FiLMBlock(nn.Module):
    """Residual block of two dense 3x3 convolutions, modulated by (gamma, beta) per channel.

    Dense 3x3 convolutions rather than NAFNet's 1x1 + depthwise pairs: on a 2-core CPU (oneDNN) a
    dense 3x3 convolution runs about 8x more multiply-adds per second than a 1x1 one, and on the GPU
    both are memory-bound at these widths. No normalisation layer: it would reduce over the image.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        # The residual scale starts small so that the un-normalised stack starts close to the identity.
        self.scale = nn.Parameter(torch.full((1, channels, 1, 1), 0.1))

    @property
    def channels(self) -> int:
        return self.conv1.out_channels

    def forward(self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        scale = self.scale.view(-1)
        w2, b2 = self.conv2.weight * scale[:, None, None, None], self.conv2.bias * scale
        if x.shape[0] == 1:
            # One image: fold the modulation into conv1's weights, saving two passes over the features
            # (a third of the CPU time at 1 MP). Same function as the batched branch.
            g = 1.0 + gamma.view(-1)
            h = F.conv2d(x, self.conv1.weight * g[:, None, None, None], self.conv1.bias * g + beta.view(-1), padding=1)
        else:
            h = self.conv1(x) * (1.0 + gamma) + beta
        return x + F.conv2d(F.leaky_relu(h, 0.1), w2, b2, padding=1)


class LiteRestorerNet(nn.Module):
    """Diagnosis-conditioned restoration UNet; ``forward(images [B,3,H,W], condition [B,D]) -> [B,3,H,W]``.

    ``H`` and ``W`` must be multiples of ``config.multiple``; :meth:`restore_padded` pads any size.
    """

    def __init__(self, config: RestorerConfig = RestorerConfig()) -> None:
        super().__init__()
        self.config = config
        w = config.widths
        if len(config.enc_blocks) != len(w) - 1 or len(config.dec_blocks) != len(w) - 1:
            raise ValueError(f"enc_blocks and dec_blocks need {len(w) - 1} entries for widths {w}")
        self.stem = nn.Conv2d(12, w[0], 3, padding=1)
        self.encoders = nn.ModuleList(nn.ModuleList(FiLMBlock(w[i]) for _ in range(n))
                                      for i, n in enumerate(config.enc_blocks))
        self.downs = nn.ModuleList(nn.Conv2d(w[i], w[i + 1], 2, stride=2) for i in range(len(w) - 1))
        self.middle = nn.ModuleList(FiLMBlock(w[-1]) for _ in range(config.middle_blocks))
        self.ups = nn.ModuleList(nn.Sequential(nn.Conv2d(w[i + 1], 4 * w[i], 1), nn.PixelShuffle(2))
                                 for i in reversed(range(len(w) - 1)))
        self.decoders = nn.ModuleList(nn.ModuleList(FiLMBlock(w[i]) for _ in range(n))
                                      for i, n in zip(reversed(range(len(w) - 1)), config.dec_blocks))
        self.head = nn.Conv2d(w[0], 24, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

        blocks = [b for level in self.encoders for b in level] + list(self.middle) + \
                 [b for level in self.decoders for b in level]
        self._film_sizes = [2 * b.channels for b in blocks]
        self.cond_mlp = nn.Sequential(
            nn.Linear(config.cond_dim, config.cond_hidden), nn.SiLU(),
            nn.Linear(config.cond_hidden, config.cond_hidden), nn.SiLU(),
            nn.Linear(config.cond_hidden, sum(self._film_sizes)),
        )
        nn.init.zeros_(self.cond_mlp[-1].weight)
        nn.init.zeros_(self.cond_mlp[-1].bias)

    def _films(self, condition: torch.Tensor, dtype: torch.dtype) -> list[tuple[torch.Tensor, torch.Tensor]]:
        params = self.cond_mlp(condition.to(self.cond_mlp[0].weight.dtype)).to(dtype)
        out = []
        for chunk in params.split(self._film_sizes, dim=1):
            gamma, beta = chunk[:, :, None, None].chunk(2, dim=1)
            out.append((gamma, beta))
        return out

    def forward(self, images: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        films = iter(self._films(condition, images.dtype))
        h = F.leaky_relu(self.stem(F.pixel_unshuffle(images, 2)), 0.1)
        skips = []
        for blocks, down in zip(self.encoders, self.downs):
            for block in blocks:
                h = block(h, *next(films))
            skips.append(h)
            h = down(h)
        for block in self.middle:
            h = block(h, *next(films))
        for up, blocks, skip in zip(self.ups, self.decoders, reversed(skips)):
            h = up(h) + skip
            for block in blocks:
                h = block(h, *next(films))
        gain, offset = F.pixel_shuffle(self.head(h), 2).chunk(2, dim=1)
        return images * (1.0 + gain) + offset

    def restore_padded(self, images: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """``forward`` for any ``H, W``: pad by reflection to the next multiple, run, crop back."""
        m = self.config.multiple
        h, w = images.shape[-2:]
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            images = F.pad(images, (0, pw, 0, ph), mode=mode)
        return self(images, condition)[..., :h, :w]


# ------------------------------------------------------------------------------------------------
# Reasoner
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReasonerConfig:
    """Architecture of :class:`LiteReasonerNet`."""

    global_size: int = 128
    """Side of the downscaled whole-image view, px."""
    crop_size: int = 96
    """Side of each native-resolution crop, px."""
    global_widths: tuple[int, ...] = (24, 48, 96, 160)
    local_widths: tuple[int, ...] = (32, 48, 96, 160)
    head_hidden: int = 256
    output_dim: int = OUTPUT_DIM
    global_blocks: tuple[int, ...] = ()
    """Residual blocks per stage of the global branch, one number per width (``()``: one per stage)."""
    local_blocks: tuple[int, ...] = ()
    """Residual blocks per stage of the crop branch (``()``: one per stage)."""

    def __post_init__(self) -> None:
        for widths, blocks, name in ((self.global_widths, self.global_blocks, "global_blocks"),
                                     (self.local_widths, self.local_blocks, "local_blocks")):
            if blocks and (len(blocks) != len(widths) or any(not isinstance(n, int) or n < 1 for n in blocks)):
                raise ValueError(f"ReasonerConfig.{name} must give at least one block for each of the {len(widths)} "
                                 f"stages, got {blocks!r}")

    def blocks(self, branch: str) -> tuple[int, ...]:
        """Residual blocks per stage of ``branch`` ('global' or 'local')."""
        widths, blocks = ((self.global_widths, self.global_blocks) if branch == "global"
                          else (self.local_widths, self.local_blocks))
        return blocks or (1,) * len(widths)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ReasonerConfig":
        data = dict(data)
        for key in ("global_widths", "local_widths", "global_blocks", "local_blocks"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


class _ResidualConv(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.scale = nn.Parameter(torch.full((1, channels, 1, 1), 0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.scale * self.conv2(F.gelu(self.conv1(x)))


class _Branch(nn.Module):
    """Stride-1 stem (keeps pixel-level statistics), then stride-2 stages; mean and max pooled.

    Each stage is a convolution, GELU and ``blocks[i]`` residual blocks, in one flat ``body``.
    """

    def __init__(self, widths: tuple[int, ...], blocks: tuple[int, ...] | None = None) -> None:
        super().__init__()
        blocks = blocks or (1,) * len(widths)
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip((3, *widths[:-1]), widths)):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=1 if i == 0 else 2, padding=1), nn.GELU()]
            layers += [_ResidualConv(c_out) for _ in range(blocks[i])]
        self.body = nn.Sequential(*layers)
        self.out_dim = 2 * widths[-1]

    def stages(self) -> list[tuple[nn.Conv2d, list[_ResidualConv]]]:
        """(convolution, residual blocks) of each stage, in order."""
        stages: list[tuple[nn.Conv2d, list[_ResidualConv]]] = []
        for layer in self.body:
            if isinstance(layer, nn.Conv2d):
                stages.append((layer, []))
            elif isinstance(layer, _ResidualConv):
                stages[-1][1].append(layer)
        return stages

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Centre the input so that the first layer sees contrast, not the mean level, as most of its input.
        h = self.body(x * 2.0 - 1.0)
        return torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)


class LiteReasonerNet(nn.Module):
    """``forward(global_view [B,3,G,G], crops [B,K,3,C,C]) -> raw outputs [B, OUTPUT_DIM]``.

    See :mod:`rnr.lite.condition` for the layout of the outputs and how they become a Diagnosis.
    """

    def __init__(self, config: ReasonerConfig = ReasonerConfig()) -> None:
        super().__init__()
        self.config = config
        self.global_branch = _Branch(config.global_widths, config.blocks("global"))
        self.local_branch = _Branch(config.local_widths, config.blocks("local"))
        features = self.global_branch.out_dim + 2 * self.local_branch.out_dim
        self.head = nn.Sequential(
            nn.Linear(features, config.head_hidden), nn.GELU(),
            nn.Linear(config.head_hidden, config.head_hidden), nn.GELU(),
            nn.Linear(config.head_hidden, config.output_dim),
        )

    def forward(self, global_view: torch.Tensor, crops: torch.Tensor) -> torch.Tensor:
        b, k = crops.shape[:2]
        g = self.global_branch(global_view)
        local = self.local_branch(crops.flatten(0, 1)).view(b, k, -1)
        features = torch.cat([g, local.mean(dim=1), local.amax(dim=1)], dim=1)
        return self.head(features)


def crop_grid(height: int, width: int, crop: int, count: int) -> list[tuple[int, int]]:
    """Top-left corners of ``count`` crops of side ``crop`` spread evenly over an image (deterministic).

    The crops lie on a near-square grid covering the image; for images smaller than ``crop`` the single
    corner (0, 0) is returned and the caller pads.
    """
    if height <= crop and width <= crop:
        return [(0, 0)]
    rows = max(1, round(math.sqrt(count * height / max(width, 1))))
    cols = max(1, math.ceil(count / rows))
    ys = [round(i * (height - crop) / max(rows - 1, 1)) if rows > 1 else (height - crop) // 2 for i in range(rows)]
    xs = [round(j * (width - crop) / max(cols - 1, 1)) if cols > 1 else (width - crop) // 2 for j in range(cols)]
    corners = [(max(y, 0), max(x, 0)) for y in ys for x in xs]
    return sorted(set(corners))


def reasoner_views(images: torch.Tensor, config: ReasonerConfig, crops: int = 9,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The two inputs of :class:`LiteReasonerNet` from a batch ``[B,3,H,W]`` in 0..1.

    The global view is an antialiased resize to ``global_size`` square; the crops are native-resolution
    windows on a deterministic grid (or at random positions when ``generator`` is given, for training).
    Images smaller than a crop are padded by reflection-like replication.
    """
    b, _, h, w = images.shape
    g = config.global_size
    global_view = F.interpolate(images, size=(g, g), mode="bilinear", antialias=True, align_corners=False)
    c = config.crop_size
    if h < c or w < c:
        images = F.pad(images, (0, max(c - w, 0), 0, max(c - h, 0)), mode="replicate")
        h, w = images.shape[-2:]
    if generator is not None:
        ys = torch.randint(0, h - c + 1, (crops,), generator=generator).tolist()
        xs = torch.randint(0, w - c + 1, (crops,), generator=generator).tolist()
        corners = list(zip(ys, xs))
    else:
        corners = crop_grid(h, w, c, crops)
    views = torch.stack([images[:, :, y:y + c, x:x + c] for y, x in corners], dim=1)
    return global_view.clamp(0, 1), views


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def conv_macs_per_pixel(net: LiteRestorerNet, side: int = 64) -> float:
    """Multiply-adds per input pixel of the restorer (counted by torch on a ``side`` square input)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        net(torch.zeros(1, 3, side, side), torch.zeros(1, net.config.cond_dim))
    return counter.get_total_flops() / 2.0 / (side * side)
