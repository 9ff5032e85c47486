"""Serving a service in the test's event loop on a free port of 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import TypeVar

from ..server._configuration import configure_service
from ..server._microservice import MicroService

__all__ = ["serving"]

_S = TypeVar("_S", bound=MicroService)


@contextlib.asynccontextmanager
async def serving(
    service: _S, *, timeout: float = 10.0, argv: Sequence[str] = ()
) -> AsyncIterator[_S]:
    """Run ``service`` in the current loop on 127.0.0.1 and a free port while the block runs.

    On entry the service listens and ``service.accessible_at`` is its real URL; on exit
    it is shut down the way SIGTERM would, and any error it raised is re-raised.

    The service is configured first (unless ``skip_configuration``) with ``argv`` as its
    command line (empty by default: pytest's own arguments are never read); host and
    port are then forced to 127.0.0.1 and a free port.
    """
    if not service.skip_configuration:
        configure_service(service, argv)
    service.host = "127.0.0.1"
    service.port = 0
    service.refresh_accessible_at()
    ready = asyncio.Event()
    task = asyncio.create_task(service.serve(handle_signals=False, ready=ready, configure=False))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait({task, waiter}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task.done():
        task.result()  # start-up failed: raise its error
    if not ready.is_set():
        task.cancel()
        raise TimeoutError(f"{service.name} did not start within {timeout} s")
    try:
        yield service
    finally:
        service.stop()
        await asyncio.wait_for(task, timeout)
