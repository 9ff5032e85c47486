"""Running a JSON-RPC batch: every element a task of its own, at most N at once, answers in order.

Each element goes through the router's one call path (``answer``) in its own
:class:`asyncio.Task`, so inside an element ``asyncio.current_task()``,
``asyncio.timeout``, ``TaskGroup`` and context variables behave exactly as in a single
call, and one element's timeout or failure touches no other element. At most
``batch_concurrency`` element tasks exist at a time; when one finishes, the next
element starts. Invalid elements are answered without a task.

On Python 3.12 and later the element tasks start eagerly (``eager_start``): an element
runs at once, inside its own task, until it first waits, and one that never waits is
done without being scheduled at all. It is the same task either way; only the cost of
starting it differs (on Python 3.11 every element waits for the loop's next turn).
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from ..errors import InvalidRequest, RequestTooLarge
from . import _jsonrpc as jsonrpc
from ._context import CallContext

__all__ = ["BatchRunner"]

Answer = Callable[
    [jsonrpc.Request | jsonrpc.Invalid, CallContext], Coroutine[Any, Any, bytes | None]
]


class BatchRunner:
    """Runs the batches of one router.

    Args:
        answer: The router's outcome step for one parsed request (never raises for a
            failed call).
        max_batch_length: The longest batch accepted.
        max_json_depth: The deepest JSON nesting accepted.
        batch_concurrency: At most this many elements of one batch run at once.
    """

    def __init__(
        self,
        answer: Answer,
        *,
        max_batch_length: int | None,
        max_json_depth: int | None,
        batch_concurrency: int,
    ) -> None:
        self._answer = answer
        self._max_batch_length = max_batch_length
        self._max_json_depth = max_json_depth
        self._room = max(batch_concurrency, 1)

    async def run(self, batch: list[Any], size: int, context: CallContext) -> bytes | None:
        """Answer a decoded batch (``size``: the body's length in bytes).

        Returns the JSON array of answers, or ``None`` when every element was a
        notification. A batch refused as a whole (empty, too long, too deep) is answered
        with a single error object.
        """
        try:
            requests = self._parse(batch, size)
        except (InvalidRequest, RequestTooLarge) as exc:
            return jsonrpc.error_answer(None, exc)
        answers: list[bytes | None] = [None] * len(requests)
        calls: list[tuple[int, jsonrpc.Request]] = []
        for index, request in enumerate(requests):
            if isinstance(request, jsonrpc.Invalid):
                answers[index] = jsonrpc.error_answer(request.id, request.error)
            else:
                calls.append((index, request))
        if calls:
            await _Elements(self._answer, context, calls, answers, self._room).run()
        parts = [answer for answer in answers if answer is not None]
        return b"[" + b",".join(parts) + b"]" if parts else None

    def _parse(self, batch: list[Any], size: int) -> list[jsonrpc.Request | jsonrpc.Invalid]:
        # Every element is classified before any runs: a too-deep element refuses the
        # whole body. Levels: the batch is 1, an element 2.
        if not batch:
            raise InvalidRequest(data="an empty batch is not a request")
        limit = self._max_batch_length
        if limit is not None and len(batch) > limit:
            raise RequestTooLarge(
                data=f"batch of {len(batch)} requests exceeds the limit of {limit}"
            )
        depth = jsonrpc.depth_to_check(size, self._max_json_depth)
        if depth is not None:
            if depth < 1:
                raise jsonrpc.too_deep(depth)
            for element in batch:
                if (element.__class__ is dict or element.__class__ is list) and (
                    jsonrpc.nests_deeper(element, depth - 2)
                ):
                    raise jsonrpc.too_deep(depth)
        return [jsonrpc.parse_object(element) for element in batch]


class _Elements:
    """The element tasks of one batch: started in order, at most ``room`` at once.

    Each element's task stores its answer and starts the next elements itself when it
    ends (no done callback to schedule); the last one to end resolves the batch. One
    loop starts elements (:meth:`_fill`): an element that ends while it runs (started
    eagerly and done at once) leaves the starting to it, so nothing recurses.
    """

    __slots__ = (
        "_active",
        "_answer",
        "_answers",
        "_base",
        "_calls",
        "_context",
        "_done",
        "_eager",
        "_filling",
        "_loop",
        "_next",
        "_room",
        "_tasks",
    )

    def __init__(
        self,
        answer: Answer,
        context: CallContext,
        calls: list[tuple[int, jsonrpc.Request]],
        answers: list[bytes | None],
        room: int,
    ) -> None:
        self._answer = answer
        self._context = context
        self._calls = calls
        self._answers = answers
        self._room = room
        self._next = 0  # the position of the next element to start
        self._active = 0
        self._filling = False
        self._tasks: list[asyncio.Task[None]] = []
        self._loop = loop = asyncio.get_running_loop()
        # Eager tasks (Python 3.12+) unless the application makes its own tasks.
        self._eager = sys.version_info >= (3, 12) and loop.get_task_factory() is None
        self._done: asyncio.Future[None] = self._loop.create_future()
        self._base = contextvars.copy_context()  # the batch's: each element gets a copy

    async def run(self) -> None:
        try:
            self._fill()  # eager elements may end (or fail) in here
            await self._done
        finally:
            running = [task for task in self._tasks if not task.done()]
            if running:  # the batch itself was cancelled or failed: so are its elements
                for task in running:
                    task.cancel()
                await asyncio.wait(running)

    def _fill(self) -> None:
        # Start elements while there is room. Called again from inside (an eager element
        # that ended at once), it returns: the loop on the stack goes on.
        if self._filling:
            return
        calls, base, done, loop = self._calls, self._base, self._done, self._loop
        self._filling = True
        try:
            # An element that failed the batch in its eager start stops the starting.
            while self._next < len(calls) and self._active < self._room and not done.done():
                index, request = calls[self._next]
                self._next += 1
                self._active += 1
                # Started by an earlier element's task too: the copy is of the batch's
                # context, never of that element's.
                coro, context = self._element(index, request), base.copy()
                if sys.version_info >= (3, 12) and self._eager:
                    # Runs its first step now, as the task itself (current_task() is it).
                    task = asyncio.Task(coro, loop=loop, context=context, eager_start=True)
                else:
                    task = loop.create_task(coro, context=context)
                self._tasks.append(task)
        finally:
            self._filling = False
        if self._active == 0 and not done.done():
            done.set_result(None)  # every element has ended

    async def _element(self, index: int, request: jsonrpc.Request) -> None:
        done = self._done
        try:
            self._answers[index] = await self._answer(request, self._context)
        except BaseException as exc:  # only cancellation and the like escape the outcome step
            if not done.done():
                if isinstance(exc, asyncio.CancelledError):
                    done.cancel()
                else:
                    done.set_exception(exc)
            raise
        finally:
            self._active -= 1
        if done.done():
            return  # the batch was cancelled or failed; its tasks are being collected
        self._fill()
