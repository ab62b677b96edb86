"""Threshold recalibration of the lite reasoner on calibration photos (training.lite.calibrate)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from rnr.lite.nets import LiteReasonerNet, ReasonerConfig
from rnr.lite.weights import default_path, read_metadata, save_network
from training.lite.calibrate import (
    GRID,
    GROUPS,
    choose_thresholds,
    collect,
    draw_config,
    main,
)
from training.lite.data import synthesize


def _synthetic(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    present = (torch.rand(600, 4, generator=generator) < 0.4).float()
    probabilities = (0.7 * present + 0.35 * torch.rand(600, 4, generator=generator)).clamp(0, 1)
    clean = 0.45 * torch.rand(400, 4, generator=generator)
    clean[:, 0] += 0.45  # haze: unseen clean photos look hazy to the net
    clean[:40, 3] += 0.4  # blur: a tenth of them look blurred (bokeh)
    return probabilities, present, clean


def test_choose_thresholds_meets_clean_rate_keeps_f1_and_is_deterministic():
    probabilities, present, clean = _synthetic()
    thresholds, report = choose_thresholds(probabilities, present, clean, max_clean_rate=0.05)
    again, report_again = choose_thresholds(probabilities.clone(), present.clone(), clean.clone(), max_clean_rate=0.05)
    assert thresholds == again and report == report_again
    flagged = int((clean >= torch.tensor(thresholds)).any(dim=1).sum())
    assert flagged <= 0.05 * len(clean) and report["clean_any_flag_rate"] == round(flagged / len(clean), 4)
    names = ("haze", "rain", "noise", "blur")
    # Only raised from the F1-best threshold, never lowered; haze and blur had to be raised.
    assert all(t >= report[n]["best_f1_threshold"] for t, n in zip(thresholds, names))
    assert thresholds[0] > report["haze"]["best_f1_threshold"] and thresholds[3] > report["blur"]["best_f1_threshold"]
    assert report["haze"]["f1_at_threshold"] > 0.6
    assert all(report[n]["f1_at_threshold"] > 0.95 for n in names[1:])
    # Rain and noise: raised just past their clean probabilities (< 0.45), no further.
    assert 0.44 < thresholds[1] < 0.46 and 0.44 < thresholds[2] < 0.46
    # Without a clean limit the F1-best grid thresholds stand.
    loose, _ = choose_thresholds(probabilities, present, clean, max_clean_rate=1.0)
    assert all(t in GRID for t in loose)


def _pack_and_net(tmp_path, crops: int, size: int, seed: int):
    """A pack of ``crops`` random ``size``-px crops and a tiny seeded lite reasoner."""
    generator = torch.Generator().manual_seed(seed)
    images = (torch.rand(crops, size, size, 3, generator=generator) * 255).round().to(torch.uint8)
    path = tmp_path / f"crops_{size}.safetensors"
    save_file({"images": images, "heldout": torch.zeros(crops, dtype=torch.uint8)}, str(path))
    torch.manual_seed(0)
    net = LiteReasonerNet(ReasonerConfig(global_size=32, crop_size=24, global_widths=(8,), local_widths=(8,),
                                         head_hidden=16)).eval()
    return path, net


def test_collect_is_seeded(tmp_path):
    path, net = _pack_and_net(tmp_path, crops=3, size=128, seed=0)
    first = collect(net, path, batches=1, clean_batches=1, batch=3, crop=96, log=lambda *_: None)
    second = collect(net, path, batches=1, clean_batches=1, batch=3, crop=96, log=lambda *_: None)
    assert set(first) == {"probabilities", "present", "clean_probabilities"}
    assert first["probabilities"].shape == (3, 4) and first["clean_probabilities"].shape == (3, 4)
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_groups_draw_cycles_through_the_evaluation_groups():
    generator = torch.Generator().manual_seed(1)
    pool = (torch.rand(4, 3, 64, 64, generator=generator) * 255).round().to(torch.uint8)
    seen = []
    for k in range(len(GROUPS) + 1):
        types = synthesize(pool, 100 + k, draw_config("groups", k, batch=6, crop=64))["types"]
        group = GROUPS[k % len(GROUPS)]
        seen.append(group)
        if group == "clean":
            assert all(t == [] for t in types)
        elif group == "mixture":
            assert all(len(t) in (2, 3) and len(set(t)) == len(t) for t in types)
        else:
            assert all(t == [group] for t in types)
    assert seen == [*GROUPS, "haze"]
    # The training draw keeps training's mixtures of up to four types and its clean share.
    assert draw_config("training", 3, batch=6, crop=64).mix_weights == (0.45, 0.3, 0.18, 0.07)
    with pytest.raises(ValueError, match="draw must be one of training, groups"):
        draw_config("held-out", 0, batch=6, crop=64)


def test_a_cache_of_another_draw_or_network_is_refused(tmp_path, capsys):
    pack, net = _pack_and_net(tmp_path, crops=2, size=256, seed=2)
    weights = save_network(net, "lite_reasoner", tmp_path / "w" / "lite_reasoner.safetensors",
                           {"thresholds": [0.5, 0.5, 0.5, 0.5]})
    cache = tmp_path / "probs.safetensors"
    args = ["--data", str(pack), "--weights", str(weights), "--batches", "1", "--clean-batches", "1", "--cache", str(cache)]
    assert main(args) == 0 and cache.is_file()
    first = capsys.readouterr().out
    assert "degraded batch 1/1" in first
    # Same network, data and draw: the cached probabilities are reused, giving the same thresholds.
    assert main(args) == 0
    again = capsys.readouterr().out
    assert "probabilities from" in again and "degraded batch" not in again
    assert again.split('"thresholds"')[1] == first.split('"thresholds"')[1]
    with pytest.raises(SystemExit, match=r"holds probabilities of another calibration \(draw: 'groups' there, 'training' now\)"):
        main(args + ["--draw", "training"])
    with torch.no_grad():
        net.head[-1].bias.add_(0.3)
    save_network(net, "lite_reasoner", weights, {"thresholds": [0.5, 0.5, 0.5, 0.5]})
    with pytest.raises(SystemExit, match="network_sha256"):
        main(args)


def test_shipped_thresholds_are_the_recorded_calibration():
    path = default_path("lite_reasoner")
    meta = read_metadata(path)["meta"]
    sidecar = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    record = meta["calibration"]
    assert meta["thresholds"] == sidecar["thresholds"] == record["thresholds"]
    assert record["command"].startswith("python -m training.lite.calibrate")
    assert record["report"]["clean_any_flag_rate"] <= record["report"]["max_clean_rate"] <= 0.05
    # Calibrated on photos apart from training and the held-out split.
    assert record["photos"] and all("/palapeli/" in p for p in record["photos"])
    assert "heldout" not in record["data"]
