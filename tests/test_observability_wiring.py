"""Observability of events, the registry heartbeat, periodic tasks and the client.

Real services on 127.0.0.1, real events (in memory and on the test RabbitMQ node), a
real registry; metrics read from ``GET /metrics`` with prometheus-client's parser,
spans from OpenTelemetry's in-memory exporter.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client.parser import text_string_to_metric_families

import gemstone_aio as gemstone
from gemstone_aio.client import RemoteService
from gemstone_aio.event import RabbitMqEventTransport
from gemstone_aio.observability import current_request_id
from tests.fixtures.discovery import RegistryFactory, wait_until
from tests.fixtures.events import EventBackend, Recorder, unique
from tests.fixtures.observability import SpanRecorder
from tests.fixtures.rabbitmq import RabbitMqNode
from tests.test_events_contract import call, running


def _base(service: gemstone.MicroService) -> str:
    assert service.accessible_at is not None
    return service.accessible_at.rsplit("/", 1)[0]


async def _scrape(service: gemstone.MicroService) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(_base(service) + "/metrics") as response,
    ):
        assert response.status == 200
        text = await response.text()
    return {family.name: family for family in text_string_to_metric_families(text)}


def _value(families: dict[str, Any], sample_name: str, **labels: str) -> float:
    """The value of one sample; 0 when the labelled child does not exist yet."""
    family_name = sample_name.removesuffix("_total").removesuffix("_count").removesuffix("_sum")
    family = families.get(family_name)
    for sample in family.samples if family is not None else ():
        if sample.name == sample_name and sample.labels == labels:
            return float(sample.value)
    return 0.0


async def _ready(service: gemstone.MicroService) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(_base(service) + "/ready") as response,
    ):
        body: dict[str, Any] = await response.json()
        return response.status, body


def _check(body: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [check for check in body["checks"] if check["name"] == name]
    assert isinstance(found, dict)
    return found


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api"


# -- metrics of real events ------------------------------------------------------------


async def test_event_metrics_after_real_events(event_backend: EventBackend) -> None:
    """Published, handled ok, retried and dead-lettered events, in memory and on RabbitMQ."""
    good, flaky, bad, garbled = (unique(p) for p in ("good", "flaky", "bad", "garbled"))
    recorder = Recorder()
    flaky_failures = [0]

    class Shop(gemstone.MicroService):
        name = unique("shop")
        use_metrics = True
        event_transports = [event_backend.transport(max_attempts=2, retry_delay=0.0)]

        @gemstone.event_handler(good)
        async def on_good(self, body: int) -> None:
            await recorder.add("good", body)

        @gemstone.event_handler(flaky)
        async def on_flaky(self, body: int) -> None:
            if flaky_failures[0] == 0:
                flaky_failures[0] += 1
                raise RuntimeError("first attempt fails")
            await recorder.add("flaky", body)

        @gemstone.event_handler(bad)
        def on_bad(self, body: int) -> None:
            raise ValueError("always fails")

        @gemstone.event_handler(garbled)
        async def on_garbled(self, body: int) -> None:
            await recorder.add("garbled", body)

    shop = Shop()
    async with running(shop):
        await shop.emit_event(good, 1, broadcast=False)
        await shop.emit_event(good, 2)
        await shop.emit_event(flaky, 3, broadcast=False)
        await shop.emit_event(bad, 4, broadcast=False)
        await event_backend.publish_raw(garbled, b"\xff not json", broadcast=False)
        await recorder.wait_count(3)
        assert len(await event_backend.dead_letters(bad, 1)) == 1
        assert len(await event_backend.dead_letters(garbled, 1)) == 1

        def handled(families: dict[str, Any], event: str, outcome: str) -> float:
            return _value(families, "gemstone_events_handled_total", event=event, outcome=outcome)

        async def all_counted() -> bool:
            families = await _scrape(shop)
            return (
                handled(families, bad, "dead_lettered") == 1
                and handled(families, garbled, "dead_lettered") == 1
                and handled(families, flaky, "ok") == 1
            )

        await wait_until(all_counted, what="the dead letters to be counted")
        families = await _scrape(shop)

    assert sorted(recorder.items) == [("flaky", 3), ("good", 1), ("good", 2)]
    published = "gemstone_events_published_total"
    assert _value(families, published, event=good) == 2
    assert _value(families, published, event=flaky) == 1
    assert _value(families, published, event=bad) == 1
    assert _value(families, "gemstone_events_publish_failed_total", event=good) == 0
    assert handled(families, good, "ok") == 2
    assert handled(families, flaky, "retried") == 1
    assert handled(families, flaky, "ok") == 1
    assert handled(families, bad, "retried") == 1
    assert handled(families, bad, "dead_lettered") == 1
    assert handled(families, bad, "ok") == 0
    assert handled(families, garbled, "dead_lettered") == 1
    # One duration per handler attempt; none for a body no handler could run on.
    duration = "gemstone_event_handler_duration_seconds_count"
    assert _value(families, duration, event=good) == 2
    assert _value(families, duration, event=flaky) == 2
    assert _value(families, duration, event=bad) == 2
    assert _value(families, duration, event=garbled) == 0


# -- readiness follows the broker ------------------------------------------------------


@pytest.mark.rabbitmq
@pytest.mark.timeout(120)
async def test_ready_reports_the_broker_and_fails_for_it_only_when_required(
    rabbitmq_node: RabbitMqNode, rabbitmq_url: str
) -> None:
    """One broker outage seen by two services: by default the transport's check is reported
    but ``/ready`` stays 200 (the broker is shared: draining every instance would not help,
    and calls are still answered); with ``ready_required_checks = ["events: *"]`` it flips
    to 503 and back without a restart."""
    event = unique("outage")
    check_name = "events: RabbitMqEventTransport"

    class Orders(gemstone.MicroService):
        name = unique("orders")
        use_metrics = True
        event_transports = [
            RabbitMqEventTransport(rabbitmq_url, reconnect_interval=0.2, publish_timeout=0.5)
        ]

        @gemstone.exposed_method()
        async def ping(self) -> str:
            return "pong"

    class StrictOrders(Orders):
        name = unique("strict-orders")
        ready_required_checks = ["events: *"]

    orders, strict = Orders(), StrictOrders()
    try:
        async with running(orders, strict):
            for service in (orders, strict):
                status, body = await _ready(service)
                assert status == 200
                assert _check(body, check_name)["ok"] is True
                assert _check(body, check_name)["detail"].startswith("connected to amqp://")
            assert _check((await _ready(orders))[1], check_name)["required"] is False
            assert _check((await _ready(strict))[1], check_name)["required"] is True
            await orders.emit_event(event, "before")

            await asyncio.to_thread(rabbitmq_node.stop_app)

            async def not_ready() -> bool:
                return (await _ready(strict))[0] == 503

            await wait_until(not_ready, timeout=30, what="/ready to fail")
            status, body = await _ready(strict)
            assert body["status"] == "not ready"
            assert _check(body, check_name)["ok"] is False
            assert _check(body, check_name)["detail"].startswith("not connected to amqp://")
            assert "guest:guest" not in str(body)  # no credentials on a public endpoint

            status, body = await _ready(orders)  # the default: reported, not required
            assert status == 200
            assert body["status"] == "ready"
            assert _check(body, check_name)["ok"] is False
            assert _check(body, check_name)["required"] is False
            assert (await call(orders, "ping"))["result"] == "pong"
            with pytest.raises(gemstone.EventPublishError):
                await orders.emit_event(event, "during the outage")

            await asyncio.to_thread(rabbitmq_node.start_app)

            async def ready_again() -> bool:
                return (await _ready(strict))[0] == 200

            await wait_until(ready_again, timeout=60, what="/ready to pass again")
            await orders.emit_event(event, "after")
            families = await _scrape(orders)
    finally:
        await asyncio.to_thread(rabbitmq_node.start_app)
    assert _value(families, "gemstone_events_published_total", event=event) == 2
    assert _value(families, "gemstone_events_publish_failed_total", event=event) == 1


# -- registry pings --------------------------------------------------------------------


async def test_registry_ping_metrics_and_readiness(start_registry: RegistryFactory) -> None:
    dead = _closed_port_url()

    class Lonely(gemstone.MicroService):
        name = unique("lonely")
        use_metrics = True
        service_registry_urls = [dead]
        service_registry_ping_interval = 0.1

    lonely = Lonely()
    async with running(lonely):

        async def failed_twice() -> bool:
            families = await _scrape(lonely)
            return (
                _value(families, "gemstone_registry_pings_total", registry=dead, outcome="failed")
                >= 2
            )

        await wait_until(failed_twice, what="two failed pings to be counted")
        status, body = await _ready(lonely)
        assert status == 200  # reported, not required (see test_observability_readiness.py)
        assert _check(body, "registry") == {
            "name": "registry",
            "ok": False,
            "detail": "no registry answered the last ping",
            "required": False,
        }

    registry = await start_registry()
    live = str(registry.accessible_at)

    class Connected(Lonely):
        name = unique("connected")
        service_registry_urls = [dead, live]

    connected = Connected()
    async with running(connected):

        async def reached() -> bool:
            return bool(_check((await _ready(connected))[1], "registry")["ok"])

        await wait_until(reached, what="the registry to be reached")
        status, body = await _ready(connected)
        assert status == 200
        assert _check(body, "registry") == {
            "name": "registry",
            "ok": True,
            "detail": "reached",
            "required": False,
        }
        families = await _scrape(connected)
    pings = "gemstone_registry_pings_total"
    assert _value(families, pings, registry=live, outcome="ok") >= 1
    assert _value(families, pings, registry=live, outcome="failed") == 0
    assert _value(families, pings, registry=dead, outcome="failed") >= 1
    assert _value(families, pings, registry=dead, outcome="ok") == 0


# -- periodic tasks --------------------------------------------------------------------


async def test_periodic_runs_are_counted_and_traced(span_recorder: SpanRecorder) -> None:
    runs = asyncio.Event()
    count = [0]

    class Janitor(gemstone.MicroService):
        name = unique("janitor")
        use_metrics = True
        use_tracing = True

        async def sweep(self) -> None:
            count[0] += 1
            if count[0] >= 3:
                runs.set()
            if count[0] == 2:
                raise RuntimeError("the second sweep fails")

        periodic_tasks = [(sweep, 0.01)]

    janitor = Janitor()
    janitor.tracer_provider = span_recorder.provider
    task = Janitor.sweep.__qualname__
    runs_total = "gemstone_periodic_runs_total"
    async with running(janitor):
        await asyncio.wait_for(runs.wait(), 10)

        async def three_counted() -> bool:
            families = await _scrape(janitor)
            return _value(families, runs_total, task=task, outcome="ok") >= 2

        await wait_until(three_counted, what="three runs to be counted")
        families = await _scrape(janitor)
    assert _value(families, runs_total, task=task, outcome="failed") == 1
    spans = [s for s in span_recorder.exporter.get_finished_spans() if s.name == f"periodic {task}"]
    assert len(spans) >= 3
    assert all(s.kind is SpanKind.INTERNAL and s.parent is None for s in spans)
    assert [s.status.status_code for s in spans[:3]] == [
        StatusCode.UNSET,
        StatusCode.ERROR,
        StatusCode.UNSET,
    ]
    assert len({s.context.trace_id for s in spans}) == len(spans)  # a trace per run


# -- one trace across two services and an event ----------------------------------------


def _only(spans: list[ReadableSpan], kind: SpanKind, name: str) -> ReadableSpan:
    (found,) = [s for s in spans if s.kind is kind and s.name == name]
    return found


async def test_one_trace_across_two_services_and_an_event(
    event_backend: EventBackend, span_recorder: SpanRecorder
) -> None:
    """client span -> server span -> producer -> consumer, with a single trace id."""
    event, recorder = unique("order.placed"), Recorder()

    class Warehouse(gemstone.MicroService):
        name = unique("warehouse")
        use_tracing = True
        event_transports = [event_backend.transport()]

        @gemstone.exposed_method()
        async def reserve(self, item: str) -> str:
            await self.emit_event(event, {"item": item}, broadcast=False)
            return f"reserved {item}"

        @gemstone.event_handler(event)
        async def on_placed(self, body: dict[str, str]) -> None:
            await recorder.add("placed", body["item"])

    class Shop(gemstone.MicroService):
        name = unique("shop")
        use_tracing = True
        warehouse_url = ""

        @gemstone.exposed_method()
        async def order(self, item: str) -> str:
            async with RemoteService(self.warehouse_url) as warehouse:
                result: str = await warehouse.call("reserve", item)
            return result

    warehouse, shop = Warehouse(), Shop()
    for service in (warehouse, shop):
        service.tracer_provider = span_recorder.provider
    async with running(warehouse, shop):
        assert warehouse.accessible_at is not None
        shop.warehouse_url = warehouse.accessible_at
        assert (await call(shop, "order", "apple"))["result"] == "reserved apple"
        await recorder.wait_count(1)
    # Leaving the block stopped the consumers, after the handler's span ended.

    assert recorder.items == [("placed", "apple")]
    spans = list(span_recorder.exporter.get_finished_spans())
    front = _only(spans, SpanKind.SERVER, f"{Shop.name}/order")
    client = _only(spans, SpanKind.CLIENT, "reserve")
    back = _only(spans, SpanKind.SERVER, f"{Warehouse.name}/reserve")
    producer = _only(spans, SpanKind.PRODUCER, f"{event} publish")
    consumer = _only(spans, SpanKind.CONSUMER, f"{event} process")
    assert len(spans) == 5
    assert len({s.context.trace_id for s in spans}) == 1
    assert front.parent is None
    chain = [(client, front), (back, client), (producer, back), (consumer, producer)]
    for child, parent in chain:
        assert child.parent is not None
        assert child.parent.span_id == parent.context.span_id, child.name
    assert back.parent is not None
    assert back.parent.is_remote
    assert consumer.parent is not None
    assert consumer.parent.is_remote
    assert client.attributes is not None
    assert client.attributes["url.full"] == warehouse.accessible_at
    assert consumer.attributes is not None
    assert consumer.attributes["messaging.destination.name"] == event


# -- the request id travels downstream -------------------------------------------------


async def test_request_id_is_forwarded_to_a_downstream_service() -> None:
    class Downstream(gemstone.MicroService):
        name = unique("downstream")

        @gemstone.exposed_method()
        async def whoami(self) -> str | None:
            return current_request_id()

    class Upstream(gemstone.MicroService):
        name = unique("upstream")
        downstream_url = ""

        @gemstone.exposed_method()
        async def relay(self) -> dict[str, Any]:
            async with RemoteService(self.downstream_url) as client:
                seen = await client.call("whoami")
            return {"mine": current_request_id(), "seen": seen}

        @gemstone.exposed_method()
        def relay_blocking(self) -> dict[str, Any]:
            with RemoteService(self.downstream_url) as client:
                seen = client.methods.whoami()
            return {"mine": current_request_id(), "seen": seen}

    downstream, upstream = Downstream(), Upstream()
    async with running(downstream, upstream), aiohttp.ClientSession() as session:
        assert downstream.accessible_at is not None
        assert upstream.accessible_at is not None
        upstream.downstream_url = downstream.accessible_at
        for method in ("relay", "relay_blocking"):
            payload = {"jsonrpc": "2.0", "id": 1, "method": method}
            async with session.post(
                upstream.accessible_at, json=payload, headers={"X-Request-Id": f"order-{method}"}
            ) as response:
                assert (await response.json())["result"] == {
                    "mine": f"order-{method}",
                    "seen": f"order-{method}",
                }
            # Without one from the caller, the id the upstream made up travels on.
            async with session.post(upstream.accessible_at, json=payload) as response:
                generated = response.headers["X-Request-Id"]
                assert (await response.json())["result"] == {"mine": generated, "seen": generated}

        # Outside a request, the client sends no request id: the downstream makes one.
        async with RemoteService(downstream.accessible_at) as client:
            first, second = await client.call("whoami"), await client.call("whoami")
        assert isinstance(first, str)
        assert isinstance(second, str)
        assert first != second
