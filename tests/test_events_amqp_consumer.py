"""The shared-queue consumer's modes and ordering, on stand-ins for a channel and a queue.

The broker-side behaviour (counts, crashes) is tested with a real RabbitMQ node and real
processes in ``tests/test_events_faults.py``; here the order of handling is checked
step by step, which a real broker cannot make deterministic.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from gemstone_aio.event._amqp_consumer import SharedQueueConsumer


@dataclass
class Message:
    body: str
    headers: dict[str, Any] = field(default_factory=dict)


class Channel:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def set_qos(self, prefetch_count: int) -> None:
        self.calls.append(("qos", prefetch_count))

    async def ready(self) -> None:
        return None


class Queue:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.tags = 0

    async def consume(self, callback: Any) -> str:
        self.tags += 1
        self.channel.calls.append(("consume", self.tags))
        return f"tag{self.tags}"

    async def cancel(self, tag: str) -> None:
        self.channel.calls.append(("cancel", tag))


class Handler:
    """Handles messages when the test says so; records the order they started in."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release: dict[str, asyncio.Event] = {}

    async def __call__(self, message: Message) -> None:
        self.started.append(message.body)
        await self.release.setdefault(message.body, asyncio.Event()).wait()

    def let_go(self, body: str) -> None:
        self.release.setdefault(body, asyncio.Event()).set()


def consumer(handler: Handler, *, counted: bool = True) -> tuple[SharedQueueConsumer, Channel]:
    channel = Channel()
    made = SharedQueueConsumer(
        channel,  # type: ignore[arg-type]
        Queue(channel),  # type: ignore[arg-type]
        8,
        counted=counted,
        handle=handler,  # type: ignore[arg-type]
        wrap=lambda handle: handle,
    )
    return made, channel


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def came_back(body: str, times: int = 1) -> Message:
    return Message(body, {"x-delivery-count": times})


async def test_starts_cautious_and_goes_normal_on_a_fresh_message_before_handling_it() -> None:
    handler = Handler()
    shared, channel = consumer(handler)
    await shared.start()
    assert (shared.mode, channel.calls) == ("cautious", [("qos", 1), ("consume", 1)])
    task = asyncio.create_task(shared.on_message(Message("fresh")))  # type: ignore[arg-type]
    await settle()
    # Switched while "fresh" is held: cancel the prefetch-1 consumer, then prefetch 8.
    assert channel.calls[2:] == [("cancel", "tag1"), ("qos", 8), ("consume", 2)]
    assert handler.started == ["fresh"]
    handler.let_go("fresh")
    await task
    assert shared.mode == "normal"


async def test_messages_that_came_back_stay_cautious() -> None:
    handler = Handler()
    shared, channel = consumer(handler)
    await shared.start()
    task = asyncio.create_task(shared.on_message(came_back("suspect")))  # type: ignore[arg-type]
    await settle()
    assert shared.mode == "cautious"
    assert channel.calls == [("qos", 1), ("consume", 1)]
    handler.let_go("suspect")
    await task


async def test_a_suspect_waits_for_the_running_and_runs_before_the_later_ones() -> None:
    """Normal mode: a message that came back waits until the ones running finished; the
    ones received after it wait until it is done; two suspects run one after the other."""
    handler = Handler()
    shared, _ = consumer(handler)
    await shared.start()
    first = asyncio.create_task(shared.on_message(Message("a")))  # type: ignore[arg-type]
    await settle()
    assert shared.mode == "normal"
    tasks = [first]
    for message in (Message("b"), came_back("s1"), came_back("s2"), Message("c")):
        tasks.append(asyncio.create_task(shared.on_message(message)))  # type: ignore[arg-type]
        await settle()
    assert handler.started == ["a", "b"]  # s1 waits for a and b; c waits for s1 and s2
    handler.let_go("a")
    handler.let_go("b")
    await settle()
    assert handler.started == ["a", "b", "s1"]
    handler.let_go("s1")
    await settle()
    assert handler.started == ["a", "b", "s1", "s2"]
    handler.let_go("s2")
    await settle()
    assert handler.started == ["a", "b", "s1", "s2", "c"]
    handler.let_go("c")
    await asyncio.gather(*tasks)


async def test_a_classic_queue_has_no_modes() -> None:
    handler = Handler()
    shared, channel = consumer(handler, counted=False)
    await shared.start()
    assert channel.calls == [("qos", 8), ("consume", 1)]
    tasks = [
        asyncio.create_task(shared.on_message(m))  # type: ignore[arg-type]
        for m in (Message("a"), came_back("b"), Message("c"))
    ]
    await settle()
    assert handler.started == ["a", "b", "c"]  # no count on a classic queue: all at once
    for body in "abc":
        handler.let_go(body)
    await asyncio.gather(*tasks)
    await shared.stop(1.0)
    assert channel.calls[-1] == ("cancel", "tag1")
