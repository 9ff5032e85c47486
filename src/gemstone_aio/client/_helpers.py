"""Waiting on several :class:`AsyncMethodCall` objects from blocking code.

They sleep on :mod:`concurrent.futures` conditions, so an idle wait costs no CPU (the
0.10 versions spun in a loop). Inside a running event loop they refuse to block: use
``asyncio.gather`` or ``asyncio.as_completed`` on the async client there.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ._blocking import AsyncMethodCall, ensure_no_running_loop

__all__ = ["as_completed", "first_completed", "make_callbacks"]


def _futures(calls: Iterable[AsyncMethodCall], who: str) -> dict[Any, AsyncMethodCall]:
    by_future: dict[Any, AsyncMethodCall] = {}
    for call in calls:
        if not isinstance(call, AsyncMethodCall):
            raise TypeError(f"{who}() takes AsyncMethodCall objects, got {call!r}")
        by_future[call.future] = call
    return by_future


def as_completed(
    *calls: AsyncMethodCall, timeout: float | None = None
) -> Iterator[AsyncMethodCall]:
    """Yield the calls as they finish, the first finished first.

    Args:
        *calls: Calls started with ``__async=True``.
        timeout: Seconds after which the remaining calls are given up on.

    Raises:
        TimeoutError: Some calls are still running after ``timeout`` seconds.
        RuntimeError: Called in a thread that runs an event loop.
        TypeError: An argument is not an :class:`AsyncMethodCall`.
    """
    ensure_no_running_loop("as_completed()")
    by_future = _futures(calls, "as_completed")
    try:
        for future in concurrent.futures.as_completed(by_future, timeout=timeout):
            yield by_future[future]
    except concurrent.futures.TimeoutError:
        running = sorted(c.method for c in by_future.values() if not c.finished())
        raise TimeoutError(f"calls still running after {timeout} s: {running}") from None


def first_completed(*calls: AsyncMethodCall, timeout: float | None = None) -> AsyncMethodCall:
    """Block until one of the calls finishes and return it (the earliest, if several have).

    Raises:
        TimeoutError: None finished within ``timeout`` seconds.
        RuntimeError: Called in a thread that runs an event loop.
        TypeError: An argument is not an :class:`AsyncMethodCall`.
        ValueError: No calls were given.
    """
    ensure_no_running_loop("first_completed()")
    by_future = _futures(calls, "first_completed")
    if not by_future:
        raise ValueError("first_completed() needs at least one call")
    done, _ = concurrent.futures.wait(
        by_future, timeout=timeout, return_when=concurrent.futures.FIRST_COMPLETED
    )
    if not done:
        raise TimeoutError(f"none of {len(by_future)} calls finished within {timeout} s")
    finished = [by_future[future] for future in done]
    # The done-callback that numbers a call may lag its future by an instant.
    return min(finished, key=lambda c: (c.finish_order is None, c.finish_order or 0))


def make_callbacks(
    calls: Iterable[AsyncMethodCall],
    on_result: Callable[[Any], object],
    on_error: Callable[[BaseException], object],
    run_in_threads: bool = False,
) -> None:
    """Call ``on_result(result)`` or ``on_error(exception)`` for each call as it finishes.

    It blocks until every call has finished and every callback has returned.

    Args:
        calls: Calls started with ``__async=True``.
        on_result: Called with the result of each successful call.
        on_error: Called with the exception of each failed call.
        run_in_threads: Run each callback in a thread of its own, so a slow callback
            does not delay the next; they are all joined before this returns.

    Raises:
        RuntimeError: Called in a thread that runs an event loop.
    """
    threads: list[threading.Thread] = []
    try:
        for call in as_completed(*calls):
            error = call.error()
            target: Callable[[Any], object] = on_result if error is None else on_error
            argument = call.result() if error is None else error
            if run_in_threads:
                thread = threading.Thread(
                    target=target, args=(argument,), name=f"gemstone-callback-{call.method}"
                )
                thread.start()
                threads.append(thread)
            else:
                target(argument)
    finally:
        for thread in threads:
            thread.join()
