"""Running blocking code off the event loop, with a bound on queued work.

:class:`BlockingPool` is the service's thread pool. It is a
:class:`concurrent.futures.Executor` (``loop.run_in_executor(pool, func)`` works), but the
framework calls :meth:`BlockingPool.run`, which is cheaper than ``run_in_executor`` on a
``ThreadPoolExecutor``: the job carries an asyncio future straight to a worker thread
(no ``concurrent.futures.Future`` chained to it), and the threads hand finished jobs
back through one queue per event loop, waking the loop once for all the jobs that
finished meanwhile instead of once per job. Under load that halves the CPU time a
blocking call costs (``python bench/rpc_throughput.py --case blocking``).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import contextvars
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

from ..errors import ServerOverloaded, ServiceConfigurationError

__all__ = ["DEFAULT_MAX_PARALLEL_BLOCKING_TASKS", "BlockingPool"]

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_MAX_PARALLEL_BLOCKING_TASKS = min(32, (os.cpu_count() or 1) + 4)
"""Threads in a service's pool unless ``max_parallel_blocking_tasks`` says otherwise
(the same rule as :class:`concurrent.futures.ThreadPoolExecutor`: blocking methods are
mostly waiting on I/O)."""


class _Inbox:
    """Finished jobs on their way back to one event loop, which is woken once per batch."""

    __slots__ = ("_done", "_loop", "_pool", "_woken")

    def __init__(self, loop: asyncio.AbstractEventLoop, pool: BlockingPool) -> None:
        self._loop = loop
        self._pool = pool
        self._done: collections.deque[tuple[asyncio.Future[Any], Any, BaseException | None]]
        self._done = collections.deque()
        self._woken = False

    def post(self, future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
        """Called by a worker thread: queue the outcome, wake the loop unless it is already."""
        self._done.append((future, result, error))
        if self._loop.is_closed():  # nobody awaits these futures any more
            self._forget()
            return
        if not self._woken:
            # A drain scheduled but not run yet will see this job too: it clears the flag
            # before it empties the queue.
            self._woken = True
            try:
                self._loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop closed meanwhile
                self._forget()

    def cancel(self, future: asyncio.Future[Any]) -> None:
        """Called from any thread: cancel a job that will not run."""
        with contextlib.suppress(RuntimeError):  # the loop is closed
            self._loop.call_soon_threadsafe(future.cancel)

    def _forget(self) -> None:
        # Count the outcomes no loop will take as finished, so the pool's bound stays right.
        forgotten = 0
        with contextlib.suppress(IndexError):
            while True:
                self._done.popleft()
                forgotten += 1
        self._pool._finished(forgotten)

    def _drain(self) -> None:
        self._woken = False
        done = self._done
        finished = 0
        while done:
            future, result, error = done.popleft()
            finished += 1
            if future.done():  # cancelled while its function ran (a timeout, say)
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)
        self._pool._finished(finished)


# A job: the function and its arguments, the context to run it in, and where its outcome
# goes (an asyncio future and its loop's inbox, or a concurrent.futures.Future and None).
_Job = tuple[
    Callable[..., Any],
    tuple[Any, ...],
    dict[str, Any],
    contextvars.Context,
    "asyncio.Future[Any] | concurrent.futures.Future[Any]",
    "_Inbox | None",
]


class BlockingPool(concurrent.futures.Executor):
    """A bounded thread pool for plain ``def`` methods, handlers and periodic tasks.

    At most ``max_workers`` functions run at once (threads start as they are needed). At
    most ``max_pending`` more wait for a thread; past that :meth:`run` raises
    :class:`~gemstone_aio.errors.ServerOverloaded` at once instead of queueing without
    bound. Functions run in a copy of the caller's context, so context variables (the
    current request, say) are visible in the thread. A function whose caller stopped
    waiting (a timeout) before a thread took it is not run.
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
        self._name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._submitted = 0
        self._closed = False
        self._inboxes: dict[asyncio.AbstractEventLoop, _Inbox] = {}
        self._last: tuple[asyncio.AbstractEventLoop | None, _Inbox | None] = (None, None)

    @property
    def submitted(self) -> int:
        """Functions submitted and not finished yet (running plus queued)."""
        return self._submitted

    @property
    def queued(self) -> int:
        """Functions waiting for a free thread."""
        return max(0, self._submitted - self.max_workers)

    @property
    def executor(self) -> concurrent.futures.Executor:
        """The pool itself, for code that wants the ``concurrent.futures`` API."""
        return self

    def run(self, func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[T]:
        """Start ``func(*args, **kwargs)`` in the pool; await the future for its result.

        Call it on a running event loop.

        Raises:
            ServerOverloaded: The queue of waiting functions is full.
            RuntimeError: The pool is shut down.
        """
        loop, inbox = self._last
        running = asyncio.get_running_loop()
        if loop is not running or inbox is None:
            inbox = self._inbox_for(running)
        future: asyncio.Future[T] = running.create_future()
        self._submit((func, args, kwargs, contextvars.copy_context(), future, inbox))
        return future

    def submit(
        self, func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> concurrent.futures.Future[T]:
        """Start ``func(*args, **kwargs)`` from any thread (the ``Executor`` API).

        Raises:
            ServerOverloaded: The queue of waiting functions is full.
            RuntimeError: The pool is shut down.
        """
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._submit((func, args, kwargs, contextvars.copy_context(), future, None))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool | None = None) -> None:
        """Refuse new work and stop the threads once the queued functions ran.

        With ``wait`` block until they are done. ``cancel_futures`` (by default: not
        ``wait``) cancels the functions no thread has taken yet instead of running them.
        """
        with self._lock:
            if self._closed:
                threads: list[threading.Thread] = []
            else:
                self._closed = True
                threads = list(self._threads)
        if cancel_futures if cancel_futures is not None else not wait:
            self._cancel_queued()
        for _ in threads:
            self._jobs.put(None)
        if wait:
            for thread in threads:
                thread.join()

    def _inbox_for(self, loop: asyncio.AbstractEventLoop) -> _Inbox:
        inbox = self._inboxes.get(loop)
        if inbox is None:
            # A pool used from several loops over its life (tests do that): forget the
            # loops that are closed.
            for old in [old for old in self._inboxes if old.is_closed()]:
                del self._inboxes[old]
            inbox = self._inboxes[loop] = _Inbox(loop, self)
        self._last = (loop, inbox)
        return inbox

    def _submit(self, job: _Job) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot run new functions after shutdown of the pool")
            if (
                self.max_pending is not None
                and self._submitted - self.max_workers >= self.max_pending
            ):
                raise ServerOverloaded(
                    data=f"{self._submitted} blocking calls in progress or queued; retry later"
                )
            self._submitted += 1
            if self._submitted > len(self._threads) < self.max_workers:
                thread = threading.Thread(
                    target=self._work,
                    name=f"{self._name}_{len(self._threads)}",
                    daemon=True,
                )
                self._threads.append(thread)
                thread.start()
        self._jobs.put(job)

    def _finished(self, count: int) -> None:
        with self._lock:
            self._submitted -= count

    def _cancel_queued(self) -> None:
        cancelled = 0
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:
                continue
            cancelled += 1
            future, inbox = job[4], job[5]
            if inbox is None:
                future.cancel()
            else:
                inbox.cancel(future)  # type: ignore[arg-type]
        self._finished(cancelled)

    def _work(self) -> None:
        jobs = self._jobs
        while True:
            job = jobs.get()
            if job is None:
                return
            self._run_job(job)
            del job  # nothing of a finished job stays alive while the thread waits

    def _run_job(self, job: _Job) -> None:
        func, args, kwargs, context, outcome, inbox = job
        if inbox is None:
            self._run_for_thread(func, args, kwargs, context, outcome)  # type: ignore[arg-type]
            return
        future = cast("asyncio.Future[Any]", outcome)
        if future.cancelled():  # its caller gave up before a thread was free
            inbox.post(future, None, None)  # still counted as finished, on its loop
            return
        try:
            result = context.run(func, *args, **kwargs)
        except StopIteration as stop:  # a future cannot hold it (as in a coroutine)
            problem = RuntimeError(f"{func!r} raised StopIteration")
            problem.__cause__ = stop
            inbox.post(future, None, problem)
        except BaseException as error:  # handed to the awaiting caller
            inbox.post(future, None, error)
        else:
            inbox.post(future, result, None)

    def _run_for_thread(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        context: contextvars.Context,
        future: concurrent.futures.Future[Any],
    ) -> None:
        try:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = context.run(func, *args, **kwargs)
            except BaseException as error:  # handed to the waiting caller
                future.set_exception(error)
                del error
            else:
                future.set_result(result)
        finally:
            self._finished(1)
