"""Find and load a Qwen-Image edit pipeline: a diffusers folder or ComfyUI's split files.

Layouts:

1. **diffusers folder** (``model_index.json`` + component subfolders): ``QwenImageEditPipeline``,
   ``QwenImageEditPlusPipeline`` or ``QwenImage21Pipeline``, as ``model_index.json`` says. The
   Qwen-Image 2.1 text encoder is a Qwen3-VL: it is loaded through :mod:`rnr.cache` as a ``qwen3vl``
   reasoner, so a reasoner on the same checkpoint (option ``text_encoder``) and the restorer share
   one copy of it.
2. **ComfyUI files**: ``models/diffusion_models/qwen_image_edit*.safetensors``,
   ``models/text_encoders/qwen_2.5_vl_7b*.safetensors``, ``models/vae/qwen_image_vae*.safetensors``
   (the path is the transformer file, the ``models`` folder or the ComfyUI folder; options
   ``text_encoder_file`` / ``vae_file`` name the others). Configs come from option ``config`` (a
   diffusers folder, weights not needed) or from :mod:`.qwen_image_edit_configs`; the tokenizer from
   that folder, option ``tokenizer``, or ComfyUI's own ``comfy/text_encoders/qwen25_tokenizer``.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import BackendError, ModelNotFoundError
from ..hf_local import check_weights, has_processor, has_tokenizer, not_found, read_json, refuse_pickles
from ..registry import ModelSpec

log = logging.getLogger("rnr.restorers.qwen_image_edit")

FAMILIES = {"QwenImageEditPipeline": "edit", "QwenImageEditPlusPipeline": "edit_plus",
            "QwenImage21Pipeline": "qwen_image_21"}
COMFY_FILES = {"transformer": ("diffusion_models", "qwen_image_edit*.safetensors"),
               "text_encoder": ("text_encoders", "qwen_2.5_vl_7b*.safetensors"),
               "vae": ("vae", "qwen_image_vae*.safetensors")}
COMFY_TOKENIZER = Path("comfy") / "text_encoders" / "qwen25_tokenizer"
OFFLOAD_MODES = ("none", "model", "sequential")
LORA_NAME = "rnr_lora"


@dataclass
class LoadedPipeline:
    """A loaded pipeline and where it came from."""

    pipe: Any
    family: str
    layout: str
    files: dict[str, str] = field(default_factory=dict)
    shared_text_encoder: Any = None
    """The qwen3vl reasoner whose model is this pipeline's text encoder (Qwen-Image 2.1), else None."""
    offloaded: bool = False
    """Whether the pipeline moves its models between the CPU and the GPU itself (option ``offload``)."""


def _expected_layouts() -> list[str]:
    return ["model_index.json with transformer/, vae/, text_encoder/, scheduler/ and tokenizer or processor "
            "subfolders (a diffusers folder)",
            "or ComfyUI's " + ", ".join(f"models/{sub}/{pattern}" for sub, pattern in COMFY_FILES.values())]


def load_pipeline(spec: ModelSpec, device: torch.device, dtype: torch.dtype) -> LoadedPipeline:
    """The pipeline ``spec.path`` names, on ``device`` (or offloaded, option ``offload``), in ``dtype``."""
    if not spec.path:
        raise ModelNotFoundError("the qwen_image_edit restorer needs a model path: a diffusers Qwen-Image-Edit folder "
                                 "(with model_index.json) or ComfyUI's qwen_image_edit*.safetensors file or models "
                                 "folder")
    path = Path(spec.path).expanduser()
    if path.is_dir() and (path / "model_index.json").is_file():
        loaded = _load_diffusers_folder(path, spec, device, dtype)
    elif path.is_file() or (path.is_dir() and _comfy_models_dir(path) is not None):
        loaded = _load_comfyui_files(path, spec, dtype)
    else:
        raise not_found("Qwen-Image-Edit restorer", path, _expected_layouts())
    lora = spec.option("lora")
    if lora:
        apply_lora(loaded.pipe, lora, float(spec.option("lora_scale", 1.0)), bool(spec.option("fuse_lora", False)))
    offload = str(spec.option("offload", "none"))
    place(loaded.pipe, device, offload)
    loaded.offloaded = offload != "none"
    loaded.pipe.set_progress_bar_config(disable=True)
    return loaded


# ---- diffusers folders -----------------------------------------------------------------------------
def _check_component(folder: Path, name: str, what: str) -> None:
    sub = folder / name
    if name in ("tokenizer", "processor"):
        if not (has_tokenizer(sub) or has_processor(sub)):
            raise not_found(f"{what} ({name})", sub, ["tokenizer.json (or vocab.json and merges.txt)",
                                                      "preprocessor_config.json or processor_config.json"])
        return
    if name == "scheduler":
        if not (sub / "scheduler_config.json").is_file():
            raise not_found(f"{what} (scheduler)", sub, ["scheduler_config.json"])
        return
    if not (sub / "config.json").is_file():
        raise not_found(f"{what} ({name})", sub, ["config.json", "*.safetensors"])
    refuse_pickles(sub, f"{what} ({name})")
    check_weights(sub, f"{what} ({name})", ["config.json", "*.safetensors"])


def _load_diffusers_folder(folder: Path, spec: ModelSpec, device: torch.device, dtype: torch.dtype) -> LoadedPipeline:
    import diffusers

    what = "Qwen-Image-Edit diffusers folder"
    index = read_json(folder / "model_index.json", what)
    class_name = index.get("_class_name")
    if class_name not in FAMILIES:
        raise BackendError(f"{what}: {folder / 'model_index.json'} names the pipeline {class_name!r}; the "
                           f"qwen_image_edit restorer loads {', '.join(FAMILIES)}")
    family = FAMILIES[class_name]
    components = [name for name, value in index.items() if not name.startswith("_") and isinstance(value, list)
                  and value[0] is not None]
    kwargs: dict[str, Any] = {"torch_dtype": dtype, "local_files_only": True, "use_safetensors": True}
    shared = None
    if family == "qwen_image_21":
        shared = shared_text_encoder(spec, folder)
        kwargs.update(text_encoder=shared.model, processor=shared.processor)
        components = [name for name in components if name not in ("text_encoder", "processor")]
    for name in components:
        _check_component(folder, name, what)
    with warnings.catch_warnings():
        # Newer diffusers prefer ``dtype=`` and warn on ``torch_dtype``, which every supported release takes.
        warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
        pipe = getattr(diffusers, class_name).from_pretrained(str(folder), **kwargs)
    return LoadedPipeline(pipe, family, "diffusers", {"folder": str(folder)}, shared)


def shared_text_encoder(spec: ModelSpec, folder: Path) -> Any:
    """The Qwen3-VL text encoder of a Qwen-Image 2.1 pipeline, as a reasoner from :mod:`rnr.cache`.

    Option ``text_encoder`` names a Qwen3-VL folder to use instead of ``<folder>/text_encoder``; when a
    ``qwen3vl`` reasoner on that folder is loaded (same device and dtype, no adapter) its model is
    reused, so the cache holds one copy.
    """
    from .. import cache

    source = Path(spec.option("text_encoder") or folder / "text_encoder").expanduser()
    te_spec = ModelSpec.make("reasoner", "qwen3vl", str(source), spec.device, spec.dtype)
    return cache.get(te_spec)


# ---- ComfyUI files ---------------------------------------------------------------------------------
def _comfy_models_dir(path: Path) -> Path | None:
    """The ComfyUI ``models`` folder at or above ``path`` (a file inside it, the folder, or ComfyUI's root)."""
    candidates = [path] if path.is_dir() else []
    candidates += list(path.parents)[:3]
    for candidate in candidates:
        for models in (candidate, candidate / "models"):
            if (models / "diffusion_models").is_dir():
                return models
    return None


def find_comfyui_files(path: Path, options: dict[str, Any]) -> dict[str, Path]:
    """The transformer, text-encoder and VAE files of a ComfyUI install (options override each)."""
    models = _comfy_models_dir(path)
    found: dict[str, Path] = {}
    for name, (sub, pattern) in COMFY_FILES.items():
        given = options.get(f"{name}_file") or (str(path) if name == "transformer" and path.is_file() else None)
        if given:
            file = Path(given).expanduser()
            if not file.is_file():
                raise not_found(f"Qwen-Image-Edit {name.replace('_', ' ')} file", file.parent, [file.name])
            found[name] = file
            continue
        if models is None:
            raise not_found(f"Qwen-Image-Edit {name.replace('_', ' ')}", path.parent if path.is_file() else path,
                            [f"models/{sub}/{pattern}"], f"Pass the file with the option {name}_file")
        matches = sorted((models / sub).glob(pattern))
        if not matches:
            raise not_found(f"Qwen-Image-Edit {name.replace('_', ' ')}", models / sub, [pattern],
                            f"Pass the file with the option {name}_file")
        if len(matches) > 1:
            raise BackendError(f"Qwen-Image-Edit {name.replace('_', ' ')}: {models / sub} holds several files matching "
                               f"{pattern} ({', '.join(m.name for m in matches)}); choose one with the option "
                               f"{name}_file" + (" (or pass it as the path)" if name == "transformer" else ""))
        found[name] = matches[0]
    return found


def _tokenizer_folder(path: Path, options: dict[str, Any], config: Path | None) -> Path:
    searched: list[Path] = []
    if options.get("tokenizer"):
        searched.append(Path(options["tokenizer"]).expanduser())
    if config is not None:
        searched.append(config / "tokenizer")
    roots = [p for p in [path, *path.parents][:5]]
    if os.environ.get("RNR_COMFYUI_DIR"):
        roots.append(Path(os.environ["RNR_COMFYUI_DIR"]))
    searched += [root / COMFY_TOKENIZER for root in roots]
    for folder in searched:
        if has_tokenizer(folder):
            return folder
    raise ModelNotFoundError(
        "Qwen-Image-Edit tokenizer: none of the folders searched holds vocab.json and merges.txt (or tokenizer.json): "
        + ", ".join(str(f) for f in searched) + ". Pass the option tokenizer=<folder> (ComfyUI ships one in "
        "comfy/text_encoders/qwen25_tokenizer) or config=<a diffusers Qwen-Image-Edit folder>")


def _variant(transformer_file: Path, options: dict[str, Any]) -> str:
    variant = options.get("variant")
    if variant is None:
        name = transformer_file.name.lower()
        variant = "edit_plus" if any(tag in name for tag in ("2509", "2511", "plus")) else "edit"
    if variant not in ("edit", "edit_plus"):
        raise BackendError(f"Qwen-Image-Edit variant {variant!r}: use 'edit' or 'edit_plus' (the 2509/2511 releases)")
    return variant


def _load_comfyui_files(path: Path, spec: ModelSpec, dtype: torch.dtype) -> LoadedPipeline:
    import diffusers
    from transformers import Qwen2Tokenizer, Qwen2VLImageProcessor, Qwen2VLProcessor

    from . import qwen_image_edit_convert as convert
    from .qwen_image_edit_configs import write_config_folder

    options = dict(spec.options)
    files = find_comfyui_files(path, options)
    family = _variant(files["transformer"], options)
    config = Path(options["config"]).expanduser() if options.get("config") else None
    if config is not None and not (config / "transformer" / "config.json").is_file():
        raise not_found("Qwen-Image-Edit config folder", config, ["model_index.json", "transformer/config.json",
                        "vae/config.json", "text_encoder/config.json", "scheduler/scheduler_config.json",
                        "processor/preprocessor_config.json"])
    tokenizer_folder = _tokenizer_folder(path, options, config)
    with tempfile.TemporaryDirectory(prefix="rnr-qwen-config-") as shipped:
        config_dir = config or write_config_folder(shipped, family)
        transformer = convert.load_transformer(files["transformer"], config_dir, dtype)
        vae = convert.load_vae(files["vae"], config_dir, dtype)
        text_encoder = convert.load_text_encoder(files["text_encoder"], config_dir, dtype)
        scheduler = diffusers.FlowMatchEulerDiscreteScheduler.from_pretrained(str(config_dir), subfolder="scheduler",
                                                                              local_files_only=True)
        image_processor = Qwen2VLImageProcessor.from_pretrained(str(config_dir / "processor"), local_files_only=True)
    tokenizer = Qwen2Tokenizer.from_pretrained(str(tokenizer_folder), local_files_only=True)
    processor = Qwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer, video_processor=_video_processor())
    pipeline_class = getattr(diffusers, "QwenImageEditPlusPipeline" if family == "edit_plus" else "QwenImageEditPipeline")
    pipe = pipeline_class(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                          processor=processor, transformer=transformer)
    return LoadedPipeline(pipe, family, "comfyui", {k: str(v) for k, v in files.items()}
                          | {"tokenizer": str(tokenizer_folder)})


def _video_processor():
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    return Qwen2VLVideoProcessor()


# ---- LoRA and placement ----------------------------------------------------------------------------
def lora_file(path: str | Path) -> Path:
    """The .safetensors file of a LoRA given as the file or a folder holding exactly one."""
    path = Path(path).expanduser()
    if path.is_file():
        if path.suffix != ".safetensors":
            raise ModelNotFoundError(f"LoRA {path}: only .safetensors LoRAs are loaded (pickles can run code)")
        return path
    if path.is_dir():
        refuse_pickles(path, "LoRA")
        files = sorted(path.glob("*.safetensors"))
        if len(files) == 1:
            return files[0]
        if len(files) > 1:
            raise BackendError(f"LoRA folder {path} holds several .safetensors files "
                               f"({', '.join(f.name for f in files)}); pass the one to load")
    raise not_found("LoRA", path if path.is_dir() else path.parent, ["*.safetensors (a LoRA saved by rnr-train "
                    "or diffusers, or one for ComfyUI's LoraLoaderModelOnly)"])


def apply_lora(pipe: Any, path: str | Path, scale: float = 1.0, fuse: bool = False) -> None:
    """Load a LoRA onto the pipeline's transformer (diffusers, PEFT or ComfyUI key formats)."""
    file = lora_file(path)
    try:
        pipe.load_lora_weights(str(file.parent), weight_name=file.name, adapter_name=LORA_NAME)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise BackendError(f"LoRA {file} does not fit this Qwen-Image transformer ({exc}); it was trained for "
                           "another model") from None
    if fuse:
        pipe.fuse_lora(lora_scale=scale, adapter_names=[LORA_NAME])
    else:
        pipe.set_adapters([LORA_NAME], [scale])


def place(pipe: Any, device: torch.device, offload: str) -> None:
    """Put the pipeline on ``device``, or offload it to the CPU between uses (model by model, or
    sequentially layer by layer, for GPUs too small to hold it). A text encoder shared with a
    reasoner is offloaded with the rest; its hooks bring it back on its next forward pass."""
    if offload not in OFFLOAD_MODES:
        raise BackendError(f"qwen_image_edit offload {offload!r} is not one of {', '.join(OFFLOAD_MODES)}")
    if offload == "none":
        pipe.to(device)
        return
    if device.type != "cuda":
        raise BackendError(f"qwen_image_edit offload={offload!r} moves models between the CPU and a GPU, but the "
                           f"device is {device}; use offload='none' on the CPU")
    if offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.enable_sequential_cpu_offload(device=device)
