"""The configs of the real Qwen-Image-Edit models, for ComfyUI's split files (which carry none).

Values are those published with Qwen/Qwen-Image-Edit (transformer, VAE, scheduler) and
Qwen/Qwen2.5-VL-7B-Instruct (text encoder, image processor). No weights and no tokenizer here: the
tokenizer comes from ComfyUI's own copy (``comfy/text_encoders/qwen25_tokenizer``) or a folder the
user names. :func:`write_config_folder` lays them out as a diffusers folder without weights.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

TRANSFORMER = {
    "_class_name": "QwenImageTransformer2DModel", "patch_size": 2, "in_channels": 64, "out_channels": 16,
    "num_layers": 60, "attention_head_dim": 128, "num_attention_heads": 24, "joint_attention_dim": 3584,
    "guidance_embeds": False, "axes_dims_rope": [16, 56, 56],
}
VAE = {
    "_class_name": "AutoencoderKLQwenImage", "base_dim": 96, "z_dim": 16, "dim_mult": [1, 2, 4, 4],
    "num_res_blocks": 2, "attn_scales": [], "temperal_downsample": [False, True, True], "dropout": 0.0,
    "latents_mean": [-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508, 0.4134, -0.0715,
                     0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921],
    "latents_std": [2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743, 3.2687, 2.1526, 2.8652,
                    1.5579, 1.6382, 1.1253, 2.8251, 1.916],
}
SCHEDULER = {
    "_class_name": "FlowMatchEulerDiscreteScheduler", "base_image_seq_len": 256, "base_shift": 0.5,
    "invert_sigmas": False, "max_image_seq_len": 8192, "max_shift": 0.9, "num_train_timesteps": 1000,
    "shift": 1.0, "shift_terminal": 0.02, "stochastic_sampling": False, "time_shift_type": "exponential",
    "use_beta_sigmas": False, "use_dynamic_shifting": True, "use_exponential_sigmas": False,
    "use_karras_sigmas": False,
}
LIGHTNING_SHIFT = math.log(3.0)
"""Qwen-Image-Lightning LoRAs are distilled with shift 3: pass ``scheduler_shift=ln 3`` with them."""

TEXT_ENCODER = {
    "architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl",
    "attention_dropout": 0.0, "bos_token_id": 151643, "eos_token_id": 151645, "hidden_act": "silu",
    "hidden_size": 3584, "image_token_id": 151655, "initializer_range": 0.02, "intermediate_size": 18944,
    "max_position_embeddings": 128000, "max_window_layers": 28, "num_attention_heads": 28,
    "num_hidden_layers": 28, "num_key_value_heads": 4, "rms_norm_eps": 1e-06,
    "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}, "rope_theta": 1000000.0,
    "sliding_window": 32768, "tie_word_embeddings": False, "use_cache": True, "use_sliding_window": False,
    "video_token_id": 151656, "vision_end_token_id": 151653, "vision_start_token_id": 151652,
    "vision_token_id": 151654, "vocab_size": 152064,
    "vision_config": {
        "depth": 32, "hidden_act": "silu", "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
        "in_chans": 3, "out_hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2,
        "spatial_patch_size": 14, "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31],
        "tokens_per_second": 2, "temporal_patch_size": 2,
    },
}
IMAGE_PROCESSOR = {
    "image_processor_type": "Qwen2VLImageProcessor", "do_convert_rgb": True, "do_normalize": True,
    "do_rescale": True, "do_resize": True, "rescale_factor": 1 / 255,
    "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
    "min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
    "resample": 3,
}
PIPELINES = {"edit": "QwenImageEditPipeline", "edit_plus": "QwenImageEditPlusPipeline"}


def write_config_folder(dest: Path | str, family: str = "edit") -> Path:
    """A diffusers folder of configs only (no weights, no tokenizer) for ``family`` at ``dest``."""
    dest = Path(dest)
    files = {
        "model_index.json": {"_class_name": PIPELINES[family], "_diffusers_version": "0.35.0",
                             "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
                             "text_encoder": ["transformers", "Qwen2_5_VLForConditionalGeneration"],
                             "tokenizer": ["transformers", "Qwen2Tokenizer"],
                             "processor": ["transformers", "Qwen2VLProcessor"],
                             "transformer": ["diffusers", "QwenImageTransformer2DModel"],
                             "vae": ["diffusers", "AutoencoderKLQwenImage"]},
        "transformer/config.json": TRANSFORMER,
        "vae/config.json": VAE,
        "scheduler/scheduler_config.json": SCHEDULER,
        "text_encoder/config.json": TEXT_ENCODER,
        "processor/preprocessor_config.json": IMAGE_PROCESSOR,
    }
    for name, content in files.items():
        path = dest / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, indent=2), encoding="utf-8")
    return dest
