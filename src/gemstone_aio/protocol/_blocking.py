"""Running plain ``def`` functions off the event loop: ``loop.run_in_executor`` with a bound.

A service's blocking methods, event handlers and periodic tasks run through one
:class:`BlockingRunner`: ``loop.run_in_executor(executor, ...)`` on the service's
executor (a :class:`~concurrent.futures.ThreadPoolExecutor` of
``max_parallel_blocking_tasks`` threads unless the service supplies another
:class:`~concurrent.futures.Executor`), plus what the executor lacks:

- a bound on calls waiting for a worker: past ``max_waiting`` a call is refused at once
  with :class:`~gemstone_aio.errors.ServerOverloaded` (-32002) instead of queueing
  without limit;
- the caller's context variables (the current call, its request id) inside the thread;
- a call whose caller gave up (or hung up: the server cancels its call) before a worker
  took it is never run;
- the calls running for too long are counted (:meth:`BlockingRunner.stuck`), for the
  liveness probe and the metrics.

For executors that are not thread pools (a process pool, say) functions and arguments
are handed over as they are (they must pickle), context variables do not travel, and
the bound counts every call in flight: ``max_workers + max_waiting``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import os
import time
from collections.abc import Callable
from typing import Any, Final

from ..errors import ServerOverloaded, ServiceShuttingDown

__all__ = ["DEFAULT_MAX_PARALLEL_BLOCKING_TASKS", "BlockingRunner"]

DEFAULT_MAX_PARALLEL_BLOCKING_TASKS: Final = min(32, (os.cpu_count() or 1) + 4)
"""Threads in a service's pool unless ``max_parallel_blocking_tasks`` says otherwise
(the rule of :class:`concurrent.futures.ThreadPoolExecutor`: blocking methods mostly
wait on I/O)."""


class BlockingRunner:
    """Runs plain functions in an executor without blocking the event loop.

    Args:
        executor: Where the functions run. The runner owns it: :meth:`shutdown` shuts
            it down.
        max_workers: How many calls the executor runs at once (for the bound and the
            metrics).
        max_waiting: Calls that may wait for a worker; past it a call is refused with
            :class:`~gemstone_aio.errors.ServerOverloaded`. ``None``: no bound; ``0``:
            no waiting at all.
    """

    def __init__(
        self,
        executor: concurrent.futures.Executor,
        *,
        max_workers: int,
        max_waiting: int | None = None,
    ) -> None:
        self.executor = executor
        self.max_workers = max_workers
        self.max_waiting = max_waiting
        self._threads = isinstance(executor, concurrent.futures.ThreadPoolExecutor)
        self._in_flight = 0  # submitted, not finished (changed on the loop's thread only)
        self._started: dict[object, float] = {}  # running calls → when they started
        self._on_idle: Callable[[], None] | None = None
        self._closed = False

    @property
    def waiting(self) -> int:
        """Calls waiting for a worker (for other executors: calls in flight)."""
        if not self._threads:
            return self._in_flight
        return max(self._in_flight - len(self._started), 0)

    @property
    def running(self) -> int:
        """Calls running in a worker thread right now (0 for other executors)."""
        return len(self._started)

    def run(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        """Start ``func(*args, **kwargs)`` in the executor; await the returned future.

        Raises:
            ServerOverloaded: Too many calls wait for a worker already.
            ServiceShuttingDown: The runner was shut down.
        """
        if self._closed:
            raise ServiceShuttingDown()
        limit = self.max_waiting
        # Idle workers take calls at once, so the calls beyond the workers are the ones
        # waiting: refuse when they would be more than the bound.
        if limit is not None and self._in_flight >= self.max_workers + limit:
            raise ServerOverloaded(
                data=f"every worker is busy and {limit} blocking call(s) already wait"
            )
        loop = asyncio.get_running_loop()
        cell: list[asyncio.Future[Any]] = []
        if self._threads:
            call: Callable[[], Any] = functools.partial(
                self._call, contextvars.copy_context(), cell, func, args, kwargs
            )
        else:
            call = functools.partial(func, *args, **kwargs)
        try:
            future = loop.run_in_executor(self.executor, call)
        except RuntimeError:  # the executor was shut down
            raise ServiceShuttingDown() from None
        cell.append(future)
        self._in_flight += 1
        future.add_done_callback(self._finished)
        return future

    def _finished(self, future: asyncio.Future[Any]) -> None:
        self._in_flight -= 1

    def _call(
        self,
        context: contextvars.Context,
        cell: list[asyncio.Future[Any]],
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:  # in a worker thread
        if cell and cell[0].cancelled():  # the caller gave up while the call was queued
            raise concurrent.futures.CancelledError()
        if self._closed:  # queued when the service began to shut down
            raise ServiceShuttingDown()
        token = object()
        self._started[token] = time.monotonic()
        try:
            return context.run(func, *args, **kwargs)
        except StopIteration as stop:
            # An asyncio future cannot carry StopIteration: its caller would wait forever.
            raise RuntimeError(f"{func!r} raised StopIteration") from stop
        finally:
            del self._started[token]
            on_idle = self._on_idle
            if on_idle is not None and not self._started:
                on_idle()

    def stuck(self, threshold: float) -> int:
        """How many calls have been running for more than ``threshold`` seconds."""
        limit = time.monotonic() - threshold
        return sum(1 for started in list(self._started.values()) if started < limit)

    def shutdown(self, *, wait: bool = True) -> None:
        """Refuse new calls, answer queued ones ``ServiceShuttingDown``, shut the executor down.

        With ``wait``, return once the running calls finished.
        """
        self._closed = True
        # Queued jobs of a thread pool are not cancelled (their callers would see a bare
        # cancellation): each one finds the runner closed and raises ServiceShuttingDown.
        self.executor.shutdown(wait=wait, cancel_futures=not self._threads)

    async def aclose(self, timeout: float) -> int:
        """Shut down without blocking the loop, waiting at most ``timeout`` s for running calls.

        Returns:
            How many calls were still running (stuck) when the wait ended. Their threads
            cannot be stopped; ``start()`` ends the process without waiting for them.
        """
        loop = asyncio.get_running_loop()
        idle = asyncio.Event()

        def wake() -> None:  # from the worker thread that finished last
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(idle.set)

        self._on_idle = wake
        if not self._started:
            idle.set()
        self.shutdown(wait=False)
        try:
            async with asyncio.timeout(timeout):
                await idle.wait()
        except TimeoutError:
            pass
        return len(self._started)
