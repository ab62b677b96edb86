"""Saving and loading the lite networks: one safetensors file each, config and provenance inside.

A weight file holds the state dict and, in its safetensors metadata, the architecture config
(``"config"``, JSON), the network kind (``"kind"``: ``"lite_reasoner"`` / ``"lite_restorer"``) and
free-form provenance (``"meta"``, JSON: training command, data, date, thresholds). A JSON file of the
same stem beside it repeats the metadata for people and tools that do not read safetensors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..errors import ModelNotFoundError
from .nets import LiteReasonerNet, LiteRestorerNet, ReasonerConfig, RestorerConfig

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
FILE_NAMES = {"lite_reasoner": "lite_reasoner.safetensors", "lite_restorer": "lite_restorer.safetensors"}
_NETS = {"lite_reasoner": (LiteReasonerNet, ReasonerConfig), "lite_restorer": (LiteRestorerNet, RestorerConfig)}


def default_path(kind: str) -> Path:
    """Where the shipped weights of ``kind`` (``"lite_reasoner"`` or ``"lite_restorer"``) live."""
    return WEIGHTS_DIR / FILE_NAMES[kind]


def resolve_path(kind: str, path: str | Path | None) -> Path:
    """The weight file to load: ``path`` itself, ``path/<file name>`` for a folder, or the shipped file.

    Raises :class:`ModelNotFoundError` naming the folder searched and the file expected.
    """
    if path in (None, ""):
        candidate = default_path(kind)
    else:
        candidate = Path(path).expanduser()
        if candidate.is_dir():
            candidate = candidate / FILE_NAMES[kind]
    if not candidate.is_file():
        raise ModelNotFoundError(
            f"the {kind.replace('_', ' ')} weights were not found: expected the file {candidate.name!r} in "
            f"{str(candidate.parent)!r}. Re-install ComfyUI-RnR (the file ships with it), pass the path of a "
            f"{FILE_NAMES[kind]} file, or use the 'classic' backend, which needs no weights.")
    if candidate.suffix != ".safetensors":
        raise ModelNotFoundError(f"{str(candidate)!r} is not a .safetensors file; lite weights are only loaded "
                                 "from safetensors (pickled checkpoints are refused)")
    return candidate


def save_network(net: torch.nn.Module, kind: str, path: str | Path, meta: dict[str, Any] | None = None,
                 dtype: torch.dtype = torch.float16) -> Path:
    """Write ``net``'s weights (``dtype``; float16 halves the shipped size and is loaded back as
    float32) with its config and ``meta`` to ``path`` plus a JSON sidecar of the same stem."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(dtype).contiguous().cpu() for k, v in net.state_dict().items()}
    config = net.config.to_dict()
    metadata = {"kind": kind, "config": json.dumps(config), "meta": json.dumps(meta or {}),
                "format": "rnr-lite/1", "dtype": str(dtype).replace("torch.", "")}
    save_file(state, str(path), metadata=metadata)
    sidecar = {"kind": kind, "format": "rnr-lite/1", "file": path.name, "dtype": metadata["dtype"], "config": config,
               "parameters": int(sum(v.numel() for v in state.values())), **(meta or {})}
    path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2) + "\n")
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """``{"kind", "config", "meta"}`` of a lite weight file (config and meta parsed from JSON)."""
    with safe_open(str(path), framework="pt") as handle:
        raw = handle.metadata() or {}
    try:
        return {"kind": raw.get("kind", ""), "config": json.loads(raw.get("config", "{}")),
                "meta": json.loads(raw.get("meta", "{}"))}
    except json.JSONDecodeError as exc:
        raise ModelNotFoundError(f"{str(path)!r} has unreadable lite metadata ({exc}); re-export the weights") from exc


def load_network(kind: str, path: str | Path | None = None, device: torch.device | str = "cpu",
                 ) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The network of ``kind`` with its weights (eval mode, float32, on ``device``) and its ``meta``."""
    file = resolve_path(kind, path)
    info = read_metadata(file)
    if info["kind"] and info["kind"] != kind:
        raise ModelNotFoundError(f"{str(file)!r} holds {info['kind']!r} weights, not {kind!r}; "
                                 f"pass a {FILE_NAMES[kind]} file")
    net_class, config_class = _NETS[kind]
    try:
        net = net_class(config_class.from_dict(info["config"]))
    except TypeError as exc:
        raise ModelNotFoundError(f"{str(file)!r} has a config this version cannot build ({exc}); "
                                 "upgrade ComfyUI-RnR or re-export the weights") from exc
    from safetensors.torch import load_file

    state = {k: v.float() for k, v in load_file(str(file)).items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelNotFoundError(f"{str(file)!r} does not match the {kind} network: missing {sorted(missing)[:5]}, "
                                 f"unexpected {sorted(unexpected)[:5]}; re-export the weights")
    return net.eval().to(device), info["meta"]
