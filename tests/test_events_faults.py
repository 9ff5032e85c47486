"""Event faults with real processes (issue 20, items 4 and 5).

- A message whose handler kills its process is dead-lettered after ``max_attempts``
  deliveries, counted by the broker across restarts; the messages behind it are handled.
- Broadcasts confirmed while a subscriber runs reach it across a broker restart; its
  queue goes away when it stops, and expires when it dies.

Consumers run as subprocesses (``service.start()``, as in production) that this test
starts, kills and restarts; the broker is the session's private RabbitMQ node, which a
test restarts. Each test stops what it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aio_pika
import pytest

import gemstone_aio as gemstone
from gemstone_aio.event._amqp_topology import BROADCAST_PREFIX, DEAD_LETTER_PREFIX
from gemstone_aio.testing import serving
from tests.fixtures.events import RabbitBackend, unique
from tests.fixtures.rabbitmq import RabbitMqNode

pytestmark = pytest.mark.rabbitmq

ROOT = Path(__file__).resolve().parent.parent

WORKER = textwrap.dedent(
    """
    import asyncio, os, sys
    import gemstone_aio as gemstone

    EVENT = os.environ["TEST_EVENT"]

    class Worker(gemstone.MicroService):
        name = "fault-worker"
        max_parallel_blocking_tasks = 4
        event_transports = [gemstone.RabbitMqEventTransport(
            os.environ["TEST_AMQP_URL"], max_attempts=3, retry_delay=0.01,
            reconnect_interval=float(os.environ.get("TEST_RECONNECT", "0.2")),
            broadcast_queue_expiry=float(os.environ.get("TEST_EXPIRY", "300")),
        )]

        @gemstone.event_handler(EVENT)
        async def on_event(self, body: str) -> None:
            if body == "poison":
                os._exit(17)  # the process dies under the handler (OOM kill, segfault...)
            await asyncio.sleep(0.01)
            print(body, flush=True)

    Worker().start()
    """
)


class Worker:
    """One consumer subprocess and the bodies it printed."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.handled: list[str] = []
        self.stderr = b""
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())
        self._errors = asyncio.create_task(self._read_errors())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.handled.append(line.decode().strip())
            self._changed.set()
        self._changed.set()

    async def _read_errors(self) -> None:
        assert self.process.stderr is not None
        self.stderr = await self.process.stderr.read()

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 60.0) -> None:
        """Wait until ``condition()`` holds or the process exits."""
        async with asyncio.timeout(timeout):
            while not condition() and self.process.returncode is None:
                self._changed.clear()
                waiter = asyncio.ensure_future(self._changed.wait())
                exited = asyncio.ensure_future(self.process.wait())
                await asyncio.wait({waiter, exited}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                exited.cancel()

    async def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        code = await asyncio.wait_for(self.process.wait(), 30)
        await asyncio.wait_for(asyncio.gather(self._reader, self._errors), 30)
        return code


@asynccontextmanager
async def workers(tmp_path: Path, env: dict[str, str]) -> AsyncIterator[Callable[[], Any]]:
    """``start()`` starts a worker subprocess; every one still running is killed on exit."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    started: list[Worker] = []

    async def start() -> Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(script), "--port=0",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **env},
        )  # fmt: skip
        started.append(Worker(process))
        return started[-1]

    try:
        yield start
    finally:
        for worker in started:
            if worker.process.returncode is None:
                await worker.stop(signal.SIGKILL)


def publisher(url: str, **options: Any) -> gemstone.MicroService:
    class Publisher(gemstone.MicroService):
        name = unique("publisher")
        event_transports = [gemstone.RabbitMqEventTransport(url, **options)]

    return Publisher()


async def queue_depth(url: str, name: str) -> int | None:
    """Messages ready in queue ``name``; None when there is no such queue."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        try:
            queue = await channel.declare_queue(name, passive=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return None
        return int(queue.declaration_result.message_count or 0)


async def wait_depth(url: str, name: str, check: Callable[[int | None], bool]) -> None:
    async with asyncio.timeout(60):
        while not check(await queue_depth(url, name)):  # noqa: ASYNC110 -- the broker's
            await asyncio.sleep(0.1)


@pytest.mark.timeout(180)
async def test_a_message_that_kills_its_consumer_is_dead_lettered_after_max_attempts(
    rabbitmq_url: str, tmp_path: Path
) -> None:
    """Issue 20, item 4: the handler of "poison" kills its process (``os._exit``). The
    test restarts the consumer each time; after ``max_attempts`` (3) deliveries the
    broker's count gets it dead-lettered before its handler runs, and the 14 messages
    around it are handled, none of them dead-lettered."""
    event = unique("poison")
    innocents = [f"ok-{n}" for n in range(14)]
    pub = publisher(rabbitmq_url)
    async with serving(pub):
        for body in [*innocents[:3], "poison", *innocents[3:]]:
            await pub.emit_event(event, body, broadcast=False)
    dead_queue = DEAD_LETTER_PREFIX + event
    crashes = 0
    handled: set[str] = set()
    env = {"TEST_AMQP_URL": rabbitmq_url, "TEST_EVENT": event}
    async with workers(tmp_path, env) as start:
        for _ in range(8):
            worker = await start()
            dead: list[int | None] = [0]

            def done(worker: Worker = worker, dead: list[int | None] = dead) -> bool:
                if (dead[0] or 0) > 1:
                    return True  # more than the poison dead-lettered: fail below
                return set(innocents) <= handled | set(worker.handled) and bool(dead[0])

            async def watch_dead_letters(
                worker: Worker = worker, dead: list[int | None] = dead
            ) -> None:
                while True:
                    dead[0] = await queue_depth(rabbitmq_url, dead_queue)
                    worker._changed.set()
                    await asyncio.sleep(0.1)

            watcher = asyncio.create_task(watch_dead_letters())
            try:
                await worker.wait_for(done)
            finally:
                watcher.cancel()
            handled.update(worker.handled)
            if worker.process.returncode is None:
                assert await worker.stop() == 0
                break
            assert worker.process.returncode == 17, worker.stderr.decode()[-2000:]
            crashes += 1
        else:
            pytest.fail(f"the poison message was never dead-lettered ({crashes} crashes)")
    assert crashes == 3  # max_attempts deliveries, each killing the consumer
    assert handled >= set(innocents)
    assert await queue_depth(rabbitmq_url, dead_queue) == 1  # the poison only
    backend = RabbitBackend(rabbitmq_url)
    try:
        (letter,) = await backend.dead_letters(event, 1)
    finally:
        await backend.close()
    assert letter.body == b'"poison"'
    assert letter.attempts == 3
    assert "delivered 3 times without being acknowledged" in letter.reason


@pytest.mark.timeout(240)
async def test_confirmed_broadcasts_reach_a_running_subscriber_across_a_broker_restart(
    rabbitmq_node: RabbitMqNode, rabbitmq_url: str, tmp_path: Path
) -> None:
    """Issue 20, item 5: a subscriber process runs while the broker restarts under a
    steady stream of confirmed broadcasts. It reconnects slowly (every 2 s), so events
    are confirmed after the broker is back and before it has reconnected: they wait in
    its queue. It receives every confirmed event; its log says lost/back once each and
    holds no client-library lines. Killed (-9), its queue expires."""
    event = unique("restart-broadcast")
    env = {
        "TEST_AMQP_URL": rabbitmq_url,
        "TEST_EVENT": event,
        "TEST_RECONNECT": "2",
        "TEST_EXPIRY": "3",
    }
    pub = publisher(rabbitmq_url, publish_timeout=120, reconnect_interval=0.1)
    confirmed: list[str] = []
    failures: list[BaseException] = []
    async with workers(tmp_path, env) as start, serving(pub):
        worker = await start()
        # Subscribed once a probe gets through (consumers start after start-up).
        async with asyncio.timeout(60):
            while not worker.handled:
                await pub.emit_event(event, "probe")
                with contextlib.suppress(TimeoutError):
                    await worker.wait_for(lambda: bool(worker.handled), timeout=0.2)
        restarted = asyncio.Event()

        async def produce() -> None:
            n, after = 0, 0
            while after < 300:
                try:
                    await pub.emit_event(event, f"n{n}")
                    confirmed.append(f"n{n}")
                except gemstone.EventPublishError as exc:  # not confirmed: may be lost
                    failures.append(exc)
                n += 1
                after += restarted.is_set()

        producer = asyncio.create_task(produce())
        await worker.wait_for(lambda: len(worker.handled) > 50)
        await asyncio.to_thread(rabbitmq_node.restart)
        restarted.set()
        await asyncio.wait_for(producer, 120)
        await worker.wait_for(lambda: set(confirmed) <= set(worker.handled), timeout=90)
        assert worker.process.returncode is None, worker.stderr.decode()[-2000:]

        def queue_names() -> list[str]:
            return rabbitmq_node.ctl("list_queues", "name", "-q").split()

        queues = await asyncio.to_thread(queue_names)
        mine = [q for q in queues if q.startswith(f"{BROADCAST_PREFIX}{event}.")]
        assert len(mine) == 1  # the same queue before and after the restart
        assert await worker.stop(signal.SIGKILL) == -signal.SIGKILL
        async with asyncio.timeout(60):  # x-expires: 3 s unused
            while mine[0] in await asyncio.to_thread(queue_names):  # noqa: ASYNC110
                await asyncio.sleep(0.5)
    assert failures == []
    assert set(confirmed) <= set(worker.handled)
    log = worker.stderr.decode()
    assert log.count("lost the connection to RabbitMQ") == 1, log[-3000:]
    assert log.count("is reachable again") == 1, log[-3000:]
    assert "aiormq" not in log
    assert "aio_pika" not in log


async def test_a_stopping_instance_deletes_its_broadcast_queue(
    rabbitmq_node: RabbitMqNode, rabbitmq_url: str
) -> None:
    """A clean stop leaves nothing behind: the instance's broadcast queue goes with it."""
    event = unique("clean-stop")

    class Subscriber(gemstone.MicroService):
        name = unique("subscriber")
        event_transports = [gemstone.RabbitMqEventTransport(rabbitmq_url)]

        @gemstone.event_handler(event)
        async def on_event(self, body: Any) -> None:
            pass

    def broadcast_queues() -> list[str]:
        names = rabbitmq_node.ctl("list_queues", "name", "arguments", "durable", "-q")
        return [line for line in names.splitlines() if line.startswith(BROADCAST_PREFIX + event)]

    async with serving(Subscriber()) as service:
        (line,) = await asyncio.to_thread(broadcast_queues)
        name, arguments, durable = line.split("\t")
        transport = service.event_transports[0]
        assert isinstance(transport, gemstone.RabbitMqEventTransport)
        assert name == f"{BROADCAST_PREFIX}{event}.{service.name}.{transport.instance_id}"
        assert "x-expires" in arguments
        assert "300000" in arguments
        assert durable == "true"
    assert await asyncio.to_thread(broadcast_queues) == []
