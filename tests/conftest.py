"""Fixtures shared across the test folders. Nothing here is autouse: a module asks for what it needs."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def one_thread_per_module():
    """Small tensors run faster on one thread; on a busy 2-core machine torch's thread pool makes each
    small operation tens of times slower. Restored afterwards so other modules are unaffected.

    Use as ``pytestmark = pytest.mark.usefixtures("one_thread_per_module")``.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
