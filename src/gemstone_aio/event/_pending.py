"""The bound on publications under way, and log lines that do not flood.

Each ``emit_event`` starts a publication that lives until every transport confirmed the
event (or gave up after its ``publish_timeout``). While the broker is down they pile
up: :class:`PublicationBound` caps how many may be under way at once. Past the cap,
``emit_event`` returns a publication that has not started
(:class:`~gemstone_aio.event.PublishResult` waiting for room): awaiting it (or calling
``.result()`` in a thread) waits for room, at most the publish timeout; discarding it,
as fire-and-forget code does, drops the event at once, counted in the
``event_publish_dropped`` metric and in a rate-limited log line.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from typing import Final

from ..errors import EventPublishError, ServiceConfigurationError

__all__ = ["DEFAULT_MAX_PENDING_PUBLICATIONS", "PublicationBound", "RateLimitedLog"]

DEFAULT_MAX_PENDING_PUBLICATIONS: Final = 10_000
"""Publications a service may have under way at once unless it says otherwise."""


class RateLimitedLog:
    """At most one log line per ``interval`` seconds; the ones held back are counted.

    The first occurrence is logged at once; the next lines say how many occurrences
    were not logged since the previous one. Thread-safe.
    """

    def __init__(self, logger: logging.Logger, level: int, interval: float = 10.0) -> None:
        self.logger = logger
        self.level = level
        self.interval = interval
        self._lock = threading.Lock()
        self._last = -float("inf")
        self._held = 0

    def __call__(self, message: str, *args: object) -> None:
        """Log ``message % args``, or count it if a line was logged less than ``interval`` ago."""
        now = time.monotonic()
        with self._lock:
            if now - self._last < self.interval:
                self._held += 1
                return
            held, self._held, self._last = self._held, 0, now
        if held:
            message += " (%d more like this in the last %.0f s)"
            args = (*args, held, self.interval)
        self.logger.log(self.level, message, *args)


class PublicationBound:
    """How many publications may be under way at once, and who waits for room.

    Args:
        limit: The cap (``None``: no cap).
        room_timeout: Seconds :meth:`acquire` waits for room.

    Raises:
        ServiceConfigurationError: ``limit`` is not a positive integer or ``None``.
    """

    def __init__(self, limit: int | None, room_timeout: float) -> None:
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ServiceConfigurationError(
                f"max_pending_publications must be a positive integer or None, got {limit!r}"
            )
        self.limit = limit
        self.room_timeout = room_timeout
        self.under_way = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def try_acquire(self) -> bool:
        """Take a place if one is free and nobody waits for one (any thread)."""
        with self._lock:
            if self.limit is None or (self.under_way < self.limit and not self._waiters):
                self.under_way += 1
                return True
            return False

    def release(self) -> None:
        """Give a place back: to the first waiter, else to the pool (on the loop)."""
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the place passes on, still counted
                    return
            self.under_way -= 1

    async def acquire(self, what: str) -> None:
        """Wait (on the loop) for a place, at most :attr:`room_timeout` seconds.

        Raises:
            EventPublishError: No place was free in time (``what`` names the event).
        """
        if self.try_acquire():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self.room_timeout)
        except TimeoutError:
            raise EventPublishError(
                f"{what} was not published: {self.limit} publications were waiting for "
                f"the broker for {self.room_timeout:g} s (max_pending_publications)"
            ) from None
        except asyncio.CancelledError:
            self._give_up(waiter)
            raise
        finally:
            if not waiter.done():
                self._give_up(waiter)

    def _give_up(self, waiter: asyncio.Future[None]) -> None:
        with self._lock:
            if not waiter.done():
                waiter.cancel()
                return
        # The place was handed over just as the waiter gave up: pass it on.
        if not waiter.cancelled():
            self.release()

    def count_dropped(self) -> int:
        """Count one publication dropped for want of room; the total so far."""
        with self._lock:
            self.dropped += 1
            return self.dropped
