"""Running a service's event handlers for one delivery: decode, validate, retry, settle.

The same code settles messages of every transport, so an undecodable or invalid body
is dead-lettered at once, a failing handler is retried with backoff up to the
transport's ``max_attempts`` and then dead-lettered with the failure as the reason, and
a message is acknowledged only after every handler of its event succeeded. Deliveries
the broker counts as returned unsettled (:attr:`Delivery.previous_deliveries`) count as
attempts: a message that killed its consumer that many times is dead-lettered before any
handler runs.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pydantic_core
from pydantic import TypeAdapter, ValidationError

from ..errors import ServiceConfigurationError
from ..observability._metrics import MetricsHooks
from ..observability._tracing import start_span
from ._base import BaseEventTransport, Delivery

__all__ = ["BoundHandler", "EventDispatcher", "RunBlocking"]

RunBlocking = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class BoundHandler:
    """One event handler of a running service.

    Attributes:
        label: ``Class.method``, for log messages and dead-letter reasons.
        func: The bound method.
        is_async: ``async def`` (awaited on the loop) or plain ``def`` (run in the pool).
        adapter: Validates the JSON body against the parameter's annotation; ``None``
            when the parameter is unannotated (the handler gets any JSON value).
    """

    label: str
    func: Callable[[Any], Any]
    is_async: bool
    adapter: TypeAdapter[Any] | None

    @classmethod
    def bind(cls, owners: list[Any]) -> dict[str, list[BoundHandler]]:
        """Collect the event handlers of ``owners`` (a service and its modules), by event name."""
        found: dict[str, list[BoundHandler]] = {}
        for owner in owners:
            for event_name, attrs in type(owner).__gemstone_events__.items():
                for attr in attrs:
                    found.setdefault(event_name, []).append(cls.create(owner, attr))
        return found

    @classmethod
    def create(cls, owner: object, attr: str) -> BoundHandler:
        """Bind ``owner.attr`` and build its validator.

        Raises:
            ServiceConfigurationError: The method cannot take the body as its argument,
                or its annotation cannot be resolved.
        """
        func = getattr(owner, attr)
        label = f"{type(owner).__qualname__}.{attr}"
        params = list(inspect.signature(func).parameters.values())
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        required_rest = [
            p
            for p in params[1:]
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        if not positional or required_rest:
            raise ServiceConfigurationError(
                f"event handler {label} must take exactly one argument, the event body"
            )
        try:
            hints = typing.get_type_hints(getattr(func, "__func__", func), include_extras=True)
        except Exception as exc:
            raise ServiceConfigurationError(
                f"cannot resolve the annotations of event handler {label}: {exc}"
            ) from exc
        annotation = hints.get(positional[0].name, Any)
        adapter = None if annotation in (Any, object) else TypeAdapter(annotation)
        return cls(label, func, inspect.iscoroutinefunction(func), adapter)


class EventDispatcher:
    """Handles the deliveries of one event coming from one transport.

    Each delivery reports to ``metrics`` one ``event_handled`` outcome per attempt
    (``ok``, ``retried`` or ``dead_lettered``, with the attempt's duration) and, with a
    ``tracer``, runs in a CONSUMER span continuing the trace of the message headers.
    """

    def __init__(
        self,
        event_name: str,
        handlers: list[BoundHandler],
        transport: BaseEventTransport,
        run_blocking: RunBlocking,
        logger: logging.Logger,
        *,
        metrics: MetricsHooks | None = None,
        tracer: Any = None,
    ) -> None:
        self.event_name = event_name
        self.handlers = handlers
        self.transport = transport
        self.run_blocking = run_blocking
        self.logger = logger
        self.metrics = metrics if metrics is not None else MetricsHooks()
        self.tracer = tracer

    def __call__(self, delivery: Delivery) -> Awaitable[None]:
        """Handle ``delivery`` and settle it (ack or dead-letter): await the result."""
        # A plain function: without tracing, the transport awaits _handle() itself.
        if self.tracer is None:
            return self._handle(delivery)
        return self._handle_traced(delivery)

    async def _handle_traced(self, delivery: Delivery) -> None:
        with start_span(
            self.tracer,
            f"{self.event_name} process",
            kind="consumer",
            carrier_in=delivery.headers,
            attributes={
                "messaging.operation": "process",
                "messaging.destination.name": self.event_name,
                "gemstone.event.broadcast": delivery.broadcast,
            },
        ):
            await self._handle(delivery)

    async def _handle(self, delivery: Delivery) -> None:
        name = self.event_name
        # Deliveries that came back unsettled count as attempts (the broker counts
        # them), so a message that kills its consumer's process is given up on too.
        earlier = delivery.previous_deliveries
        if earlier >= self.transport.max_attempts:
            reason = (
                f"delivered {earlier} times without being acknowledged: the process "
                "handling it died or lost its connection each time (max_attempts is "
                f"{self.transport.max_attempts})"
            )
            self.logger.error("event %r dead-lettered: %s", name, reason)
            await delivery.dead_letter(reason, earlier)
            self.metrics.event_handled(name, "dead_lettered")
            return
        try:
            raw = delivery.body
            decoded = pydantic_core.from_json(raw)
        except ValueError as exc:  # not UTF-8, or not JSON
            reason = f"undecodable body (not UTF-8 JSON): {exc}"
            self.logger.error("event %r dead-lettered: %s", name, reason)
            await delivery.dead_letter(reason, 0)
            self.metrics.event_handled(name, "dead_lettered")
            return
        calls: list[tuple[BoundHandler, Any]] = []
        for index, handler in enumerate(self.handlers):
            try:
                if handler.adapter is not None:
                    value = handler.adapter.validate_json(raw)
                else:  # each handler gets its own copy of the decoded body
                    value = decoded if index == 0 else pydantic_core.from_json(raw)
            except ValidationError as exc:
                reason = f"invalid body for {handler.label}: {exc}"
                self.logger.error("event %r dead-lettered: %s", name, reason)
                await delivery.dead_letter(reason, 0)
                self.metrics.event_handled(name, "dead_lettered")
                return
            calls.append((handler, value))
        attempt = earlier
        while True:
            attempt += 1
            failed: list[tuple[BoundHandler, Any]] = []
            error: BaseException | None = None
            started = time.perf_counter()
            for handler, value in calls:
                try:
                    if handler.is_async:
                        await handler.func(value)
                    else:
                        await self.run_blocking(handler.func, value)
                except Exception as exc:
                    self.logger.warning(
                        "handler %s of event %r failed (attempt %d of %d): %r",
                        handler.label,
                        name,
                        attempt,
                        self.transport.max_attempts,
                        exc,
                    )
                    failed.append((handler, value))
                    error = exc
            duration = time.perf_counter() - started
            if not failed:
                await delivery.ack()
                self.metrics.event_handled(name, "ok", duration)
                return
            if attempt >= self.transport.max_attempts:
                reason = f"{failed[-1][0].label} failed {attempt} times; last error: {error!r}"
                self.logger.error("event %r dead-lettered: %s", name, reason)
                await delivery.dead_letter(reason, attempt)
                self.metrics.event_handled(name, "dead_lettered", duration)
                return
            self.metrics.event_handled(name, "retried", duration)
            await asyncio.sleep(self.transport.retry_backoff(attempt))
            calls = failed
