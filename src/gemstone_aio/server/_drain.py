"""The JSON-RPC calls in flight, drained on shutdown and cut at the end of the grace period.

On shutdown the service stops accepting connections and lets the calls in flight finish
within ``shutdown_grace_period``. A call still running then is cut: its handler is
cancelled, and the caller is answered ``-32005 Service shutting down`` while its
connection is still open, instead of a bare disconnect.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..errors import ServiceShuttingDown
from ..protocol import _jsonrpc as jsonrpc

__all__ = ["InFlight"]


class InFlight:
    """The endpoint's calls in flight: one entry per HTTP request being answered."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._idle: asyncio.Event | None = None  # made when the drain begins
        self.cutting = False

    def __len__(self) -> int:
        return len(self._tasks)

    def enter(self, task: asyncio.Task[Any]) -> None:
        """Count the task answering a request in (the endpoint calls it first)."""
        self._tasks.add(task)

    def leave(self, task: asyncio.Task[Any]) -> None:
        """Count ``task`` out (the endpoint calls it last)."""
        self._tasks.discard(task)
        if self._idle is not None and not self._tasks:
            self._idle.set()

    async def drain(self, timeout: float) -> bool:
        """Wait until no call is in flight, at most ``timeout`` seconds; True if none is left."""
        self._idle = idle = asyncio.Event()
        if not self._tasks:
            return True
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                await idle.wait()
        except TimeoutError:
            return False
        return True

    async def cut(self, timeout: float) -> int:
        """Cancel the calls still in flight and wait up to ``timeout`` s for their answers.

        Returns:
            How many calls were cut.
        """
        self.cutting = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        return len(tasks)

    def answer_for(self, body: bytes | None) -> bytes:
        """The ``-32005`` answer of a cut call (with its id when the body is a single request)."""
        id: jsonrpc.Id = None
        if body:
            try:
                decoded = jsonrpc.loads(body)
            except ValueError:
                decoded = None
            if isinstance(decoded, dict):
                request = jsonrpc.parse_object(decoded)
                id = request.id
        return jsonrpc.error_answer(
            id, ServiceShuttingDown(data="the call did not finish within the shutdown grace period")
        )
