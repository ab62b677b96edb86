"""rnr.degrade API: seeding, batches, sizes, mixtures, ground-truth diagnoses, errors."""

from __future__ import annotations

import pytest
import torch

from rnr.degrade import BlurParams, DegradeError, HazeParams, NoiseParams, RainParams, degrade, random_degrade
from rnr.diagnosis import DEFAULT_ORDER, Diagnosis, calibration
from rnr.errors import ImageError

TYPES = ("haze", "rain", "noise", "blur")


def scene(batch: int = 2, height: int = 64, width: int = 80, seed: int = 0) -> torch.Tensor:
    """A textured test scene: smooth colour gradients, a few edges and fine random texture."""
    g = torch.Generator().manual_seed(seed)
    y = torch.linspace(0, 1, height)[:, None]
    x = torch.linspace(0, 1, width)[None, :]
    base = torch.stack([0.3 + 0.4 * x.expand(height, width), 0.2 + 0.5 * y.expand(height, width),
                        0.5 + 0.2 * ((x * 7).floor() % 2).expand(height, width)])
    texture = 0.08 * torch.rand(batch, 3, height, width, generator=g)
    return (base[None] * 0.85 + texture).clamp(0, 1)


@pytest.mark.parametrize("name", TYPES)
def test_same_seed_same_output_and_other_seed_differs(name):
    images = scene()
    first = degrade(images, seed=7, **{name: 55})
    again = degrade(images, seed=7, **{name: 55})
    other = degrade(images, seed=8, **{name: 55})
    assert torch.equal(first.images, again.images)
    assert first.diagnoses == again.diagnoses and first.params == again.params
    assert (first.images - other.images).abs().max() > 0.01


def test_random_degrade_is_reproducible():
    images = scene(6)
    a = random_degrade(images, seed=3)
    b = random_degrade(images, seed=3)
    c = random_degrade(images, seed=4)
    assert torch.equal(a.images, b.images) and a.diagnoses == b.diagnoses
    assert not torch.equal(a.images, c.images)


def test_input_is_not_modified():
    images = scene()
    copy = images.clone()
    degrade(images, haze=50, rain=50, noise=50, blur=50, seed=1)
    assert torch.equal(images, copy)


def test_nothing_requested_leaves_images_untouched():
    images = scene()
    result = degrade(images, seed=1)
    assert torch.equal(result.images, images)
    assert all(d.is_clean and d.source == "ground_truth" and d.order == () for d in result.diagnoses)


def test_absent_types_leave_their_images_untouched_in_a_batch():
    images = scene(3)
    result = degrade(images, noise=[None, 40, 0], blur=[None, None, 30], seed=2)
    assert torch.equal(result.images[0], images[0])
    assert not torch.equal(result.images[1], images[1])
    assert result.diagnoses[0].is_clean
    assert result.diagnoses[1].present == ("noise",) and result.diagnoses[2].present == ("blur",)
    assert result.params[0].noise is None and result.params[1].blur is None


@pytest.mark.parametrize("combo", [("haze", "noise"), ("rain", "blur"), ("haze", "rain", "blur"),
                                   ("rain", "noise", "blur"), TYPES])
def test_mixtures_have_the_right_flags_and_order(combo):
    result = degrade(scene(), seed=5, **{name: 45 for name in combo})
    for diagnosis in result.diagnoses:
        assert set(diagnosis.present) == set(combo)
        assert diagnosis.order == tuple(n for n in DEFAULT_ORDER if n in combo)
        for name in TYPES:
            record = diagnosis.record(name)
            assert record.present == (name in combo)
            assert (record.severity > 0) == (name in combo)


@pytest.mark.parametrize("name,severity", [("haze", 60), ("haze", 15), ("haze", 95), ("rain", 60), ("rain", 20),
                                           ("noise", 60), ("noise", 12), ("blur", 60), ("blur", 30)])
def test_ground_truth_severity_follows_the_calibration(name, severity):
    result = degrade(scene(4, 96, 96), seed=11, **{name: severity})
    for diagnosis in result.diagnoses:
        assert abs(diagnosis.record(name).severity - severity) <= 3


def test_ground_truth_physical_parameters():
    result = degrade(scene(3, 96, 96), haze=60, rain=40, noise=30, blur=50, seed=4)
    for diagnosis, applied in zip(result.diagnoses, result.params):
        assert abs(diagnosis.haze.transmission - calibration.transmission_from_severity(60)) < 0.02
        assert diagnosis.haze.severity == calibration.severity_from_transmission(diagnosis.haze.transmission)
        assert 0.5 <= min(diagnosis.haze.atmospheric_light) and max(diagnosis.haze.atmospheric_light) <= 1.0
        tmap = diagnosis.haze.transmission_map
        assert tmap is not None and len(tmap) <= 16 and len(tmap[0]) <= 16
        assert abs(sum(map(sum, tmap)) / (len(tmap) * len(tmap[0])) - diagnosis.haze.transmission) < 0.01
        assert abs(diagnosis.rain.density - calibration.rain_density_from_severity(40)) < 0.005
        assert diagnosis.rain.angle_deg == pytest.approx(applied.rain.angle_deg, abs=0.01)
        assert diagnosis.rain.length_px > 2
        assert diagnosis.noise.sigma_255 == pytest.approx(15.0)
        assert diagnosis.noise.kind == applied.noise.kind
        assert diagnosis.blur.extent_px == pytest.approx(calibration.blur_extent_from_severity(50), abs=0.01)
        assert diagnosis.blur.kind == applied.blur.kind


def test_free_parameters_differ_within_a_batch():
    result = degrade(scene(4), rain=50, blur=BlurParams(kind="motion"), seed=9)
    assert len({p.rain.angle_deg for p in result.params}) == 4
    assert len({p.blur.angle_deg for p in result.params}) == 4
    assert len({d.blur.angle_deg for d in result.diagnoses}) == 4


def test_explicit_parameters_are_kept():
    haze = HazeParams(transmission=0.5, atmospheric_light=(0.9, 0.8, 0.7), depth_model="uniform",
                      airlight_variation=0.0, depth_edges=False)
    blur = BlurParams(kind="motion", extent_px=12.0, angle_deg=30.0, path="linear", variation=0.0,
                      linear_light=False)
    noise = NoiseParams(sigma_255=20.0, kind="poisson")
    result = degrade(scene(2), haze=haze, blur=blur, noise=noise, seed=0)
    for diagnosis, applied in zip(result.diagnoses, result.params):
        assert applied.haze == haze and applied.blur == blur
        assert diagnosis.haze.transmission == pytest.approx(0.5, abs=1e-4)
        assert diagnosis.haze.atmospheric_light == pytest.approx((0.9, 0.8, 0.7), abs=1e-3)
        assert diagnosis.blur.angle_deg == 30.0 and diagnosis.blur.kind == "motion"
        assert diagnosis.noise.kind == "poisson" and applied.noise.poisson_fraction > 0.5


@pytest.mark.parametrize("name", TYPES)
def test_odd_sizes_stay_in_range(name):
    images = scene(2, 17, 33)
    result = degrade(images, seed=3, **{name: 100})
    assert result.images.shape == images.shape and result.images.dtype == torch.float32
    assert torch.isfinite(result.images).all()
    assert result.images.min() >= 0 and result.images.max() <= 1
    assert all(d.record(name).present for d in result.diagnoses)


def test_full_mixture_on_a_tiny_image():
    result = degrade(scene(1, 16, 16), haze=100, rain=100, noise=100, blur=100, seed=0)
    assert torch.isfinite(result.images).all() and 0 <= result.images.min() and result.images.max() <= 1


def test_diagnoses_round_trip_through_json():
    result = random_degrade(scene(8), seed=21, p_clean=0.2)
    for diagnosis in result.diagnoses:
        assert isinstance(diagnosis, Diagnosis) and diagnosis.source == "ground_truth"
        assert Diagnosis.from_json(diagnosis.to_json()) == diagnosis
        assert "rnr.degrade" in diagnosis.reasoning


def test_scene_text_is_passed_through():
    result = degrade(scene(1), haze=30, scene="A red brick house beside a road", seed=0)
    assert result.diagnoses[0].scene == "A red brick house beside a road"


def test_random_degrade_mixture_statistics():
    images = scene(1, 32, 32).expand(200, 3, 32, 32)
    result = random_degrade(images, seed=0, p_clean=0.1, max_mix=3, severity_range=(30, 70))
    counts = [len(d.present) for d in result.diagnoses]
    assert 5 <= counts.count(0) <= 40
    assert counts.count(1) > counts.count(2) > counts.count(3) > 0
    assert max(counts) <= 3
    for name in TYPES:
        assert sum(name in d.present for d in result.diagnoses) > 30
    for diagnosis in result.diagnoses:
        for name in diagnosis.present:
            assert 27 <= diagnosis.record(name).severity <= 73


def test_random_degrade_options():
    images = scene(10, 32, 32)
    clean = random_degrade(images, seed=1, p_clean=1.0)
    assert torch.equal(clean.images, images) and all(d.is_clean for d in clean.diagnoses)
    only = random_degrade(images, seed=1, p_clean=0.0, types=("noise", "blur"), max_mix=1)
    assert all(len(d.present) == 1 and d.present[0] in ("noise", "blur") for d in only.diagnoses)


def test_given_depth_makes_far_regions_hazier():
    images = scene(1, 64, 64)
    depth = torch.ones(64, 64)
    depth[32:] = 0.1
    result = degrade(images, haze=50, depth=depth, seed=0)
    assert result.params[0].haze.depth_model == "given"
    tmap = torch.tensor(result.diagnoses[0].haze.transmission_map)
    assert tmap[:8].mean() < tmap[8:].mean() - 0.2
    assert abs(result.diagnoses[0].haze.severity - 50) <= 3


@pytest.mark.parametrize("kwargs", [
    {"haze": 101}, {"rain": -1}, {"noise": "strong"}, {"blur": True}, {"haze": float("nan")},
    {"noise": [10, 20, 30]}, {"haze": RainParams()}, {"haze": HazeParams(depth_model="given")},
])
def test_bad_requests_raise_clear_errors(kwargs):
    with pytest.raises(DegradeError):
        degrade(scene(2), seed=0, **kwargs)


@pytest.mark.parametrize("make", [
    lambda: HazeParams(transmission=1.5), lambda: RainParams(layers=7), lambda: RainParams(width_px=0.2),
    lambda: NoiseParams(kind="poisson", poisson_fraction=0.1), lambda: NoiseParams(kind="speckle"),
    lambda: BlurParams(kind="box"), lambda: BlurParams(angle_deg=270.0), lambda: HazeParams(atmospheric_light=(1, 1)),
])
def test_bad_parameters_raise_naming_the_field(make):
    with pytest.raises(DegradeError, match=r"Params\.|Params:"):
        make()


@pytest.mark.parametrize("bad", [torch.rand(2, 4, 32, 32), torch.rand(3, 32, 32), torch.rand(1, 3, 8, 64),
                                 torch.full((1, 3, 32, 32), float("nan")), torch.randint(0, 255, (1, 3, 32, 32)),
                                 torch.rand(1, 3, 32, 32) * 255])
def test_bad_images_raise_image_errors(bad):
    with pytest.raises(ImageError):
        degrade(bad, noise=10)


def test_random_degrade_rejects_bad_options():
    with pytest.raises(DegradeError):
        random_degrade(scene(1), seed=0, types=("snow",))
    with pytest.raises(DegradeError):
        random_degrade(scene(1), seed=0, severity_range=(0, 100))
    with pytest.raises(DegradeError):
        random_degrade(scene(1), seed=0, p_clean=2.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_matches_cpu_parameters():
    images = scene(3, 64, 64)
    cpu = degrade(images, haze=40, rain=40, noise=40, blur=40, seed=5)
    gpu = degrade(images.cuda(), haze=40, rain=40, noise=40, blur=40, seed=5)
    assert gpu.images.is_cuda and torch.isfinite(gpu.images).all()
    assert 0 <= gpu.images.min() and gpu.images.max() <= 1
    assert cpu.params == gpu.params
    for a, b in zip(cpu.diagnoses, gpu.diagnoses):
        for name in TYPES:
            assert abs(a.record(name).severity - b.record(name).severity) <= 3


def test_one_type_at_a_time_in_formation_order_equals_one_call():
    images = scene(3)
    together = degrade(images, haze=40, rain=50, blur=30, noise=20, seed=6)
    staged = images
    for name, severity in (("haze", 40), ("rain", 50), ("blur", 30), ("noise", 20)):
        staged = degrade(staged, seed=6, **{name: severity}).images
    assert torch.equal(staged, together.images)


@pytest.mark.parametrize("snap", [False, True])
def test_edge_snapped_depth_keeps_the_calibration(snap):
    haze = HazeParams(transmission=0.37, depth_model="image", depth_edges=snap)
    result = degrade(scene(3, 96, 96), haze=haze, seed=2)
    for diagnosis, applied in zip(result.diagnoses, result.params):
        assert applied.haze.depth_edges is snap
        assert abs(diagnosis.haze.severity - 70) <= 1
