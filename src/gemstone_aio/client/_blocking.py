"""The blocking facade of :class:`~gemstone_aio.client.RemoteService`.

A script without an event loop calls ``client.methods.say_hello("world")`` and gets the
result. Behind it, each client runs the asyncio client on a private event loop in one
background thread, started on first use and stopped by ``client.close()``, by leaving
``with client:``, when the client is garbage collected, or at interpreter exit.

``client.methods.x(..., __async=True)`` and ``client.call_method_async("x", params)``
return an :class:`AsyncMethodCall` at once; the helpers in
:mod:`gemstone_aio.client.helpers` wait on several of them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import aiohttp

__all__ = ["AsyncMethodCall", "LoopRunner", "ensure_no_running_loop", "in_running_loop"]

T = TypeVar("T")

_finish_sequence = itertools.count()

_NOT_FINISHED = "the call to {name!r} has not finished yet; wait() for it first"


def in_running_loop() -> bool:
    """Return whether the calling thread runs an asyncio event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def ensure_no_running_loop(what: str) -> None:
    """Refuse a blocking operation in a thread that runs an event loop.

    Raises:
        RuntimeError: The calling thread runs an event loop; the message says to use
            the async client instead.
    """
    if in_running_loop():
        raise RuntimeError(
            f"{what} blocks, and this thread runs an asyncio event loop: use the async "
            "client instead (await svc.call(...), await svc.methods.name(...), or "
            "asyncio.gather / asyncio.as_completed for parallel calls)"
        )


class LoopRunner:
    """One event loop in one daemon thread, with the aiohttp session used on it.

    It holds no reference to its client, so a ``weakref.finalize`` on the client can
    close it at garbage collection or interpreter exit.
    """

    def __init__(self, make_session: Callable[[], aiohttp.ClientSession], label: str) -> None:
        self._make_session = make_session
        self._session: aiohttp.ClientSession | None = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._label = label

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The private loop, once started."""
        return self._loop

    def session(self) -> aiohttp.ClientSession:
        """Return the session of the private loop (call only on that loop)."""
        if self._session is None or self._session.closed:
            self._session = self._make_session()
        return self._session

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the private loop, starting it on first use."""
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()
                thread = threading.Thread(
                    target=self._run, args=(loop, ready), name=self._label, daemon=True
                )
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return asyncio.run_coroutine_threadsafe(coro, self._loop)

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            loop.close()

    def is_current(self) -> bool:
        """Return whether the caller runs on the private loop's thread."""
        thread = self._thread
        return thread is not None and thread is threading.current_thread()

    def close(self) -> None:
        """Cancel running calls, close the session, stop the loop, join the thread.

        Idempotent; the runner starts again on the next :meth:`submit`.
        """
        with self._lock:
            loop, thread = self._loop, self._thread
            if loop is None or thread is None:
                return
            if thread is threading.current_thread():
                # Dropped by code running on the private loop itself: finish, no join.
                self._loop = self._thread = None
                task = loop.create_task(self._shutdown())
                task.add_done_callback(lambda _: loop.stop())
                return
            if not loop.is_closed():
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result()
                loop.call_soon_threadsafe(loop.stop)
            thread.join()
            self._loop = self._thread = None

    async def _shutdown(self) -> None:
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
        await asyncio.get_running_loop().shutdown_asyncgens()


class AsyncMethodCall:
    """A call running in the background on its client's private event loop.

    ``client.methods.name(..., __async=True)`` and ``client.call_method_async("name",
    params)`` start one; it needs no thread of its own.

    Example::

        call = client.methods.slow_method(seconds=2, __async=True)
        ...                        # do other work meanwhile
        value = call.wait()        # block until the reply (raises the call's error)

    Attributes:
        method: The JSON-RPC method name.
        future: The underlying :class:`concurrent.futures.Future`.
        finish_order: A process-wide sequence number given when the call finished
            (``None`` while it runs): lower finished earlier.
    """

    __slots__ = ("finish_order", "future", "method")

    def __init__(self, method: str, future: concurrent.futures.Future[Any]) -> None:
        self.method = method
        self.future = future
        self.finish_order: int | None = None
        future.add_done_callback(self._record_finish)

    def _record_finish(self, _: concurrent.futures.Future[Any]) -> None:
        # itertools.count is atomic under the GIL: a process-wide finishing sequence.
        self.finish_order = next(_finish_sequence)

    def finished(self) -> bool:
        """Return whether the call has finished (with a result or an error)."""
        return self.future.done()

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the call finishes and return its result.

        Args:
            timeout: Seconds to wait at most (``None``: until the call's own timeout).

        Raises:
            TimeoutError: The call is still running after ``timeout`` seconds.
            CalledServiceError: The service answered with an error.
            GemstoneTransportError: No valid answer came.
            RuntimeError: Called in a thread that runs an event loop.
        """
        ensure_no_running_loop(f"AsyncMethodCall({self.method!r}).wait()")
        try:
            return self.future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(
                f"the call to {self.method!r} is still running after {timeout} s"
            ) from None

    def result(self, wait: bool = False) -> Any:
        """Return the result, or ``None`` if the call failed (see :meth:`error`).

        Args:
            wait: Block until the call has finished first (gemstone 0.10's
                ``result(wait=True)``); unlike :meth:`wait`, a failed call gives
                ``None`` here rather than raising.

        Raises:
            RuntimeError: The call has not finished (and ``wait`` is false), or ``wait``
                is true in a thread that runs an event loop.
        """
        if wait and not self.future.done():
            ensure_no_running_loop(f"AsyncMethodCall({self.method!r}).result(wait=True)")
            concurrent.futures.wait([self.future])
        if self.error() is not None:
            return None
        return self.future.result()

    def successful(self) -> bool:
        """Return whether the call finished with a result rather than an error.

        Raises:
            RuntimeError: The call has not finished.
        """
        return self.error() is None

    def error(self) -> BaseException | None:
        """Return the call's exception, or ``None`` if it succeeded.

        A call cut short because its client was closed gives a
        :class:`concurrent.futures.CancelledError`.

        Raises:
            RuntimeError: The call has not finished.
        """
        if not self.future.done():
            raise RuntimeError(_NOT_FINISHED.format(name=self.method))
        if self.future.cancelled():
            return concurrent.futures.CancelledError(
                f"the call to {self.method!r} was cancelled: its client was closed"
            )
        return self.future.exception()

    def __repr__(self) -> str:
        state = "finished" if self.future.done() else "running"
        return f"<AsyncMethodCall {self.method!r} {state}>"
