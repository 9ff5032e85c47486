"""Dispatching JSON-RPC requests to exposed methods: the one call path.

The router knows nothing of HTTP: it gets the body bytes and the request's
:class:`~gemstone_aio.protocol.CallContext` and returns the bytes to answer, or ``None``
when nothing is to be answered (notifications only).

Every call, whether it is a whole body, a batch element or a notification, goes
through the same two steps:

- **invoke** (:meth:`Router.invoke`): look the method up, check access (private methods,
  before params are looked at), bind the params with the method's pydantic validator,
  and run the method: ``await`` an ``async def``, ``loop.run_in_executor`` a plain
  ``def``, under the framework's time limit when there is one. Call wrappers (tracing
  spans) wrap this step; they never copy it.
- **outcome** (:meth:`Router.answer`): the result becomes the response bytes, an
  exception becomes its JSON-RPC error through the one mapping (:meth:`Router.error_for`).
  Call observers (metrics, statistics) are told the method, the duration and the code.

-32003 (:class:`~gemstone_aio.errors.MethodTimeout`) means only that a time limit of the
framework expired; a ``TimeoutError`` the method raised itself is an internal error.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import pydantic_core

from ..errors import (
    AccessDenied,
    InternalError,
    JsonRpcError,
    MethodNotFound,
    MethodTimeout,
)
from . import _jsonrpc as jsonrpc
from ._batch import BatchRunner
from ._context import CallContext
from ._decorators import MethodSpec
from ._params import ParamsBinder, binder_for

__all__ = ["BlockingRun", "CallObserver", "CallWrapper", "MethodEntry", "Router"]

BlockingRun = Callable[..., Awaitable[Any]]
"""Starts a plain function off the loop: ``run(func, *args, **kwargs)`` → awaitable."""


class CallObserver(Protocol):
    """Told about every finished call: its method, duration and error code (``None``: success)."""

    def __call__(self, method: str, duration: float, code: int | None) -> None:
        """Record one finished call."""
        ...


class CallWrapper(Protocol):
    """Runs around the invoke step of every call, known method or not (tracing spans, say).

    It gets the request and the awaitable of the invoke step and must await it exactly
    once, returning its result or letting its exception propagate.
    """

    def __call__(self, request: jsonrpc.Request, call: Awaitable[Any]) -> Awaitable[Any]:
        """Run ``call`` and return its result."""
        ...


@dataclass(slots=True)
class MethodEntry:
    """One callable method of a running service.

    Attributes:
        spec: The decorator's metadata.
        func: The bound method (or any callable) to run.
        owner: The service or module the method belongs to.
        binder: Validates params against the signature.
        is_async: Awaited on the loop when true, else run in the executor.
        semaphore: Bounds concurrent calls when ``spec.max_concurrency`` is set.
        direct: Public, no own time limit or bound, cancellable: the invoke step starts it
            with nothing around it (unless the caller or the service sets a limit).
    """

    spec: MethodSpec
    func: Callable[..., Any]
    owner: Any
    binder: ParamsBinder
    is_async: bool
    semaphore: asyncio.Semaphore | None = field(default=None)
    direct: bool = field(init=False)

    def __post_init__(self) -> None:
        spec = self.spec
        self.direct = (
            self.semaphore is None
            and spec.cancellable
            and spec.timeout is None
            and not spec.private
            and not spec.requires_handler_reference
            and not spec.receives_call_context
        )

    @classmethod
    def create(cls, spec: MethodSpec, func: Callable[..., Any], owner: Any) -> MethodEntry:
        """Build the entry, its params model included (cached per function)."""
        target = getattr(func, "__func__", func)
        return cls(
            spec=spec,
            func=func,
            owner=owner,
            binder=binder_for(
                func, skip_first=spec.requires_handler_reference or spec.receives_call_context
            ),
            is_async=inspect.iscoroutinefunction(target),
            semaphore=asyncio.Semaphore(spec.max_concurrency) if spec.max_concurrency else None,
        )


async def _ready(answer: bytes | None) -> bytes | None:
    return answer


class Router:
    """Runs requests against a fixed table of methods.

    Args:
        methods: JSON-RPC name → entry.
        run_blocking: Starts a plain function off the loop (the service's
            :class:`~gemstone_aio.protocol.BlockingRunner`'s ``run``).
        logger: Where failures and per-call DEBUG lines go.
        debug: Put the exception class and text in internal errors' ``data``.
        default_timeout: Seconds before a call is abandoned, unless its method says otherwise.
        max_batch_length: The longest batch accepted.
        max_json_depth: The deepest JSON nesting accepted.
        batch_concurrency: At most this many elements of one batch run at once.
    """

    def __init__(
        self,
        methods: Mapping[str, MethodEntry],
        *,
        run_blocking: BlockingRun,
        logger: logging.Logger,
        debug: bool = False,
        default_timeout: float | None = None,
        max_batch_length: int | None = None,
        max_json_depth: int | None = None,
        batch_concurrency: int = 16,
    ) -> None:
        self.methods = dict(methods)
        self.observers: list[CallObserver] = []
        self.call_wrappers: list[CallWrapper] = []
        self._uncancellable: set[asyncio.Future[Any]] = set()
        self._run_blocking = run_blocking
        self._logger = logger
        self._debug = debug
        self._default_timeout = default_timeout
        self._max_json_depth = max_json_depth
        self._walk_above = jsonrpc.walk_above(max_json_depth)
        self._batches = BatchRunner(
            self.answer,
            max_batch_length=max_batch_length,
            max_json_depth=max_json_depth,
            batch_concurrency=batch_concurrency,
        )

    # -- bodies ------------------------------------------------------------------------

    def handle(self, body: bytes, context: CallContext) -> Coroutine[Any, Any, bytes | None]:
        """Answer one HTTP body: await it for the bytes to send back (``None``: nothing).

        A plain function returning the coroutine of the work, so that a single call
        costs no coroutine of its own besides :meth:`answer`.
        """
        try:
            decoded: Any = pydantic_core.from_json(body, allow_inf_nan=False)
        except ValueError:
            return _ready(self._unparsable(body))
        if decoded.__class__ is list:
            return self._batches.run(decoded, len(body), context)
        if len(body) > self._walk_above:  # only bodies this large can nest too deep
            try:
                jsonrpc.check_depth(decoded, len(body), self._max_json_depth)
            except JsonRpcError as exc:
                return _ready(jsonrpc.error_answer(None, exc))
        return self.answer(jsonrpc.parse_object(decoded), context)

    @staticmethod
    def _unparsable(body: bytes) -> bytes:
        try:
            jsonrpc.parse(body)
        except JsonRpcError as exc:  # ParseError, or RequestTooLarge for deep nesting
            return jsonrpc.error_answer(None, exc)
        raise AssertionError("pydantic-core refused a body that jsonrpc.parse() accepts")

    # -- outcome -----------------------------------------------------------------------

    async def answer(
        self, request: jsonrpc.Request | jsonrpc.Invalid, context: CallContext
    ) -> bytes | None:
        """Run one request through the invoke step and return its serialised response.

        Returns ``None`` for a notification. Never raises for a failure of the call: every
        exception becomes the error to answer with.
        """
        if isinstance(request, jsonrpc.Invalid):
            return jsonrpc.error_answer(request.id, request.error)
        observers = self.observers
        debug_lines = self._logger.isEnabledFor(logging.DEBUG)
        started = time.perf_counter() if observers or debug_lines else 0.0
        code: int | None = None
        answer: bytes | None = None
        try:
            wrappers = self.call_wrappers
            if wrappers:
                call: Awaitable[Any] = self._invoke_wrapped(request.method, request.params, context)
                for wrapper in wrappers:
                    call = wrapper(request, call)
                result = await call
            else:
                result = await self.invoke(request.method, request.params, context)
        except Exception as exc:
            error = self.error_for(request.method, exc)
            code = error.code
            if request.is_notification:
                self._logger.info(
                    "notification %r failed: %s %s", request.method, error.code, error.message
                )
            else:
                answer = jsonrpc.error_answer(request.id, error)
        else:
            if not request.is_notification:
                try:
                    answer = jsonrpc.success_answer(request.id, result)
                except (pydantic_core.PydanticSerializationError, ValueError):
                    self._logger.exception(
                        "the result of %r cannot be serialised to JSON", request.method
                    )
                    code = InternalError.code
                    answer = jsonrpc.error_answer(request.id, InternalError())
        if observers or debug_lines:
            self._observe(request.method, time.perf_counter() - started, code, debug_lines)
        return answer

    def error_for(self, method: str, exc: Exception) -> JsonRpcError:
        """The one mapping of an exception to the JSON-RPC error answered for it.

        A :class:`JsonRpcError` stands as it is; anything else is logged with its
        traceback and answered as an internal error, whose ``data`` names the exception
        only when the service runs with ``debug``.
        """
        if isinstance(exc, JsonRpcError):
            return exc
        self._logger.error("%s raised", method, exc_info=exc)
        data = {"class": type(exc).__name__, "message": str(exc)} if self._debug else None
        return InternalError(data=data)

    def _observe(self, method: str, duration: float, code: int | None, debug_line: bool) -> None:
        for observer in self.observers:
            observer(method, duration, code)
        if debug_line:
            outcome = "ok" if code is None else f"error {code}"
            self._logger.debug(
                "call %s took %.2f ms: %s",
                method,
                duration * 1000,
                outcome,
                extra={
                    "rpc_method": method,
                    "duration_ms": round(duration * 1000, 3),
                    "outcome": outcome,
                },
            )

    # -- invoke ------------------------------------------------------------------------

    def invoke(
        self, method: str, params: jsonrpc.Params | None, context: CallContext
    ) -> Awaitable[Any]:
        """The invoke step: look ``method`` up, check access, bind ``params``, start it.

        Returns the awaitable of the call: for a public method with no limit, the
        method's own coroutine (or the executor's future), so the usual call costs no
        coroutine of its own; anything else goes through :meth:`_invoke_guarded`.

        Raises:
            JsonRpcError: The call was refused (unknown method, access, params, overload)
                or a time limit of the framework expired (when the awaitable is awaited).
            Exception: Whatever the method raised (when the awaitable is awaited).
        """
        entry = self.methods.get(method)
        if entry is None:
            raise MethodNotFound(data=f"no method named {method!r}")
        if entry.direct and context.deadline is None and self._default_timeout is None:
            args, kwargs = entry.binder.bind(params)
            if entry.is_async:
                return entry.func(*args, **kwargs)  # type: ignore[no-any-return]
            return self._run_blocking(entry.func, *args, **kwargs)
        return self._invoke_guarded(entry, method, params, context)

    async def _invoke_wrapped(
        self, method: str, params: jsonrpc.Params | None, context: CallContext
    ) -> Any:
        # The invoke step as one awaitable, so that call wrappers see its refusals too.
        return await self.invoke(method, params, context)

    async def _invoke_guarded(
        self, entry: MethodEntry, method: str, params: jsonrpc.Params | None, context: CallContext
    ) -> Any:
        # The rest of the invoke step: access, handler arguments, time limits, bounds.
        spec = entry.spec
        # Access before params: a caller without credentials learns nothing from them.
        if spec.private and not await context.is_authenticated():
            raise AccessDenied()
        args, kwargs = entry.binder.bind(params)
        if spec.requires_handler_reference:
            args.insert(0, context.handler)
        elif spec.receives_call_context:
            args.insert(0, context)
        timeout, limit = spec.timeout, "method"
        if timeout is None and self._default_timeout is not None:
            timeout, limit = self._default_timeout, "service"
        if context.deadline is not None:  # the caller's budget (Gemstone-Timeout)
            left = max(context.deadline - time.monotonic(), 0.0)
            if timeout is None or left < timeout:
                timeout, limit = left, "caller"
        if timeout is None and entry.semaphore is None and spec.cancellable:
            return await self._start(entry, args, kwargs)
        scope = asyncio.timeout(timeout)
        try:
            async with scope:
                if entry.semaphore is None:
                    return await self._start(entry, args, kwargs)
                async with entry.semaphore:
                    return await self._start(entry, args, kwargs)
        except TimeoutError:
            if not scope.expired():
                raise  # the method's own TimeoutError: not a limit of the framework
            self._logger.warning("%s timed out after %s s (%s limit)", method, timeout, limit)
            raise MethodTimeout(data={"timeout": timeout, "limit": limit}) from None

    def _start(self, entry: MethodEntry, args: list[Any], kwargs: dict[str, Any]) -> Awaitable[Any]:
        if entry.is_async:
            work: Awaitable[Any] = entry.func(*args, **kwargs)
        else:
            work = self._run_blocking(entry.func, *args, **kwargs)
        if entry.spec.cancellable:
            return work
        # It runs to its end whatever happens to the call: a task of its own, shielded.
        task = asyncio.ensure_future(work)
        self._uncancellable.add(task)
        task.add_done_callback(self._uncancellable_done)
        return asyncio.shield(task)

    def _uncancellable_done(self, task: asyncio.Future[Any]) -> None:
        self._uncancellable.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Its caller may be gone: the failure is logged here (and answered if not).
            self._logger.error("an uncancellable call failed", exc_info=task.exception())
