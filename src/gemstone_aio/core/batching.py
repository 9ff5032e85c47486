"""Running a JSON-RPC batch: every element on its own, at most N at once, answers in order.

Most batch elements are calls of ``async def`` methods that never wait for anything
(they compute and return). Giving each a task costs more than the call itself, so
elements are started eagerly: the batch runs each element's coroutine until it first
waits; one that finishes there is answered at once, one that waits goes on in a task
of its own. At most ``batch_concurrency`` elements are waiting at any moment; the next
one starts when one of them is done. (Python 3.12's eager tasks do the same for a whole
loop; this is the same idea for one batch, on 3.11.)

The usual element (a ``"jsonrpc": "2.0"`` object of four members, a str method, params
by name and a str or int id, calling a public method with no limits, nobody observing
calls) is checked in a few steps and never becomes a :class:`~.jsonrpc.Request`;
anything else goes through the router's ``answer()``. Both give the same answers.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine, Generator, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import InvalidRequest, JsonRpcError, RequestTooLarge
from . import jsonrpc
from .jsonrpc import PLAIN_ID_TYPES, nests_deeper

if TYPE_CHECKING:
    from .router import CallContext, MethodEntry

__all__ = ["BatchRunner"]

# A planned element: a usual call (entry, params, id, method) or what jsonrpc made of it.
_Usual = tuple["MethodEntry", dict[str, Any], "str | int", str]
_Planned = _Usual | jsonrpc.Request | jsonrpc.Invalid


class _Resumed:
    """Awaitable that goes on with a coroutine which already ran up to its first wait.

    ``first`` is what the coroutine yielded then (a future it waits for, or ``None`` for
    a bare yield): it is handed to the task running this awaitable, and from then on
    every value sent or thrown in is passed through to the coroutine.
    """

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self._coro = coro
        self._first = first

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, value = self._coro, self._first
        while True:
            try:
                sent = yield value
            except BaseException as exc:  # cancellation, or a future's exception
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _finish(coro: Coroutine[Any, Any, bytes | None], first: Any) -> bytes | None:
    return await _Resumed(coro, first)  # type: ignore[no-any-return]


class BatchRunner:
    """Runs the batches of one router.

    Args:
        methods: The router's table of methods (shared, not copied).
        answer: Answers one parsed request as the router does (any kind of element).
        start: Binds the params of a usual call and returns its method's coroutine
            (raising InvalidParams when they do not fit).
        success: Serialises the answer of a call that succeeded (an internal error when
            its result has no JSON form).
        internal_error: Logs an exception a method raised and returns the error to answer.
        uses_short_path: Whether usual elements may skip ``answer`` (nobody observes
            calls, no default timeout); asked once per batch.
        max_batch_length: The longest batch accepted.
        max_json_depth: The deepest JSON nesting accepted.
        batch_concurrency: At most this many elements of one batch wait at once.
    """

    def __init__(
        self,
        methods: Mapping[str, MethodEntry],
        *,
        answer: Callable[
            [jsonrpc.Request | jsonrpc.Invalid, CallContext], Coroutine[Any, Any, bytes | None]
        ],
        start: Callable[[MethodEntry, dict[str, Any]], Any],
        success: Callable[[str | int, Any, str], bytes],
        internal_error: Callable[[str, Exception], JsonRpcError],
        uses_short_path: Callable[[], bool],
        max_batch_length: int | None,
        max_json_depth: int | None,
        batch_concurrency: int,
    ) -> None:
        self._methods = methods
        self._answer = answer
        self._start = start
        self._success = success
        self._internal_error = internal_error
        self._uses_short_path = uses_short_path
        self._max_batch_length = max_batch_length
        self._max_json_depth = max_json_depth
        self._room = max(batch_concurrency, 1)

    async def run(self, batch: list[Any], size: int, context: CallContext) -> bytes | None:
        """Answer a decoded batch (``size``: the body's length in bytes).

        Returns the JSON array of answers, or ``None`` when every element was a
        notification.

        Raises:
            JsonRpcError: The batch as a whole is refused: empty, too long or too deep
                (answered with a single error object).
        """
        if not batch:
            raise InvalidRequest(data="an empty batch is not a request")
        limit = self._max_batch_length
        if limit is not None and len(batch) > limit:
            raise RequestTooLarge(
                data=f"batch of {len(batch)} requests exceeds the limit of {limit}"
            )
        plan = self._plan(batch, jsonrpc.depth_to_check(size, self._max_json_depth))
        answers: list[bytes | None] = [None] * len(plan)
        waiting: dict[asyncio.Future[bytes | None], int] = {}
        loop = asyncio.get_running_loop()
        try:
            for index, item in enumerate(plan):
                if item.__class__ is jsonrpc.Invalid:
                    answers[index] = jsonrpc.dumps(jsonrpc.error_response(item.id, item.error))
                    continue
                if len(waiting) >= self._room:
                    await _collect(waiting, answers, asyncio.FIRST_COMPLETED)
                # Each element runs in a context of its own, as a task would: context
                # variables one sets are not seen by the next, and a token set before
                # the first wait can be reset after it.
                element_context = contextvars.copy_context()
                rest: Coroutine[Any, Any, bytes | None] | None
                if item.__class__ is tuple:
                    rest = element_context.run(self._start_usual, item, answers, index)
                else:
                    general = self._answer(item, context)  # type: ignore[arg-type]
                    rest = element_context.run(_start, general, answers, index)
                if rest is not None:
                    waiting[loop.create_task(rest, context=element_context)] = index
            if waiting:
                await _collect(waiting, answers, asyncio.ALL_COMPLETED)
        finally:
            for task in waiting:  # left behind only when the batch itself failed or was cancelled
                task.cancel()
        parts = [answer for answer in answers if answer is not None]
        return b"[" + b",".join(parts) + b"]" if parts else None

    def _plan(self, batch: list[Any], check_depth: int | None) -> list[_Planned]:
        # Classify every element before any runs: a too-deep element refuses the whole
        # body. Levels: the batch is 1, an element 2, its params 3.
        if check_depth is not None and check_depth < 1:
            raise jsonrpc.too_deep(check_depth)
        methods = self._methods
        usual_ok = self._uses_short_path()
        plan: list[_Planned] = []
        for element in batch:
            if usual_ok and element.__class__ is dict and len(element) == 4:
                method = element.get("method")
                entry = methods.get(method) if method.__class__ is str else None
                params = element.get("params")
                id = element.get("id")
                if (
                    entry is not None
                    and entry.direct
                    and entry.is_async
                    and params.__class__ is dict
                    and id.__class__ in PLAIN_ID_TYPES
                    and element.get("jsonrpc") == "2.0"
                ):
                    if check_depth is not None and nests_deeper(params, check_depth - 3):
                        raise jsonrpc.too_deep(check_depth)
                    plan.append((entry, params, id, method))  # type: ignore[arg-type]
                    continue
            if (
                check_depth is not None
                and (element.__class__ is dict or element.__class__ is list)
                and nests_deeper(element, check_depth - 2)
            ):
                raise jsonrpc.too_deep(check_depth)
            plan.append(jsonrpc.parse_object(element))
        return plan

    def _start_usual(
        self, item: _Usual, answers: list[bytes | None], index: int
    ) -> Coroutine[Any, Any, bytes] | None:
        # Run a usual call up to its first wait: answer it if it finished, else return
        # the coroutine that finishes it.
        entry, params, id, method = item
        try:
            coro = self._start(entry, params)
            first = coro.send(None)
        except StopIteration as stop:
            answers[index] = self._success(id, stop.value, method)
            return None
        except JsonRpcError as exc:
            answers[index] = jsonrpc.dumps(jsonrpc.error_response(id, exc))
            return None
        except Exception as exc:
            error = self._internal_error(method, exc)
            answers[index] = jsonrpc.dumps(jsonrpc.error_response(id, error))
            return None
        return self._finish_usual(coro, first, id, method)

    async def _finish_usual(
        self, coro: Coroutine[Any, Any, Any], first: Any, id: str | int, method: str
    ) -> bytes:
        try:
            result = await _Resumed(coro, first)
        except JsonRpcError as exc:
            return jsonrpc.dumps(jsonrpc.error_response(id, exc))
        except Exception as exc:
            return jsonrpc.dumps(jsonrpc.error_response(id, self._internal_error(method, exc)))
        return self._success(id, result, method)


def _start(
    coro: Coroutine[Any, Any, bytes | None], answers: list[bytes | None], index: int
) -> Coroutine[Any, Any, bytes | None] | None:
    # The same for any other element, through the router's answer().
    try:
        first = coro.send(None)
    except StopIteration as stop:
        answers[index] = stop.value
        return None
    return _finish(coro, first)


async def _collect(
    waiting: dict[asyncio.Future[bytes | None], int],
    answers: list[bytes | None],
    return_when: str,
) -> None:
    done, _ = await asyncio.wait(waiting, return_when=return_when)
    for task in done:
        answers[waiting.pop(task)] = task.result()
