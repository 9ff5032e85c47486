"""Broker outages (issue 20, item 6): one reconnection mechanism, one line per change.

aio-pika's robust connection does every reconnection; the transport reports an outage
with one line when it starts (down), one every ``outage_log_interval`` while it lasts
(still down) and one when it ends (back). The client libraries' own lines about the
transport's connection are dropped; start-up does not wait for a broker that is down.
The broker is stopped and started by the tests (the session's private node).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections.abc import Callable
from typing import Any

import aio_pika
import pytest
from aiohttp.test_utils import unused_port

import gemstone_aio as gemstone
from gemstone_aio.testing import serving
from tests.fixtures.events import Recorder, unique
from tests.fixtures.rabbitmq import RabbitMqNode

pytestmark = [pytest.mark.rabbitmq, pytest.mark.timeout(120)]

FAST: dict[str, Any] = {"reconnect_interval": 0.2, "outage_log_interval": 0.5}


def subscriber(event: str, url: str, recorder: Recorder, **options: Any) -> gemstone.MicroService:
    class Subscriber(gemstone.MicroService):
        name = unique("subscriber")
        event_transports = [gemstone.RabbitMqEventTransport(url, **options)]

        @gemstone.event_handler(event)
        async def on_event(self, body: Any) -> None:
            await recorder.add("s", body)

    return Subscriber()


def lines(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("gemstone_aio") and text in r.msg]


def library_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Lines of aiormq/aio-pika at INFO or above from the test's loop, where the services
    run (the node fixture probes the broker from threads of its own, with its own lines)."""
    loop_thread = threading.get_ident()
    return [
        f"{r.name}: {r.msg}"
        for r in caplog.records
        if r.name.startswith(("aiormq", "aio_pika"))
        and r.levelno >= logging.INFO
        and r.thread == loop_thread
    ]


async def until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 -- log records arrive from the loop
            await asyncio.sleep(0.02)


async def test_start_up_does_not_wait_for_a_broker_that_is_down(
    rabbitmq_node: RabbitMqNode, rabbitmq_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Broker down at start: the service starts at once (not after connect_timeout), says
    so in one line, one more every outage_log_interval, one when the broker is back; then
    its consumers start and events flow."""
    event, recorder = unique("late-broker"), Recorder()
    await asyncio.to_thread(rabbitmq_node.stop_app)
    try:
        with caplog.at_level(logging.INFO):
            service = subscriber(event, rabbitmq_url, recorder, connect_timeout=10, **FAST)
            loop = asyncio.get_running_loop()
            started = loop.time()
            async with serving(service):
                assert loop.time() - started < 3  # not the 10 s of connect_timeout
                transport = service.event_transports[0]
                assert transport.readiness()[0] is False
                await until(lambda: len(lines(caplog, "still unreachable")) >= 2)
                await asyncio.to_thread(rabbitmq_node.start_app)
                await until(lambda: bool(lines(caplog, "reachable again")))
                assert transport.readiness() == (True, transport.readiness()[1])
                publisher = gemstone.RabbitMqEventTransport(rabbitmq_url)

                class Publisher(gemstone.MicroService):
                    name = unique("publisher")
                    event_transports = [publisher]

                async with serving(Publisher()) as pub:
                    await pub.emit_event(event, "after the outage")
                    await recorder.wait_count(1)
    finally:
        await asyncio.to_thread(rabbitmq_node.start_app)
    assert len(lines(caplog, "cannot reach RabbitMQ")) == 1
    assert len(lines(caplog, "reachable again")) == 1
    assert not lines(caplog, "lost the connection")
    assert library_lines(caplog) == []
    assert recorder.items == [("s", "after the outage")]


async def test_one_line_per_outage_state_change_and_publications_wait(
    rabbitmq_node: RabbitMqNode, rabbitmq_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A running service loses the broker: one "lost" line, "still unreachable" lines at
    the interval (not one per attempt: five attempts a second here), one "back" line. An
    event emitted meanwhile waits and is delivered; nothing else is logged."""
    event, recorder = unique("outage"), Recorder()
    service = subscriber(event, rabbitmq_url, recorder, publish_timeout=60, **FAST)
    async with serving(service):
        with caplog.at_level(logging.INFO):
            await asyncio.to_thread(rabbitmq_node.stop_app)
            try:
                await until(lambda: bool(lines(caplog, "lost the connection")))
                pending = service.emit_event(event, "during the outage", broadcast=False)
                await until(lambda: len(lines(caplog, "still unreachable")) >= 3)
                assert not pending.done()
            finally:
                await asyncio.to_thread(rabbitmq_node.start_app)
            await asyncio.wait_for(pending, 60)
            await recorder.wait_count(1, timeout=60)
            await until(lambda: bool(lines(caplog, "reachable again")))
    assert len(lines(caplog, "lost the connection")) == 1
    assert len(lines(caplog, "reachable again")) == 1
    still = lines(caplog, "still unreachable")
    # One per interval, whatever the number of attempts (reconnect_interval is 0.2 s).
    gaps = [b.created - a.created for a, b in itertools.pairwise(still)]
    assert all(gap >= 0.4 for gap in gaps), gaps
    assert "1 publications waiting" in still[-1].getMessage()
    assert library_lines(caplog) == []
    assert recorder.items == [("s", "during the outage")]


async def test_other_connections_keep_their_library_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The filter only concerns gemstone-aio's connections: a plain aio-pika connection of
    the same process to a dead port still logs what aio-pika logs."""
    with caplog.at_level(logging.INFO), pytest.raises(aio_pika.exceptions.AMQPConnectionError):
        await aio_pika.connect_robust(f"amqp://guest:guest@127.0.0.1:{unused_port()}/")
    assert any(r.name.startswith("aiormq") for r in caplog.records)
