"""Fixtures of the big-model tests: tiny real models built once per session in a temporary folder.

Tiny models run fastest on one CPU thread (threads only add synchronisation at these sizes), so every
test here runs with one and the previous count is restored afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("diffusers")

from . import tiny  # noqa: E402

ADAPTER_SYSTEM_PROMPT = "Diagnose the photo."
ADAPTER_ANSWER = ('Observation: a street.\n```json\n{"haze": {"present": true, "severity": 40, "transmission": 0.64}, '
                  '"rain": false, "noise": false, "blur": false, "scene": "A street"}\n```')
"""What the trained adapter answers for every image: a short chain of thought and repairable JSON
(records written as ``false``), so the reasoner's real parse-and-repair path runs end to end."""


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture()
def fresh_cache():
    """The process-wide model cache, emptied before and after the test."""
    from rnr import cache

    cache.clear()
    yield cache
    cache.clear()


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bigmodels")


@pytest.fixture(scope="session")
def qwen3vl_dir(models_dir) -> Path:
    torch.set_num_threads(1)
    return tiny.build_qwen3vl(models_dir / "qwen3vl", seed=0)


def training_images(count: int = 3) -> torch.Tensor:
    """The fixed images the adapter is trained on (and the end-to-end tests diagnose)."""
    generator = torch.Generator().manual_seed(7)
    return torch.rand(count, 3, 48, 64, generator=generator)


@pytest.fixture(scope="session")
def adapter_dir(qwen3vl_dir, models_dir) -> Path:
    """A LoRA adapter (peft, safetensors) that makes the tiny Qwen3-VL write :data:`ADAPTER_ANSWER`.

    The text model's linear layers are fine-tuned until greedy decoding reproduces the answer, then
    each weight change is written exactly as a LoRA of full rank (an SVD), the form the SFT stage saves.
    """
    torch.set_num_threads(1)
    return train_answer_adapter(qwen3vl_dir, models_dir / "adapter", ADAPTER_ANSWER, ADAPTER_SYSTEM_PROMPT)


def train_answer_adapter(base: Path, out: Path, answer: str, system: str, max_steps: int = 200) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoProcessor, Qwen3VLForConditionalGeneration

    from rnr.reasoners import qwen3vl_prompt as prompt
    from rnr.reasoners.qwen3vl import Qwen3VLReasoner

    processor = AutoProcessor.from_pretrained(str(base), local_files_only=True)
    model = Qwen3VLForConditionalGeneration.from_pretrained(str(base), local_files_only=True)
    original = {name: p.detach().clone() for name, p in model.named_parameters()}
    reasoner = Qwen3VLReasoner(model, processor, system=system, max_new_tokens=96)
    images = [reasoner._pil(image) for image in training_images()]
    text = processor.apply_chat_template(prompt.messages(system=system), tokenize=False, add_generation_prompt=True)
    batch = processor(text=[text + answer + "<|im_end|>"] * len(images), images=images, return_tensors="pt")
    prompt_length = processor(text=[text], images=images[:1], return_tensors="pt")["input_ids"].shape[1]
    labels = batch["input_ids"].clone()
    labels[:, :prompt_length] = -100
    suffixes = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    targets = [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)
               and ((name.startswith("model.language_model.") and name.endswith(suffixes)) or name == "lm_head")]
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    weights = [model.get_submodule(name).weight for name in targets]
    for weight in weights:
        weight.requires_grad_(True)
    optimizer = torch.optim.Adam(weights, lr=1e-2)
    torch.manual_seed(0)
    for step in range(max_steps):
        model.train()
        loss = model(**batch, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 10 == 9:
            model.eval()
            reasoner.last_answers = []
            if reasoner.generate(images[:1], [prompt.messages(system=system)]) == [answer]:
                break
    else:
        raise AssertionError("the tiny Qwen3-VL did not learn the adapter answer")
    rank = 32
    deltas = {name: (model.get_submodule(name).weight.detach() - original[name + ".weight"]) for name in targets}
    base_model = Qwen3VLForConditionalGeneration.from_pretrained(str(base), local_files_only=True)
    linear = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)|lm_head"
    config = LoraConfig(r=rank, lora_alpha=rank, lora_dropout=0.0, init_lora_weights=False, target_modules=linear)
    peft_model = get_peft_model(base_model, config)
    for name, delta in deltas.items():
        u, s, vh = torch.linalg.svd(delta, full_matrices=False)
        k = s.shape[0]
        lora_b = torch.zeros(delta.shape[0], rank)
        lora_a = torch.zeros(rank, delta.shape[1])
        lora_b[:, :k] = u * s
        lora_a[:k] = vh
        layer = peft_model.base_model.model.get_submodule(name)
        layer.lora_A["default"].weight.data.copy_(lora_a)
        layer.lora_B["default"].weight.data.copy_(lora_b)
    peft_model.save_pretrained(str(out), safe_serialization=True, save_embedding_layers=False)
    return out


@pytest.fixture(scope="session")
def edit_dir(models_dir) -> Path:
    torch.set_num_threads(1)
    return tiny.build_edit_pipeline(models_dir / "edit", family="edit", seed=0)


@pytest.fixture(scope="session")
def comfy_layout(edit_dir, models_dir) -> dict[str, Path]:
    return tiny.write_comfyui_layout(edit_dir, models_dir / "comfy")


@pytest.fixture(scope="session")
def qwen21_dir(qwen3vl_dir, models_dir) -> Path:
    torch.set_num_threads(1)
    return tiny.build_qwen_image21(models_dir / "qwen21", qwen3vl_dir, seed=0)


def comfyui_dir() -> Path | None:
    """The ComfyUI source tree (``$RNR_COMFYUI_DIR`` or ``../shared/comfyui/ComfyUI``), if present."""
    path = Path(os.environ.get("RNR_COMFYUI_DIR") or Path(__file__).resolve().parents[3] / "shared" / "comfyui" / "ComfyUI")
    return path if (path / "comfy").is_dir() else None
