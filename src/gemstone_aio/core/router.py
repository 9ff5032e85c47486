"""Dispatching JSON-RPC requests to exposed methods.

The router knows nothing of HTTP: it gets the body bytes and a :class:`CallContext`
(which answers "is the caller authenticated?" and builds the handler object for
``requires_handler_reference`` methods) and returns the bytes to answer, or ``None``
when nothing is to be answered (notifications).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import pydantic
import pydantic_core

from ..errors import (
    AccessDenied,
    InternalError,
    JsonRpcError,
    MethodNotFound,
    MethodTimeout,
)
from . import jsonrpc
from .batching import BatchRunner
from .decorators import MethodSpec
from .jsonrpc import nesting_exceeds
from .params import ParamsBinder, binder_for

__all__ = ["CallContext", "CallObserver", "CallWrapper", "MethodEntry", "Router"]

BlockingRunner = Callable[..., Awaitable[Any]]


class CallContext(Protocol):
    """What the router needs to know about the caller of one HTTP request."""

    async def is_authenticated(self) -> bool:
        """Return True when the caller may call private methods (computed once per request)."""
        ...

    def handler_reference(self) -> Any:
        """Return the object given to ``requires_handler_reference`` methods."""
        ...


class CallObserver(Protocol):
    """Told about every finished call: its method, duration and error code (``None``: success)."""

    def __call__(self, method: str, duration: float, code: int | None) -> None:
        """Record one finished call."""
        ...


class CallWrapper(Protocol):
    """Runs around every call of a known or unknown method (tracing spans, say).

    It gets the request and the awaitable of the call and must await it exactly once,
    returning its result or letting its :class:`JsonRpcError` propagate.
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
        is_async: Awaited on the loop when true, else run in the thread pool.
        semaphore: Bounds concurrent calls when ``spec.max_concurrency`` is set.
        direct: A public method with no handler argument, timeout or bound: the router
            may run it with nothing around it (an ``async def`` awaited, a ``def`` in
            the pool).
        validate_named: The binder's validator of params by name, for a signature of
            named parameters only (else ``None``).
    """

    spec: MethodSpec
    func: Callable[..., Any]
    owner: Any
    binder: ParamsBinder
    is_async: bool
    semaphore: asyncio.Semaphore | None = field(default=None)
    direct: bool = field(init=False)
    validate_named: Callable[[Any], dict[str, Any]] | None = field(init=False)

    def __post_init__(self) -> None:
        self.validate_named = self.binder.validate_named
        spec = self.spec
        self.direct = (
            self.semaphore is None
            and not spec.private
            and not spec.requires_handler_reference
            and not spec.receives_call_context
            and spec.timeout is None
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


class Router:
    """Runs requests against a fixed table of methods.

    Args:
        methods: JSON-RPC name → entry.
        run_blocking: Runs a plain function off the loop (the service's pool).
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
        run_blocking: BlockingRunner,
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
        self._run_blocking = run_blocking
        self._logger = logger
        self._debug = debug
        self._default_timeout = default_timeout
        self._max_batch_length = max_batch_length
        self._max_json_depth = max_json_depth
        self._batches = BatchRunner(
            self.methods,
            answer=self.answer,
            start=self._start_direct,
            success=self._success,
            internal_error=self._internal_error,
            uses_short_path=self._uses_short_path,
            max_batch_length=max_batch_length,
            max_json_depth=max_json_depth,
            batch_concurrency=batch_concurrency,
        )

    def handle(self, body: bytes, context: CallContext) -> Awaitable[bytes | None]:
        """Answer one HTTP body: await it for the bytes to send back (``None``: nothing).

        It is a plain function returning the coroutine that does the work, so that the
        usual call costs one coroutine less.
        """
        try:
            decoded: Any = pydantic_core.from_json(body, allow_inf_nan=False)
        except ValueError:
            return self._handle_unparsable(body)
        # The usual request takes a short path, checked in a few steps instead of
        # jsonrpc.parse_value()'s many: a "jsonrpc": "2.0" object of exactly four
        # members, a str method, params by name and a str or int id, for a public method
        # with no limits, with no call wrappers and no DEBUG lines (observers are told
        # here too). Anything else takes the general path, which gives the same answers.
        if decoded.__class__ is dict and len(decoded) == 4:
            method = decoded.get("method")
            entry = self.methods.get(method) if method.__class__ is str else None
            params = decoded.get("params")
            id = decoded.get("id")
            if (
                entry is not None
                and entry.direct
                and params.__class__ is dict
                and id.__class__ in jsonrpc.PLAIN_ID_TYPES
                and decoded.get("jsonrpc") == "2.0"
                and self._default_timeout is None
                and not self.call_wrappers
                and not self._logger.isEnabledFor(logging.DEBUG)
                and (
                    (limit := jsonrpc.depth_to_check(len(body), self._max_json_depth)) is None
                    or not nesting_exceeds(decoded, limit)
                )
            ):
                return self._run_direct(entry, params, id, method)  # type: ignore[arg-type]
        return self._handle_decoded(decoded, len(body), context)

    async def _handle_unparsable(self, body: bytes) -> bytes:
        try:
            jsonrpc.parse(body)
        except JsonRpcError as exc:  # ParseError, or RequestTooLarge for deep nesting
            return jsonrpc.dumps(jsonrpc.error_response(None, exc))
        raise AssertionError("pydantic-core refused a body that jsonrpc.parse() accepts")

    async def _handle_decoded(self, decoded: Any, size: int, context: CallContext) -> bytes | None:
        try:
            if decoded.__class__ is list:
                return await self._batches.run(decoded, size, context)
            jsonrpc.check_depth(decoded, size, self._max_json_depth)
        except JsonRpcError as exc:
            return jsonrpc.dumps(jsonrpc.error_response(None, exc))
        return await self.answer(jsonrpc.parse_object(decoded), context)

    async def _run_direct(
        self, entry: MethodEntry, params: dict[str, Any], id: str | int, method: str
    ) -> bytes | None:
        observers = self.observers
        started = time.perf_counter() if observers else 0.0
        code: int | None = None  # what observers are told, as answer() tells them
        try:
            try:
                result = await self._start_direct(entry, params)
            except JsonRpcError as exc:
                code = exc.code
                return jsonrpc.dumps(jsonrpc.error_response(id, exc))
            except Exception as exc:
                error = self._internal_error(method, exc)
                code = error.code
                return jsonrpc.dumps(jsonrpc.error_response(id, error))
            try:
                return pydantic_core.to_json({"jsonrpc": "2.0", "result": result, "id": id})
            except pydantic_core.PydanticSerializationError:
                self._logger.exception("the result of %r cannot be serialised to JSON", method)
                code = InternalError.code
                return jsonrpc.dumps(jsonrpc.error_response(id, InternalError()))
        finally:
            if observers:
                duration = time.perf_counter() - started
                for observer in observers:
                    observer(method, duration, code)

    def _start_direct(self, entry: MethodEntry, params: jsonrpc.Params | None) -> Awaitable[Any]:
        # Bind the params (InvalidParams when they do not fit) and start a ``direct``
        # method: the coroutine of an ``async def``, the pool's run of a ``def``.
        validate = entry.validate_named
        if validate is not None and params.__class__ is dict:
            # Params by name for named parameters: the validator alone, no bind() layer.
            try:
                kwargs = validate(params)
            except pydantic.ValidationError:
                pass  # bind() below raises the InvalidParams to answer with
            else:
                if entry.is_async:
                    return entry.func(**kwargs)  # type: ignore[no-any-return]
                return self._run_blocking(entry.func, **kwargs)
        args, kwargs = entry.binder.bind(params)
        if entry.is_async:
            return entry.func(*args, **kwargs)  # type: ignore[no-any-return]
        return self._run_blocking(entry.func, *args, **kwargs)

    async def answer(
        self, request: jsonrpc.Request | jsonrpc.Invalid, context: CallContext
    ) -> bytes | None:
        """Run one request and return its serialised response (``None`` for a notification)."""
        if isinstance(request, jsonrpc.Invalid):
            return jsonrpc.dumps(jsonrpc.error_response(request.id, request.error))
        if not self._instrumented():
            return await self._answer_plain(request, context)
        started = time.perf_counter()
        code: int | None = None
        try:
            if self.call_wrappers:
                call: Awaitable[Any] = self.call(request, context)
                for wrapper in self.call_wrappers:
                    call = wrapper(request, call)
                result = await call
            else:
                result = await self.call(request, context)
            if request.is_notification:
                return None
            try:
                return jsonrpc.dumps(jsonrpc.success_response(request.id, result))
            except pydantic_core.PydanticSerializationError:
                self._logger.exception(
                    "the result of %r cannot be serialised to JSON", request.method
                )
                code = InternalError.code
                return jsonrpc.dumps(jsonrpc.error_response(request.id, InternalError()))
        except JsonRpcError as exc:
            code = exc.code
            if request.is_notification:
                self._logger.info(
                    "notification %r failed: %s %s", request.method, exc.code, exc.message
                )
                return None
            return jsonrpc.dumps(jsonrpc.error_response(request.id, exc))
        finally:
            duration = time.perf_counter() - started
            if self.observers:
                for observer in self.observers:
                    observer(request.method, duration, code)
            if self._logger.isEnabledFor(logging.DEBUG):
                outcome = "ok" if code is None else f"error {code}"
                self._logger.debug(
                    "call %s took %.2f ms: %s",
                    request.method,
                    duration * 1000,
                    outcome,
                    extra={
                        "rpc_method": request.method,
                        "duration_ms": round(duration * 1000, 3),
                        "outcome": outcome,
                    },
                )

    def _uses_short_path(self) -> bool:
        # Whether usual calls may skip answer(): no default timeout, nobody observing.
        return self._default_timeout is None and not self._instrumented()

    def _instrumented(self) -> bool:
        # Timing only when something reads it: observers, call wrappers or DEBUG lines.
        return (
            bool(self.observers)
            or bool(self.call_wrappers)
            or self._logger.isEnabledFor(logging.DEBUG)
        )

    async def _answer_plain(self, request: jsonrpc.Request, context: CallContext) -> bytes | None:
        # answer() without the clock, for routers nobody observes: the same replies.
        # The usual call (a public method with no limits) runs right here, one
        # coroutine fewer; anything else goes through call().
        try:
            entry = self.methods.get(request.method)
            if entry is not None and entry.direct and self._default_timeout is None:
                try:
                    result = await self._start_direct(entry, request.params)
                except JsonRpcError:
                    raise
                except Exception as exc:
                    raise self._internal_error(request.method, exc) from None
            else:
                result = await self.call(request, context)
        except JsonRpcError as exc:
            if request.is_notification:
                self._logger.info(
                    "notification %r failed: %s %s", request.method, exc.code, exc.message
                )
                return None
            return jsonrpc.dumps(jsonrpc.error_response(request.id, exc))
        if request.is_notification:
            return None
        return self._success(request.id, result, request.method)

    def _success(self, id: jsonrpc.Id, result: Any, method: str) -> bytes:
        # The answer of a call that succeeded, or an internal error (logged) when its
        # result has no JSON form. jsonrpc.dumps(jsonrpc.success_response(...)), inlined.
        try:
            return pydantic_core.to_json({"jsonrpc": "2.0", "result": result, "id": id})
        except pydantic_core.PydanticSerializationError:
            self._logger.exception("the result of %r cannot be serialised to JSON", method)
            return jsonrpc.dumps(jsonrpc.error_response(id, InternalError()))

    async def call(self, request: jsonrpc.Request, context: CallContext) -> Any:
        """Look the method up, check access, bind params and run it.

        Raises:
            JsonRpcError: Any failure, already mapped to the error to answer with.
        """
        entry = self.methods.get(request.method)
        if entry is None:
            raise MethodNotFound(data=f"no method named {request.method!r}")
        # Access before params: a caller without credentials learns nothing from them.
        spec = entry.spec
        if spec.private and not await context.is_authenticated():
            raise AccessDenied()
        args, kwargs = entry.binder.bind(request.params)
        if spec.requires_handler_reference:
            args.insert(0, context.handler_reference())
        elif spec.receives_call_context:
            args.insert(0, context)
        timeout = spec.timeout or self._default_timeout
        try:
            if entry.semaphore is None:
                if timeout is None and entry.is_async:
                    return await entry.func(*args, **kwargs)
                return await self._run(entry, args, kwargs, timeout)
            async with entry.semaphore:
                return await self._run(entry, args, kwargs, timeout)
        except JsonRpcError:
            raise
        except TimeoutError:
            self._logger.warning("%s timed out after %s s", request.method, timeout)
            raise MethodTimeout(data={"timeout": timeout}) from None
        except Exception as exc:
            raise self._internal_error(request.method, exc) from None

    def _internal_error(self, method: str, exc: Exception) -> InternalError:
        # Logged here with its traceback (we are inside the except block); the caller
        # learns nothing of it unless the service runs with ``debug``.
        self._logger.exception("%s raised", method)
        data = {"class": type(exc).__name__, "message": str(exc)} if self._debug else None
        return InternalError(data=data)

    async def _run(
        self, entry: MethodEntry, args: list[Any], kwargs: dict[str, Any], timeout: float | None
    ) -> Any:
        if entry.is_async:
            awaitable = entry.func(*args, **kwargs)
        else:
            awaitable = self._run_blocking(entry.func, *args, **kwargs)
        if timeout is None:
            return await awaitable
        async with asyncio.timeout(timeout):
            return await awaitable
