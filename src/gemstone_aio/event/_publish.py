"""What ``emit_event`` returns: a publication under way."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Generator
from typing import Any

__all__ = ["PublishResult"]


class PublishResult:
    """What ``emit_event`` returns: the publication under way.

    Code that does not care need not keep it: the event is published anyway, and the
    service awaits pending publications before it closes its transports. ``await`` it
    (on the event loop) or call :meth:`result` (in a blocking method, in a thread) to
    wait until every transport has confirmed; both raise
    :class:`~gemstone_aio.errors.EventPublishError` if one could not.
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
