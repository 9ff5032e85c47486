"""OpenTelemetry server spans and the propagation helpers, via the in-memory exporter."""

from __future__ import annotations

import sys
import uuid
from typing import Any

import aiohttp
import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from pytest_aiohttp import AiohttpClient

import gemstone_aio as gemstone
from gemstone_aio.errors import ServiceConfigurationError
from gemstone_aio.observability import extract_context, inject_context, start_span
from gemstone_aio.testing import serving
from tests.fixtures.observability import SpanRecorder

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


class Traced(gemstone.MicroService):
    name = "traced"
    use_tracing = True
    use_metrics = False

    @gemstone.exposed_method()
    async def add(self, a: int, b: int) -> int:
        return a + b

    @gemstone.exposed_method()
    def blocking_add(self, a: int, b: int) -> int:
        return a + b

    @gemstone.exposed_method()
    async def fail(self) -> None:
        raise ValueError("boom")

    @gemstone.exposed_method()
    async def publish(self) -> dict[str, Any]:
        headers: dict[str, Any] = {}
        with start_span(self.tracer, "thing.done publish", kind="producer", carrier_out=headers):
            pass
        return headers


def _service(recorder: SpanRecorder, cls: type[gemstone.MicroService] = Traced) -> Any:
    service = cls()
    service.tracer_provider = recorder.provider
    return service


def _rpc(method: str, params: Any = None, id_: Any = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    if id_ is not None:
        message["id"] = id_
    return message


async def test_server_span_continues_the_callers_trace(
    aiohttp_client: AiohttpClient, span_recorder: SpanRecorder
) -> None:
    client = await aiohttp_client(_service(span_recorder).make_app())
    response = await client.post(
        "/api", json=_rpc("add", [1, 2], "req-9"), headers={"traceparent": TRACEPARENT}
    )
    assert (await response.json())["result"] == 3
    (span,) = span_recorder.exporter.get_finished_spans()
    assert span.name == "traced/add"
    assert span.kind is SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT_ID
    assert span.parent.is_remote
    assert dict(span.attributes or {}) == {
        "rpc.system": "jsonrpc",
        "rpc.service": "traced",
        "rpc.method": "add",
        "rpc.jsonrpc.version": "2.0",
        "rpc.jsonrpc.request_id": "req-9",
    }
    assert span.status.status_code is StatusCode.UNSET


async def test_errors_mark_the_span(
    aiohttp_client: AiohttpClient, span_recorder: SpanRecorder
) -> None:
    client = await aiohttp_client(_service(span_recorder).make_app())
    await client.post("/api", json=_rpc("fail"))
    await client.post("/api", json=_rpc("made_up_name"))
    await client.post("/api", json=_rpc("add", ["x", 1]))
    fail, unknown, invalid = span_recorder.exporter.get_finished_spans()
    assert fail.parent is None  # no traceparent: a new trace
    assert fail.status.status_code is StatusCode.ERROR
    assert fail.attributes is not None
    assert fail.attributes["rpc.jsonrpc.error_code"] == -32603
    assert unknown.name == "traced/(unknown)"
    assert unknown.attributes is not None
    assert unknown.attributes["rpc.method"] == "made_up_name"
    assert unknown.attributes["rpc.jsonrpc.error_code"] == -32601
    assert invalid.attributes is not None
    assert invalid.attributes["rpc.jsonrpc.error_code"] == -32602


async def test_one_span_per_batch_element_and_notifications(
    aiohttp_client: AiohttpClient, span_recorder: SpanRecorder
) -> None:
    client = await aiohttp_client(_service(span_recorder).make_app())
    batch = [_rpc("add", [1, 1], 1), _rpc("blocking_add", [2, 2], 2), _rpc("add", [3, 3], None)]
    response = await client.post("/api", json=batch, headers={"traceparent": TRACEPARENT})
    assert sorted(item["result"] for item in await response.json()) == [2, 4]
    spans = span_recorder.exporter.get_finished_spans()
    assert sorted(span.name for span in spans) == [
        "traced/add",
        "traced/add",
        "traced/blocking_add",
    ]
    assert {format(span.context.trace_id, "032x") for span in spans} == {TRACE_ID}
    notification = next(
        s
        for s in spans
        if s.attributes is not None and "rpc.jsonrpc.request_id" not in s.attributes
    )
    assert notification.name == "traced/add"


async def test_producer_span_is_a_child_and_travels_in_headers(
    aiohttp_client: AiohttpClient, span_recorder: SpanRecorder
) -> None:
    client = await aiohttp_client(_service(span_recorder).make_app())
    response = await client.post("/api", json=_rpc("publish"), headers={"traceparent": TRACEPARENT})
    headers = (await response.json())["result"]
    producer, server = span_recorder.exporter.get_finished_spans()
    assert producer.kind is SpanKind.PRODUCER
    assert producer.parent is not None
    assert producer.parent.span_id == server.context.span_id
    assert headers["traceparent"] == (
        f"00-{TRACE_ID}-{format(producer.context.span_id, '016x')}-01"
    )

    # The consumer side, with AMQP-style headers whose values arrive as bytes.
    tracer = trace.get_tracer("test", tracer_provider=span_recorder.provider)
    amqp_headers = {"Traceparent": headers["traceparent"].encode()}
    with start_span(tracer, "thing.done process", kind="consumer", carrier_in=amqp_headers):
        pass
    consumer = span_recorder.exporter.get_finished_spans()[-1]
    assert consumer.kind is SpanKind.CONSUMER
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.context.span_id
    assert consumer.context.trace_id == producer.context.trace_id


async def test_one_trace_across_two_services(span_recorder: SpanRecorder) -> None:
    class Backend(Traced):
        name = f"backend_{uuid.uuid4().hex[:6]}"

    class Frontend(Traced):
        name = f"frontend_{uuid.uuid4().hex[:6]}"
        backend_url = ""

        @gemstone.exposed_method()
        async def relay(self, a: int, b: int) -> int:
            headers: dict[str, str] = {}
            with start_span(self.tracer, f"{Backend.name}/add", kind="client", carrier_out=headers):
                async with (
                    aiohttp.ClientSession() as session,
                    session.post(self.backend_url, json=_rpc("add", [a, b]), headers=headers) as r,
                ):
                    result: int = (await r.json())["result"]
            return result

    async with (
        serving(_service(span_recorder, Backend)) as backend,
        serving(_service(span_recorder, Frontend)) as frontend,
    ):
        frontend.backend_url = backend.accessible_at
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                frontend.accessible_at,
                json=_rpc("relay", [2, 5]),
                headers={"traceparent": TRACEPARENT},
            ) as response,
        ):
            assert (await response.json())["result"] == 7

    spans = span_recorder.exporter.get_finished_spans()
    assert len(spans) == 3
    (front,) = [s for s in spans if s.name == f"{Frontend.name}/relay"]
    client_spans = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert len(client_spans) == 1
    (back,) = [s for s in spans if s.kind is SpanKind.SERVER and s.name == f"{Backend.name}/add"]
    assert {format(s.context.trace_id, "032x") for s in (front, client_spans[0], back)} == {
        TRACE_ID
    }
    assert front.parent is not None
    assert format(front.parent.span_id, "016x") == PARENT_ID
    assert client_spans[0].parent is not None
    assert client_spans[0].parent.span_id == front.context.span_id
    assert back.parent is not None
    assert back.parent.span_id == client_spans[0].context.span_id
    assert back.parent.is_remote


def test_helpers_without_a_tracer() -> None:
    headers: dict[str, Any] = {}
    with start_span(None, "anything", kind="client", carrier_out=headers) as span:
        assert span is None
    assert headers == {}  # no active span: nothing to propagate
    assert inject_context({}) == {}
    context = extract_context({"traceparent": TRACEPARENT})
    assert format(trace.get_current_span(context).get_span_context().trace_id, "032x") == TRACE_ID


def test_unknown_span_kind(span_recorder: SpanRecorder) -> None:
    tracer = trace.get_tracer("test", tracer_provider=span_recorder.provider)
    with (
        pytest.raises(ValueError, match=r"unknown span kind 'sideways'"),
        start_span(tracer, "x", kind="sideways"),
    ):
        pass


def test_asking_for_tracing_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", None)  # as if not installed
    with pytest.raises(ServiceConfigurationError, match=r"install the 'tracing' extra"):
        Traced().make_app()


async def test_tracing_is_off_by_default(aiohttp_client: AiohttpClient) -> None:
    class Untraced(gemstone.MicroService):
        name = "untraced"

    service = Untraced()
    app = service.make_app()
    assert service.tracer is None
    client = await aiohttp_client(app)
    assert (await client.get("/health")).status == 200
