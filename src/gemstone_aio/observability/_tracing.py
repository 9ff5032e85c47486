"""OpenTelemetry tracing (the ``tracing`` extra: opentelemetry-api and -sdk).

With ``use_tracing = True`` a service opens one SERVER span per JSON-RPC call, child of
the W3C trace context in the HTTP request's headers, and ``service.tracer`` holds its
tracer (``None`` when tracing is off). The tracer comes from the service's
``tracer_provider`` attribute, or from OpenTelemetry's global provider when that is
``None``.

The helpers below let the other parts of the framework (the client, event transports,
periodic tasks) join the trace. They take the tracer (``service.tracer``) and do
nothing when it is ``None`` or OpenTelemetry is not installed, so callers need no
checks::

    # client: a CLIENT span whose context travels in the HTTP headers
    headers: dict[str, str] = {}
    with start_span(service.tracer, "orders/create", kind="client", carrier_out=headers):
        await session.post(url, data=body, headers=headers)

    # publisher: the context travels in the AMQP message headers
    with start_span(service.tracer, "user.created publish", kind="producer",
                    carrier_out=message_headers):
        await exchange.publish(message, routing_key)

    # consumer: continue the publisher's trace
    with start_span(service.tracer, "user.created process", kind="consumer",
                    carrier_in=message.headers):
        await handler(body)

:func:`inject_context` / :func:`extract_context` are the bare carrier operations.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from ..errors import ServiceConfigurationError

__all__ = [
    "current_tracer",
    "extract_context",
    "inject_context",
    "make_tracer",
    "start_span",
    "tracing_available",
    "tracing_enabled",
]


tracer_var: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "gemstone_aio_tracer", default=None
)
"""The tracer of the span being run by the framework (``None`` outside a traced span)."""


def current_tracer() -> Any:
    """Return the tracer of the framework span that is current, or ``None``.

    Inside a traced JSON-RPC call, event handler or periodic run this is the service's
    tracer, so code that has no service at hand (the client) can open child spans.
    """
    return tracer_var.get()


def tracing_available() -> bool:
    """Return True when opentelemetry-api (the ``tracing`` extra) is installed."""
    return importlib.util.find_spec("opentelemetry.trace") is not None


def tracing_enabled(use_tracing: bool) -> bool:
    """Resolve a service's ``use_tracing`` setting.

    Raises:
        ServiceConfigurationError: Tracing is asked for and OpenTelemetry is missing,
            or the value is not a bool.
    """
    if not isinstance(use_tracing, bool):
        raise ServiceConfigurationError(f"use_tracing must be True or False, got {use_tracing!r}")
    if use_tracing and not tracing_available():
        raise ServiceConfigurationError(
            "use_tracing = True needs OpenTelemetry: "
            "install the 'tracing' extra (pip install 'gemstone-aio[tracing]')"
        )
    return use_tracing


def make_tracer(provider: Any = None) -> Any:
    """Return gemstone-aio's OpenTelemetry tracer from ``provider`` (or the global one)."""
    from ._otel import get_tracer

    return get_tracer(provider)


def inject_context(carrier: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Write the current trace context into ``carrier`` (outgoing HTTP or AMQP headers).

    Returns ``carrier``; unchanged when OpenTelemetry is not installed.
    """
    if not tracing_available():
        return carrier
    from ._otel import inject

    return inject(carrier)


def extract_context(carrier: Mapping[str, Any]) -> Any:
    """Return the trace context found in ``carrier`` (incoming HTTP or AMQP headers).

    The result is an OpenTelemetry ``Context`` (``None`` when OpenTelemetry is not
    installed), to pass as ``context=`` when starting a span.
    """
    if not tracing_available():
        return None
    from ._otel import extract

    return extract(carrier)


@contextlib.contextmanager
def start_span(
    tracer: Any,
    name: str,
    *,
    kind: str = "internal",
    carrier_in: Mapping[str, Any] | None = None,
    carrier_out: MutableMapping[str, Any] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Any]:
    """Run the block inside a new current span (nothing when ``tracer`` is ``None``).

    Args:
        tracer: ``service.tracer``: an OpenTelemetry tracer, or ``None`` for no tracing.
        name: The span name (``"<service>/<method>"`` for calls, ``"<event> publish"``,
            ``"<event> process"``).
        kind: ``"client"``, ``"server"``, ``"producer"``, ``"consumer"`` or ``"internal"``.
        carrier_in: Headers of an incoming message: the span continues their trace.
        carrier_out: Headers of an outgoing message: the span's context is written into
            them, so the receiver continues this trace.
        attributes: Span attributes.

    Yields:
        The span (``None`` when not tracing). An exception leaving the block is recorded
        on the span and sets its status to error.

    Raises:
        ValueError: ``kind`` is not one of the names above.
    """
    if tracer is None:
        yield None
        return
    from ._otel import start_span as otel_start_span

    with otel_start_span(
        tracer,
        name,
        kind=kind,
        carrier_in=carrier_in,
        carrier_out=carrier_out,
        attributes=attributes,
    ) as span:
        yield span
