"""Grow a trained lite network: more residual blocks, starting as the same function.

A new :class:`~rnr.lite.nets.FiLMBlock` is appended after a level's trained blocks with its residual
scale at 0 (it passes its input through unchanged) and a zero FiLM modulation, so the grown network
computes exactly what the trained one did; training then lets the new blocks add capacity (deeper
levels see a wider neighbourhood, which deblurring needs) without starting again from random weights.

    python -m training.lite.train --stage restorer --resume out/lite7 \\
        --grow-restorer '{"middle_blocks": 4, "enc_blocks": [0, 1, 2], "dec_blocks": [1, 1, 2]}' ...

The reasoner grows the same way (:func:`grow_reasoner`): more residual blocks per stage of its global
and crop branches, each new one with its residual scale at 0::

    python -m training.lite.train --stage reasoner --resume rnr/weights \\
        --grow-reasoner '{"global_blocks": [1, 2, 2, 2], "local_blocks": [2, 2, 2, 1]}' ...
"""

from __future__ import annotations

import json
from itertools import accumulate

import torch

from rnr.lite.nets import LiteReasonerNet, LiteRestorerNet, ReasonerConfig, RestorerConfig


def _changes(changes: str | dict, kind: str, allowed: set[str]) -> dict:
    """``changes`` as a dict of block counts (from a dict or its JSON text), with only ``allowed`` keys."""
    if isinstance(changes, str):
        try:
            changes = json.loads(changes)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--grow-{kind} must be a JSON object of block counts, got {changes!r}: {exc}") from exc
    if not isinstance(changes, dict):
        raise ValueError(f"--grow-{kind} must be a JSON object of block counts, got {changes!r}")
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise ValueError(f"a grown {kind} can only change {', '.join(sorted(allowed))}; got {', '.join(unknown)}")
    return changes


def grown_config(config: RestorerConfig, changes: str | dict) -> RestorerConfig:
    """``config`` with the block counts in ``changes`` (a dict or its JSON text); only block counts may change."""
    changes = _changes(changes, "restorer", {"enc_blocks", "middle_blocks", "dec_blocks"})
    new = RestorerConfig.from_dict({**config.to_dict(), **changes})
    old_counts = list(config.enc_blocks) + [config.middle_blocks] + list(config.dec_blocks)
    new_counts = list(new.enc_blocks) + [new.middle_blocks] + list(new.dec_blocks)
    if len(new_counts) != len(old_counts) or any(n < o for n, o in zip(new_counts, old_counts)):
        raise ValueError(f"a grown restorer keeps every trained block: block counts {new_counts} must be at least "
                         f"{old_counts} level by level (enc_blocks, middle_blocks, dec_blocks)")
    return new


def _levels(net: LiteRestorerNet) -> list[list[torch.nn.Module]]:
    return [list(level) for level in net.encoders] + [list(net.middle)] + [list(level) for level in net.decoders]


@torch.no_grad()
def grow_restorer(net: LiteRestorerNet, changes: str | dict) -> LiteRestorerNet:
    """A copy of ``net`` with more blocks per level (see :func:`grown_config`) that computes the same output."""
    config = grown_config(net.config, changes)
    grown = LiteRestorerNet(config).to(next(net.parameters()).device)
    old_state = net.state_dict()
    # Everything outside the block lists and the FiLM projection keeps its name and shape.
    grown.load_state_dict({k: v for k, v in old_state.items() if not k.startswith(("encoders.", "middle.", "decoders.",
                                                                                   "cond_mlp.4."))}, strict=False)
    old_film = net.cond_mlp[4]
    new_film = grown.cond_mlp[4]
    new_film.weight.zero_()
    new_film.bias.zero_()
    old_offsets = list(accumulate(net._film_sizes, initial=0))
    new_offsets = list(accumulate(grown._film_sizes, initial=0))
    old_index = new_index = 0
    for old_level, new_level in zip(_levels(net), _levels(grown)):
        for j, block in enumerate(new_level):
            if j < len(old_level):
                block.load_state_dict(old_level[j].state_dict())
                src, dst = old_offsets[old_index + j], new_offsets[new_index + j]
                size = net._film_sizes[old_index + j]
                new_film.weight[dst:dst + size] = old_film.weight[src:src + size]
                new_film.bias[dst:dst + size] = old_film.bias[src:src + size]
            else:
                block.scale.zero_()  # the new block starts as the identity
        old_index += len(old_level)
        new_index += len(new_level)
    return grown


def grown_reasoner_config(config: ReasonerConfig, changes: str | dict) -> ReasonerConfig:
    """``config`` with the residual blocks per stage in ``changes`` (``global_blocks``, ``local_blocks``)."""
    changes = _changes(changes, "reasoner", {"global_blocks", "local_blocks"})
    try:
        new = ReasonerConfig.from_dict({**config.to_dict(), **changes})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"--grow-reasoner wants a list of block counts per stage for each branch, e.g. "
                         f'{{"global_blocks": {[1] * len(config.global_widths)}}}; got {changes!r}: {exc}') from exc
    for branch in ("global", "local"):
        old_counts, new_counts = config.blocks(branch), new.blocks(branch)
        if any(n < o for n, o in zip(new_counts, old_counts)):
            raise ValueError(f"a grown reasoner keeps every trained block: {branch}_blocks {list(new_counts)} must be "
                             f"at least {list(old_counts)} stage by stage")
    return new


@torch.no_grad()
def grow_reasoner(net: LiteReasonerNet, changes: str | dict) -> LiteReasonerNet:
    """A copy of ``net`` with more residual blocks per stage (:func:`grown_reasoner_config`), same outputs."""
    config = grown_reasoner_config(net.config, changes)
    grown = LiteReasonerNet(config).to(next(net.parameters()).device)
    grown.head.load_state_dict(net.head.state_dict())
    for old_branch, new_branch in ((net.global_branch, grown.global_branch), (net.local_branch, grown.local_branch)):
        for (old_conv, old_blocks), (new_conv, new_blocks) in zip(old_branch.stages(), new_branch.stages()):
            new_conv.load_state_dict(old_conv.state_dict())
            for j, block in enumerate(new_blocks):
                if j < len(old_blocks):
                    block.load_state_dict(old_blocks[j].state_dict())
                else:
                    block.scale.zero_()  # the new block starts as the identity
    return grown


GROWERS = {"reasoner": (grown_reasoner_config, grow_reasoner), "restorer": (grown_config, grow_restorer)}
"""Per network kind: (the grown config of a config, the grown copy of a trained network)."""
