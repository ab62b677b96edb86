"""training.lite.evaluate on a tiny pack with the shipped lite weights: the report's tables, reasoner
scores and the whole-photo flag count are computed, written and consistent."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import save_file

from rnr.assets import sample_paths
from rnr.images import load_image
from rnr.lite import weights as lite_weights
from training.lite import evaluate

pytestmark = pytest.mark.skipif(not lite_weights.default_path("lite_reasoner").is_file(),
                                reason="the shipped lite weights are not installed")


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    crops = []
    for path in sample_paths()[:2]:
        image = load_image(path).tensor[0]
        crops.append((image[:, :96, :96].permute(1, 2, 0) * 255).round().to(torch.uint8))
    heldout = torch.ones(len(crops), dtype=torch.uint8)
    path = tmp_path_factory.mktemp("eval") / "crops_96.safetensors"
    save_file({"images": torch.stack(crops), "heldout": heldout}, str(path))
    return path


def test_heldout_set_is_seeded_and_covers_every_group(pack):
    a, b = evaluate.heldout_set(pack, 1, seed=3), evaluate.heldout_set(pack, 1, seed=3)
    assert [it["group"] for it in a] == [g for g in evaluate.GROUPS for _ in range(2)]
    assert all(torch.equal(x["degraded"], y["degraded"]) for x, y in zip(a, b))
    for item in a:
        present = [n for n in ("haze", "rain", "noise", "blur") if item["truth"].record(n).present]
        if item["group"] == "clean":
            assert not present and torch.equal(item["degraded"], item["clean"])
        elif item["group"] == "mixture":
            assert 2 <= len(present) <= 3
        else:
            assert present == [item["group"]] and 10 <= item["truth"].record(item["group"]).severity <= 100


def test_main_writes_tables_scores_and_whole_photo_flags(pack, tmp_path, capsys):
    photo = sample_paths()[0]
    out_json, out_md = tmp_path / "report.json", tmp_path / "report.md"
    assert evaluate.main(["--data", str(pack), "--per-group", "1", "--clean-photos", str(photo),
                          str(sample_paths()[0].parent), "--json", str(out_json), "--markdown", str(out_md)]) == 0
    report = json.loads(out_json.read_text())
    assert report["groups"] == {g: 2 for g in evaluate.GROUPS}
    psnr = report["psnr"]
    for label in ("input", "lite|truth", "lite|lite", "classic|classic"):
        assert math.isfinite(psnr["all_degraded"][label])
    # The clean group's input equals the clean crop (infinite PSNR); guided by the truth, lite makes the
    # degraded crops better on average.
    assert psnr["clean"]["input"] == math.inf
    assert psnr["all_degraded"]["lite|truth"] > psnr["all_degraded"]["input"]
    lite = report["reasoners"]["lite"]
    assert 0.0 <= lite["clean_flagged_rate"] <= 1.0 and all(0.0 <= lite[t]["f1"] <= 1.0 for t in ("haze", "rain"))
    photos = report["clean_photos"]
    assert photos["photos"] == len(sample_paths())  # the photo named twice (file and folder) counts once
    assert photos["flagged"] == sum(1 for flags in photos["per_photo"].values() if flags)
    assert photos["flagged_rate"] == pytest.approx(photos["flagged"] / photos["photos"])
    assert all(set(flags) <= {"haze", "rain", "noise", "blur"} for flags in photos["per_photo"].values())
    text = out_md.read_text()
    assert "Lite reasoner on whole clean photos" in text and photo.name in text
    assert "| haze |" in capsys.readouterr().out


def test_clean_photos_must_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match="no images found"):
        evaluate.clean_photo_flags([str(tmp_path)])


def test_photo_crop_sweep_counts_flags_per_crop_count():
    # The sample photos are under 1.3 MP, so the size-chosen count (0) is nine crops: identical rows.
    sweep = evaluate.photo_crop_sweep([str(p) for p in sample_paths()[:2]], [9, 0, 1])
    assert sweep["photos"] == 2 and sweep["copies_per_type"] == 2 * len(evaluate.SWEEP_SEVERITIES)
    nine, auto, one = (sweep["rows"][k] for k in ("9", "0", "1"))
    assert nine == auto
    for row in (nine, one):
        assert 0 <= row["clean_flagged"] <= 2 and 0 <= row["false_flags"] <= 3 * 4 * sweep["copies_per_type"]
        assert all(row["recall"][n] == row["found"][n] / sweep["copies_per_type"] for n in row["found"])
    # Strong noise and haze on real photos are found whatever the crop count.
    assert nine["found"]["noise"] >= 4 and one["found"]["haze"] >= 2
    text = evaluate.markdown({"psnr": {"all": {"input": 1.0}}, "ssim": {"all": {"input": 1.0}}, "groups": {},
                              "reasoners": {}, "photo_crops": sweep})
    assert "| 0 | " in text and "flags on absent types" in text


def test_photo_crops_without_photos_is_refused(capsys):
    with pytest.raises(SystemExit):
        evaluate.main(["--photo-crops", "9", "0"])
    assert "--clean-photos" in capsys.readouterr().err
