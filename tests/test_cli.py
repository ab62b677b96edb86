"""The rnr command line end to end on small real photos with the classic backends.

Commands run in-process through ``main([...])``; one test runs the console script in a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rnr.assets import sample_path
from rnr.cli import main
from rnr.degrade import degrade
from rnr.diagnosis import Diagnosis, from_dict
from rnr.images import load_image, save_image
from rnr.metrics import psnr

REPO = Path(__file__).resolve().parents[1]
CLASSIC = ("--reasoner", "classic", "--restorer", "classic")


def photo(size: int = 64, top: int = 200, left: int = 300, name: str = "landscape") -> torch.Tensor:
    image = load_image(sample_path(name)).tensor
    return image[..., top:top + size, left:left + size].contiguous()


def write_png16(path: Path, array: np.ndarray) -> None:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit colour)."""
    height, width, channels = array.shape
    colour_type = {1: 0, 3: 2, 4: 6}[channels]
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def hazy_folder(tmp_path_factory) -> Path:
    """Three hazy + noisy photo crops (one grayscale) and one truncated PNG."""
    folder = tmp_path_factory.mktemp("inputs")
    clean = torch.cat([photo(64, 200, 300), photo(64, 100, 150, "building"), photo(64, 50, 60, "foliage")])
    degraded = degrade(clean, haze=60, noise=15, seed=0).images
    for i in range(3):
        save_image(folder / f"photo{i}.png", degraded[i:i + 1])
    grey = (degraded[2].mean(0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(grey, mode="L").save(folder / "photo2.png")
    data = (folder / "photo0.png").read_bytes()
    (folder / "broken.png").write_bytes(data[: len(data) // 3])
    return folder


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_diagnose_prints_json_object_or_list(capsys, hazy_folder):
    code, out, _ = run_cli(capsys, "diagnose", hazy_folder / "photo0.png", "--reasoner", "classic")
    assert code == 0
    single = from_dict(json.loads(out))
    assert single.haze.present and single.source == "classic"
    code, out, err = run_cli(capsys, "diagnose", hazy_folder / "photo0.png", hazy_folder / "photo1.png", "--quiet",
                             "--reasoner", "classic")
    assert code == 0 and [from_dict(d).source for d in json.loads(out)] == ["classic", "classic"]
    code, out, _ = run_cli(capsys, "diagnose", hazy_folder / "photo1.png", "--report", "--reasoner", "classic")
    assert code == 0 and "Overall severity" in out and "Restoration order" in out


def test_restore_folder_with_a_truncated_file_restores_the_rest(capsys, hazy_folder, tmp_path):
    out_dir = tmp_path / "restored"
    code, _, err = run_cli(capsys, "restore", hazy_folder, "-o", out_dir, "--quiet",
                           "--diagnosis-out", tmp_path / "used.json", *CLASSIC)
    assert code == 1
    assert "broken.png: the file is truncated or corrupt" in err
    assert "1 of 4 images failed" in err and str(hazy_folder / "broken.png") in err
    assert sorted(p.name for p in out_dir.iterdir()) == ["photo0.png", "photo1.png", "photo2.png"]
    for name in ("photo0.png", "photo1.png", "photo2.png"):
        assert load_image(out_dir / name).size == (64, 64)
    used = json.loads((tmp_path / "used.json").read_text())
    assert len(used) == 3 and all(from_dict(d).haze.present for d in used)
    restored = load_image(out_dir / "photo0.png").tensor
    assert not torch.equal(restored, load_image(hazy_folder / "photo0.png").tensor)


def test_restore_keeps_alpha_and_reads_grayscale_and_16_bit(capsys, tmp_path):
    crop = photo(48)
    result = degrade(crop, haze=55, seed=2)
    degraded = result.images
    # The ground truth guides the restorer, so the test checks the file handling, not the reasoner.
    (tmp_path / "truth.json").write_text(result.diagnoses[0].to_json())
    rgb = (degraded[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    alpha = np.tile(np.linspace(0, 255, 48, dtype=np.uint8), (48, 1))
    Image.fromarray(np.dstack([rgb, alpha]), mode="RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rgb[..., 1], mode="L").save(tmp_path / "grey.png")
    write_png16(tmp_path / "deep.png", (degraded[0].permute(1, 2, 0).numpy() * 65535).round().astype(np.uint16))
    for name in ("rgba.png", "grey.png", "deep.png"):
        code, _, err = run_cli(capsys, "restore", tmp_path / name, "-o", tmp_path / "out" / name,
                               "--diagnosis", tmp_path / "truth.json", "--restorer", "classic")
        assert code == 0, err
        assert "restored 1 of 1 image" in err
    with Image.open(tmp_path / "out" / "rgba.png") as restored:
        assert restored.mode == "RGBA"
        assert np.array_equal(np.asarray(restored)[..., 3], alpha)
    with Image.open(tmp_path / "out" / "grey.png") as restored:
        assert restored.size == (48, 48) and restored.mode == "RGB"
    deep = load_image(tmp_path / "out" / "deep.png").tensor
    assert psnr(deep, crop).item() > psnr(degraded, crop).item()


def test_restore_uses_an_edited_diagnosis_file(capsys, hazy_folder, tmp_path):
    clean = Diagnosis.clean(source="edited")
    (tmp_path / "clean.json").write_text(clean.to_json())
    code, _, err = run_cli(capsys, "restore", hazy_folder / "photo1.png", "-o", tmp_path / "same.png",
                           "--diagnosis", tmp_path / "clean.json", "--restorer", "classic")
    assert code == 0, err
    original = load_image(hazy_folder / "photo1.png").tensor
    assert torch.allclose(load_image(tmp_path / "same.png").tensor, original, atol=1 / 255 + 1e-6)
    (tmp_path / "bad.json").write_text(json.dumps({"haze": {"present": True, "severity": 500}, "rain": {"present": False},
                                                   "noise": {"present": False}, "blur": {"present": False}}))
    code, _, err = run_cli(capsys, "restore", hazy_folder / "photo1.png", "-o", tmp_path / "x.png",
                           "--diagnosis", tmp_path / "bad.json")
    assert code == 2 and "bad.json: diagnosis field 'haze.severity'" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_tiny_and_missing_images_are_named(capsys, tmp_path):
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    code, _, err = run_cli(capsys, "restore", tmp_path / "dot.png", tmp_path / "missing.png", "-o", tmp_path / "out",
                           *CLASSIC)
    assert code == 1
    assert "dot.png: 1x1 pixels is too small; R&R needs images of at least 16x16 pixels" in err
    assert "missing.png: no such file" in err


def test_user_errors_exit_2_with_one_line(capsys, hazy_folder, tmp_path):
    (tmp_path / "empty").mkdir()
    cases = [
        (["diagnose", hazy_folder / "photo0.png", "--reasoner", "nope"], "unknown reasoner backend 'nope'"),
        (["restore", hazy_folder, "-o", tmp_path / "one.png"], "names one file, but there are"),
        (["restore", hazy_folder / "photo0.png", "-o", hazy_folder], "would overwrite its input"),
        (["degrade", hazy_folder / "photo0.png"], "choose at least one degradation"),
        (["degrade", hazy_folder / "photo0.png", "--haze", "150"], "severity in 1..100, got 150"),
        (["restore", tmp_path / "empty"], "the folder has no image files"),
        (["eval"], "give either a folder DIR"),
    ]
    for argv, message in cases:
        code, _, err = run_cli(capsys, *argv)
        assert code == 2, (argv, err)
        assert message in err and err.startswith("rnr: error: ") and err.count("\n") == 1, err
    code, _, err = run_cli(capsys, "restore")
    assert code == 2 and "the following arguments are required" in err


def test_degrade_writes_image_and_ground_truth(capsys, tmp_path):
    save_image(tmp_path / "clean.png", photo(64))
    code, out, err = run_cli(capsys, "degrade", tmp_path / "clean.png", "--haze", "60", "--noise", "20",
                             "--noise-kind", "gaussian", "--blur", "--blur-kind", "defocus", "--seed", "4",
                             "-o", tmp_path / "bad.png", "--diagnosis-out", tmp_path / "truth.json")
    assert code == 0, err
    truth = from_dict(json.loads((tmp_path / "truth.json").read_text()))
    assert truth.present == ("haze", "noise", "blur") and truth.source == "ground_truth"
    assert (truth.noise.severity, truth.noise.kind, truth.blur.kind, truth.blur.severity) == (20, "gaussian", "defocus", 50)
    assert from_dict(json.loads(out)) == truth
    assert load_image(tmp_path / "bad.png").size == (64, 64)


def test_score_with_a_reference(capsys, tmp_path):
    clean = photo(64)
    save_image(tmp_path / "clean.png", clean)
    save_image(tmp_path / "hazy.png", degrade(clean, haze=70, seed=0).images)
    code, out, err = run_cli(capsys, "score", tmp_path / "hazy.png", "--reference", tmp_path / "clean.png", "--json",
                             "--reasoner", "classic")
    assert code == 0, err
    row = json.loads(out)
    assert row["file"].endswith("hazy.png") and 5 < row["psnr_db"] < 30 and 0 < row["ssim"] < 1
    assert row["severities"]["haze"] > 0 and row["source"] == "classic"
    assert row["reduction"] == row["reference"]["overall"] - row["overall"] < 0
    code, out, _ = run_cli(capsys, "score", tmp_path / "clean.png", tmp_path / "hazy.png", "--reasoner", "classic")
    assert code == 0 and out.count("overall ") == 2 and "haze" in out.splitlines()[1]


def test_demo_improves_psnr_on_its_sample(capsys, tmp_path):
    code, out, err = run_cli(capsys, "demo", "-o", tmp_path / "demo", "--max-side", "128", "--json", *CLASSIC)
    assert code == 0, err
    result = json.loads(out)
    assert result["image"].endswith("landscape.jpg")
    assert [c["case"] for c in result["cases"]] == ["haze + noise", "blur"]
    for case in result["cases"]:
        assert case["psnr_after"] > case["psnr_before"], case
    with Image.open(tmp_path / "demo" / "side_by_side.png") as figure:
        height, width = result["size"]
        assert figure.width >= 3 * width and figure.height >= 2 * height
    assert len(json.loads((tmp_path / "demo" / "diagnosis.json").read_text())) == 2


def test_eval_folder_and_synthetic(capsys, tmp_path):
    for sub in ("degraded", "clean"):
        (tmp_path / "pairs" / sub).mkdir(parents=True)
    clean = torch.cat([photo(48, 200, 300), photo(48, 100, 150, "building")])
    degraded = degrade(clean, haze=60, seed=1).images
    for i in range(2):
        save_image(tmp_path / "pairs" / "clean" / f"p{i}.png", clean[i:i + 1])
        save_image(tmp_path / "pairs" / "degraded" / f"p{i}.png", degraded[i:i + 1])
    save_image(tmp_path / "pairs" / "clean" / "p2.png", clean[:1, :, :40, :40])
    save_image(tmp_path / "pairs" / "degraded" / "p2.png", degraded[:1])
    code, out, err = run_cli(capsys, "eval", tmp_path / "pairs", "--restorers", "classic", "--guide", "classic",
                             "--json", "--quiet")
    assert code == 1 and "skipped p2.png: degraded is 48x48 but clean is 40x40" in err
    report = json.loads(out)
    assert report["methods"] == ["input", "classic"] and report["counts"] == {"all": 2}
    assert report["psnr"]["all"]["input"] == pytest.approx(
        float(psnr(load_image(tmp_path / "pairs/degraded/p0.png").tensor, load_image(tmp_path / "pairs/clean/p0.png").tensor)
              .add(psnr(load_image(tmp_path / "pairs/degraded/p1.png").tensor,
                        load_image(tmp_path / "pairs/clean/p1.png").tensor)).div(2)), abs=1e-6)
    code, out, err = run_cli(capsys, "eval", "--synthetic", "1", "--size", "48", "--restorers", "classic",
                             "--reasoners", "classic", "--guide", "classic", "--groups", "haze,noise,clean", "--quiet")
    assert code == 0, err
    assert "| haze | 1 |" in out and "| clean | 1 |" in out and "| all | 2 |" in out and "| classic |" in out


def test_bench_reports_time_per_megapixel(capsys):
    code, out, err = run_cli(capsys, "bench", "--backends", "classic", "--devices", "cpu", "--size", "64",
                             "--warmup", "0", "--repeats", "1", "--json", "--quiet")
    assert code == 0, err
    rows = json.loads(out)
    assert {(r["kind"], r["backend"], r["device"]) for r in rows} == {("restorer", "classic", "cpu"),
                                                                       ("reasoner", "classic", "cpu")}
    assert all(r["ms_per_megapixel"] > 0 and r["height"] == 64 and not r["error"] for r in rows)


def test_console_script_in_a_subprocess(tmp_path):
    save_image(tmp_path / "in.png", degrade(photo(32), noise=40, seed=0).images)
    script = shutil.which("rnr", path=os.path.dirname(sys.executable))
    command = [script] if script else [sys.executable, "-m", "rnr.cli"]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([*command, "restore", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), *CLASSIC],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert load_image(tmp_path / "out.png").size == (32, 32)
