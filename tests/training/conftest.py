"""Fixtures of the training tests: the big-model helpers' tiny real models (built once per session by their
own builders in ``tests/bigmodels/tiny.py``), small photo folders, and one CPU thread for tiny models."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
if str(TESTS) not in sys.path:
    # The bigmodels folder is a package under tests/; pytest puts tests/ on the path for it the same way.
    sys.path.insert(0, str(TESTS))


@pytest.fixture()
def one_thread():
    """Tiny models run fastest on one thread (more only add synchronisation at these sizes)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("training_models")


@pytest.fixture(scope="session")
def qwen3vl_dir(tiny_models) -> Path:
    pytest.importorskip("transformers")
    from bigmodels import tiny

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return tiny.build_qwen3vl(tiny_models / "qwen3vl", seed=0)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def edit_dir(tiny_models) -> Path:
    pytest.importorskip("diffusers")
    from bigmodels import tiny

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return tiny.build_edit_pipeline(tiny_models / "edit", family="edit", seed=0)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def photos_dir() -> Path:
    """The sample photos shipped with the pack (three real photos)."""
    from rnr.assets import SAMPLES_DIR

    return Path(SAMPLES_DIR)
