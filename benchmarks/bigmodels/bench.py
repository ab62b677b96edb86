"""GPU benchmark of the big-model backends at real size, with random weights.

Builds Qwen3-VL-2B and Qwen3-VL-8B (configs written out from the published ones) and the full
Qwen-Image-Edit pipeline (20B transformer, Qwen2.5-VL-7B text encoder, VAE; bf16) directly on the GPU
with random weights, then times, per image, at 512² and 1024² inputs:

- the wrapper: ``Qwen3VLReasoner.diagnose`` / ``QwenImageEditRestorer.restore`` on a [1,3,H,W] tensor;
- the bare library call on the same inputs: ``processor`` + ``model.generate`` + ``batch_decode`` /
  ``pipe(**restorer.pipeline_kwargs(...))``, prepared outside the timer;

without offload and with offload (reasoner: weights moved in from the CPU for the call and back, as
the model cache does; restorer: diffusers' ``enable_model_cpu_offload``). Bare and wrapper calls
alternate (B W W B ..., a full garbage collection before each, outside the timer); the median of the
timed repeats is reported, with the peak GPU memory and the process's CPU seconds of the call. Reasoner
rows also split every call into the time inside and outside ``model.generate`` (:class:`GenerateTimer`)
and record the generate calls, prompt tokens and new tokens of each side: the wrapper's own overhead is
the difference outside ``generate``, which the call-to-call jitter of ``generate`` does not blur.

Random weights write random tokens, so each reasoner call generates exactly ``--new-tokens`` tokens
(``min_new_tokens``) and the wrapper's parse of them fails as it would on any unreadable answer (the
re-ask is off so that both sides do one generation). The restorer runs ``--steps`` steps without
classifier-free guidance (guidance 1, as with the distilled Lightning LoRAs); time per step scales.

    python benchmarks/bigmodels/bench.py --out benchmarks/bigmodels --tokenizer <qwen25_tokenizer folder>
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

QWEN3VL_TOKENS = {"image_token_id": 151655, "video_token_id": 151656, "vision_start_token_id": 151652,
                  "vision_end_token_id": 151653}
QWEN3VL = {
    "2B": {"text_config": {"hidden_size": 2048, "intermediate_size": 6144, "num_hidden_layers": 28,
                           "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128},
           "vision_config": {"depth": 24, "hidden_size": 1024, "intermediate_size": 4096, "num_heads": 16,
                             "out_hidden_size": 2048, "deepstack_visual_indexes": [5, 11, 17]},
           "tie_word_embeddings": True},
    "8B": {"text_config": {"hidden_size": 4096, "intermediate_size": 12288, "num_hidden_layers": 36,
                           "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128},
           "vision_config": {"depth": 27, "hidden_size": 1152, "intermediate_size": 4304, "num_heads": 16,
                             "out_hidden_size": 4096, "deepstack_visual_indexes": [8, 16, 24]},
           "tie_word_embeddings": False},
}
"""Qwen3-VL-{2B,8B}-Instruct as published; the shared values are filled in by :func:`qwen3vl_config`."""


def qwen3vl_config(size: str, reduced: dict | None = None):
    """The Qwen3-VL config of ``size``; ``reduced`` ({"text_config": ..., "vision_config": ...,
    "mrope_section": ...}) overrides layer counts and widths (the CPU benchmark), keeping the vision
    patching (patch 16, merge 2, temporal 2) and so the image token counts of the real model."""
    from transformers import Qwen3VLConfig

    spec = QWEN3VL[size]
    reduced = reduced or {}
    mrope = reduced.get("mrope_section", [4, 6, 6] if USE_TINY else [24, 20, 20])
    text = {"vocab_size": 151936, "hidden_act": "silu", "max_position_embeddings": 262144, "rms_norm_eps": 1e-6,
            "attention_bias": False, "bos_token_id": 151643, "eos_token_id": 151645,
            "rope_parameters": {"rope_type": "default", "rope_theta": 5000000.0,
                                "mrope_section": mrope, "mrope_interleaved": True},
            **_tiny("qwen3vl_text", spec["text_config"]), **reduced.get("text_config", {})}
    vision = {"hidden_act": "gelu_pytorch_tanh", "in_channels": 3, "patch_size": 16, "spatial_merge_size": 2,
              "temporal_patch_size": 2, "num_position_embeddings": 2304, **_tiny("qwen3vl_vision", spec["vision_config"]),
              **reduced.get("vision_config", {})}
    return Qwen3VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=spec["tie_word_embeddings"],
                         **QWEN3VL_TOKENS)


def qwen3vl_processor(tokenizer_dir: Path):
    from transformers import Qwen2Tokenizer, Qwen2VLImageProcessor, Qwen3VLProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    from tests.bigmodels.tiny import QWEN3VL_CHAT_TEMPLATE

    tokenizer = Qwen2Tokenizer.from_pretrained(str(tokenizer_dir))
    size = {"shortest_edge": 65536, "longest_edge": 16777216}
    image = Qwen2VLImageProcessor(patch_size=16, temporal_patch_size=2, merge_size=2, size=size,
                                  image_mean=[0.5] * 3, image_std=[0.5] * 3)
    video = Qwen3VLVideoProcessor(patch_size=16, temporal_patch_size=2, merge_size=2)
    return Qwen3VLProcessor(image_processor=image, tokenizer=tokenizer, video_processor=video,
                            chat_template=QWEN3VL_CHAT_TEMPLATE)


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def measure(fn) -> tuple[float, float, int]:
    """(seconds, CPU seconds of this process, peak GPU bytes) of one call (0 bytes on the CPU).

    The CPU seconds count only this process's work, so they are what to compare on a shared machine
    where other processes take turns on the cores (wall seconds then include their share)."""
    cuda = torch.cuda.is_available()
    _sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    _sync()
    return time.perf_counter() - start, time.process_time() - cpu, torch.cuda.max_memory_allocated() if cuda else 0


class GenerateTimer:
    """Times every ``model.generate`` call of one model, whoever makes it (the bare call or the wrapper).

    Installed as the instance attribute ``generate`` (the class method stays untouched), so both sides
    run the very same library code; :meth:`take` returns and clears what the calls since the last
    ``take`` did: seconds inside ``generate``, the number of calls, the prompt and new token counts.
    The time outside ``generate`` is then what each side does around it (processor, decoding, and for
    the wrapper its checks, tensor -> PIL and parsing), free of the token-by-token jitter of ``generate``.
    """

    def __init__(self, model) -> None:
        self.model = model
        self.inner = model.generate
        self.calls: list[dict] = []
        model.generate = self

    def __call__(self, *args, **kwargs):
        _sync()
        start, cpu = time.perf_counter(), time.process_time()
        out = self.inner(*args, **kwargs)
        _sync()
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        prompt = int(kwargs["input_ids"].shape[1])
        self.calls.append({"seconds": seconds, "cpu_seconds": cpu, "prompt_tokens": prompt,
                           "new_tokens": int(out.shape[1]) - prompt,
                           "ids": out[0].tolist() if out.shape[0] == 1 else None})
        return out

    def take(self) -> list[dict]:
        calls, self.calls = self.calls, []
        return calls

    def remove(self) -> None:
        del self.model.generate


DEVICE = "cuda"
TINY = {
    "qwen3vl_text": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "num_key_value_heads": 1, "head_dim": 32},
    "qwen3vl_vision": {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
                       "deepstack_visual_indexes": [0], "num_position_embeddings": 64},
    "transformer": {"num_layers": 1, "attention_head_dim": 32, "num_attention_heads": 2, "joint_attention_dim": 64,
                    "axes_dims_rope": [8, 12, 12]},
    "vae": {"base_dim": 4},
    "text_encoder": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 2,
                     "num_key_value_heads": 2, "rope_scaling": {"type": "mrope", "mrope_section": [4, 6, 6]},
                     "vision_config": {"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
                                       "out_hidden_size": 64, "fullatt_block_indexes": [0]}},
}
"""``--tiny``: the same code paths with tiny layers, to check the script on a CPU before a GPU run."""
USE_TINY = False


def _tiny(name: str, config: dict) -> dict:
    if not USE_TINY:
        return config
    merged = {**config, **TINY[name]}
    if isinstance(config.get("vision_config"), dict) and "vision_config" in TINY[name]:
        merged["vision_config"] = {**config["vision_config"], **TINY[name]["vision_config"]}
    return merged


def compare(label: dict, bare, wrapped, repeats: int, log: list, deadline: float, prepare_bare=None,
            timer: GenerateTimer | None = None) -> dict | None:
    """Time ``bare`` and ``wrapped`` alternately (one warm-up each, then ``repeats`` timed calls each in
    the order B W W B B W ..., so that neither side always runs first); append one result row.

    ``prepare_bare`` runs before each bare call, outside the timer; a full garbage collection runs
    before every call, outside the timer, so that no side pays for the other's garbage. With a
    ``timer`` (reasoner rows) each call's time is split into inside and outside ``model.generate``,
    and the row records the generate calls and token counts of each side, which must be equal.
    """
    if time.perf_counter() > deadline:
        log.append({**label, "skipped": "time budget of the run used up"})
        print(json.dumps(log[-1]), flush=True)
        return None
    prepare = prepare_bare or (lambda: None)
    sides = {"bare": bare, "wrapper": wrapped}
    prepare()
    bare()
    wrapped()
    work = {}
    if timer is not None:
        first = timer.take()
        work = {"bare": first[:len(first) // 2], "wrapper": first[len(first) // 2:]}
    times: dict[str, list[float]] = {"bare": [], "wrapper": []}
    cpu_times: dict[str, list[float]] = {"bare": [], "wrapper": []}
    inside: dict[str, list[float]] = {"bare": [], "wrapper": []}
    inside_cpu: dict[str, list[float]] = {"bare": [], "wrapper": []}
    calls: dict[str, list[list[dict]]] = {"bare": [], "wrapper": []}
    peaks = {"bare": 0, "wrapper": 0}
    for repeat in range(repeats):
        for name in ("bare", "wrapper") if repeat % 2 == 0 else ("wrapper", "bare"):
            if name == "bare":
                prepare()
            gc.collect()
            seconds, cpu, peak = measure(sides[name])
            times[name].append(seconds)
            cpu_times[name].append(cpu)
            peaks[name] = max(peaks[name], peak)
            if timer is not None:
                made = timer.take()
                calls[name].append(made)
                inside[name].append(sum(c["seconds"] for c in made))
                inside_cpu[name].append(sum(c["cpu_seconds"] for c in made))
    bare_s, wrap_s = statistics.median(times["bare"]), statistics.median(times["wrapper"])
    row = {**label, "bare_s": round(bare_s, 4), "wrapper_s": round(wrap_s, 4),
           "overhead_pct": round(100.0 * (wrap_s - bare_s) / bare_s, 2),
           "peak_gib_bare": round(peaks["bare"] / 2**30, 2), "peak_gib_wrapper": round(peaks["wrapper"] / 2**30, 2),
           "times_bare": [round(t, 4) for t in times["bare"]], "times_wrapper": [round(t, 4) for t in times["wrapper"]],
           "cpu_s_bare": round(statistics.median(cpu_times["bare"]), 4),
           "cpu_s_wrapper": round(statistics.median(cpu_times["wrapper"]), 4),
           "overhead_cpu_pct": round(100.0 * (statistics.median(cpu_times["wrapper"])
                                              - statistics.median(cpu_times["bare"]))
                                     / statistics.median(cpu_times["bare"]), 2),
           "cpu_times_bare": [round(t, 4) for t in cpu_times["bare"]],
           "cpu_times_wrapper": [round(t, 4) for t in cpu_times["wrapper"]]}
    if timer is not None:
        outside = {name: [t - g for t, g in zip(times[name], inside[name])] for name in times}
        outside_cpu = {name: [t - g for t, g in zip(cpu_times[name], inside_cpu[name])] for name in times}
        row.update({
            "generate_times_bare": [round(t, 4) for t in inside["bare"]],
            "generate_times_wrapper": [round(t, 4) for t in inside["wrapper"]],
            "outside_generate_cpu_ms_bare": round(1e3 * statistics.median(outside_cpu["bare"]), 2),
            "outside_generate_cpu_ms_wrapper": round(1e3 * statistics.median(outside_cpu["wrapper"]), 2),
            "generate_s_bare": round(statistics.median(inside["bare"]), 4),
            "generate_s_wrapper": round(statistics.median(inside["wrapper"]), 4),
            "outside_generate_ms_bare": round(1e3 * statistics.median(outside["bare"]), 2),
            "outside_generate_ms_wrapper": round(1e3 * statistics.median(outside["wrapper"]), 2),
            "own_overhead_pct": round(100.0 * (statistics.median(outside["wrapper"])
                                               - statistics.median(outside["bare"])) / bare_s, 2),
            "own_overhead_cpu_pct": round(100.0 * (statistics.median(outside_cpu["wrapper"])
                                                   - statistics.median(outside_cpu["bare"]))
                                          / statistics.median(cpu_times["bare"]), 2),
            "generate_calls": {name: sorted({len(c) for c in calls[name]}) for name in calls},
            "prompt_tokens": {name: sorted({c["prompt_tokens"] for cs in calls[name] for c in cs}) for name in calls},
            "new_tokens_made": {name: sorted({c["new_tokens"] for cs in calls[name] for c in cs}) for name in calls},
            "same_tokens": bool(work) and [c["ids"] for c in work["bare"]] == [c["ids"] for c in work["wrapper"]],
        })
    log.append(row)
    print(json.dumps(row), flush=True)
    return row


def qwen3vl_calls(reasoner, processor, model, options: dict, image: torch.Tensor, device) -> tuple:
    """(bare, wrapped): the bare transformers call on the wrapper's own prompt and image (prepared outside the
    timer) and our reasoner's ``diagnose`` on the same image; random weights never parse, which is not timed."""
    from rnr.reasoners import qwen3vl_prompt as prompt
    from rnr.reasoners.qwen3vl_parse import AnswerParseError

    pil = [reasoner._pil(image[0])]
    chats = [prompt.messages(system=reasoner.system)]

    def bare():
        texts = [processor.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in chats]
        inputs = processor(text=texts, images=pil, return_tensors="pt", padding=True, padding_side="left").to(device)
        with torch.inference_mode():
            out = model.generate(**inputs, **options)
        return processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)

    def wrapped():
        try:
            reasoner.diagnose(image)
        except AnswerParseError:
            pass

    return bare, wrapped


def bench_reasoner(size: str, tokenizer_dir: Path, sides: list[int], repeats: int, new_tokens: int, log: list,
                   deadline: float, offload_sides: list[int], offload_repeats: int = 2) -> None:
    from transformers import Qwen3VLForConditionalGeneration

    from rnr.reasoners.qwen3vl import Qwen3VLReasoner

    processor = qwen3vl_processor(tokenizer_dir)
    torch.manual_seed(0)
    with torch.device(DEVICE):
        model = Qwen3VLForConditionalGeneration._from_config(qwen3vl_config(size), dtype=torch.bfloat16).eval()
    params = sum(p.numel() for p in model.parameters())
    timer = GenerateTimer(model)
    reasoner = Qwen3VLReasoner(model, processor, device=DEVICE, max_new_tokens=new_tokens, reask=False,
                               generate_options={"min_new_tokens": new_tokens})
    options = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens, "do_sample": False,
               "temperature": None, "top_p": None, "top_k": None,
               "pad_token_id": processor.tokenizer.pad_token_id or processor.tokenizer.eos_token_id}
    for side in sides:
        image = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(side)).to(DEVICE)
        bare, wrapped = qwen3vl_calls(reasoner, processor, model, options, image, DEVICE)
        label = {"backend": "qwen3vl", "model": f"Qwen3-VL-{size}", "parameters": params, "input": f"{side}x{side}",
                 "new_tokens": new_tokens, "offload": "none"}
        compare(label, bare, wrapped, repeats, log, deadline, timer=timer)

        def offloaded(fn):
            def run():
                model.to(DEVICE)
                fn()
                model.to("cpu")
            return run

        if DEVICE != "cpu" and side in offload_sides:
            model.to("cpu")
            torch.cuda.empty_cache()
            compare({**label, "offload": "cpu<->gpu per call (cache offload)"}, offloaded(bare), offloaded(wrapped),
                    offload_repeats, log, deadline, timer=timer)
            model.to(DEVICE)


def edit_pipeline(tokenizer_dir: Path):
    from diffusers import (AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImageEditPipeline,
                           QwenImageTransformer2DModel)
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2Tokenizer,
                              Qwen2VLImageProcessor, Qwen2VLProcessor)
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    from rnr.restorers import qwen_image_edit_configs as configs

    def without_class(config):
        return {k: v for k, v in config.items() if not k.startswith("_")}

    tokenizer = Qwen2Tokenizer.from_pretrained(str(tokenizer_dir))
    processor_config = {k: v for k, v in configs.IMAGE_PROCESSOR.items()
                        if k not in ("image_processor_type", "min_pixels", "max_pixels")}
    image_processor = Qwen2VLImageProcessor(**processor_config, size={"shortest_edge": configs.IMAGE_PROCESSOR["min_pixels"],
                                                                      "longest_edge": configs.IMAGE_PROCESSOR["max_pixels"]})
    processor = Qwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                 video_processor=Qwen2VLVideoProcessor())
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(DEVICE):
            transformer = QwenImageTransformer2DModel(**_tiny("transformer", without_class(configs.TRANSFORMER))).eval()
            vae = AutoencoderKLQwenImage(**_tiny("vae", without_class(configs.VAE))).eval()
            text_config = Qwen2_5_VLConfig(**_tiny("text_encoder", {k: v for k, v in configs.TEXT_ENCODER.items()
                                                                     if k != "architectures"}))
            text_encoder = Qwen2_5_VLForConditionalGeneration._from_config(text_config, dtype=torch.bfloat16).eval()
    finally:
        torch.set_default_dtype(previous)
    scheduler = FlowMatchEulerDiscreteScheduler(**without_class(configs.SCHEDULER))
    pipe = QwenImageEditPipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                 processor=processor, transformer=transformer)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def bench_restorer(tokenizer_dir: Path, sides: list[int], repeats: int, steps: int, log: list, deadline: float,
                   offload_sides: list[int]) -> None:
    from rnr.diagnosis import Diagnosis, Haze, Noise
    from rnr.restorers.qwen_image_edit import QwenImageEditRestorer
    from rnr.restorers.qwen_image_edit_load import LoadedPipeline

    pipe = edit_pipeline(tokenizer_dir)
    counts = {name: sum(p.numel() for p in getattr(pipe, name).parameters())
              for name in ("transformer", "text_encoder", "vae")}
    restorer = QwenImageEditRestorer(LoadedPipeline(pipe, "edit", "benchmark"), device=DEVICE, steps=steps,
                                     guidance=1.0)
    diagnosis = Diagnosis(haze=Haze(present=True, severity=55, transmission=0.5),
                          noise=Noise(present=True, severity=30, sigma_255=15.0), scene="A city street at dusk")
    for offload in ("none", "model") if DEVICE != "cpu" else ("none",):
        if offload == "model":
            pipe.enable_model_cpu_offload(device="cuda:0")
            gc.collect()
            torch.cuda.empty_cache()
        for side in sides if offload == "none" else [s for s in sides if s in offload_sides]:
            image = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(side)).to(DEVICE)
            prepared: list = []

            def prepare():
                # The bare call's inputs (PIL image at the working size, prompt, generator) are built
                # before the timer starts; only the library call is timed.
                prepared.append(restorer.pipeline_kwargs(image[0], diagnosis.to_prompt(), seed=0))

            def bare():
                with torch.inference_mode():
                    return pipe(**prepared.pop()).images

            def wrapped():
                restorer.restore(image, [diagnosis], seed=0)

            label = {"backend": "qwen_image_edit", "model": "Qwen-Image-Edit (random weights)",
                     "parameters": counts, "input": f"{side}x{side}",
                     "working_size": "x".join(map(str, restorer.working_size(side, side))), "steps": steps,
                     "guidance": 1.0, "offload": offload}
            compare(label, bare, wrapped, repeats if offload == "none" else 1, log, deadline, prepare_bare=prepare)


def write_report(out: Path, meta: dict, log: list) -> None:
    """``results.json`` and a markdown table ``results.md`` of the rows so far."""
    (out / "results.json").write_text(json.dumps({"meta": meta, "results": log}, indent=1) + "\n")
    lines = [f"# Big-model backends on {meta['device']} (random weights, {meta['dtype']})", "",
             f"torch {meta['torch']}, transformers {meta['transformers']}, diffusers {meta['diffusers']}; "
             f"median of {meta['repeats']} timed calls per side after one warm-up, alternating B W W B ... "
             f"(reasoner offload rows: {meta.get('offload_repeats', 2)} timed calls per side; restorer offload rows: one). *own overhead*: the "
             "wrapper's time outside `model.generate` minus the bare call's, over the bare call's total. "
             "Written by `benchmarks/bigmodels/bench.py`.", "",
             "| backend | model | input | work | offload | bare s/image | wrapper s/image | overhead | "
             "own overhead | peak GPU GiB (bare / wrapper) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in log:
        work = f"{row['new_tokens']} new tokens" if "new_tokens" in row else f"{row['steps']} steps at {row['working_size']}"
        if "skipped" in row:
            lines.append(f"| {row['backend']} | {row['model']} | {row['input']} | {work} | {row['offload']} | "
                         f"skipped: {row['skipped']} | | | | |")
            continue
        lines.append(f"| {row['backend']} | {row['model']} | {row['input']} | {work} | {row['offload']} | "
                     f"{row['bare_s']:.3f} | {row['wrapper_s']:.3f} | {row['overhead_pct']:+.2f} % | "
                     f"{format(row['own_overhead_pct'], '+.2f') + ' %' if 'own_overhead_pct' in row else '-'} | "
                     f"{row['peak_gib_bare']:.1f} / {row['peak_gib_wrapper']:.1f} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent))
    parser.add_argument("--tokenizer", required=True, help="folder with Qwen's vocab.json and merges.txt")
    parser.add_argument("--sides", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--offload-sides", type=int, nargs="*", default=[512, 1024],
                        help="input sides also measured with offload")
    parser.add_argument("--offload-repeats", type=int, default=2,
                        help="timed calls per side for the reasoner's offloaded rows (each moves the weights twice)")
    parser.add_argument("--reasoners", nargs="*", default=["8B", "2B"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--skip-restorer", action="store_true")
    parser.add_argument("--budget-s", type=float, default=330.0, help="stop starting new measurements after this")
    parser.add_argument("--tiny", action="store_true", help="tiny layers on the CPU: a check of the script itself")
    args = parser.parse_args()
    global DEVICE, USE_TINY
    if args.tiny:
        DEVICE, USE_TINY = "cpu", True
        # Tiny layers run fastest on one thread; two threads on a shared 2-core machine stall each other.
        torch.set_num_threads(1)
    start = time.perf_counter()
    deadline = start + args.budget_s
    import diffusers
    import transformers

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"device": torch.cuda.get_device_name(0) if DEVICE != "cpu" else "cpu (--tiny check)",
            "torch": torch.__version__, "transformers": transformers.__version__,
            "diffusers": diffusers.__version__, "python": platform.python_version(), "dtype": "bfloat16",
            "repeats": args.repeats, "offload_repeats": args.offload_repeats, "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    print(json.dumps(meta), flush=True)
    log: list = []
    tokenizer = Path(args.tokenizer)
    # The first reasoner, then the restorer, then the other reasoners: what matters most runs first when
    # the time budget is short (later measurements are then recorded as skipped).
    stages = [("reasoner", size) for size in args.reasoners[:1]]
    stages += [] if args.skip_restorer else [("restorer", "")]
    stages += [("reasoner", size) for size in args.reasoners[1:]]
    for kind, size in stages:
        if kind == "reasoner":
            bench_reasoner(size, tokenizer, args.sides, args.repeats, args.new_tokens, log, deadline, args.offload_sides,
                           args.offload_repeats)
        else:
            bench_restorer(tokenizer, args.sides, args.repeats, args.steps, log, deadline, args.offload_sides)
        gc.collect()  # the stage's models went out of scope; give their GPU memory back before the next
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        write_report(out, meta, log)
    meta["wall_s"] = round(time.perf_counter() - start, 1)
    write_report(out, meta, log)
    print(f"wrote {out / 'results.json'} in {meta['wall_s']} s", flush=True)


if __name__ == "__main__":
    main()
