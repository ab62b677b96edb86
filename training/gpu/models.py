"""Random-initialised models at real (or reduced) size for GPU runs of the training stages, built in memory.

No checkpoint can be downloaded on the GPU machine, so its runs train the real architectures with random
weights: Qwen3-VL-2B/8B from the configs of ``benchmarks/bigmodels/bench.py`` (the published values), and
Qwen-Image-Edit from :mod:`rnr.restorers.qwen_image_edit_configs`, optionally with fewer transformer and
text-encoder layers. The tokenizer is the real Qwen2.5 one (a copy of ComfyUI's
``comfy/text_encoders/qwen25_tokenizer``). ``tiny=True`` shrinks every layer, to check a command on a CPU.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[2]

TINY_EDIT = {
    "transformer": {"num_layers": 1, "attention_head_dim": 32, "num_attention_heads": 2, "joint_attention_dim": 64,
                    "axes_dims_rope": [8, 12, 12]},
    "vae": {"base_dim": 4},
    "text_encoder": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 2,
                     "num_key_value_heads": 2, "rope_scaling": {"type": "mrope", "mrope_section": [4, 6, 6]},
                     "vision_config": {"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
                                       "out_hidden_size": 64, "fullatt_block_indexes": [0]}},
}


def _bench():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from benchmarks.bigmodels import bench

    return bench


def qwen3vl(size: str, tokenizer_dir: str | Path, device: torch.device, dtype: torch.dtype,
            tiny: bool = False, seed: int = 0) -> tuple[Any, Any]:
    """(model, processor): a random Qwen3-VL of ``size`` ("2B" or "8B") with the real tokenizer."""
    from transformers import Qwen3VLForConditionalGeneration

    bench = _bench()
    bench.USE_TINY = tiny
    config = bench.qwen3vl_config(size)
    processor = bench.qwen3vl_processor(Path(tokenizer_dir))
    torch.manual_seed(seed)
    with torch.device(device):
        model = Qwen3VLForConditionalGeneration._from_config(config, dtype=dtype)
    model.generation_config.eos_token_id = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    return model.eval(), processor


def edit_pipeline(tokenizer_dir: str | Path, device: torch.device, dtype: torch.dtype, *,
                  transformer_layers: int | None = None, text_layers: int | None = None, tiny: bool = False,
                  seed: int = 0) -> Any:
    """A random ``QwenImageEditPipeline`` with the published configs (``*_layers`` cut the depth)."""
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageEditPipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2Tokenizer,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
    )
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import (
        Qwen2VLVideoProcessor,
    )

    from rnr.restorers import qwen_image_edit_configs as configs

    def settings(name: str, config: dict) -> dict:
        config = {k: v for k, v in config.items() if not k.startswith("_") and k != "architectures"}
        if tiny:
            tiny_config = TINY_EDIT[name]
            merged = {**config, **tiny_config}
            if "vision_config" in tiny_config:
                merged["vision_config"] = {**config["vision_config"], **tiny_config["vision_config"]}
            return merged
        return config

    transformer_config = settings("transformer", configs.TRANSFORMER)
    if transformer_layers:
        transformer_config["num_layers"] = int(transformer_layers)
    text_config = settings("text_encoder", configs.TEXT_ENCODER)
    if text_layers:
        text_config["num_hidden_layers"] = int(text_layers)
        text_config["max_window_layers"] = int(text_layers)
    tokenizer = Qwen2Tokenizer.from_pretrained(str(tokenizer_dir))
    processor_config = {k: v for k, v in configs.IMAGE_PROCESSOR.items()
                        if k not in ("image_processor_type", "min_pixels", "max_pixels")}
    image_processor = Qwen2VLImageProcessor(**processor_config, size={
        "shortest_edge": configs.IMAGE_PROCESSOR["min_pixels"], "longest_edge": configs.IMAGE_PROCESSOR["max_pixels"]})
    processor = Qwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                 video_processor=Qwen2VLVideoProcessor())
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            transformer = QwenImageTransformer2DModel(**transformer_config).eval()
            vae = AutoencoderKLQwenImage(**settings("vae", configs.VAE)).eval()
            text_encoder = Qwen2_5_VLForConditionalGeneration._from_config(Qwen2_5_VLConfig(**text_config),
                                                                           dtype=dtype).eval()
    finally:
        torch.set_default_dtype(previous)
    scheduler = FlowMatchEulerDiscreteScheduler(**{k: v for k, v in configs.SCHEDULER.items() if not k.startswith("_")})
    pipe = QwenImageEditPipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                 processor=processor, transformer=transformer)
    pipe.set_progress_bar_config(disable=True)
    return pipe


__all__ = ["edit_pipeline", "qwen3vl"]
