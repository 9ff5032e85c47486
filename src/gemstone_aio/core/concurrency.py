"""Running blocking code off the event loop, with a bound on queued work."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from ..errors import ServerOverloaded, ServiceConfigurationError

__all__ = ["DEFAULT_MAX_PARALLEL_BLOCKING_TASKS", "BlockingPool"]

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_MAX_PARALLEL_BLOCKING_TASKS = min(32, (os.cpu_count() or 1) + 4)
"""Threads in a service's pool unless ``max_parallel_blocking_tasks`` says otherwise
(the same rule as :class:`concurrent.futures.ThreadPoolExecutor`: blocking methods are
mostly waiting on I/O)."""


class BlockingPool:
    """A bounded thread pool for plain ``def`` methods, handlers and periodic tasks.

    At most ``max_workers`` functions run at once. At most ``max_pending`` more wait for
    a thread; past that :meth:`run` raises :class:`~gemstone_aio.errors.ServerOverloaded`
    at once instead of queueing without bound. Functions run in a copy of the caller's
    context, so context variables (the current request, say) are visible in the thread.
    """

    def __init__(
        self, max_workers: int, *, max_pending: int | None = None, name: str = "gemstone"
    ) -> None:
        if not isinstance(max_workers, int) or isinstance(max_workers, bool) or max_workers <= 0:
            raise ServiceConfigurationError(
                f"max_parallel_blocking_tasks must be a positive integer, got {max_workers!r}"
            )
        if max_pending is not None and max_pending < 0:
            raise ServiceConfigurationError(
                f"max_pending_blocking_tasks must be >= 0 or None, got {max_pending!r}"
            )
        self.max_workers = max_workers
        self.max_pending = max_pending
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix=name)
        self._submitted = 0

    @property
    def submitted(self) -> int:
        """Functions submitted and not finished yet (running plus queued)."""
        return self._submitted

    @property
    def queued(self) -> int:
        """Functions waiting for a free thread."""
        return max(0, self._submitted - self.max_workers)

    @property
    def executor(self) -> ThreadPoolExecutor:
        """The underlying executor (for code that needs a ``concurrent.futures`` API)."""
        return self._executor

    async def run(self, func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``func(*args, **kwargs)`` in the pool and return its result.

        Raises:
            ServerOverloaded: The queue of waiting functions is full.
        """
        if self.max_pending is not None and self.queued >= self.max_pending:
            raise ServerOverloaded(
                data=f"{self._submitted} blocking calls in progress or queued; retry later"
            )
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        call = functools.partial(context.run, func, *args, **kwargs)
        self._submitted += 1
        try:
            return await loop.run_in_executor(self._executor, call)
        finally:
            self._submitted -= 1

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop the threads; with ``wait`` block until running functions finish."""
        self._executor.shutdown(wait=wait, cancel_futures=not wait)
