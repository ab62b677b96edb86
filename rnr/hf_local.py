"""Local Hugging Face folders: what a layout must hold, pickles refused, remote code never run.

The big-model backends load transformers and diffusers checkpoints from disk only. Before a library
call sees a folder, these checks say which folder was searched and which files were expected, so a
user who points at the wrong place gets a message to act on instead of a hub lookup or a traceback.

Every ``from_pretrained`` call of the backends takes :func:`load_kwargs`: local files only, no remote
code, safetensors only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from .errors import BackendError, ModelNotFoundError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
TOKENIZER_FILES = ("tokenizer.json", "vocab.json + merges.txt")
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")


def load_kwargs() -> dict[str, Any]:
    """Keyword arguments for every ``from_pretrained``: offline, no remote code, safetensors."""
    return {"local_files_only": True, "trust_remote_code": False, "use_safetensors": True}


def _listing(folder: Path, limit: int = 12) -> str:
    try:
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    except OSError:
        return "(unreadable)"
    if not names:
        return "(empty)"
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def not_found(what: str, folder: Path | str, expected: Iterable[str], hint: str = "") -> ModelNotFoundError:
    """The error for a missing or incomplete model folder: the folder searched and the files expected."""
    folder = Path(folder)
    if not folder.exists():
        seen = "it does not exist"
    elif not folder.is_dir():
        seen = "it is a file, not a folder"
    else:
        seen = f"it holds: {_listing(folder)}"
    message = (f"{what}: searched the folder {folder} ({seen}); expected the files "
               f"{', '.join(expected)}")
    if hint:
        message += f". {hint}"
    return ModelNotFoundError(message)


def require_dir(what: str, folder: Path | str, expected: Iterable[str], hint: str = "") -> Path:
    """``folder`` as a Path when it is an existing directory, else :func:`not_found`."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise not_found(what, path, expected, hint)
    return path


def read_json(path: Path | str, what: str) -> dict[str, Any]:
    """A JSON object from a file, with errors that name the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise not_found(what, path.parent, [path.name]) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelNotFoundError(f"{what}: {path} cannot be read as JSON ({exc}); replace it with the file "
                                 "that came with the model") from None
    if not isinstance(data, dict):
        raise ModelNotFoundError(f"{what}: {path} holds {type(data).__name__}, expected a JSON object")
    return data


def refuse_pickles(folder: Path, what: str) -> None:
    """Raise when ``folder`` has pickle weights but no safetensors (pickles can run code when loaded)."""
    safetensors = list(folder.glob("*.safetensors"))
    pickles = [p for p in folder.iterdir() if p.is_file() and p.suffix in PICKLE_SUFFIXES]
    if pickles and not safetensors:
        raise ModelNotFoundError(
            f"{what}: {folder} has only pickle weights ({', '.join(p.name for p in pickles[:4])}), which can run "
            "arbitrary code when loaded and are refused. Convert them to .safetensors (e.g. with "
            "`safetensors.torch.save_file`) or download the safetensors version of the model")


def check_weights(folder: Path, what: str, expected: Iterable[str] = ("*.safetensors",)) -> list[Path]:
    """The safetensors weight files of ``folder`` (all shards of an index present), else an error."""
    refuse_pickles(folder, what)
    index_files = sorted(folder.glob("*.safetensors.index.json"))
    if index_files:
        index = read_json(index_files[0], what)
        shards = sorted(set(index.get("weight_map", {}).values()))
        missing = [name for name in shards if not (folder / name).is_file()]
        if missing:
            raise ModelNotFoundError(
                f"{what}: {folder} lists {len(shards)} weight shards in {index_files[0].name} but "
                f"{len(missing)} are missing ({', '.join(missing[:4])}); the download is incomplete")
        return [folder / name for name in shards]
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise not_found(what, folder, list(expected))
    return files


def refuse_remote_code(config: dict[str, Any], path: Path, what: str) -> None:
    """Raise for a config that needs code from the model folder (``auto_map``)."""
    if config.get("auto_map"):
        raise BackendError(
            f"{what}: {path} asks for custom code from the model folder (auto_map in its config); ComfyUI-RnR "
            "never runs code shipped with weights. Use a checkpoint supported by transformers itself")


def has_tokenizer(folder: Path) -> bool:
    return (folder / "tokenizer.json").is_file() or ((folder / "vocab.json").is_file()
                                                    and (folder / "merges.txt").is_file())


def has_processor(folder: Path) -> bool:
    return any((folder / name).is_file() for name in PROCESSOR_FILES)


def check_transformers_folder(path: Path | str, what: str, *, model_types: Iterable[str] = (),
                              tokenizer: bool = True, processor: bool = True,
                              processor_folder: Path | str | None = None) -> dict[str, Any]:
    """Check a transformers checkpoint folder and return its ``config.json``.

    ``model_types``: accepted ``model_type`` values (empty: any). ``tokenizer``/``processor``: whether
    the tokenizer and image-processor files must be there (or in ``processor_folder`` when given).
    """
    expected = ["config.json", "*.safetensors (or model.safetensors.index.json and its shards)"]
    support = Path(processor_folder) if processor_folder else None
    if tokenizer:
        expected.append("tokenizer.json (or vocab.json and merges.txt)")
    if processor:
        expected.append("preprocessor_config.json (or processor_config.json)")
    folder = require_dir(what, path, expected)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise not_found(what, folder, expected, "Point at the folder that holds config.json (the model's root folder)")
    config = read_json(config_path, what)
    refuse_remote_code(config, folder, what)
    if model_types and config.get("model_type") not in tuple(model_types):
        raise BackendError(f"{what}: {config_path} says model_type={config.get('model_type')!r}, expected "
                           f"{' or '.join(repr(t) for t in model_types)}; this folder holds another kind of model")
    check_weights(folder, what, expected)
    source = support or folder
    if tokenizer and not has_tokenizer(source):
        raise not_found(what, source, expected, "The tokenizer files are missing")
    if processor and not has_processor(source):
        raise not_found(what, source, expected, "The image-processor files are missing")
    return config
