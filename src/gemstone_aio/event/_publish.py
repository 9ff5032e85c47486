"""What ``emit_event`` returns: a publication under way."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Callable, Coroutine, Generator
from typing import Any

__all__ = ["PublishResult", "WaitingPublication"]


class PublishResult:
    """What ``emit_event`` returns: the publication under way.

    Code that does not care need not keep it: the event is published anyway, and the
    service awaits pending publications before it closes its transports. ``await`` it
    (on the event loop) or call :meth:`result` (in a blocking method, in a thread) to
    wait until every transport has confirmed; both raise
    :class:`~gemstone_aio.errors.EventPublishError` if one could not.

    While the service has ``max_pending_publications`` under way (the broker is down or
    slow), a new one does not start until it is awaited: awaiting it (or
    :meth:`result`) waits for room, at most the publish timeout; discarding it drops the
    event, counted in the ``gemstone_events_publish_dropped_total`` metric and logged
    (rate-limited).
    """

    __slots__ = ("_future",)

    def __init__(self, future: asyncio.Future[None] | concurrent.futures.Future[None]) -> None:
        self._future = future

    def __await__(self) -> Generator[Any, None, None]:
        future = self._future
        if isinstance(future, concurrent.futures.Future):
            return asyncio.wrap_future(future).__await__()
        return future.__await__()

    def done(self) -> bool:
        """Whether the publication finished (confirmed or failed)."""
        return self._future.done()

    def result(self, timeout: float | None = None) -> None:
        """Block until confirmed (only from a thread other than the service's loop).

        Raises:
            EventPublishError: A transport could not publish the event.
            RuntimeError: Called on the event loop; ``await`` the result there instead.
            TimeoutError: Not finished within ``timeout`` seconds.
        """
        future = self._future
        if isinstance(future, concurrent.futures.Future):
            future.result(timeout)
            return
        if not future.done():
            raise RuntimeError("on the event loop, wait for the publication with 'await'")
        future.result()


class WaitingPublication(PublishResult):
    """A publication past ``max_pending_publications``: it has not started.

    Awaiting it (on the service's loop) or calling :meth:`result` (in a thread) starts
    it: it waits for room, then publishes. Discarded without either, as
    fire-and-forget code does, the event is dropped and counted then (at once in
    CPython, when the last reference goes).
    """

    __slots__ = ("_begun", "_drop", "_loop", "_start")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        start: Callable[[], Coroutine[Any, Any, None]],
        drop: Callable[[], None],
    ) -> None:
        self._loop = loop
        self._start = start
        self._drop = drop
        self._begun = False

    def _begin(self) -> asyncio.Future[None] | concurrent.futures.Future[None]:
        if not self._begun:
            self._begun = True
            try:
                running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is self._loop:
                self._future = self._loop.create_task(self._start())
            else:
                self._future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        return self._future

    def __await__(self) -> Generator[Any, None, None]:
        self._begin()
        return super().__await__()

    def done(self) -> bool:
        """Whether the publication finished (it has not started until awaited)."""
        return self._begun and self._future.done()

    def result(self, timeout: float | None = None) -> None:
        """Start the publication and block until confirmed (from a thread)."""
        if not self._begun:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                self._begin()
            else:
                raise RuntimeError("on the event loop, wait for the publication with 'await'")
        super().result(timeout)

    def __del__(self) -> None:
        if not self._begun:
            with contextlib.suppress(Exception):
                self._drop()
