"""Train the lite reasoner and restorer on degraded packed crops; stop by wall clock; export.

    python -m training.lite.train --stage both --minutes 8 --out out/lite
    python -m training.lite.train --stage restorer --minutes 4 --resume out/lite --out out/lite2
    python -m training.lite.train --stage grpo --minutes 2 --resume out/lite2 --out out/lite3
    python -m training.lite.train --stage restorer --resume out/lite --grow-restorer '{"middle_blocks": 6}' --out out/lite4
    python -m training.lite.train --stage both --resume out/lite4 --synth '{"p_clean": 0.18}' --out out/lite5

``--stage both`` trains the two networks side by side on the same batches (one data pipeline). Runs
resume from a folder of checkpoints (``ckpt_reasoner.safetensors``, ``ckpt_restorer.safetensors``) or
of exported weights. Every run writes a loss log (``log_<stage>.jsonl``), checkpoints and, at the end,
exported weights (``lite_reasoner.safetensors``, ``lite_restorer.safetensors`` plus JSON) with the
reasoner's presence thresholds calibrated on fresh validation batches. ``--grow-restorer`` and
``--grow-reasoner`` add residual blocks to the network they resume (:mod:`training.lite.grow`),
starting as the same function;
``--synth`` changes how batches are drawn (:class:`~training.lite.data.SynthConfig` fields, as JSON).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F

from rnr.devices import resolve_device
from rnr.lite.condition import ReasonerTargets, reasoner_loss
from rnr.lite.nets import ReasonerConfig, parameter_count

from .augment import down_up
from .checkpoint import EMA, NETS, load_checkpoint, save_checkpoint
from .data import WIDE_DATA, SynthConfig, load_crops, loader, synthesize
from .grow import GROWERS


@dataclass
class TrainConfig:
    stage: str = "both"
    minutes: float = 8.0
    out: str = "out/lite"
    resume: str = ""
    data: str = str(WIDE_DATA)
    batch: int = 32
    crop: int = 256
    workers: int = 12
    lr_reasoner: float = 1e-3
    lr_restorer: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 300
    seed: int = 0
    log_every: int = 50
    val_every: int = 500
    ckpt_minutes: float = 2.0
    max_steps: int = 0
    reasoner_crops: int = 4
    export_minutes: float = 0.5
    val_images: int = 64
    calib_batches: int = 48
    calib_clean: int = 768
    device: str = "auto"
    grpo_group: int = 8
    grpo_images: int = 8
    grpo_sigma: float = 0.02
    grow_restorer: str = ""
    """JSON of larger restorer block counts, e.g. '{"middle_blocks": 4}' (training.lite.grow)."""
    grow_reasoner: str = ""
    """JSON of more reasoner blocks per stage, e.g. '{"global_blocks": [1, 2, 2, 2]}' (training.lite.grow)."""
    synth: str = ""
    """JSON of training-batch settings that differ from :class:`~training.lite.data.SynthConfig`'s defaults,
    e.g. '{"p_clean": 0.18, "p_soft": 0}' (:func:`synth_config`)."""


class JsonlLog:
    """Append-only JSON-lines log that also prints a short line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        short = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()
                         if not isinstance(v, (dict, list)))
        print(short, flush=True)


def lr_factor(step: int, elapsed: float, budget: float, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, flat, then cosine to 5 % over the last 40 % of the time."""
    warm = min(1.0, (step + 1) / max(warmup, 1))
    progress = min(1.0, elapsed / max(budget, 1e-6))
    if progress < 0.6:
        return warm
    return warm * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * (progress - 0.6) / 0.4)))


def to_float(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    return images.to(device, non_blocking=True).float().div_(255.0).contiguous(memory_format=torch.channels_last)


def charbonnier(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    return torch.sqrt((a - b) ** 2 + eps * eps).mean()


def restorer_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Charbonnier plus an L1 on the spectrum (sharpness for deblurring)."""
    output, target = output.float(), target.float()
    spectrum = (torch.fft.rfft2(output) - torch.fft.rfft2(target)).abs().mean()
    return charbonnier(output, target) + 0.01 * spectrum


def reasoner_inputs(degraded: torch.Tensor, config: ReasonerConfig, crops: int,
                    generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Global view (sometimes with lost detail, as for a large photo downscaled) and random native crops."""
    g = config.global_size
    global_view = F.interpolate(degraded, size=(g, g), mode="bilinear", antialias=True, align_corners=False)
    if float(torch.rand((), generator=generator)) < 0.5:
        factor = float(torch.empty(()).uniform_(0.3, 0.9, generator=generator))
        global_view = down_up(global_view, factor)
    h, w = degraded.shape[-2:]
    c = config.crop_size
    ys = torch.randint(0, h - c + 1, (crops,), generator=generator).tolist()
    xs = torch.randint(0, w - c + 1, (crops,), generator=generator).tolist()
    views = torch.stack([degraded[:, :, y:y + c, x:x + c] for y, x in zip(ys, xs)], dim=1)
    return global_view.clamp(0, 1), views


class Trainee:
    """One network with its EMA, optimizer and loss; ``step(batch)`` trains it on one batch."""

    def __init__(self, kind: str, cfg: TrainConfig, device: torch.device) -> None:
        self.kind, self.cfg, self.device = kind, cfg, device
        self.start_step = 0
        grow = cfg.grow_restorer if kind == "restorer" else cfg.grow_reasoner
        grown_config, grower = GROWERS[kind]
        if cfg.resume:
            self.model, ema_model, self.start_step = load_checkpoint(cfg.resume, kind, device)
            if grow:
                self.model, ema_model = grower(self.model, grow), grower(ema_model, grow)
            self.ema = EMA(self.model)
            self.ema.model.load_state_dict(ema_model.state_dict())
        else:
            net_class, config_class = NETS[kind]
            self.model = net_class(grown_config(config_class(), grow) if grow else config_class()).to(device)
            self.ema = EMA(self.model)
        self.model = self.model.train()
        self.base_lr = cfg.lr_reasoner if kind == "reasoner" else cfg.lr_restorer
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.base_lr, weight_decay=cfg.weight_decay,
                                           betas=(0.9, 0.99))
        self.generator = torch.Generator().manual_seed(cfg.seed + (1 if kind == "reasoner" else 2))
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        if self.kind == "reasoner":
            degraded = to_float(batch["degraded"], self.device)
            # A varying number of crops, so the pooled features do not depend on how many are analysed.
            count = int(torch.randint(2, 2 * self.cfg.reasoner_crops, (1,), generator=self.generator))
            global_view, crops = reasoner_inputs(degraded, self.model.config, count, self.generator)
            targets = ReasonerTargets(**{k: v.to(self.device, non_blocking=True) for k, v in batch["truth"].items()})
            with self.autocast:
                outputs = self.model(global_view, crops)
            return reasoner_loss(outputs, targets)
        inputs = to_float(batch["restorer_input"], self.device)
        target = to_float(batch["target"], self.device)
        condition = batch["condition"].to(self.device, non_blocking=True)
        with self.autocast:
            output = self.model(inputs, condition)
        loss = restorer_loss(output, target)
        return loss, {"l1": float((output.detach().float() - target).abs().mean())}

    def step(self, batch: dict, step: int, lr_scale: float) -> dict[str, float]:
        for group in self.optimizer.param_groups:
            group["lr"] = self.base_lr * lr_scale
        loss, parts = self.loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.ema.update(self.model, step)
        return {"loss": float(loss.detach()), "grad_norm": float(norm), **parts}


def validation_batch(data: str | Path, images: int, crop: int) -> dict:
    """The fixed validation batch of a run: training photos, seeded, plain targets and conditions."""
    return synthesize(load_crops(data, "train"), 10**9 + 7,
                      SynthConfig(batch=images, crop=crop, p_keep=0.0, p_partial=0.0, p_spurious=0.0, p_jpeg=0.0,
                                  p_down_up=0.0, severity_jitter=0.0))


@torch.no_grad()
def validate(trainees: dict[str, Trainee], val: dict, device: torch.device) -> dict[str, float]:
    """Quick numbers on a fixed validation batch: restorer PSNR gain, reasoner F1 and severity MAE."""
    from rnr.lite.condition import O_PRESENT, O_SEVERITY

    result: dict[str, float] = {}
    if "restorer" in trainees:
        model = trainees["restorer"].ema.model
        inputs = to_float(val["restorer_input"], device)
        clean = to_float(val["clean"], device)
        output = model(inputs, val["condition"].to(device)).clamp(0, 1)
        degraded = torch.tensor([bool(t) for t in val["types"]], device=device)
        mse_in = ((inputs - clean) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)[degraded]
        mse_out = ((output - clean) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)[degraded]
        result["val_psnr_in"] = float((-10 * torch.log10(mse_in)).mean())
        result["val_psnr_out"] = float((-10 * torch.log10(mse_out)).mean())
    if "reasoner" in trainees:
        model = trainees["reasoner"].ema.model
        from rnr.lite.nets import reasoner_views

        global_view, crops = reasoner_views(to_float(val["degraded"], device), model.config, crops=9)
        outputs = model(global_view, crops).float().cpu()
        present = torch.as_tensor(val["truth"]["present"])
        predicted = torch.sigmoid(outputs[:, O_PRESENT]) > 0.5
        for i, name in enumerate(("haze", "rain", "noise", "blur")):
            tp = float((predicted[:, i] & (present[:, i] > 0)).sum())
            fp = float((predicted[:, i] & (present[:, i] == 0)).sum())
            fn = float((~predicted[:, i] & (present[:, i] > 0)).sum())
            result[f"f1_{name}"] = 2 * tp / max(2 * tp + fp + fn, 1)
            mask = present[:, i] > 0
            if mask.any():
                err = (outputs[mask, O_SEVERITY][:, i].clamp(0, 1) - torch.as_tensor(val["truth"]["severity"])[mask, i]).abs()
                result[f"mae_{name}"] = float(err.mean() * 100)
    return result


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    start = time.time()
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(min(4, torch.get_num_threads()))
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log = JsonlLog(out / f"log_{cfg.stage}.jsonl")
    command = shlex.join(["python", "-m", "training.lite.train", *(argv if argv is not None else sys.argv[1:])])
    log.write({"event": "start", "config": asdict(cfg), "command": command, "device": str(device),
               "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"})
    if cfg.stage == "grpo":
        from .grpo import run_grpo

        return run_grpo(cfg, device, log, out, command, start)

    kinds = {"both": ("reasoner", "restorer"), "reasoner": ("reasoner",), "restorer": ("restorer",)}[cfg.stage]
    trainees = {kind: Trainee(kind, cfg, device) for kind in kinds}
    for kind, trainee in trainees.items():
        log.write({"event": "model", "kind": kind, "parameters": parameter_count(trainee.model),
                   "resumed_step": trainee.start_step})
    first_step = max(t.start_step for t in trainees.values())
    synth = synth_config(cfg)
    val = validation_batch(cfg.data, cfg.val_images, cfg.crop)
    data = loader(cfg.data, synth, cfg.workers, base_seed=cfg.seed * 10**8 + first_step * 1000)
    budget = cfg.minutes * 60.0 - cfg.export_minutes * 60.0 - (time.time() - start)
    train_start = time.time()
    last_ckpt = train_start
    step = first_step
    wait = 0.0
    tick = time.time()
    for batch in data:
        wait += time.time() - tick
        elapsed = time.time() - train_start
        if elapsed > budget or (cfg.max_steps and step - first_step >= cfg.max_steps):
            break
        scale = lr_factor(step - first_step, elapsed, budget, cfg.warmup_steps)
        stats = {kind: trainee.step(batch, step, scale) for kind, trainee in trainees.items()}
        step += 1
        if step % cfg.log_every == 0 or step == first_step + 1:
            record = {"step": step, "time_s": round(time.time() - start, 1), "lr_scale": round(scale, 4),
                      "data_wait_s": round(wait, 2)}
            for kind, s in stats.items():
                record.update({f"{kind}_{k}": round(v, 5) for k, v in s.items()})
            log.write(record)
        if step % cfg.val_every == 0:
            log.write({"step": step, "event": "val", **validate(trainees, val, device)})
        if time.time() - last_ckpt > cfg.ckpt_minutes * 60:
            for kind, trainee in trainees.items():
                save_checkpoint(out / f"ckpt_{kind}.safetensors", kind, trainee.model, trainee.ema, step)
            last_ckpt = time.time()
        tick = time.time()
    steps_done = step - first_step
    log.write({"event": "trained", "step": step, "steps": steps_done, "train_s": round(time.time() - train_start, 1),
               "data_wait_s": round(wait, 1), **validate(trainees, val, device)})
    for kind, trainee in trainees.items():
        save_checkpoint(out / f"ckpt_{kind}.safetensors", kind, trainee.model, trainee.ema, step)
    from .export import export_models

    export_models({k: t.ema.model for k, t in trainees.items()}, out, data, cfg, command,
                  {"steps_total": step, "steps_this_run": steps_done}, log, device,
                  validation_batches=cfg.calib_batches, clean_images=cfg.calib_clean)
    log.write({"event": "done", "time_s": round(time.time() - start, 1)})
    return 0


def synth_config(cfg: TrainConfig) -> SynthConfig:
    """The training batches' :class:`SynthConfig`: its defaults, ``cfg.batch`` and ``cfg.crop``, then the
    overrides in ``cfg.synth`` (a JSON object; lists become tuples). Unknown names are refused."""
    overrides = {}
    if cfg.synth:
        try:
            overrides = json.loads(cfg.synth)
        except json.JSONDecodeError as exc:
            raise SystemExit(f"--synth must be a JSON object of SynthConfig fields, got {cfg.synth!r}: {exc}") from exc
        if not isinstance(overrides, dict):
            raise SystemExit(f"--synth must be a JSON object of SynthConfig fields, got {cfg.synth!r}")
        known = {f.name for f in fields(SynthConfig)} - {"batch", "crop"}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise SystemExit(f"--synth: unknown SynthConfig fields {unknown}; known: {sorted(known)} "
                             "(batch and crop have their own options)")
        defaults = SynthConfig()
        for key, value in overrides.items():
            default = getattr(defaults, key)
            if isinstance(default, tuple) and all(isinstance(d, str) for d in default):
                ok = isinstance(value, list) and bool(value) and set(value) <= set(default)
            elif isinstance(default, tuple):
                ok = isinstance(value, list) and len(value) == len(default) and all(
                    isinstance(v, type(d)) or (isinstance(d, float) and isinstance(v, int)) for v, d in zip(value, default))
            else:
                ok = isinstance(value, type(default)) or (isinstance(default, float) and isinstance(value, int))
            if not ok or isinstance(value, bool) != isinstance(default, bool):
                raise SystemExit(f"--synth: {key} must be like its default {default!r}"
                                 f"{' (a non-empty subset)' if key == 'types' else ''}, got {value!r}")
        overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    return SynthConfig(batch=cfg.batch, crop=cfg.crop, **overrides)


def parse_args(argv: list[str] | None) -> TrainConfig:
    parser = argparse.ArgumentParser(prog="python -m training.lite.train", description=__doc__.split("\n\n")[0])
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = type(f.default)
        if f.name == "stage":
            parser.add_argument(flag, choices=("both", "reasoner", "restorer", "grpo"), default=f.default)
        else:
            parser.add_argument(flag, type=kind, default=f.default)
    return TrainConfig(**vars(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
