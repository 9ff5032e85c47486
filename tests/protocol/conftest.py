"""Fixtures of the protocol-layer tests."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from gemstone_aio.protocol import BlockingRunner


@pytest.fixture
def blocking_runner() -> Iterator[BlockingRunner]:
    """A runner of blocking methods over a real thread pool of two threads, shut down after."""
    runner = BlockingRunner(
        ThreadPoolExecutor(2, thread_name_prefix="protocol-test"), max_workers=2, max_waiting=8
    )
    yield runner
    runner.shutdown(wait=True)
