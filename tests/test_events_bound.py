"""Bounded publishing (issue 20, item 3): a cap on publications under way.

Past ``max_pending_publications``, an awaited ``emit_event`` waits for room (at most the
publish timeout) and a fire-and-forget one is dropped at once, counted in a metric and
in one rate-limited log line. In memory first (no broker), then with the RabbitMQ node's
broker stopped by the test, where publications really pile up.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from typing import Any

import aiohttp
import pytest

import gemstone_aio as gemstone
from gemstone_aio.event._memory import InMemoryEventBus, InMemoryEventTransport
from gemstone_aio.event._pending import PublicationBound, RateLimitedLog
from gemstone_aio.testing import serving
from tests.fixtures.events import Recorder, unique
from tests.fixtures.rabbitmq import RabbitMqNode


def pair(
    event: str, recorder: Recorder, publisher_transport: Any, subscriber_transport: Any, limit: int
) -> tuple[gemstone.MicroService, gemstone.MicroService]:
    class Publisher(gemstone.MicroService):
        name = unique("publisher")
        event_transports = [publisher_transport]
        max_pending_publications = limit

        @gemstone.exposed_method()
        def emit_from_a_thread(self, body: int) -> str:
            self.emit_event(event, body, broadcast=False).result(timeout=30)
            return "confirmed"

    class Subscriber(gemstone.MicroService):
        name = unique("subscriber")
        event_transports = [subscriber_transport]

        @gemstone.event_handler(event)
        async def on_event(self, body: Any) -> None:
            await recorder.add("s", body)

    return Publisher(), Subscriber()


async def dropped_metric(service: gemstone.MicroService, event: str) -> float:
    """``gemstone_events_publish_dropped_total{event=...}`` as ``/metrics`` shows it."""
    assert service.accessible_at is not None
    url = service.accessible_at.rsplit("/", 1)[0] + "/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith("gemstone_events_publish_dropped_total{") and f'"{event}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def drop_lines(caplog: pytest.LogCaptureFixture, event: str) -> list[str]:
    mine = [r.getMessage() for r in caplog.records if r.name.startswith("gemstone_aio.")]
    return [line for line in mine if "dropped" in line and event in line]


async def test_past_the_bound_fire_and_forget_is_dropped_and_awaited_waits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """In memory: 3 under way at most. Ten emits without yielding to the loop: three go,
    seven are dropped at once (metric, one log line); ten awaited ones all arrive."""
    event, recorder, bus = unique("bounded"), Recorder(), InMemoryEventBus()
    publisher, subscriber = pair(
        event, recorder, InMemoryEventTransport(bus=bus), InMemoryEventTransport(bus=bus), 3
    )
    async with serving(subscriber), serving(publisher):
        with caplog.at_level(logging.WARNING):
            for n in range(10):
                publisher.emit_event(event, n, broadcast=False)  # not awaited
            gc.collect()  # CPython drops them at once already; be explicit
            await recorder.wait_count(3)
            assert await dropped_metric(publisher, event) == 7
            assert len(drop_lines(caplog, event)) == 1  # rate-limited: one line for seven
            await asyncio.gather(
                *(publisher.emit_event(event, n, broadcast=False) for n in range(10, 20))
            )
            await recorder.wait_count(13)
    assert sorted(recorder.by("s")) == [0, 1, 2, *range(10, 20)]


async def test_a_thread_waits_for_room_with_result() -> None:
    """``.result()`` from a blocking method past the bound waits for room, then publishes."""
    event, recorder, bus = unique("threads"), Recorder(), InMemoryEventBus()
    publisher, subscriber = pair(
        event, recorder, InMemoryEventTransport(bus=bus), InMemoryEventTransport(bus=bus), 1
    )
    async with serving(subscriber), serving(publisher):
        assert publisher.accessible_at is not None
        async with aiohttp.ClientSession() as session:

            async def call(n: int) -> Any:
                body = {"jsonrpc": "2.0", "id": n, "method": "emit_from_a_thread", "params": [n]}
                async with session.post(publisher.accessible_at or "", json=body) as response:
                    return (await response.json())["result"]

            assert await asyncio.gather(*(call(n) for n in range(8))) == ["confirmed"] * 8
        await recorder.wait_count(8)
    assert sorted(recorder.by("s")) == list(range(8))


def test_the_bound_is_checked() -> None:
    for bad in (0, -1, 1.5, True, "10"):
        with pytest.raises(gemstone.ServiceConfigurationError, match="max_pending_publications"):
            PublicationBound(bad, 1.0)  # type: ignore[arg-type]
    assert PublicationBound(None, 1.0).try_acquire()


async def test_a_waiter_that_gives_up_passes_its_place_on() -> None:
    """Room handed to a waiter that timed out at that moment is not lost."""
    bound = PublicationBound(1, room_timeout=0.05)
    assert bound.try_acquire()
    with pytest.raises(gemstone.EventPublishError, match="max_pending_publications"):
        await bound.acquire("event 'x'")
    second = asyncio.create_task(bound.acquire("event 'y'"))
    await asyncio.sleep(0)  # it waits now
    bound.release()  # handed to the waiter
    await asyncio.wait_for(second, 5)
    assert bound.under_way == 1
    bound.release()
    assert bound.under_way == 0


def test_rate_limited_log_counts_what_it_held_back(caplog: pytest.LogCaptureFixture) -> None:
    log = RateLimitedLog(logging.getLogger("test.ratelimit"), logging.WARNING, interval=3600)
    with caplog.at_level(logging.WARNING, "test.ratelimit"):
        for n in range(1000):
            log("thing %d happened", n)
    assert [r.getMessage() for r in caplog.records] == ["thing 0 happened"]
    log.interval = 0
    with caplog.at_level(logging.WARNING, "test.ratelimit"):
        log("thing %d happened", 1000)
    assert caplog.records[-1].getMessage() == (
        "thing 1000 happened (999 more like this in the last 0 s)"
    )
    threads = [threading.Thread(target=log, args=("x",)) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.mark.rabbitmq
@pytest.mark.timeout(120)
async def test_broker_down_bounds_publications_and_delivers_the_kept_ones(
    rabbitmq_node: RabbitMqNode, rabbitmq_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Broker stopped by the test: 2,000 fire-and-forget emits return at once; 50 wait
    (the bound), 1,950 are dropped and counted with one log line; an awaited emit waits
    for room. Once the broker is back, the kept ones and the awaited one arrive."""
    event, recorder = unique("outage-burst"), Recorder()
    publisher, subscriber = pair(
        event,
        recorder,
        gemstone.RabbitMqEventTransport(rabbitmq_url, publish_timeout=60, reconnect_interval=0.2),
        gemstone.RabbitMqEventTransport(rabbitmq_url, reconnect_interval=0.2),
        50,
    )
    async with serving(subscriber), serving(publisher):
        await asyncio.to_thread(rabbitmq_node.stop_app)
        try:
            with caplog.at_level(logging.WARNING):
                loop = asyncio.get_running_loop()
                started = loop.time()
                for n in range(2000):
                    publisher.emit_event(event, n, broadcast=False)
                assert loop.time() - started < 2.0  # returned at once, nothing blocked
                awaited = asyncio.ensure_future(
                    publisher.emit_event(event, "awaited", broadcast=False)
                )
                await asyncio.sleep(0)
                assert not awaited.done()  # waiting for room, not dropped
                assert await dropped_metric(publisher, event) == 1950
                assert len(drop_lines(caplog, event)) == 1
        finally:
            await asyncio.to_thread(rabbitmq_node.start_app)
        await asyncio.wait_for(awaited, 60)
        await recorder.wait_count(51, timeout=60)
    assert sorted(map(str, recorder.by("s"))) == sorted([*map(str, range(50)), "awaited"])
