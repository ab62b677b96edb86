"""Token batches for reasoner SFT: the reasoner's own chat (system prompt, image, instruction), then the
target answer; the loss is on the answer and its end-of-turn token only.

The prompt goes through the model's processor exactly as :class:`rnr.reasoners.qwen3vl.Qwen3VLReasoner`
builds it at inference (chat template with the generation prompt, image resized by the same rule);
the answer's tokens are appended after it, so the boundary between prompt and answer is exact
whatever the tokenizer merges.
"""

from __future__ import annotations

from typing import Any

import torch

from rnr.reasoners import qwen3vl_prompt as prompt

IGNORE_INDEX = -100
TOKEN_TYPE_KEYS = ("mm_token_type_ids", "token_type_ids")


def encode_example(processor: Any, image: Any, answer: str, system: str) -> dict[str, torch.Tensor]:
    """One example: ``input_ids`` and ``labels`` [L] (labels -100 on the prompt), ``pixel_values`` and
    ``image_grid_thw`` of its image (a PIL image)."""
    chat = prompt.messages(system=system)
    text = processor.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    tokenizer = processor.tokenizer
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [end_of_turn]
    prompt_ids = inputs["input_ids"][0]
    answer_tensor = torch.tensor(answer_ids, dtype=prompt_ids.dtype)
    example = {
        "input_ids": torch.cat([prompt_ids, answer_tensor]),
        "labels": torch.cat([torch.full_like(prompt_ids, IGNORE_INDEX), answer_tensor]),
        "pixel_values": inputs["pixel_values"],
        "image_grid_thw": inputs["image_grid_thw"],
    }
    for key in TOKEN_TYPE_KEYS:
        # Newer processors mark image tokens (for M-RoPE); the answer is text, type 0.
        if key in inputs:
            types = inputs[key][0]
            example[key] = torch.cat([types, torch.zeros(len(answer_ids), dtype=types.dtype)])
    return example


def collate(examples: list[dict[str, torch.Tensor]], pad_id: int, max_length: int | None = None) -> dict[str, torch.Tensor]:
    """Right-padded batch of :func:`encode_example` outputs (``max_length`` truncates the answers' ends)."""
    lengths = [len(e["input_ids"]) for e in examples]
    if max_length is not None:
        lengths = [min(n, max_length) for n in lengths]
    width = max(lengths)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    for row, (example, length) in enumerate(zip(examples, lengths)):
        input_ids[row, :length] = example["input_ids"][:length]
        labels[row, :length] = example["labels"][:length]
        attention[row, :length] = 1
    batch = {
        "input_ids": input_ids, "labels": labels, "attention_mask": attention,
        "pixel_values": torch.cat([e["pixel_values"] for e in examples]),
        "image_grid_thw": torch.cat([e["image_grid_thw"] for e in examples]),
    }
    for key in TOKEN_TYPE_KEYS:
        if key in examples[0]:
            types = torch.zeros((len(examples), width), dtype=examples[0][key].dtype)
            for row, (example, length) in enumerate(zip(examples, lengths)):
                types[row, :length] = example[key][:length]
            batch[key] = types
    return batch


def answer_token_count(batch: dict[str, torch.Tensor]) -> int:
    return int((batch["labels"] != IGNORE_INDEX).sum())


__all__ = ["IGNORE_INDEX", "answer_token_count", "collate", "encode_example"]
