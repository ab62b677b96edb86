"""Reason -> Restore -> SeverityScore with tiny Qwen models through the public API and the cache."""

from __future__ import annotations

import torch

import rnr
from rnr.diagnosis import Haze

from .conftest import ADAPTER_SYSTEM_PROMPT, training_images


def reasoner_options(adapter_dir) -> dict:
    return {"adapter": str(adapter_dir), "system_prompt": ADAPTER_SYSTEM_PROMPT, "max_new_tokens": 96}


def test_reason_then_restore_with_the_qwen_backends(qwen3vl_dir, adapter_dir, qwen21_dir, fresh_cache):
    photos = training_images(2)
    reasoner = rnr.load_reasoner("qwen3vl", str(qwen3vl_dir), "cpu", "fp32", **reasoner_options(adapter_dir))
    diagnoses = reasoner.diagnose(photos)
    assert [d.haze for d in diagnoses] == [Haze(present=True, severity=40, transmission=0.64)] * 2
    assert all(d.present == ("haze",) and d.source == "qwen3vl" for d in diagnoses)
    prompt = diagnoses[0].to_prompt()
    assert "remove the moderate haze (severity 40/100" in prompt and "photo of a street" in prompt

    restorer = rnr.load_restorer("qwen_image_edit", str(qwen21_dir), "cpu", "fp32", steps=2,
                                 text_encoder=str(qwen3vl_dir))
    assert restorer.pipe.text_encoder is not reasoner.model, "the adapter's merged weights are another model"
    seen = []
    restored = restorer.restore(photos, diagnoses, seed=0, progress=lambda d, t: seen.append((d, t)))
    assert restored.shape == photos.shape and seen[-1] == (4, 4)
    assert not torch.allclose(restored, photos, atol=1e-3)
    assert torch.equal(restorer.restore(photos, diagnoses, seed=0), restored)
    assert len(fresh_cache.stats()["models"]) == 3, "reasoner, restorer and the restorer's text encoder"


def test_severity_score_uses_the_qwen_reasoner(qwen3vl_dir, adapter_dir, qwen21_dir, fresh_cache):
    from rnr import severity
    photos = training_images(2)
    reasoner = rnr.load_reasoner("qwen3vl", str(qwen3vl_dir), "cpu", "fp32", **reasoner_options(adapter_dir))
    restorer = rnr.load_restorer("qwen_image_edit", str(qwen21_dir), "cpu", "fp32", steps=2)
    before = reasoner.diagnose(photos)
    after_images = restorer.restore(photos, before, seed=0)
    reasoner.last_answers = []
    deltas = severity.compare(photos, after_images, reasoner)
    assert len(deltas) == 2
    assert len(reasoner.last_answers) >= 2, "the Qwen3-VL reasoner judged the restored images"
    for delta in deltas:
        assert delta.before.source == delta.after.source == "qwen3vl"
        assert delta.before.severities["haze"] == 40 and delta.before.overall == 40
        assert delta.reduction == delta.before.overall - delta.after.overall
