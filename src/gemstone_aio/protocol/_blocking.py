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
- a call whose caller gave up before a worker took it is never run (cancelling the
  asyncio future cancels the executor's future while it is still queued), nor is one
  whose caller hung up meanwhile (:meth:`CallContext.caller_gone`);
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
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from ..errors import ServerOverloaded, ServiceShuttingDown
from ._context import current_call

__all__ = ["DEFAULT_MAX_PARALLEL_BLOCKING_TASKS", "BlockingRunner"]

DEFAULT_MAX_PARALLEL_BLOCKING_TASKS: Final = min(32, (os.cpu_count() or 1) + 4)
"""Threads in a service's pool unless ``max_parallel_blocking_tasks`` says otherwise
(the rule of :class:`concurrent.futures.ThreadPoolExecutor`: blocking methods mostly
wait on I/O)."""

_NEW, _STARTED, _ABANDONED = 0, 1, 2


class _Job:
    """One call handed to a thread pool: runs in the caller's context, counts its start."""

    __slots__ = ("_args", "_context", "_func", "_kwargs", "_runner", "future", "state")

    def __init__(
        self,
        runner: BlockingRunner,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self._runner = runner
        self._context = contextvars.copy_context()
        self._func = func
        self._args = args
        self._kwargs = kwargs
        self.state = _NEW
        self.future: asyncio.Future[Any] | None = None  # the caller's, once handed over

    def __call__(self) -> Any:  # in a worker thread
        runner = self._runner
        with runner._lock:
            if self.state != _NEW:  # the caller gave up meanwhile
                raise concurrent.futures.CancelledError()
            future = self.future
            if (future is not None and future.cancelled()) or self._caller_gone():
                # The caller gave up, or hung up, while the call was queued.
                self.state = _ABANDONED
                runner._waiting -= 1
                raise concurrent.futures.CancelledError()
            if runner._closed:  # queued when the service began to shut down
                self.state = _ABANDONED
                runner._waiting -= 1
                raise ServiceShuttingDown()
            self.state = _STARTED
            runner._waiting -= 1
            runner._running += 1
            runner._started[self] = time.monotonic()
        try:
            return self._context.run(self._func, *self._args, **self._kwargs)
        except StopIteration as stop:
            # An asyncio future cannot carry StopIteration: its caller would wait forever.
            raise RuntimeError(f"{self._func!r} raised StopIteration") from stop
        finally:
            with runner._lock:
                runner._running -= 1
                del runner._started[self]
                if runner._running == 0 and runner._on_idle is not None:
                    runner._on_idle()

    def _caller_gone(self) -> bool:
        # A call queued for a caller that hung up meanwhile is dropped, not run.
        call = self._context.get(current_call)
        return call is not None and call.caller_gone()

    def settle(self, future: asyncio.Future[Any]) -> None:  # on the loop, when done
        runner = self._runner
        with runner._lock:
            if self.state == _NEW:  # cancelled or refused before a worker took it
                self.state = _ABANDONED
                runner._waiting -= 1


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
        self._lock = threading.Lock()
        self._waiting = 0  # thread pools: submitted, not started; others: in flight
        self._running = 0
        self._started: dict[_Job, float] = {}  # running jobs → when they started
        self._on_idle: Callable[[], None] | None = None
        self._closed = False

    @property
    def waiting(self) -> int:
        """Calls waiting for a worker (for other executors: calls in flight)."""
        return self._waiting

    @property
    def running(self) -> int:
        """Calls running in a worker thread right now (0 for other executors)."""
        return self._running

    def run(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        """Start ``func(*args, **kwargs)`` in the executor; await the returned future.

        Raises:
            ServerOverloaded: Too many calls wait for a worker already.
            ServiceShuttingDown: The runner was shut down.
        """
        if self._closed:
            raise ServiceShuttingDown()
        loop = asyncio.get_running_loop()
        limit = self.max_waiting
        if self._threads:
            with self._lock:
                # Idle threads take new calls at once: only the calls beyond them wait.
                would_wait = self._waiting + 1 - (self.max_workers - self._running)
                if limit is not None and would_wait > limit:
                    raise ServerOverloaded(
                        data=f"every thread is busy and {limit} blocking call(s) already wait"
                    )
                self._waiting += 1
            job = _Job(self, func, args, kwargs)
            try:
                future = loop.run_in_executor(self.executor, job)
            except RuntimeError:  # the executor was shut down
                job.settle(loop.create_future())
                raise ServiceShuttingDown() from None
            job.future = future
            future.add_done_callback(job.settle)
            return future
        if limit is not None and self._waiting >= self.max_workers + limit:
            raise ServerOverloaded(data=f"{self._waiting} blocking calls already in flight")
        call = functools.partial(func, *args, **kwargs) if kwargs else func
        try:
            future = loop.run_in_executor(self.executor, call, *(() if kwargs else args))
        except RuntimeError:
            raise ServiceShuttingDown() from None
        self._waiting += 1
        future.add_done_callback(self._in_flight_done)
        return future

    def _in_flight_done(self, future: asyncio.Future[Any]) -> None:
        self._waiting -= 1

    def stuck(self, threshold: float) -> int:
        """How many calls have been running for more than ``threshold`` seconds."""
        limit = time.monotonic() - threshold
        with self._lock:
            return sum(1 for started in self._started.values() if started < limit)

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

        with self._lock:
            self._on_idle = wake
            if self._running == 0:
                idle.set()
        self.shutdown(wait=False)
        try:
            async with asyncio.timeout(timeout):
                await idle.wait()
        except TimeoutError:
            pass
        return self._running
