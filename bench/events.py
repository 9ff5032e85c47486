"""Events/s: gemstone-aio over RabbitMQ against raw aio-pika, and the in-memory transport.

Workload, identical for both RabbitMQ sides, once for each kind of event:

- ``broadcast=False``: ``--events`` persistent messages through the quorum queue
  ``gemstone.tasks.E``;
- ``broadcast=True``: the same number of persistent messages through the fanout exchange
  ``gemstone.broadcast.E`` into the subscriber's own durable queue (``x-expires``);

published by ``--window`` concurrent publishers, each awaiting the publisher confirm of
its message before sending the next; one consumer with prefetch ``--prefetch`` decodes
the JSON body and acks. The raw side sends the message gemstone-aio sends (the same
properties and headers, as documented in ``docs/events.md``). The clock runs from the
first publish to the last ack. Publisher and consumer share one process and event loop,
each with its own connection. Metrics are off on the gemstone-aio side, as in a default
install (prometheus-client is the ``metrics`` extra).

Each round runs both sides back to back (alternating which goes first); the ratio is the
median of the rounds' ratios, because these machines are shared and noisy. The CPU time
this process spends per event (publisher and consumer; the broker is another process) is
printed too: the client's CPU is what limits the rate here. Without ``--url`` a private RabbitMQ node
is started (the one the tests use) and stopped at the end.

    python bench/events.py [--events 5000] [--window 50] [--prefetch 32] [--rounds 5] [--url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aio_pika

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import gemstone_aio as gemstone  # noqa: E402
from gemstone_aio.event import BaseEventTransport, RabbitMqEventTransport  # noqa: E402
from gemstone_aio.event._memory import InMemoryEventBus, InMemoryEventTransport  # noqa: E402
from gemstone_aio.testing import serving  # noqa: E402


async def publish_all(emit: Any, events: int, window: int) -> None:
    async def publisher(start: int) -> None:
        for n in range(start, events, window):
            await emit(n)

    await asyncio.gather(*(publisher(start) for start in range(window)))


async def run_gemstone(
    transport: BaseEventTransport, args: argparse.Namespace, *, broadcast: bool
) -> float:
    event = f"bench-{uuid.uuid4().hex[:8]}"
    done = asyncio.Event()
    seen = 0

    class Consumer(gemstone.MicroService):
        name = f"bench-consumer-{uuid.uuid4().hex[:8]}"
        event_transports = [transport]
        max_parallel_blocking_tasks = args.prefetch
        use_metrics = False

        @gemstone.event_handler(event)
        async def on_event(self, body: Any) -> None:
            nonlocal seen
            seen += 1
            if seen == args.events:
                done.set()

    class Producer(gemstone.MicroService):
        name = f"bench-producer-{uuid.uuid4().hex[:8]}"
        event_transports = [transport]
        use_metrics = False

    producer = Producer()

    async def emit(n: int) -> None:
        await producer.emit_event(event, {"n": n}, broadcast=broadcast)

    async with serving(Consumer()), serving(producer):
        started = time.perf_counter()
        await publish_all(emit, args.events, args.window)
        await asyncio.wait_for(done.wait(), 300)
        return args.events / (time.perf_counter() - started)


async def run_raw(url: str, args: argparse.Namespace, *, broadcast: bool) -> float:
    event = f"bench-raw-{uuid.uuid4().hex[:8]}"
    name = ("gemstone.broadcast." if broadcast else "gemstone.tasks.") + event
    done = asyncio.Event()
    seen = 0
    # Two connections, like the two services of the gemstone-aio run.
    connection = await aio_pika.connect_robust(url)
    consumer_connection = await aio_pika.connect_robust(url)
    async with connection, consumer_connection:
        publish_channel = await connection.channel(publisher_confirms=True)
        consume_channel = await consumer_connection.channel()
        await consume_channel.set_qos(prefetch_count=args.prefetch)
        if broadcast:
            exchange = await publish_channel.declare_exchange(
                name, aio_pika.ExchangeType.FANOUT, durable=True
            )
            consume_queue = await consume_channel.declare_queue(
                f"{name}.bench-raw.{uuid.uuid4().hex[:12]}",
                durable=True,
                arguments={"x-expires": 300_000},
            )
            await consume_queue.bind(name)
        else:
            exchange = await publish_channel.declare_exchange(
                name, aio_pika.ExchangeType.DIRECT, durable=True
            )
            quorum = {"x-queue-type": "quorum"}
            queue = await publish_channel.declare_queue(name, durable=True, arguments=quorum)
            await queue.bind(exchange, routing_key="tasks")
            consume_queue = await consume_channel.declare_queue(
                name, durable=True, arguments=quorum
            )

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal seen
            json.loads(message.body)
            await message.ack()
            seen += 1
            if seen == args.events:
                done.set()

        await consume_queue.consume(on_message)

        async def emit(n: int) -> None:
            body = json.dumps({"n": n}).encode()
            await exchange.publish(
                aio_pika.Message(
                    body,
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    headers={
                        "x-gemstone-event": event,
                        "x-gemstone-service": "bench-raw",
                        "x-gemstone-broadcast": broadcast,
                    },
                    message_id=f"{random.getrandbits(128):032x}",
                    timestamp=time.time(),
                    app_id="bench-raw",
                ),
                routing_key="" if broadcast else "tasks",
                mandatory=False,
            )

        started = time.perf_counter()
        await publish_all(emit, args.events, args.window)
        await asyncio.wait_for(done.wait(), 300)
        rate = args.events / (time.perf_counter() - started)
        if not broadcast:
            await queue.delete(if_unused=False, if_empty=False)
        else:
            await consume_queue.delete(if_unused=False, if_empty=False)
        return rate


async def measure(url: str, args: argparse.Namespace) -> None:
    for broadcast in (False, True):
        await measure_kind(url, args, broadcast=broadcast)


async def _timed(run: Any) -> tuple[float, float]:
    # events/s, and this process's CPU µs per event (publisher and consumer both run here).
    cpu = time.process_time()
    rate = await run
    return rate, time.process_time() - cpu


async def measure_kind(url: str, args: argparse.Namespace, *, broadcast: bool) -> None:
    ours: list[float] = []
    raw: list[float] = []
    memory: list[float] = []
    ratios: list[float] = []
    cpu_ours: list[float] = []
    cpu_raw: list[float] = []
    print(f"\nbroadcast={broadcast}:")
    for round_ in range(args.rounds):
        # Alternate which side runs first: the broker may still be tidying up after a run.
        first_raw = round_ % 2 == 0
        if first_raw:
            rate, cpu = await _timed(run_raw(url, args, broadcast=broadcast))
            raw.append(rate)
            cpu_raw.append(cpu / args.events * 1e6)
        transport = RabbitMqEventTransport(url, prefetch_count=args.prefetch)
        rate, cpu = await _timed(run_gemstone(transport, args, broadcast=broadcast))
        ours.append(rate)
        cpu_ours.append(cpu / args.events * 1e6)
        if not first_raw:
            rate, cpu = await _timed(run_raw(url, args, broadcast=broadcast))
            raw.append(rate)
            cpu_raw.append(cpu / args.events * 1e6)
        ratios.append(ours[-1] / raw[-1])
        bus = InMemoryEventTransport(bus=InMemoryEventBus())
        memory.append(await run_gemstone(bus, args, broadcast=broadcast))
        print(
            f"round {round_ + 1}: raw aio-pika {raw[-1]:6.0f} ev/s {cpu_raw[-1]:5.0f} µs CPU/ev   "
            f"gemstone-aio RabbitMQ {ours[-1]:6.0f} ev/s {cpu_ours[-1]:5.0f} µs CPU/ev "
            f"({ratios[-1]:.2f}x)   in-memory {memory[-1]:6.0f} ev/s"
        )
    med_raw, med_ours, med_mem = (statistics.median(x) for x in (raw, ours, memory))
    med_cpu_raw, med_cpu_ours = statistics.median(cpu_raw), statistics.median(cpu_ours)
    print(
        f"median of {args.rounds}, broadcast={broadcast}, {args.events} events, "
        f"window {args.window}, prefetch {args.prefetch}:"
    )
    print(
        f"  raw aio-pika (publish+confirm, consume+ack): {med_raw:8.0f} events/s"
        f"  {med_cpu_raw:5.0f} µs CPU per event"
    )
    print(
        f"  gemstone-aio RabbitMQ transport:             {med_ours:8.0f} events/s"
        f"  {med_cpu_ours:5.0f} µs CPU per event"
        f"  ({statistics.median(ratios):.2f}x raw: median of the rounds' ratios;"
        f" CPU {med_cpu_raw / med_cpu_ours:.2f}x)"
    )
    print(
        f"  gemstone-aio in-memory transport:            {med_mem:8.0f} events/s"
        f"  ({med_mem / med_raw:.2f}x raw RabbitMQ)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--prefetch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--url", default=None, help="use this broker instead of a private node")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    # Robust connections left by the runs retry once the node is stopped at the end: expected.
    logging.getLogger("aiormq").setLevel(logging.CRITICAL)
    if args.url:
        asyncio.run(measure(args.url, args))
        return
    from tests.fixtures.rabbitmq import RabbitMqNode

    base = Path(tempfile.mkdtemp(prefix="gemstone-bench-rabbitmq-"))
    node = RabbitMqNode(base)
    try:
        print("starting a private RabbitMQ node ...", flush=True)
        node.start()
        asyncio.run(measure(node.url, args))
    finally:
        node.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
