"""Tiny random-weight Qwen3-VL and Qwen-Image edit models, built from the real config classes.

As the transformers and diffusers test suites do, every component is the real class with a tiny
config and seeded random weights; the tokenizer is a byte-level BPE trained offline with
``tokenizers`` on the reasoner's own prompt text, carrying Qwen's special tokens and Qwen3-VL's
published chat template. Builders save the models in the layouts users have:

- :func:`build_qwen3vl`: a Hugging Face Qwen3-VL folder (weights, tokenizer, processor, template);
- :func:`build_edit_pipeline`: a diffusers Qwen-Image-Edit (or Edit Plus) folder;
- :func:`write_comfyui_layout`: the same edit weights as ComfyUI's three split files (original key
  layouts: ComfyUI's module names for the transformer, the Wan layout for the VAE, the original
  Qwen2.5-VL names for the text encoder) plus a config folder without weights;
- :func:`build_qwen_image21`: a diffusers Qwen-Image 2.1 folder whose text encoder is a Qwen3-VL.

``python -m tests.bigmodels.tiny --comfy-keys`` regenerates ``comfy_keys.json`` (ComfyUI's own key names
of the tiny VAE) from the ComfyUI source tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent
COMFY_KEYS_FILE = HERE / "comfy_keys.json"
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                  "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                  "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]

# The chat template published with the Qwen3-VL Instruct checkpoints (tool-call branches left out:
# the reasoner never passes tools), in the form transformers renders.
QWEN3VL_CHAT_TEMPLATE = """{%- if messages[0].role == 'system' %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0].content is string %}
        {{- messages[0].content }}
    {%- else %}
        {%- for content in messages[0].content %}
            {%- if 'text' in content %}
                {{- content.text }}
            {%- endif %}
        {%- endfor %}
    {%- endif %}
    {{- '<|im_end|>\\n' }}
{%- endif %}
{%- set image_count = namespace(value=0) %}
{%- set video_count = namespace(value=0) %}
{%- for message in messages %}
    {%- if message.role == "user" %}
        {{- '<|im_start|>' + message.role + '\\n' }}
        {%- if message.content is string %}
            {{- message.content }}
        {%- else %}
            {%- for content in message.content %}
                {%- if content.type == 'image' or 'image' in content or 'image_url' in content %}
                    {%- set image_count.value = image_count.value + 1 %}
                    {%- if add_vision_id %}Picture {{ image_count.value }}: {% endif -%}
                    <|vision_start|><|image_pad|><|vision_end|>
                {%- elif content.type == 'video' or 'video' in content %}
                    {%- set video_count.value = video_count.value + 1 %}
                    {%- if add_vision_id %}Video {{ video_count.value }}: {% endif -%}
                    <|vision_start|><|video_pad|><|vision_end|>
                {%- elif 'text' in content %}
                    {{- content.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role + '\\n' }}
        {%- if message.content is string %}
            {{- message.content }}
        {%- else %}
            {%- for content_item in message.content %}
                {%- if 'text' in content_item %}
                    {{- content_item.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

TINY_EDIT_VAE = {"base_dim": 4, "z_dim": 4, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 2,
                 "temperal_downsample": [False, True, True]}
"""The real Qwen-Image VAE structure (4 levels, 2 residual blocks) at 4 base channels: diffusers' Wan
converter maps ComfyUI's key layout of exactly this structure."""


def _corpus() -> list[str]:
    from rnr.diagnosis import Diagnosis, Haze, Noise
    from rnr.reasoners import qwen3vl_prompt as prompt

    example = Diagnosis(haze=Haze(present=True, severity=40, transmission=0.64), noise=Noise(present=True, severity=20,
                        sigma_255=10.0), scene="A street with trees", order=("noise", "haze"))
    answer = prompt.format_answer(example, {name: f"{name} of the photo." for name in prompt.COT_SECTIONS})
    return [prompt.system_prompt(), prompt.USER_INSTRUCTION, answer, example.to_prompt(), example.to_json()] * 4


def build_tokenizer(vocab_size: int = 640):
    """A byte-level BPE trained on the prompt text, as a transformers ``Qwen2Tokenizer``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(_corpus(), trainer)
    return Qwen2Tokenizer(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None)


def _token_ids(tokenizer) -> dict[str, int]:
    names = {"image_token_id": "<|image_pad|>", "video_token_id": "<|video_pad|>",
             "vision_start_token_id": "<|vision_start|>", "vision_end_token_id": "<|vision_end|>"}
    return {key: tokenizer.convert_tokens_to_ids(token) for key, token in names.items()}


def qwen3vl_config(tokenizer):
    from transformers import Qwen3VLConfig

    return Qwen3VLConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16,
                     "max_position_embeddings": 4096,
                     "rope_parameters": {"rope_type": "default", "rope_theta": 5000.0, "mrope_section": [2, 3, 3],
                                         "mrope_interleaved": True},
                     "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),
                     "pad_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"), "bos_token_id": None},
        vision_config={"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "patch_size": 16,
                       "spatial_merge_size": 2, "temporal_patch_size": 2, "out_hidden_size": 32,
                       "num_position_embeddings": 64, "deepstack_visual_indexes": [0]},
        tie_word_embeddings=False, **_token_ids(tokenizer))


def qwen3vl_processor(tokenizer):
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    size = {"shortest_edge": 32 * 32, "longest_edge": 96 * 96}
    image_processor = Qwen2VLImageProcessor(patch_size=16, temporal_patch_size=2, merge_size=2, size=size,
                                            image_mean=[0.5] * 3, image_std=[0.5] * 3)
    video_processor = Qwen3VLVideoProcessor(patch_size=16, temporal_patch_size=2, merge_size=2, size=size)
    return Qwen3VLProcessor(image_processor=image_processor, tokenizer=tokenizer, video_processor=video_processor,
                            chat_template=QWEN3VL_CHAT_TEMPLATE)


def build_qwen3vl(folder: Path | str, seed: int = 0) -> Path:
    """A tiny Qwen3-VL checkpoint folder in the Hugging Face layout."""
    from transformers import Qwen3VLForConditionalGeneration

    folder = Path(folder)
    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(qwen3vl_config(tokenizer)).eval()
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.pad_token_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    model.save_pretrained(str(folder))
    qwen3vl_processor(tokenizer).save_pretrained(str(folder))
    return folder


def _edit_components(seed: int):
    from diffusers import AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImageTransformer2DModel
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessor,
                              Qwen2VLProcessor)
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    text_config = Qwen2_5_VLConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "num_key_value_heads": 2,
                     "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [1, 1, 2]},
                     "bos_token_id": None, "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>")},
        vision_config={"depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": 16,
                       "fullatt_block_indexes": [1], "window_size": 56},
        **_token_ids(tokenizer))
    text_encoder = Qwen2_5_VLForConditionalGeneration(text_config).eval()
    size = {"shortest_edge": 28 * 28, "longest_edge": 56 * 56}
    processor = Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(size=size), tokenizer=tokenizer,
                                 video_processor=Qwen2VLVideoProcessor(size=size))
    torch.manual_seed(seed + 1)
    transformer = QwenImageTransformer2DModel(patch_size=2, in_channels=16, out_channels=4, num_layers=2,
                                              attention_head_dim=16, num_attention_heads=2, joint_attention_dim=16,
                                              guidance_embeds=False, axes_dims_rope=(8, 4, 4))
    torch.manual_seed(seed + 2)
    z_dim = TINY_EDIT_VAE["z_dim"]
    vae = AutoencoderKLQwenImage(**TINY_EDIT_VAE, latents_mean=[0.0] * z_dim, latents_std=[1.0] * z_dim)
    scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, base_shift=0.5, max_shift=0.9,
                                                shift_terminal=0.02, time_shift_type="exponential")
    return {"transformer": transformer, "vae": vae, "scheduler": scheduler, "text_encoder": text_encoder,
            "tokenizer": tokenizer, "processor": processor}


def build_edit_pipeline(folder: Path | str, family: str = "edit", seed: int = 0) -> Path:
    """A tiny Qwen-Image-Edit (``family="edit"``) or Edit Plus (``"edit_plus"``) diffusers folder."""
    from diffusers import QwenImageEditPipeline, QwenImageEditPlusPipeline

    cls = QwenImageEditPlusPipeline if family == "edit_plus" else QwenImageEditPipeline
    folder = Path(folder)
    cls(**_edit_components(seed)).save_pretrained(str(folder), safe_serialization=True)
    return folder


def build_qwen_image21(folder: Path | str, text_encoder: Path | str, seed: int = 0) -> Path:
    """A tiny Qwen-Image 2.1 diffusers folder whose text encoder is the Qwen3-VL at ``text_encoder``."""
    from diffusers import (AutoencoderKLQwenImage21, FlowMatchEulerDiscreteScheduler, QwenImage21Pipeline,
                           QwenImage21Transformer2DModel)
    from transformers import AutoProcessor, Qwen3VLForConditionalGeneration

    folder = Path(folder)
    processor = AutoProcessor.from_pretrained(str(text_encoder), local_files_only=True)
    encoder = Qwen3VLForConditionalGeneration.from_pretrained(str(text_encoder), local_files_only=True).eval()
    z_dim = 8
    torch.manual_seed(seed)
    transformer = QwenImage21Transformer2DModel(patch_size=1, in_channels=z_dim, out_channels=z_dim, num_layers=2,
                                                attention_head_dim=16, num_attention_heads=2,
                                                context_in_dim=encoder.config.text_config.hidden_size, mlp_ratio=2,
                                                axes_dims_rope=(4, 6, 6))
    torch.manual_seed(seed + 1)
    vae = AutoencoderKLQwenImage21(base_dim=4, decoder_base_dim=4, z_dim=z_dim, dim_mult=[1, 1, 1, 1, 1],
                                   num_res_blocks=0, temperal_downsample=[False, True, True, True],
                                   latents_mean=[0.0] * z_dim, latents_std=[1.0] * z_dim)
    scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, base_shift=0.5, max_shift=0.9,
                                                shift_terminal=0.02, time_shift_type="exponential")
    pipe = QwenImage21Pipeline(scheduler=scheduler, vae=vae, text_encoder=encoder, processor=processor,
                               transformer=transformer)
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder


# ---- ComfyUI's split files -------------------------------------------------------------------------
def comfyui_key_names(comfyui_dir: Path | str) -> dict[str, list[str]]:
    """ComfyUI's own state-dict key names of the tiny VAE and transformer (ComfyUI imported in a child
    process, on the CPU, so that its global state stays out of the test process)."""
    code = f"""
import json, sys
sys.argv = ["comfy", "--cpu"]
sys.path.insert(0, {str(comfyui_dir)!r})
import comfy.options
comfy.options.enable_args_parsing()
import comfy.ops, comfy.ldm.wan.vae as wan, comfy.ldm.qwen_image.model as qwen
vae = wan.WanVAE(dim={TINY_EDIT_VAE['base_dim']}, z_dim={TINY_EDIT_VAE['z_dim']}, dim_mult={TINY_EDIT_VAE['dim_mult']},
                 num_res_blocks={TINY_EDIT_VAE['num_res_blocks']}, attn_scales=[],
                 temperal_downsample={TINY_EDIT_VAE['temperal_downsample']})
dit = qwen.QwenImageTransformer2DModel(patch_size=2, in_channels=16, out_channels=4, num_layers=2,
                                       attention_head_dim=16, num_attention_heads=2, joint_attention_dim=16,
                                       axes_dims_rope=(8, 4, 4), operations=comfy.ops.disable_weight_init)
print(json.dumps({{"vae": list(vae.state_dict()), "transformer": list(dit.state_dict())}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    if done.returncode != 0:
        raise RuntimeError(f"importing ComfyUI from {comfyui_dir} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _vae_to_comfy(vae_state: dict[str, torch.Tensor], comfy_keys: list[str]) -> dict[str, torch.Tensor]:
    """The diffusers VAE weights under ComfyUI's Wan key names (inverting diffusers' own converter)."""
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

    markers = {key: torch.empty(0) for key in comfy_keys}
    converted = convert_wan_vae_to_diffusers(dict(markers))
    comfy_of = {id(marker): key for key, marker in markers.items()}
    return {comfy_of[id(marker)]: vae_state[key].clone() for key, marker in converted.items()}


def _text_encoder_to_comfy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers' Qwen2.5-VL names -> the original names ComfyUI's files use (``lm_head`` left out)."""
    out = {}
    for key, value in state.items():
        if key.startswith("model.language_model."):
            out["model." + key[len("model.language_model."):]] = value.clone()
        elif key.startswith("model.visual."):
            out["visual." + key[len("model.visual."):]] = value.clone()
    return out


def write_comfyui_layout(edit_folder: Path | str, root: Path | str, *, prefix: str = "model.diffusion_model.",
                         fp8: bool = False, name: str = "qwen_image_edit_tiny") -> dict[str, Path]:
    """The weights of a tiny diffusers edit folder as ComfyUI's split files under ``root/models`` plus a
    weightless config folder; returns their paths (``transformer``, ``text_encoder``, ``vae``, ``config``).

    ``fp8``: store the transformer's 2-D weights as ComfyUI's scaled fp8 (``weight`` in float8_e4m3fn and
    a ``scale_weight``).
    """
    from diffusers import AutoencoderKLQwenImage, QwenImageTransformer2DModel
    from transformers import Qwen2_5_VLForConditionalGeneration

    edit_folder, root = Path(edit_folder), Path(root)
    models = root / "models"
    paths = {"transformer": models / "diffusion_models" / f"{name}.safetensors",
             "text_encoder": models / "text_encoders" / "qwen_2.5_vl_7b_tiny.safetensors",
             "vae": models / "vae" / "qwen_image_vae.safetensors", "config": root / "config"}
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    transformer = QwenImageTransformer2DModel.from_pretrained(str(edit_folder), subfolder="transformer").state_dict()
    stored: dict[str, torch.Tensor] = {}
    for key, value in transformer.items():
        if fp8 and value.dim() == 2:
            scale = value.abs().max().float() / 448.0
            stored[prefix + key] = (value.float() / scale).to(torch.float8_e4m3fn)
            stored[prefix + key[: -len("weight")] + "scale_weight"] = scale.reshape(())
        else:
            stored[prefix + key] = value.clone().contiguous()
    if fp8:
        stored["scaled_fp8"] = torch.empty(0, dtype=torch.float8_e4m3fn)
    save_file(stored, str(paths["transformer"]))
    full = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(edit_folder / "text_encoder")).state_dict()
    save_file({k: v.contiguous() for k, v in _text_encoder_to_comfy(full).items()}, str(paths["text_encoder"]))
    vae = AutoencoderKLQwenImage.from_pretrained(str(edit_folder), subfolder="vae").state_dict()
    comfy_keys = json.loads(COMFY_KEYS_FILE.read_text())["vae"]
    save_file({k: v.contiguous() for k, v in _vae_to_comfy(vae, comfy_keys).items()}, str(paths["vae"]))
    config = paths["config"]
    for sub in ("transformer", "vae", "text_encoder", "scheduler", "tokenizer", "processor"):
        (config / sub).mkdir(parents=True, exist_ok=True)
        for file in (edit_folder / sub).iterdir():
            if file.suffix != ".safetensors" and not file.name.endswith(".index.json"):
                shutil.copy(file, config / sub / file.name)
    shutil.copy(edit_folder / "model_index.json", config / "model_index.json")
    return paths


if __name__ == "__main__":
    if "--comfy-keys" in sys.argv:
        comfy = Path(os.environ.get("RNR_COMFYUI_DIR") or HERE.parents[2] / "shared" / "comfyui" / "ComfyUI")
        keys = comfyui_key_names(comfy)
        COMFY_KEYS_FILE.write_text(json.dumps({"vae": keys["vae"]}, indent=0) + "\n")
        print(f"wrote {len(keys['vae'])} VAE keys to {COMFY_KEYS_FILE}")
