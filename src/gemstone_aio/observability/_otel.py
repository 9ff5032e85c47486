"""The OpenTelemetry side of tracing; imported only when opentelemetry-api is installed."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Iterator, Mapping, MutableMapping
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter

from .._version import __version__
from ..errors import InternalError, JsonRpcError
from ..protocol import _jsonrpc as jsonrpc
from ..protocol import current_call
from ._tracing import tracer_var

__all__ = ["ServerSpans", "extract", "get_tracer", "inject", "start_span"]

_KINDS: Final = {
    "server": trace.SpanKind.SERVER,
    "client": trace.SpanKind.CLIENT,
    "producer": trace.SpanKind.PRODUCER,
    "consumer": trace.SpanKind.CONSUMER,
    "internal": trace.SpanKind.INTERNAL,
}
UNKNOWN_METHOD: Final = "(unknown)"


class _HeaderGetter(Getter[Mapping[str, Any]]):
    """Reads HTTP headers or AMQP message headers (whose values may be bytes)."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None and not hasattr(carrier, "getall"):
            # Plain dicts (AMQP headers) are case-sensitive; propagators ask lowercase.
            lowered = key.lower()
            for name, candidate in carrier.items():
                if isinstance(name, str) and name.lower() == lowered:
                    value = candidate
                    break
        if value is None:
            return None
        if isinstance(value, bytes | bytearray):
            value = bytes(value).decode("latin-1")
        return [str(value)]

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return [str(key) for key in carrier]


_GETTER: Final = _HeaderGetter()


def get_tracer(provider: Any = None) -> trace.Tracer:
    """Return gemstone-aio's tracer from ``provider`` (the global provider when ``None``)."""
    return trace.get_tracer("gemstone_aio", __version__, tracer_provider=provider)


def inject(carrier: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Write the current trace context into ``carrier`` (``traceparent``, ...)."""
    propagate.inject(carrier)
    return carrier


def extract(carrier: Mapping[str, Any]) -> otel_context.Context:
    """Read a trace context from ``carrier`` (HTTP or AMQP headers)."""
    return propagate.extract(carrier, getter=_GETTER)


@contextlib.contextmanager
def start_span(
    tracer: trace.Tracer,
    name: str,
    *,
    kind: str,
    carrier_in: Mapping[str, Any] | None,
    carrier_out: MutableMapping[str, Any] | None,
    attributes: Mapping[str, Any] | None,
) -> Iterator[trace.Span]:
    """Start a current span; see :func:`gemstone_aio.observability.tracing.start_span`."""
    try:
        span_kind = _KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown span kind {kind!r}; expected one of {sorted(_KINDS)}") from None
    parent = extract(carrier_in) if carrier_in is not None else None
    token = tracer_var.set(tracer)
    try:
        with tracer.start_as_current_span(
            name, context=parent, kind=span_kind, attributes=dict(attributes or {})
        ) as span:
            if carrier_out is not None:
                inject(carrier_out)
            yield span
    finally:
        tracer_var.reset(token)


class ServerSpans:
    """A router call wrapper: one SERVER span per JSON-RPC call.

    The parent is the W3C trace context of the HTTP request's headers (``traceparent``,
    ``tracestate``), so a trace continues from the calling service. The span is current
    while the method runs: client calls and events it makes are its children.
    """

    def __init__(self, tracer: trace.Tracer, service_name: str, methods: Mapping[str, Any]) -> None:
        self._tracer = tracer
        self._service = service_name
        self._methods = methods

    async def __call__(self, request: jsonrpc.Request, call: Awaitable[Any]) -> Any:
        """Run ``call`` inside the call's span."""
        context = current_call.get(None)
        parent = None if context is None else extract(context.headers)
        method = request.method if request.method in self._methods else UNKNOWN_METHOD
        attributes: dict[str, Any] = {
            "rpc.system": "jsonrpc",
            "rpc.service": self._service,
            "rpc.method": request.method,
            "rpc.jsonrpc.version": "2.0",
        }
        if not request.is_notification:
            attributes["rpc.jsonrpc.request_id"] = str(request.id)
        with self._tracer.start_as_current_span(
            f"{self._service}/{method}",
            context=parent,
            kind=trace.SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            token = tracer_var.set(self._tracer)
            try:
                return await call
            except Exception as exc:
                # What the caller will be answered: the error itself, or an internal error.
                error = exc if isinstance(exc, JsonRpcError) else InternalError()
                span.set_attribute("rpc.jsonrpc.error_code", error.code)
                span.set_attribute("rpc.jsonrpc.error_message", error.message)
                span.set_status(trace.Status(trace.StatusCode.ERROR, error.message))
                raise
            finally:
                tracer_var.reset(token)
