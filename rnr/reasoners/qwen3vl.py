"""The Qwen3-VL reasoner: a vision-language model writes its chain of thought and the Diagnosis JSON.

Loads a local Qwen3-VL checkpoint folder (Hugging Face layout: ``config.json``, ``*.safetensors``,
tokenizer and processor files) with ``transformers.Qwen3VLForConditionalGeneration`` and
``AutoProcessor``; optionally applies a LoRA adapter folder (``adapter_config.json`` +
``adapter_model.safetensors``, as the SFT stage of ``training`` writes it). Each batch of images is
answered with greedy decoding (left padding), parsed by :mod:`.qwen3vl_parse`; answers that cannot
be read are asked once more with the error, then :class:`~.qwen3vl_parse.AnswerParseError` carries
the raw text.

transformers (and peft, for adapters) are imported only when this backend loads.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from ..devices import resolve_device, resolve_dtype
from ..diagnosis import Diagnosis
from ..errors import BackendError, Interrupted, ModelNotFoundError
from ..hf_local import check_transformers_folder, has_processor, has_tokenizer, load_kwargs, not_found, read_json
from ..images import check_images
from ..registry import ModelSpec
from . import qwen3vl_prompt as prompt
from .base import Progress
from .qwen3vl_parse import AnswerParseError, parse_answer

log = logging.getLogger("rnr.reasoners.qwen3vl")

MODEL_TYPES = ("qwen3_vl",)
DEFAULT_MAX_NEW_TOKENS = 1024
DEFAULT_BATCH = 4
DEFAULT_MAX_PIXELS = 1024 * 1024
PROGRESS_EVERY_TOKENS = 16
ATTENTION_CHOICES = ("sdpa", "eager", "flash_attention_2", "flash_attention_3")


class Qwen3VLReasoner:
    """Diagnoses images with a loaded Qwen3-VL model and its processor.

    ``max_new_tokens`` bounds each answer; ``batch_size`` images are answered together;
    ``max_pixels`` caps the pixels of the image the model sees (larger images are downscaled, keeping
    their aspect); ``temperature`` 0 is greedy decoding, above 0 samples with ``top_p``;
    ``reask`` whether an unreadable answer is asked once more; ``generate_options`` extra arguments of
    ``model.generate``.
    """

    name = "qwen3vl"

    def __init__(self, model: Any, processor: Any, *, device: torch.device | str = "cpu",
                 max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, batch_size: int = DEFAULT_BATCH,
                 max_pixels: int = DEFAULT_MAX_PIXELS, temperature: float = 0.0, top_p: float = 1.0,
                 reask: bool = True, system: str | None = None, seed: int = 0,
                 generate_options: dict[str, Any] | None = None) -> None:
        if int(max_new_tokens) < 1 or int(batch_size) < 1 or int(max_pixels) < 28 * 28:
            raise BackendError(f"qwen3vl options need max_new_tokens >= 1, batch_size >= 1 and max_pixels >= 784, "
                               f"got {max_new_tokens}, {batch_size}, {max_pixels}")
        self.model = model
        self.processor = processor
        self.device = torch.device(device)
        self.max_new_tokens = int(max_new_tokens)
        self.batch_size = int(batch_size)
        self.max_pixels = int(max_pixels)
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.reask = bool(reask)
        self.seed = int(seed)
        self.system = prompt.system_prompt() if system is None else system
        self.generate_options = dict(generate_options or {})
        """Extra keyword arguments of ``model.generate`` (e.g. ``repetition_penalty``, ``min_new_tokens``)."""
        self.last_answers: list[str] = []
        """The raw answers of the last :meth:`diagnose` call (after any re-ask), one per image."""

    def to(self, device: torch.device | str) -> "Qwen3VLReasoner":
        """Move the model (the cache offloads and restores reasoners through this)."""
        self.model.to(device)
        self.device = torch.device(device)
        return self

    def _ensure_on_device(self) -> None:
        # A model shared with another cache entry (a reasoner with other options, a Qwen-Image 2.1
        # pipeline) may have been offloaded through that entry; bring it back before use.
        parameter = next(self.model.parameters(), None)
        if parameter is not None and parameter.device.type != "meta" and parameter.device != self.device and not (
                self.device.type == "cuda" and parameter.device.type == "cuda" and self.device.index is None):
            self.model.to(self.device)

    # ---- generation --------------------------------------------------------------------------
    def _pil(self, image: torch.Tensor):
        from PIL import Image

        height, width = image.shape[-2:]
        if height * width > self.max_pixels:
            scale = (self.max_pixels / (height * width)) ** 0.5
            size = (max(1, int(height * scale)), max(1, int(width * scale)))
            image = torch.nn.functional.interpolate(image[None].float(), size=size, mode="bilinear",
                                                    antialias=True, align_corners=False)[0]
        # Quantise on the image's own device in one new tensor, then let PIL interleave the three
        # planes: 3-5x faster than transposing to HWC in torch (17 vs 80 ms at 1024² on one CPU core),
        # the same pixels (round half to even of clamp(x, 0, 1) * 255).
        planes = image.mul(255.0).clamp_(0.0, 255.0).round_().to(torch.uint8).cpu().numpy()
        return Image.merge("RGB", [Image.fromarray(plane) for plane in planes])

    def generate(self, images: list, chats: list[list[dict]], progress: Progress | None = None,
                 done: int = 0, total: int = 0) -> list[str]:
        """The model's answers to ``chats`` (one per image, each with one image turn), in order."""
        self._ensure_on_device()
        texts = [self.processor.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
                 for chat in chats]
        inputs = self.processor(text=texts, images=images, return_tensors="pt", padding=True, padding_side="left")
        inputs = inputs.to(self.device)
        options: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": self.temperature > 0}
        if self.temperature > 0:
            options.update(temperature=self.temperature, top_p=self.top_p)
            torch.manual_seed(self.seed)
        else:
            options.update(temperature=None, top_p=None, top_k=None)
        options.update(self.generate_options)
        if progress is not None:
            options["stopping_criteria"] = _progress_criteria(progress, done, total)
        tokenizer = self.processor.tokenizer
        options["pad_token_id"] = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        with torch.inference_mode():
            output = self.model.generate(**inputs, **options)
        new_tokens = output[:, inputs["input_ids"].shape[1]:]
        return [text.strip() for text in self.processor.batch_decode(new_tokens, skip_special_tokens=True)]

    # ---- the protocol ------------------------------------------------------------------------
    def diagnose(self, images: torch.Tensor, progress: Progress | None = None) -> list[Diagnosis]:
        """One Diagnosis per image of ``images`` [B,3,H,W] in 0..1.

        Raises :class:`~.qwen3vl_parse.AnswerParseError` (with the raw answer) when an answer is still
        unreadable after the re-ask, and :class:`~rnr.errors.Interrupted` when ``progress`` asks.
        """
        images = check_images(images)
        total = images.shape[0]
        diagnoses: list[Diagnosis] = []
        self.last_answers = []
        for start in range(0, total, self.batch_size):
            chunk = [self._pil(image) for image in images[start:start + self.batch_size]]
            first = [prompt.messages(system=self.system) for _ in chunk]
            answers = self.generate(chunk, first, progress, start, total)
            results: list[Diagnosis | AnswerParseError] = []
            for answer in answers:
                try:
                    results.append(parse_answer(answer, source=self.name))
                except AnswerParseError as exc:
                    results.append(exc)
            errors = {i: r for i, r in enumerate(results) if isinstance(r, AnswerParseError)}
            if errors and self.reask:
                log.info("qwen3vl: %d answer(s) unreadable, asking once more", len(errors))
                chats = [prompt.reask_messages(first[i], answers[i], error.reason) for i, error in errors.items()]
                second = self.generate([chunk[i] for i in errors], chats, progress, start, total)
                for (i, error), answer in zip(errors.items(), second):
                    try:
                        results[i] = parse_answer(answer, source=self.name)
                    except AnswerParseError as exc:
                        results[i] = AnswerParseError(f"{exc.reason} (the first answer failed too: {error.reason})",
                                                      answer)
                    answers[i] = answer
            self.last_answers.extend(answers)
            for result in results:
                if isinstance(result, AnswerParseError):
                    raise result
                diagnoses.append(result)
            if progress is not None:
                progress(len(diagnoses), total)
        return diagnoses


def _progress_criteria(progress: Progress, done: int, total: int):
    """A stopping criterion that never stops but calls ``progress`` every few tokens, so that a long
    generation can be interrupted (``progress`` raises :class:`Interrupted`)."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    class ReportProgress(StoppingCriteria):
        def __init__(self) -> None:
            self.calls = 0

        def __call__(self, input_ids, scores, **kwargs):
            self.calls += 1
            if self.calls % PROGRESS_EVERY_TOKENS == 0:
                progress(done, total)
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([ReportProgress()])


# ---- loading ---------------------------------------------------------------------------------------
def check_adapter_folder(path: str | Path) -> Path:
    """A LoRA adapter folder (``adapter_config.json`` + ``adapter_model.safetensors``), checked."""
    expected = ["adapter_config.json", "adapter_model.safetensors"]
    folder = Path(path).expanduser()
    if not folder.is_dir() or not (folder / "adapter_config.json").is_file():
        raise not_found("qwen3vl LoRA adapter", folder, expected)
    if not (folder / "adapter_model.safetensors").is_file():
        if any((folder / name).is_file() for name in ("adapter_model.bin", "adapter_model.pt")):
            raise ModelNotFoundError(f"qwen3vl LoRA adapter: {folder} has a pickle adapter (adapter_model.bin), which "
                                     "is refused; save it with safetensors (peft's save_pretrained does by default)")
        raise not_found("qwen3vl LoRA adapter", folder, expected)
    config = read_json(folder / "adapter_config.json", "qwen3vl LoRA adapter")
    if config.get("peft_type", "LORA") != "LORA":
        raise BackendError(f"qwen3vl LoRA adapter: {folder} holds a {config.get('peft_type')} adapter; only LoRA "
                           "adapters are supported")
    return folder


def load_model(path: str | Path, device: torch.device, dtype: torch.dtype, *, attn_implementation: str = "sdpa",
               processor_path: str | Path | None = None, adapter: str | Path | None = None,
               merge_adapter: bool = True) -> tuple[Any, Any]:
    """(model, processor) from a local Qwen3-VL folder, on ``device`` in ``dtype``, in eval mode."""
    from transformers import AutoProcessor, Qwen3VLForConditionalGeneration

    if attn_implementation not in ATTENTION_CHOICES:
        raise BackendError(f"qwen3vl attn_implementation {attn_implementation!r} is not one of "
                           f"{', '.join(ATTENTION_CHOICES)}")
    folder = Path(path).expanduser()
    check_transformers_folder(folder, "Qwen3-VL reasoner", model_types=MODEL_TYPES,
                              processor_folder=processor_path)
    adapter_folder = check_adapter_folder(adapter) if adapter else None
    processor_folder = Path(processor_path) if processor_path else folder
    processor = AutoProcessor.from_pretrained(str(processor_folder), local_files_only=True, trust_remote_code=False)
    model = Qwen3VLForConditionalGeneration.from_pretrained(
        str(folder), dtype=dtype, attn_implementation=attn_implementation, **load_kwargs())
    if adapter_folder is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_folder), is_trainable=False)
        if merge_adapter:
            model = model.merge_and_unload()
    return model.to(device).eval(), processor


WEIGHT_OPTIONS = ("adapter", "merge_adapter", "attn_implementation", "processor")
"""Options that change the loaded weights; the others only change how the model is asked."""


def _weights_identity(spec: ModelSpec) -> tuple:
    device = resolve_device(spec.device)
    return (str(Path(spec.path).expanduser().resolve()), str(device), str(resolve_dtype(spec.dtype, device)),
            tuple((key, spec.option(key)) for key in WEIGHT_OPTIONS))


def find_loaded(spec: ModelSpec) -> Qwen3VLReasoner | None:
    """A reasoner in :mod:`rnr.cache` holding the same weights as ``spec`` (same folder, device, dtype,
    adapter and attention), loaded under another spec; ``None`` when there is none.

    This is how a reasoner and a Qwen-Image 2.1 text encoder on one checkpoint share one copy, and how
    reasoners that differ only in generation options (``max_new_tokens``...) share their model.
    """
    from .. import cache

    wanted = _weights_identity(spec)
    for entry in cache.stats()["models"]:
        if entry["kind"] != "reasoner" or entry["backend"] != "qwen3vl":
            continue
        other = ModelSpec.make("reasoner", "qwen3vl", entry["path"], entry["device"], entry["dtype"], **entry["options"])
        if other != spec and _weights_identity(other) == wanted:
            found = cache.get(other)
            if isinstance(found, Qwen3VLReasoner):
                return found
    return None


def load(spec: ModelSpec) -> Qwen3VLReasoner:
    """The Qwen3-VL reasoner of ``spec``; ``spec.path`` is the checkpoint folder.

    Options: ``adapter`` (LoRA folder), ``merge_adapter`` (default true), ``attn_implementation``
    (sdpa, eager, flash_attention_2), ``processor`` (folder with the tokenizer and processor files
    when they are not beside the weights), ``max_new_tokens``, ``batch_size``, ``max_pixels``,
    ``temperature``, ``top_p``, ``seed``, ``reask``, ``system_prompt`` (replaces the built-in one, e.g.
    the prompt an adapter was trained with), ``generate_options`` (JSON object text of extra
    ``model.generate`` arguments, e.g. ``'{"repetition_penalty": 1.05}'``).
    """
    if not spec.path:
        raise ModelNotFoundError("the qwen3vl reasoner needs a model folder: pass the Qwen3-VL checkpoint folder as "
                                 "the path (e.g. --reasoner-path models/Qwen3-VL-8B-Instruct); it holds config.json, "
                                 "*.safetensors, tokenizer.json and preprocessor_config.json")
    device = resolve_device(spec.device)
    dtype = resolve_dtype(spec.dtype, device)
    shared = find_loaded(spec)
    if shared is not None:
        model, processor = shared.model, shared.processor
    else:
        model, processor = _load_for(spec, device, dtype)
    return Qwen3VLReasoner(
        model, processor, device=device,
        max_new_tokens=int(spec.option("max_new_tokens", DEFAULT_MAX_NEW_TOKENS)),
        batch_size=int(spec.option("batch_size", DEFAULT_BATCH)),
        max_pixels=int(spec.option("max_pixels", DEFAULT_MAX_PIXELS)),
        temperature=float(spec.option("temperature", 0.0)), top_p=float(spec.option("top_p", 1.0)),
        reask=bool(spec.option("reask", True)), seed=int(spec.option("seed", 0)),
        system=spec.option("system_prompt"), generate_options=_generate_options(spec.option("generate_options")))


def _generate_options(value: Any) -> dict[str, Any]:
    """``generate_options`` as a dict; specs hold it as JSON text (or key-value pairs) to stay hashable."""
    if value in (None, ""):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise BackendError(f"qwen3vl generate_options must be a JSON object, got {value!r} ({exc})") from None
    try:
        return dict(value)
    except (TypeError, ValueError):
        raise BackendError(f"qwen3vl generate_options must be a JSON object, got {value!r}") from None


def _load_for(spec: ModelSpec, device: torch.device, dtype: torch.dtype) -> tuple[Any, Any]:
    processor_path = spec.option("processor")
    if processor_path is None:
        folder = Path(spec.path).expanduser()
        sibling = folder.parent / "processor"
        if folder.is_dir() and not (has_tokenizer(folder) and has_processor(folder)) and has_processor(sibling):
            processor_path = str(sibling)
    return load_model(spec.path, device, dtype, attn_implementation=str(spec.option("attn_implementation", "sdpa")),
                      processor_path=processor_path, adapter=spec.option("adapter"),
                      merge_adapter=bool(spec.option("merge_adapter", True)))


__all__ = ["AnswerParseError", "Interrupted", "Qwen3VLReasoner", "load", "load_model", "parse_answer"]
