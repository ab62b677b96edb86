"""CPU benchmark of the Qwen3-VL reasoner wrapper against the bare transformers call (no GPU needed).

Builds a reduced random-weight Qwen3-VL (the real ``Qwen3VLForConditionalGeneration`` class with
fewer and narrower layers, see :data:`REDUCED`) that keeps what decides the work per image: Qwen's
real tokenizer (so the system prompt + schema is the same number of tokens as on the GPU), the real
vision patching (patch 16, merge 2, temporal 2: 256 image tokens at 512², 1024 at 1024²), the real
vocabulary and the chat template. Then, for each input side in the same run, it times

- the bare call: ``apply_chat_template`` + processor + ``model.generate`` + ``batch_decode`` on a PIL
  image prepared outside the timer (as ``bench.py`` does on the GPU);
- the wrapper: ``Qwen3VLReasoner.diagnose`` on the ``[1,3,H,W]`` tensor (re-ask off; the random
  answer never parses, as on the GPU),

alternately (B W W B ...) with ``bench.compare``, which also splits each call into the time inside
and outside ``model.generate`` and checks that both sides made the same generate calls, with the same
prompt tokens, producing the same tokens. The wrapper's own steps (image check, tensor -> PIL, chat,
parse of the answer it got) are timed one by one as well, and at ``--control-sides`` the bare call is
timed against itself: the "overhead" two identical calls show on this machine.

    nice -n 10 python benchmarks/bigmodels/cpu_bench.py --tokenizer <qwen25_tokenizer folder>

Writes ``cpu_results.json`` and ``cpu_results.md`` next to this file (or under ``--out``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

import bench  # noqa: E402

REDUCED = {
    "text_config": {"hidden_size": 256, "intermediate_size": 768, "num_hidden_layers": 4, "num_attention_heads": 4,
                    "num_key_value_heads": 2, "head_dim": 64},
    "vision_config": {"depth": 2, "hidden_size": 128, "intermediate_size": 512, "num_heads": 2,
                      "out_hidden_size": 256, "deepstack_visual_indexes": [0, 1]},
    "mrope_section": [12, 10, 10],
}
"""Qwen3-VL-8B's config with 4 text layers of width 256 and 2 vision blocks of width 128; vocabulary,
rope, patching and the token ids are the real model's."""

COMFY_TOKENIZER = Path("comfy/text_encoders/qwen25_tokenizer")


def default_tokenizer() -> str | None:
    for root in (os.environ.get("RNR_COMFYUI_DIR"), "/work/shared/comfyui/ComfyUI"):
        if root and (Path(root) / COMFY_TOKENIZER / "vocab.json").is_file():
            return str(Path(root) / COMFY_TOKENIZER)
    return None


def _ms(fn, repeats: int = 5) -> float:
    """Median milliseconds of ``fn()``."""
    times = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(1e3 * statistics.median(times), 3)


def wrapper_steps(reasoner, image: torch.Tensor, answer: str) -> dict:
    """Milliseconds of each step the wrapper does besides the processor, generate and decoding."""
    from rnr.images import check_images
    from rnr.reasoners import qwen3vl_prompt as prompt
    from rnr.reasoners.qwen3vl_parse import AnswerParseError, parse_answer

    def parse():
        try:
            parse_answer(answer, source="qwen3vl")
        except AnswerParseError:
            pass

    return {"check_images_ms": _ms(lambda: check_images(image)), "to_pil_ms": _ms(lambda: reasoner._pil(image[0])),
            "chat_ms": _ms(lambda: prompt.messages(system=reasoner.system)), "parse_ms": _ms(parse)}


def run(tokenizer_dir: Path, sides: list[int], repeats: int, new_tokens: int, log: list,
        control_sides: list[int]) -> None:
    from transformers import Qwen3VLForConditionalGeneration

    from rnr.reasoners.qwen3vl import Qwen3VLReasoner

    processor = bench.qwen3vl_processor(tokenizer_dir)
    torch.manual_seed(0)
    model = Qwen3VLForConditionalGeneration._from_config(bench.qwen3vl_config("8B", REDUCED),
                                                         dtype=torch.float32).eval()
    params = sum(p.numel() for p in model.parameters())
    timer = bench.GenerateTimer(model)
    reasoner = Qwen3VLReasoner(model, processor, device="cpu", max_new_tokens=new_tokens, reask=False,
                               generate_options={"min_new_tokens": new_tokens})
    options = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens, "do_sample": False,
               "temperature": None, "top_p": None, "top_k": None,
               "pad_token_id": processor.tokenizer.pad_token_id or processor.tokenizer.eos_token_id}
    for side in sides:
        image = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(side))
        bare, wrapped = bench.qwen3vl_calls(reasoner, processor, model, options, image, "cpu")
        label = {"backend": "qwen3vl", "model": "Qwen3-VL-8B reduced (4 text layers x 256, 2 vision blocks x 128)",
                 "parameters": params, "input": f"{side}x{side}", "new_tokens": new_tokens, "offload": "none"}
        row = bench.compare(label, bare, wrapped, repeats, log, float("inf"), timer=timer)
        image_tokens = int(processor(text=["<|image_pad|>"], images=[reasoner._pil(image[0])], return_tensors="pt")
                           ["input_ids"].eq(bench.QWEN3VL_TOKENS["image_token_id"]).sum())
        row.update(image_tokens=image_tokens, answer=reasoner.last_answers[0],
                   wrapper_steps=wrapper_steps(reasoner, image, reasoner.last_answers[0]))
        print(json.dumps({k: row[k] for k in ("input", "image_tokens", "wrapper_steps")}), flush=True)
        if side in control_sides:
            # The control: the bare call against itself, timed the same way. What it shows as
            # "overhead" is what this machine's jitter alone makes of two identical calls.
            def bare_again():
                return bare()

            control = bench.compare({**label, "control": "bare vs bare"}, bare, bare_again, repeats, log,
                                    float("inf"), timer=timer)
            control["image_tokens"] = image_tokens
    timer.remove()


def write_report(out: Path, meta: dict, log: list) -> None:
    (out / "cpu_results.json").write_text(json.dumps({"meta": meta, "results": log}, indent=1, ensure_ascii=False)
                                          + "\n")
    lines = [f"# Qwen3-VL reasoner wrapper vs bare transformers on the CPU ({meta['cpu']})", "",
             f"Written by `benchmarks/bigmodels/cpu_bench.py` on {meta['started']} UTC: `{meta['command']}`", "",
             f"torch {meta['torch']}, transformers {meta['transformers']}, python {meta['python']}, "
             f"{meta['threads']} torch thread(s), float32, {meta['repeats']} timed calls per side after one warm-up "
             "each, alternating B W W B ...; median. Model: Qwen3-VL-8B's config reduced to 4 text layers of "
             "width 256 and 2 vision blocks of width 128 (real classes, tokenizer, vocabulary and vision "
             "patching; random weights).", "",
             "Same work on both sides (counted inside `model.generate`, which both sides call):", "",
             "| input | prompt tokens | of them image tokens | new tokens | generate calls (bare / wrapper) | "
             "same generated tokens |", "|---|---|---|---|---|---|"]
    def name(row: dict) -> str:
        return row["input"] + (" control: bare vs bare" if row.get("control") else "")

    for row in log:
        calls = row["generate_calls"]
        prompt = row["prompt_tokens"]
        lines.append(f"| {name(row)} | {'/'.join(map(str, prompt['bare']))} (bare), "
                     f"{'/'.join(map(str, prompt['wrapper']))} (wrapper) | {row['image_tokens']} | "
                     f"{'/'.join(map(str, row['new_tokens_made']['bare']))} (bare), "
                     f"{'/'.join(map(str, row['new_tokens_made']['wrapper']))} (wrapper) | "
                     f"{calls['bare']} / {calls['wrapper']} | {'yes' if row['same_tokens'] else 'NO'} |")
    lines += ["", "Time per image, median (wall seconds, and CPU seconds of the benchmark process, which other "
              "processes on the shared machine do not inflate):", "",
              "| input | bare s | wrapper s | overhead (wall) | bare CPU s | wrapper CPU s | overhead (CPU) | "
              "inside generate s (bare / wrapper) | outside generate ms, wall (bare / wrapper) | "
              "outside generate ms, CPU (bare / wrapper) | own overhead (wall / CPU) |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in log:
        lines.append(
            f"| {name(row)} | {row['bare_s']:.3f} | {row['wrapper_s']:.3f} | {row['overhead_pct']:+.2f} % | "
            f"{row['cpu_s_bare']:.3f} | {row['cpu_s_wrapper']:.3f} | {row['overhead_cpu_pct']:+.2f} % | "
            f"{row['generate_s_bare']:.3f} / {row['generate_s_wrapper']:.3f} | "
            f"{row['outside_generate_ms_bare']:.1f} / {row['outside_generate_ms_wrapper']:.1f} | "
            f"{row['outside_generate_cpu_ms_bare']:.1f} / {row['outside_generate_cpu_ms_wrapper']:.1f} | "
            f"{row['own_overhead_pct']:+.2f} % / {row['own_overhead_cpu_pct']:+.2f} % |")
    lines += ["", "The wrapper's own steps (median ms; the parse is of the answer the model gave):", "",
              "| input | check_images | tensor -> PIL | chat | parse |", "|---|---|---|---|---|"]
    for row in log:
        if "wrapper_steps" not in row:
            continue
        steps = row["wrapper_steps"]
        lines.append(f"| {row['input']} | {steps['check_images_ms']:.2f} | {steps['to_pil_ms']:.2f} | "
                     f"{steps['chat_ms']:.3f} | {steps['parse_ms']:.3f} |")
    lines += ["", "In a *control* row both columns are the bare call (its second column is labelled wrapper): "
              "two identical calls, timed like the others, to show what the machine's jitter alone makes of them.",
              "", "*own overhead* = (wrapper's median time outside `generate` - bare's) / bare's median total: "
              "what the wrapper adds, free of the call-to-call jitter of `generate` itself (the same library "
              "call with the same inputs on both sides). Every timed call: "
              "`times_*`, `cpu_times_*`, `generate_times_*` in `cpu_results.json`."]
    (out / "cpu_results.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(HERE))
    parser.add_argument("--tokenizer", default=default_tokenizer(),
                        help="folder with Qwen's vocab.json and merges.txt (default: ComfyUI's qwen25_tokenizer)")
    parser.add_argument("--sides", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--control-sides", type=int, nargs="*", default=[512],
                        help="sides also timed bare against bare (the jitter of identical calls)")
    args = parser.parse_args()
    if not args.tokenizer:
        parser.error("no Qwen tokenizer found: pass --tokenizer <folder with vocab.json and merges.txt>")
    torch.set_num_threads(args.threads)
    import transformers

    bench.DEVICE = "cpu"
    start = time.perf_counter()
    meta = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "threads": args.threads,
            "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version(), "dtype": "float32", "repeats": args.repeats,
            "started": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            "command": "nice -n 10 python benchmarks/bigmodels/cpu_bench.py " + " ".join(sys.argv[1:]),
            "load_average_before": os.getloadavg()}
    try:
        with open("/proc/cpuinfo") as f:
            meta["cpu"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(json.dumps(meta), flush=True)
    log: list = []
    run(Path(args.tokenizer), args.sides, args.repeats, args.new_tokens, log, args.control_sides)
    meta["wall_s"] = round(time.perf_counter() - start, 1)
    meta["load_average_after"] = os.getloadavg()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_report(out, meta, log)
    print(f"wrote {out / 'cpu_results.json'} in {meta['wall_s']} s", flush=True)


if __name__ == "__main__":
    main()
