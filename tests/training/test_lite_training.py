"""Training pieces of the lite models: augmentations, batch synthesis, calibration, GRPO parts, and a
two-step end-to-end run (train both, export, GRPO) on a tiny packed file of the shipped sample photos."""

from __future__ import annotations

import io
import json
import re
import shlex

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from rnr.assets import sample_paths
from rnr.degrade import degrade
from rnr.images import load_image
from rnr.lite.condition import C_PRESENT, CONDITION_DIM
from rnr.lite.nets import LiteReasonerNet, ReasonerConfig
from rnr.metrics import psnr
from rnr.registry import ModelSpec
from training.lite import train
from training.lite.augment import colour_jitter, jpeg_like
from training.lite.checkpoint import EMA, load_checkpoint, save_checkpoint
from training.lite.data import SynthConfig, load_crops, synthesize
from training.lite.export import calibrate_thresholds
from training.lite.grpo import fidelity_reward, group_advantages, perturbations, severity_drop_reward


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """A packed file like training/data's: 128 px crops of the sample photos, the last one held out."""
    crops = []
    for path in sample_paths():
        image = load_image(path).tensor[0]
        for top, left in ((0, 0), (100, 150)):
            crops.append((image[:, top:top + 128, left:left + 128].permute(1, 2, 0) * 255).round().to(torch.uint8))
    images = torch.stack(crops)
    heldout = torch.zeros(len(images), dtype=torch.uint8)
    heldout[-1] = 1
    path = tmp_path_factory.mktemp("packed") / "crops_128.safetensors"
    save_file({"images": images, "heldout": heldout}, str(path))
    return path


def test_jpeg_like_matches_real_jpeg_closely(packed):
    clean = load_crops(packed, "all")[:2].float() / 255.0
    for quality in (30, 80):
        ours = jpeg_like(clean, torch.full((2,), quality))
        real = []
        for image in clean:
            buffer = io.BytesIO()
            Image.fromarray((image.permute(1, 2, 0) * 255).round().byte().numpy()).save(buffer, "JPEG", quality=quality)
            real.append(torch.from_numpy(np.array(Image.open(buffer))).permute(2, 0, 1).float() / 255.0)
        real = torch.stack(real)
        assert float(psnr(ours, real).min()) > 40.0
        assert abs(float(psnr(ours, clean).mean()) - float(psnr(real, clean).mean())) < 1.0


def test_colour_jitter_stays_in_range_and_changes_colours(packed):
    clean = load_crops(packed, "all").float() / 255.0
    jittered = colour_jitter(clean, torch.Generator().manual_seed(0))
    assert jittered.shape == clean.shape and float(jittered.min()) >= 0 and float(jittered.max()) <= 1
    assert float((jittered - clean).abs().mean()) > 0.01


def test_colour_jitter_never_veils_an_image_like_haze():
    # Haze lifts the blacks towards the airlight; a jittered clean image keeps its blacks near black.
    image = torch.zeros(64, 3, 16, 16)
    image[:, :, :8] = 1.0  # half black, half white: the mean is 0.5
    jittered = colour_jitter(image, torch.Generator().manual_seed(1))
    black = jittered[:, :, 8:].amax(dim=(1, 2, 3))
    assert float(black.max()) <= 0.05, "a clean image's blacks were lifted like haze"
    assert float((jittered[:, :, :8].mean(dim=(1, 2, 3)) - black).min()) > 0.6


def test_splits_follow_the_heldout_flags(packed):
    assert len(load_crops(packed, "train")) == 5 and len(load_crops(packed, "heldout")) == 1
    with pytest.raises(FileNotFoundError, match="packed crops"):
        load_crops(packed.parent / "missing.safetensors", "train")


def test_batches_are_reproducible_and_consistent(packed):
    pool = load_crops(packed, "train")
    config = SynthConfig(batch=6, crop=96, p_spurious=0.0)
    a, b = synthesize(pool, 3, config), synthesize(pool, 3, config)
    assert torch.equal(a["degraded"], b["degraded"]) and torch.equal(a["condition"], b["condition"])
    assert a["degraded"].dtype == torch.uint8 and a["degraded"].shape == (6, 3, 96, 96)
    assert a["condition"].shape == (6, CONDITION_DIM)
    for i, types in enumerate(a["types"]):
        flags = a["truth"]["present"][i].tolist()
        # The reasoner's targets flag only what was applied (an invisible one may be dropped, see below).
        assert all(f <= float(n in types) for f, n in zip(flags, ("haze", "rain", "noise", "blur")))
        # The condition never flags a degradation that is not there (no spurious flags here).
        assert all(c <= f for c, f in zip(a["condition"][i, C_PRESENT].tolist(), flags))


def test_invisible_degradations_are_absent_in_the_reasoner_targets(packed):
    # Blur on a flat crop changes no pixel: nothing could tell it, so the reasoner is taught "no blur";
    # the restorer's condition still carries it. On the textured sample photos the same blur is flagged.
    config = SynthConfig(batch=6, crop=96, p_clean=0.0, types=("blur",), severity_range=(60, 60), p_colour=0.0,
                         p_soft=0.0, p_keep=0.0, p_partial=0.0, p_spurious=0.0, p_jpeg=0.0, p_down_up=0.0)
    flat = torch.full((4, 3, 128, 128), 120, dtype=torch.uint8)
    batch = synthesize(flat, 1, config)
    assert all(types == ["blur"] for types in batch["types"])
    assert float(batch["truth"]["present"][:, 3].sum()) == 0.0
    assert (batch["condition"][:, C_PRESENT.start + 3] == 1.0).all()
    textured = synthesize(load_crops(packed, "train"), 1, config)
    assert (textured["truth"]["present"][:, 3] == 1.0).all()


def test_soft_clean_crops_stay_milder_than_the_mildest_blur(packed):
    pool = load_crops(packed, "train")
    plain = dict(batch=5, crop=96, p_clean=1.0, p_colour=0.0, p_jpeg=0.0, p_down_up=0.0, p_spurious=0.0)
    sharp = synthesize(pool, 2, SynthConfig(p_soft=0.0, **plain))["clean"].float() / 255.0
    soft = synthesize(pool, 2, SynthConfig(p_soft=1.0, **plain))
    assert float(soft["truth"]["present"].sum()) == 0.0  # still labelled clean
    softened = soft["clean"].float() / 255.0
    mildest = degrade(sharp, blur=[10] * 5, seed=0).images
    rms = lambda a, b: (a - b).square().mean(dim=(1, 2, 3)).sqrt()  # noqa: E731
    change = rms(softened, sharp)
    assert float(change.mean()) > 0.002
    assert (change < rms(mildest, sharp)).all()


def test_clean_images_are_their_own_target_with_an_empty_condition(packed):
    pool = load_crops(packed, "train")
    batch = synthesize(pool, 4, SynthConfig(batch=4, crop=96, p_clean=1.0, p_jpeg=0.0, p_down_up=0.0, p_spurious=0.0))
    assert torch.equal(batch["degraded"], batch["clean"]) and torch.equal(batch["target"], batch["clean"])
    assert float(batch["condition"].abs().sum()) == 0.0


def test_kept_degradations_are_marked_absent_and_stay_in_the_target(packed):
    pool = load_crops(packed, "train")
    config = SynthConfig(batch=8, crop=96, p_clean=0.0, p_keep=1.0, p_jpeg=0.0, p_down_up=0.0, p_spurious=0.0)
    batch = synthesize(pool, 5, config)
    for i in range(8):
        flags = batch["truth"]["present"][i]
        # At least the first degradation in formation order is kept: fewer flags in the condition...
        assert float(batch["condition"][i, C_PRESENT].sum()) < float(flags.sum())
        # ...and the target is not the clean image.
        assert float((batch["target"][i].float() - batch["clean"][i].float()).abs().mean()) > 0.1


def test_thresholds_keep_clean_photos_unflagged():
    generator = torch.Generator().manual_seed(0)
    present = (torch.rand(400, 4, generator=generator) < 0.4).float()
    probabilities = (0.75 * present + 0.3 * torch.rand(400, 4, generator=generator)).clamp(0, 1)
    clean = 0.5 * torch.rand(300, 4, generator=generator)
    clean[:, 0] += 0.4  # haze: clean photos look a little hazy
    thresholds, report = calibrate_thresholds(probabilities, present, clean)
    assert thresholds[0] >= float(torch.quantile(clean[:, 0], 0.993))
    assert report["clean_any_flag_rate"] <= 0.03
    assert all(report[n]["f1_at_threshold"] > 0.8 for n in ("rain", "noise", "blur"))


def test_grpo_advantages_perturbations_and_rewards():
    rewards = torch.tensor([[1.0, 5.0], [2.0, 5.5], [3.0, 4.5]])
    advantages = group_advantages(rewards)
    assert torch.allclose(advantages.mean(dim=0), torch.zeros(2), atol=1e-6)
    assert advantages[2, 0] > advantages[0, 0] and advantages[1, 1] > advantages[2, 1]
    eps = perturbations((4, 2, 3, 32, 32), 0.02, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert eps.shape == (4, 2, 3, 32, 32) and 0.005 < float(eps.std()) < 0.05
    clean = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    assert (fidelity_reward(clean + 0.01, clean) > fidelity_reward(clean + 0.1, clean)).all()
    judge = LiteReasonerNet(ReasonerConfig(global_size=32, crop_size=24, global_widths=(8,), local_widths=(8,),
                                           head_hidden=16)).eval()
    assert torch.equal(severity_drop_reward(judge, clean, clean), torch.zeros(2))


def test_checkpoints_round_trip(tmp_path):
    net = LiteReasonerNet(ReasonerConfig(global_size=32, crop_size=24, global_widths=(8,), local_widths=(8,),
                                         head_hidden=16))
    ema = EMA(net)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    ema.update(net, step=10**6)
    save_checkpoint(tmp_path / "ckpt_reasoner.safetensors", "reasoner", net, ema, 42)
    model, ema_model, step = load_checkpoint(tmp_path, "reasoner", torch.device("cpu"))
    assert step == 42
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), net.state_dict().values()))
    assert all(torch.equal(a, b) for a, b in zip(ema_model.state_dict().values(), ema.model.state_dict().values()))


def test_learning_rate_warms_up_then_decays():
    assert train.lr_factor(0, 0.0, 100.0, 10) == pytest.approx(0.1)
    assert train.lr_factor(50, 50.0, 100.0, 10) == pytest.approx(1.0)
    assert train.lr_factor(50, 100.0, 100.0, 10) == pytest.approx(0.05)


@pytest.mark.slow
def test_two_steps_train_export_and_grpo_end_to_end(packed, tmp_path):
    from rnr import cache

    out = tmp_path / "run"
    common = ["--data", str(packed), "--batch", "2", "--crop", "96", "--workers", "0", "--val-images", "2",
              "--log-every", "1", "--val-every", "1", "--minutes", "5"]
    argv = ["--stage", "both", "--max-steps", "2", "--calib-batches", "1", "--calib-clean", "2",
            "--grow-restorer", '{"middle_blocks": 3}', "--synth", '{"p_soft": 0, "soft_sigma": [0.2, 0.3]}',
            "--out", str(out), *common]
    assert train.main(argv) == 0
    log = [json.loads(line) for line in (out / "log_both.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in str(r) and "event" not in r] == [1, 2]
    meta = json.loads((out / "lite_reasoner.json").read_text())
    assert len(meta["thresholds"]) == 4 and "training_command" in meta
    # The recorded command re-runs as typed, JSON argument included; a fresh restorer starts grown.
    restorer_meta = json.loads((out / "lite_restorer.json").read_text())
    assert shlex.split(restorer_meta["training_command"]) == ["python", "-m", "training.lite.train", *argv]
    assert restorer_meta["config"]["middle_blocks"] == 3
    reasoner = cache.get(ModelSpec.make("reasoner", "lite", path=str(out), device="cpu"))
    restorer = cache.get(ModelSpec.make("restorer", "lite", path=str(out), device="cpu"))
    image = torch.rand(1, 3, 100, 120, generator=torch.Generator().manual_seed(0))
    assert restorer.restore(image, reasoner.diagnose(image)).shape == image.shape

    grpo = tmp_path / "grpo"
    assert train.main(["--stage", "grpo", "--resume", str(out), "--max-steps", "1", "--grpo-images", "1",
                       "--grpo-group", "2", "--out", str(grpo), *common]) == 0
    events = [json.loads(line).get("event") for line in (grpo / "log_grpo.jsonl").read_text().splitlines()]
    assert "grpo_done" in events and (grpo / "lite_restorer.safetensors").is_file()


def test_synth_overrides_change_only_the_named_batch_settings():
    cfg = train.parse_args(["--batch", "6", "--crop", "64", "--synth", '{"p_clean": 0.18, "soft_sigma": [0.2, 0.3]}'])
    synth = train.synth_config(cfg)
    assert (synth.batch, synth.crop, synth.p_clean, synth.soft_sigma) == (6, 64, 0.18, (0.2, 0.3))
    assert synth.p_soft == SynthConfig().p_soft and synth.visible_rms == SynthConfig().visible_rms
    assert train.synth_config(train.parse_args([])) == SynthConfig()
    assert train.synth_config(train.parse_args(["--synth", '{"p_soft": 0, "types": ["haze", "rain"]}'])).types == ("haze", "rain")
    for bad, says in (('{"p_clen": 0.1}', "unknown SynthConfig fields ['p_clen']"), ('{"batch": 4}', "own options"),
                      ("[1, 2]", "JSON object"), ("{p_clean: 1}", "JSON object"),
                      ('{"p_clean": "0.2"}', "p_clean must be like its default 0.22, got '0.2'"),
                      ('{"soft_sigma": [0.2]}', "soft_sigma must be like its default (0.3, 0.5)"),
                      ('{"types": ["haze", 3]}', "types must be like its default")):
        with pytest.raises(SystemExit, match=re.escape(says)):
            train.synth_config(train.parse_args(["--synth", bad]))


def test_spurious_flags_follow_their_odds():
    from training.lite.data import _spurious

    generator = torch.Generator().manual_seed(0)
    counts = torch.zeros(4)
    for _ in range(400):
        flagged = _spurious(torch.zeros(CONDITION_DIM), generator, (3.0, 1.0, 1.0, 0.0))[C_PRESENT]
        assert float(flagged.sum()) == 1.0
        counts += flagged
    assert counts[3] == 0 and counts[0] > 1.8 * counts[1:3].max()
    # Only absent degradations with non-zero odds can be flagged spuriously.
    present = torch.zeros(CONDITION_DIM)
    present[C_PRESENT.start] = 1.0
    assert torch.equal(_spurious(present, generator, (1.0, 0.0, 0.0, 0.0)), present)
    assert float(_spurious(present, generator, (1.0, 0.0, 1.0, 0.0))[C_PRESENT.start + 2]) == 1.0
