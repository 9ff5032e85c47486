"""Running a JSON-RPC batch: every element a task of its own, at most N at once, answers in order.

Each element goes through the router's one call path (``answer``) in its own
:class:`asyncio.Task`, so inside an element ``asyncio.current_task()``,
``asyncio.timeout``, ``TaskGroup`` and context variables behave exactly as in a single
call, and one element's timeout or failure touches no other element. At most
``batch_concurrency`` element tasks exist at a time; when one finishes, the next
element starts. Invalid elements are answered without a task.
"""

from __future__ import annotations

import asyncio
import functools
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

    async def run(
        self, batch: list[Any], size: int, context: CallContext, *, check_finite: bool = False
    ) -> bytes | None:
        """Answer a decoded batch (``size``: the body's length in bytes).

        Returns the JSON array of answers, or ``None`` when every element was a
        notification. A batch refused as a whole (empty, too long, too deep) is answered
        with a single error object. ``check_finite``: see :func:`~._jsonrpc.parse_object`.
        """
        try:
            requests = self._parse(batch, size, check_finite)
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

    def _parse(
        self, batch: list[Any], size: int, check_finite: bool
    ) -> list[jsonrpc.Request | jsonrpc.Invalid]:
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
        return [jsonrpc.parse_object(element, check_finite=check_finite) for element in batch]


class _Elements:
    """The element tasks of one batch: started in order, at most ``room`` at once."""

    __slots__ = ("_answer", "_answers", "_calls", "_context", "_done", "_next", "_running")

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
        self._next = min(room, len(calls))
        self._running: set[asyncio.Task[bytes | None]] = set()
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def run(self) -> None:
        for position in range(self._next):
            self._start(position)
        try:
            await self._done
        finally:
            if self._running:  # the batch itself was cancelled: so are its elements
                for task in self._running:
                    task.cancel()
                await asyncio.wait(self._running)

    def _start(self, position: int) -> None:
        index, request = self._calls[position]
        # A task copies the current context: each element gets its own copy.
        task = asyncio.get_running_loop().create_task(self._answer(request, self._context))
        self._running.add(task)
        task.add_done_callback(functools.partial(self._finished, index))

    def _finished(self, index: int, task: asyncio.Task[bytes | None]) -> None:
        self._running.discard(task)
        if self._done.done():
            return  # the batch was cancelled; the tasks are being collected
        if task.cancelled():
            self._done.cancel()
            return
        error = task.exception()
        if error is not None:  # only BaseExceptions escape the outcome step
            self._done.set_exception(error)
            return
        self._answers[index] = task.result()
        if self._next < len(self._calls):
            self._start(self._next)
            self._next += 1
        elif not self._running:
            self._done.set_result(None)
