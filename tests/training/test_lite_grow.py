"""Growing a trained lite restorer or reasoner (training.lite.grow): same function at the start, trainable
new blocks, clear errors, and the training entry point resuming into the grown network."""

from __future__ import annotations

import json

import pytest
import torch

from rnr.lite.condition import CONDITION_DIM
from rnr.lite.nets import LiteReasonerNet, LiteRestorerNet, ReasonerConfig, RestorerConfig, parameter_count
from rnr.lite.weights import load_network, save_network
from training.lite.grow import grow_reasoner, grow_restorer, grown_config, grown_reasoner_config
from training.lite.train import TrainConfig, Trainee

TINY = RestorerConfig(widths=(8, 16, 32), enc_blocks=(0, 1), middle_blocks=1, dec_blocks=(1, 1), cond_hidden=16)
MORE = {"enc_blocks": [1, 2], "middle_blocks": 3, "dec_blocks": [2, 1]}


def _trained_like(net: torch.nn.Module | None = None) -> torch.nn.Module:
    """``net`` (default: a tiny restorer) with every weight given a value, as training leaves it."""
    # Zero-initialised heads, FiLM projections and residual scales would hide mistakes.
    torch.manual_seed(0)
    net = LiteRestorerNet(TINY) if net is None else net
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net.eval()


def _inputs():
    generator = torch.Generator().manual_seed(1)
    return torch.rand(2, 3, 32, 48, generator=generator), torch.rand(2, CONDITION_DIM, generator=generator)


def test_grown_restorer_computes_the_same_output_with_more_parameters():
    net = _trained_like()
    grown = grow_restorer(net, MORE).eval()
    assert grown.config.middle_blocks == 3 and grown.config.enc_blocks == (1, 2) and grown.config.dec_blocks == (2, 1)
    assert parameter_count(grown) > parameter_count(net)
    images, condition = _inputs()
    with torch.no_grad():
        assert torch.allclose(grown(images, condition), net(images, condition), atol=1e-6)
        # The network is not the identity, so the match above is not trivial.
        assert float((net(images, condition) - images).abs().mean()) > 1e-3


def test_new_blocks_learn_from_the_first_step():
    grown = grow_restorer(_trained_like(), {"middle_blocks": 2})
    new_block = grown.middle[1]
    images, condition = _inputs()
    grown(images, condition).square().mean().backward()
    assert float(new_block.scale.grad.abs().sum()) > 0.0


def test_grown_weights_save_and_load_as_a_lite_restorer(tmp_path):
    grown = grow_restorer(_trained_like(), MORE).eval()
    path = save_network(grown, "lite_restorer", tmp_path / "lite_restorer.safetensors")
    loaded, _ = load_network("lite_restorer", path)
    images, condition = _inputs()
    with torch.no_grad():
        # Shipped weights are float16: equal to half precision.
        assert torch.allclose(loaded(images, condition), grown(images, condition), atol=2e-2)
    assert loaded.config == grown.config


@pytest.mark.parametrize("changes, message", [
    ({"middle_blocks": 0}, "keeps every trained block"),
    ({"dec_blocks": [1]}, "keeps every trained block"),
    ({"widths": [8, 16, 64]}, "can only change"),
    ("{not json", "JSON object"),
    ("[1, 2]", "JSON object"),
])
def test_growth_that_would_drop_blocks_or_change_widths_is_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        grown_config(TINY, changes)


def test_training_resumes_into_the_grown_restorer(tmp_path):
    net = _trained_like()
    save_network(net, "lite_restorer", tmp_path / "lite_restorer.safetensors")
    cfg = TrainConfig(stage="restorer", resume=str(tmp_path), grow_restorer='{"middle_blocks": 2}', device="cpu")
    trainee = Trainee("restorer", cfg, torch.device("cpu"))
    assert trainee.model.config.middle_blocks == 2 and trainee.ema.model.config.middle_blocks == 2
    images, condition = _inputs()
    with torch.no_grad():
        assert torch.allclose(trainee.ema.model(images, condition), net(images, condition), atol=2e-2)


# ---- the reasoner -----------------------------------------------------------------------------
TINY_REASONER = ReasonerConfig(global_size=32, crop_size=24, global_widths=(8, 16), local_widths=(8, 12),
                               head_hidden=32)
MORE_REASONER = {"global_blocks": [1, 3], "local_blocks": [2, 1]}


def _trained_reasoner() -> LiteReasonerNet:
    return _trained_like(LiteReasonerNet(TINY_REASONER))


def _reasoner_inputs():
    generator = torch.Generator().manual_seed(2)
    return torch.rand(2, 3, 32, 32, generator=generator), torch.rand(2, 3, 3, 24, 24, generator=generator)


def test_grown_reasoner_computes_the_same_outputs_with_more_parameters():
    net = _trained_reasoner()
    grown = grow_reasoner(net, MORE_REASONER).eval()
    assert grown.config.blocks("global") == (1, 3) and grown.config.blocks("local") == (2, 1)
    assert parameter_count(grown) > parameter_count(net)
    global_view, crops = _reasoner_inputs()
    with torch.no_grad():
        before, after = net(global_view, crops), grown(global_view, crops)
        assert torch.allclose(after, before, atol=1e-6)
        # Different inputs give different outputs, so the match above is not a constant.
        assert float((net(global_view.flip(-1) * 0.5, crops * 0.3) - before).abs().max()) > 1e-3


def test_new_reasoner_blocks_learn_from_the_first_step():
    grown = grow_reasoner(_trained_reasoner(), {"global_blocks": [1, 2]})
    new_block = grown.global_branch.stages()[1][1][1]
    assert float(new_block.scale.detach().abs().sum()) == 0.0
    grown(*_reasoner_inputs()).square().mean().backward()
    assert float(new_block.scale.grad.abs().sum()) > 0.0


def test_grown_reasoner_saves_and_loads_as_the_lite_reasoner(tmp_path):
    grown = grow_reasoner(_trained_reasoner(), MORE_REASONER).eval()
    path = save_network(grown, "lite_reasoner", tmp_path / "lite_reasoner.safetensors")
    loaded, _ = load_network("lite_reasoner", path)
    assert loaded.config == grown.config
    with torch.no_grad():
        assert torch.allclose(loaded(*_reasoner_inputs()), grown(*_reasoner_inputs()), atol=2e-2)


def test_a_reasoner_config_without_block_counts_keeps_one_block_per_stage():
    # Weights written before block counts existed carry no such keys and must load unchanged.
    old = {k: v for k, v in TINY_REASONER.to_dict().items() if not k.endswith("_blocks")}
    config = ReasonerConfig.from_dict(old)
    assert config.blocks("global") == (1, 1) and config.blocks("local") == (1, 1)
    assert set(LiteReasonerNet(config).state_dict()) == set(_trained_reasoner().state_dict())


@pytest.mark.parametrize("changes, message", [
    ({"global_blocks": [1, 0]}, "at least one block"),
    ({"local_blocks": [2]}, "at least one block"),
    ({"local_blocks": 2}, "list of block counts"),
    ({"global_widths": [8, 32]}, "can only change"),
    ("nope", "JSON object"),
])
def test_reasoner_growth_that_is_not_more_blocks_per_stage_is_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        grown_reasoner_config(TINY_REASONER, changes)


def test_reasoner_growth_cannot_drop_trained_blocks():
    grown = grown_reasoner_config(TINY_REASONER, MORE_REASONER)
    with pytest.raises(ValueError, match="keeps every trained block"):
        grown_reasoner_config(grown, {"global_blocks": [1, 2]})


def test_training_resumes_into_the_grown_reasoner(tmp_path):
    net = _trained_reasoner()
    save_network(net, "lite_reasoner", tmp_path / "lite_reasoner.safetensors")
    cfg = TrainConfig(stage="reasoner", resume=str(tmp_path), grow_reasoner=json.dumps(MORE_REASONER), device="cpu")
    trainee = Trainee("reasoner", cfg, torch.device("cpu"))
    assert trainee.model.config.blocks("global") == (1, 3) and trainee.ema.model.config.blocks("local") == (2, 1)
    with torch.no_grad():
        assert torch.allclose(trainee.ema.model(*_reasoner_inputs()), net(*_reasoner_inputs()), atol=2e-2)


def test_a_reasoner_trained_from_scratch_takes_the_grown_block_counts():
    cfg = TrainConfig(stage="reasoner", grow_reasoner='{"local_blocks": [1, 1, 2, 1]}', device="cpu")
    trainee = Trainee("reasoner", cfg, torch.device("cpu"))
    config = trainee.model.config
    assert config.blocks("local") == (1, 1, 2, 1) and config.blocks("global") == (1, 1, 1, 1)
    assert len(trainee.model.local_branch.stages()[2][1]) == 2
