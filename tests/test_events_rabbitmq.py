"""RabbitMQ-only behaviour: broker restarts, outages at start-up, topology for other programs."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aio_pika
import pytest

import gemstone_aio as gemstone
from gemstone_aio.event import RabbitMqEventTransport
from gemstone_aio.event._rabbitmq import BROADCAST_PREFIX, TASKS_PREFIX, TASKS_ROUTING_KEY
from tests.fixtures.events import Recorder, unique
from tests.fixtures.rabbitmq import RabbitMqNode
from tests.test_events_contract import call, running

pytestmark = pytest.mark.rabbitmq


def subscriber(event: str, url: str, recorder: Recorder, **options: Any) -> gemstone.MicroService:
    class Subscriber(gemstone.MicroService):
        name = unique("subscriber")
        event_transports = [RabbitMqEventTransport(url, **options)]

        @gemstone.event_handler(event)
        async def on_event(self, body: Any) -> None:
            await recorder.add("s", body)

        @gemstone.exposed_method()
        async def ping(self) -> str:
            return "pong"

    return Subscriber()


def publisher(url: str, **options: Any) -> gemstone.MicroService:
    class Publisher(gemstone.MicroService):
        name = unique("publisher")
        event_transports = [RabbitMqEventTransport(url, **options)]

    return Publisher()


@pytest.mark.timeout(150)
async def test_no_confirmed_event_is_lost_across_a_broker_restart(
    rabbitmq_node: RabbitMqNode, rabbitmq_url: str
) -> None:
    """Restart the broker while broadcast=False events flow: every confirmed one is handled.

    The handler is slower than the publisher, so a backlog sits in the durable queue and
    messages are in flight when the broker stops; publishing goes on during the outage
    (emits wait and retry) and after it.
    """
    event, recorder = unique("restart"), Recorder()

    class Slow(gemstone.MicroService):
        name = unique("slow")
        event_transports = [RabbitMqEventTransport(rabbitmq_url, reconnect_interval=0.5)]
        max_parallel_blocking_tasks = 2

        @gemstone.event_handler(event)
        async def on_event(self, body: int) -> None:
            await asyncio.sleep(0.005)  # simulated work, so a backlog builds up
            await recorder.add("s", body)

    pub = publisher(rabbitmq_url, reconnect_interval=0.5, publish_timeout=90)
    confirmed: list[int] = []
    restarted = asyncio.Event()
    failures: list[BaseException] = []

    async def produce() -> None:
        n = 0
        after_restart = 0
        while after_restart < 100:
            try:
                await pub.emit_event(event, n, broadcast=False)
                confirmed.append(n)
            except gemstone.EventPublishError as exc:  # not confirmed: may be lost
                failures.append(exc)
            n += 1
            if restarted.is_set():
                after_restart += 1

    async with running(Slow(), pub):
        producer = asyncio.create_task(produce())
        await recorder.wait_count(50)
        await asyncio.to_thread(rabbitmq_node.restart)
        restarted.set()
        await asyncio.wait_for(producer, 90)
        await recorder.wait_for(
            lambda items: set(confirmed) <= {value for _, value in items}, timeout=60
        )
    handled = {value for _, value in recorder.items}
    assert failures == []
    assert len(confirmed) > 200
    assert set(confirmed) <= handled  # at least once each (duplicates are allowed)


@pytest.mark.timeout(90)
async def test_service_starts_and_serves_while_the_broker_is_down(
    rabbitmq_node: RabbitMqNode, rabbitmq_url: str
) -> None:
    """With the broker down, HTTP serves; emits wait; all is delivered once it is back."""
    event, recorder = unique("outage"), Recorder()
    rabbitmq_node.stop_app()
    try:
        sub = subscriber(event, rabbitmq_url, recorder, connect_timeout=0.2)
        pub = publisher(rabbitmq_url, connect_timeout=0.2, publish_timeout=60)
        async with running(sub, pub):
            assert (await call(sub, "ping"))["result"] == "pong"
            pending = pub.emit_event(event, "queued while down", broadcast=False)
            assert not pending.done()
            await asyncio.to_thread(rabbitmq_node.start_app)
            await asyncio.wait_for(pending, 60)
            await recorder.wait_count(1, timeout=60)
    finally:
        rabbitmq_node.start_app()
    assert recorder.items == [("s", "queued while down")]


async def test_plain_aio_pika_publisher_reaches_a_handler(rabbitmq_url: str) -> None:
    """A program not written with gemstone-aio publishes by the documented topology."""
    event, recorder = unique("foreign"), Recorder()
    async with running(subscriber(event, rabbitmq_url, recorder)):
        connection = await aio_pika.connect(rabbitmq_url)
        async with connection:
            channel = await connection.channel()
            tasks = await channel.declare_exchange(
                TASKS_PREFIX + event, aio_pika.ExchangeType.DIRECT, durable=True
            )
            await tasks.publish(
                aio_pika.Message(
                    json.dumps({"from": "outside"}).encode(),
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    headers={"x-gemstone-event": event, "x-gemstone-service": "legacy"},
                ),
                routing_key=TASKS_ROUTING_KEY,
            )
            fanout = await channel.declare_exchange(
                BROADCAST_PREFIX + event, aio_pika.ExchangeType.FANOUT, durable=True
            )
            await fanout.publish(aio_pika.Message(b'"to everyone"'), routing_key="")
            await recorder.wait_count(2)
    assert sorted(map(str, recorder.by("s"))) == sorted(["{'from': 'outside'}", "to everyone"])


async def test_plain_aio_pika_consumer_sees_body_and_headers(rabbitmq_url: str) -> None:
    """Messages carry JSON, the event name and the emitting service in headers."""
    event = unique("outbound")
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        fanout = await channel.declare_exchange(
            BROADCAST_PREFIX + event, aio_pika.ExchangeType.FANOUT, durable=True
        )
        mine = await channel.declare_queue("", exclusive=True)
        await mine.bind(fanout)
        pub = publisher(rabbitmq_url)
        async with running(pub):
            await pub.emit_event(event, {"a": [1, 2]}, broadcast=True)
            await pub.emit_event(event, "one of n", broadcast=False)
        tasks = await channel.declare_queue(TASKS_PREFIX + event, passive=True)
        broadcast_message = await mine.get(timeout=10)
        task_message = await tasks.get(timeout=10)
        assert broadcast_message is not None
        assert task_message is not None
        await broadcast_message.ack()
        await task_message.ack()
    assert json.loads(broadcast_message.body) == {"a": [1, 2]}
    assert broadcast_message.content_type == "application/json"
    assert broadcast_message.headers["x-gemstone-event"] == event
    assert broadcast_message.headers["x-gemstone-service"] == pub.name
    assert broadcast_message.headers["x-gemstone-broadcast"] is True
    # Persistent too: it waits in each instance's durable queue across a broker restart.
    assert broadcast_message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert json.loads(task_message.body) == "one of n"
    assert task_message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert task_message.headers["x-gemstone-broadcast"] is False


async def test_prefetch_follows_handler_concurrency(
    rabbitmq_node: RabbitMqNode, rabbitmq_url: str
) -> None:
    """Each consumer's prefetch count is the service's handler concurrency.

    The shared queue's consumer starts cautious (prefetch 1: messages that came back
    after a crash are handled alone) and takes its full prefetch from the first message
    that never came back.
    """
    event, recorder = unique("prefetch"), Recorder()
    sub = subscriber(event, rabbitmq_url, recorder)
    sub.max_parallel_blocking_tasks = 3

    async def prefetches() -> dict[str, str]:
        listing = await asyncio.to_thread(
            rabbitmq_node.ctl, "list_consumers", "queue_name", "prefetch_count", "-q"
        )
        rows = [line.split("\t") for line in listing.splitlines()[1:] if line.strip()]
        return {queue: prefetch for queue, prefetch in rows if event in queue}

    async with running(sub):
        assert await prefetches() == {
            TASKS_PREFIX + event: "1",
            f"{BROADCAST_PREFIX}{event}.{sub.name}.{sub.event_transports[0].instance_id}": "3",  # type: ignore[attr-defined]
        }
        await sub.emit_event(event, "fresh", broadcast=False)
        await recorder.wait_count(1)
        async with asyncio.timeout(20):
            while (await prefetches()).get(TASKS_PREFIX + event) != "3":  # noqa: ASYNC110
                await asyncio.sleep(0.05)


async def test_gemstone_010_constructor_arguments_connect(rabbitmq_node: RabbitMqNode) -> None:
    """RabbitMqEventTransport(host, port, username, password) as in gemstone 0.10."""
    event, recorder = unique("legacy-args"), Recorder()

    class Legacy(gemstone.MicroService):
        name = unique("legacy")
        event_transports = [
            RabbitMqEventTransport("127.0.0.1", rabbitmq_node.port, "guest", "guest")
        ]

        @gemstone.event_handler(event)
        async def on_event(self, body: Any) -> None:
            await recorder.add("legacy", body)

    service = Legacy()
    rabbitmq_node.start()
    async with running(service):
        await service.emit_event(event, 1)
        await recorder.wait_count(1)
    assert recorder.items == [("legacy", 1)]


async def test_a_classic_task_queue_of_an_older_version_keeps_working(
    rabbitmq_node: RabbitMqNode, rabbitmq_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``gemstone.tasks.E`` made classic (no arguments) by an older version: services use
    it as it is and warn once each, pointing to the migration; after the documented
    migration (drained, deleted) the next start declares a quorum queue."""
    event, recorder = unique("legacy-queue"), Recorder()
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(TASKS_PREFIX + event, durable=True)  # the old way
    with caplog.at_level(logging.WARNING, "gemstone_aio.event.rabbitmq"):
        sub, pub = subscriber(event, rabbitmq_url, recorder), publisher(rabbitmq_url)
        async with running(sub, pub):
            for n in range(3):
                await pub.emit_event(event, n, broadcast=False)
            await recorder.wait_count(3)
    warnings = [r.getMessage() for r in caplog.records if "classic queue" in r.getMessage()]
    assert len(warnings) == 2  # once per service (the publisher declares the queue too)
    assert "Migrating task queues" in warnings[0]
    assert sorted(recorder.by("s")) == [0, 1, 2]

    def queue_type() -> str:
        rows = rabbitmq_node.ctl("list_queues", "name", "type", "-q").splitlines()
        return dict(row.split("\t") for row in rows[1:])[TASKS_PREFIX + event]

    assert await asyncio.to_thread(queue_type) == "classic"
    await asyncio.to_thread(rabbitmq_node.ctl, "delete_queue", TASKS_PREFIX + event, "--if-empty")
    async with running(subscriber(event, rabbitmq_url, recorder)):
        assert await asyncio.to_thread(queue_type) == "quorum"


async def test_a_topology_the_broker_refuses_fails_start_up_saying_why(rabbitmq_url: str) -> None:
    """Another program made ``gemstone.dead-letter.E`` with other arguments: RabbitMQ will
    never take the subscriber's declaration, so the service does not start, and the
    broker's reason is the error (no silent subscriber that consumes nothing)."""
    event, recorder = unique("refused"), Recorder()
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(
            f"gemstone.dead-letter.{event}", durable=True, arguments={"x-max-length": 10}
        )
        with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed, match="x-max-length"):
            async with running(subscriber(event, rabbitmq_url, recorder)):
                pass
        await channel.queue_delete(f"gemstone.dead-letter.{event}")
