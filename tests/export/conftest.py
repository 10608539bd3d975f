"""The export tests run torch on one thread: on a shared CI machine two spinning threads per test
make the engine's convolutions ten times slower; the numbers do not depend on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """torch.set_num_threads(1) for the test, the previous count restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
