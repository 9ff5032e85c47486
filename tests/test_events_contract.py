"""Event delivery contract: every case runs against the in-memory and the RabbitMQ transport."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pydantic
import pytest

import gemstone_aio as gemstone
from gemstone_aio.event._base import BaseEventTransport
from gemstone_aio.testing import serving
from tests.fixtures.events import EventBackend, Recorder, unique

FAST_RETRY: dict[str, Any] = {"max_attempts": 3, "retry_delay": 0.01, "max_retry_delay": 0.05}


class Greeting(pydantic.BaseModel):
    name: str
    times: int


def subscriber_class(
    event: str, transport: BaseEventTransport, recorder: Recorder, *, fail_first: int = 0
) -> type[gemstone.MicroService]:
    """A service whose handler records the body; it fails ``fail_first`` times first."""
    failures = {"left": fail_first}

    class Subscriber(gemstone.MicroService):
        name = unique("subscriber")
        event_transports = [transport]
        label = "?"

        @gemstone.event_handler(event)
        async def on_event(self, body: Any) -> None:
            await recorder.add(self.label, body)
            if failures["left"] > 0:
                failures["left"] -= 1
                raise RuntimeError(f"failure number {fail_first - failures['left']}")

    return Subscriber


def publisher_class(event: str, transport: BaseEventTransport) -> type[gemstone.MicroService]:
    """A service that emits ``event`` from its start hook, async and blocking methods."""

    class Publisher(gemstone.MicroService):
        name = unique("publisher")
        event_transports = [transport]
        emit_on_start: Any = None

        async def on_service_start(self) -> None:
            if self.emit_on_start is not None:
                self.emit_event(event, self.emit_on_start, broadcast=False)  # not awaited

        @gemstone.exposed_method()
        async def emit_async(self, body: Any, broadcast: bool = True) -> str:
            await self.emit_event(event, body, broadcast=broadcast)
            return "confirmed"

        @gemstone.exposed_method()
        def emit_blocking(self, body: Any, broadcast: bool = True) -> str:
            self.emit_event(event, body, broadcast=broadcast).result(timeout=20)
            return "confirmed"

        @gemstone.exposed_method()
        def emit_unserialisable(self) -> str:
            self.emit_event(event, {"when": object()})
            return "unreachable"

    return Publisher


async def call(service: gemstone.MicroService, method: str, *params: Any) -> dict[str, Any]:
    """Call a JSON-RPC method of a serving service over real HTTP."""
    assert service.accessible_at is not None
    async with aiohttp.ClientSession() as session:
        payload = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        async with session.post(service.accessible_at, json=payload) as response:
            reply: dict[str, Any] = await response.json()
            return reply


@contextlib.asynccontextmanager
async def running(*services: gemstone.MicroService) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        for service in services:
            await stack.enter_async_context(serving(service))
        yield


def labelled(cls: type[gemstone.MicroService], label: str) -> gemstone.MicroService:
    service = cls()
    service.label = label  # type: ignore[attr-defined]
    return service


async def test_broadcast_reaches_every_instance_once(event_backend: EventBackend) -> None:
    """broadcast=True: each of three running instances handles each event exactly once."""
    event, recorder = unique("bcast"), Recorder()
    sub = subscriber_class(event, event_backend.transport(), recorder)
    instances = [labelled(sub, f"i{n}") for n in range(3)]
    publisher = publisher_class(event, event_backend.transport())()
    async with running(*instances, publisher):
        for n in range(5):
            await publisher.emit_event(event, n)
        await publisher.emit_event(event, "end")
        await recorder.wait_for(lambda items: sum(v == "end" for _, v in items) == 3)
    for label in ("i0", "i1", "i2"):
        assert recorder.by(label) == [0, 1, 2, 3, 4, "end"]


async def test_one_of_n_handles_each_event_exactly_once(event_backend: EventBackend) -> None:
    """broadcast=False: among three instances, each event is handled by exactly one."""
    event, recorder = unique("task"), Recorder()
    sub = subscriber_class(event, event_backend.transport(), recorder)
    instances = [labelled(sub, f"i{n}") for n in range(3)]
    publisher = publisher_class(event, event_backend.transport())()
    async with running(*instances, publisher):
        for n in range(30):
            await publisher.emit_event(event, n, broadcast=False)
        await recorder.wait_count(30)
    assert sorted(value for _, value in recorder.items) == list(range(30))


async def test_event_emitted_before_any_subscriber_is_delivered_later(
    event_backend: EventBackend,
) -> None:
    """broadcast=False waits on a durable queue until a subscriber starts."""
    event, recorder = unique("early"), Recorder()
    publisher = publisher_class(event, event_backend.transport())()
    async with running(publisher):
        await publisher.emit_event(event, {"early": True}, broadcast=False)
    subscriber = labelled(subscriber_class(event, event_backend.transport(), recorder), "late")
    async with running(subscriber):
        await recorder.wait_count(1)
    assert recorder.items == [("late", {"early": True})]


async def test_failing_handler_is_retried_then_succeeds(event_backend: EventBackend) -> None:
    """A handler failing twice runs a third time; the event is not dead-lettered."""
    event, recorder = unique("flaky"), Recorder()
    sub = subscriber_class(event, event_backend.transport(**FAST_RETRY), recorder, fail_first=2)
    publisher = publisher_class(event, event_backend.transport())()
    async with running(labelled(sub, "s"), publisher):
        await publisher.emit_event(event, "work", broadcast=False)
        await recorder.wait_count(3)
        await publisher.emit_event(event, "more", broadcast=False)
        await recorder.wait_count(4)
    assert [v for _, v in recorder.items] == ["work", "work", "work", "more"]


async def test_handler_failing_every_time_is_dead_lettered(event_backend: EventBackend) -> None:
    """After max_attempts failures the message goes to the dead-letter queue with the reason."""
    event, recorder = unique("doomed"), Recorder()
    sub = subscriber_class(event, event_backend.transport(**FAST_RETRY), recorder, fail_first=99)
    publisher = publisher_class(event, event_backend.transport())()
    async with running(labelled(sub, "s"), publisher):
        await publisher.emit_event(event, {"n": 1}, broadcast=False)
        [letter] = await event_backend.dead_letters(event, 1)
    assert recorder.by("s") == [{"n": 1}] * 3
    assert letter.attempts == 3
    assert "RuntimeError" in letter.reason
    assert "failure number 3" in letter.reason
    assert letter.body == b'{"n":1}'


async def test_invalid_body_is_dead_lettered_and_consumer_goes_on(
    event_backend: EventBackend,
) -> None:
    """A body that fails the annotation is dead-lettered at once; later events still work."""
    event, recorder = unique("typed"), Recorder()

    class Typed(gemstone.MicroService):
        name = unique("typed")
        event_transports = [event_backend.transport(**FAST_RETRY)]

        @gemstone.event_handler(event)
        async def on_greeting(self, body: Greeting) -> None:
            await recorder.add("typed", body)

    publisher = publisher_class(event, event_backend.transport())()
    async with running(Typed(), publisher):
        await publisher.emit_event(event, {"name": "ann"}, broadcast=False)
        [letter] = await event_backend.dead_letters(event, 1)
        await publisher.emit_event(event, {"name": "bob", "times": "2"}, broadcast=False)
        await recorder.wait_count(1)
    assert letter.attempts == 0
    assert "invalid body" in letter.reason
    assert "times" in letter.reason
    assert recorder.items == [("typed", Greeting(name="bob", times=2))]


@pytest.mark.parametrize("broadcast", [True, False])
async def test_undecodable_body_is_dead_lettered(
    event_backend: EventBackend, broadcast: bool
) -> None:
    """Bytes that are not UTF-8 JSON never reach a handler; they are dead-lettered."""
    event, recorder = unique("garbage"), Recorder()
    sub = subscriber_class(event, event_backend.transport(), recorder)
    async with running(labelled(sub, "s")):
        await event_backend.publish_raw(event, b"\xff not json", broadcast=broadcast)
        [letter] = await event_backend.dead_letters(event, 1)
        await event_backend.publish_raw(event, b'"fine"', broadcast=broadcast)
        await recorder.wait_count(1)
    assert "undecodable" in letter.reason
    assert letter.body == b"\xff not json"
    assert recorder.items == [("s", "fine")]


async def test_emit_from_start_hook_async_and_blocking_methods(
    event_backend: EventBackend,
) -> None:
    """emit_event works from on_service_start, an async method and a blocking method."""
    event, recorder = unique("origins"), Recorder()
    sub = subscriber_class(event, event_backend.transport(), recorder)
    publisher = publisher_class(event, event_backend.transport())()
    publisher.emit_on_start = "from start"  # type: ignore[attr-defined]
    async with running(labelled(sub, "s"), publisher):
        assert (await call(publisher, "emit_async", "from async", False))["result"] == "confirmed"
        assert (await call(publisher, "emit_blocking", "from thread", False))[
            "result"
        ] == "confirmed"
        await recorder.wait_count(3)
    assert sorted(recorder.by("s")) == ["from async", "from start", "from thread"]


async def test_unserialisable_body_fails_at_once_and_publishes_nothing(
    event_backend: EventBackend,
) -> None:
    """A body that is not JSON raises EventBodyError naming the event; nothing is sent."""
    event, recorder = unique("bad-body"), Recorder()
    sub = subscriber_class(event, event_backend.transport(), recorder)
    publisher = publisher_class(event, event_backend.transport())()
    async with running(labelled(sub, "s"), publisher):
        with pytest.raises(gemstone.EventBodyError, match=event):
            publisher.emit_event(event, {"values": {1, 2}}, broadcast=False)
        with pytest.raises(gemstone.EventBodyError, match="not JSON-serialisable"):
            publisher.emit_event(event, float("nan"))
        reply = await call(publisher, "emit_unserialisable")
        assert reply["error"]["code"] == -32603
        await publisher.emit_event(event, "valid", broadcast=False)
        await recorder.wait_count(1)
    assert recorder.items == [("s", "valid")]


async def test_unawaited_emits_are_published_before_shutdown(event_backend: EventBackend) -> None:
    """Events emitted without await, even from on_service_stop, are confirmed before close."""
    event, recorder = unique("drain"), Recorder()

    class Emitter(gemstone.MicroService):
        name = unique("emitter")
        event_transports = [event_backend.transport()]

        def on_service_stop(self) -> None:
            for n in range(50):
                self.emit_event(event, n, broadcast=False)

    subscriber = labelled(subscriber_class(event, event_backend.transport(), recorder), "s")
    async with running(subscriber):
        async with running(Emitter()):
            pass
        await recorder.wait_count(50)
    assert sorted(recorder.by("s")) == list(range(50))


async def test_blocking_and_module_handlers(event_backend: EventBackend) -> None:
    """Plain def handlers run in the pool; handlers of modules are subscribed too."""
    event, recorder = unique("mod"), Recorder()

    class Listener(gemstone.Module):
        @gemstone.event_handler(event)
        def on_event(self, body: int) -> None:
            recorder.add_threadsafe(f"module:{self.microservice.name}", body * 2)

    class Host(gemstone.MicroService):
        name = unique("host")
        event_transports = [event_backend.transport()]
        modules = [Listener()]

        @gemstone.event_handler(event)
        def also(self, body: int) -> None:
            recorder.add_threadsafe("host", body)

    host = Host()
    async with running(host):
        await host.emit_event(event, 21, broadcast=False)
        await recorder.wait_count(2)
    assert sorted(recorder.items, key=str) == sorted(
        [("host", 21), (f"module:{host.name}", 42)], key=str
    )


async def test_shutdown_lets_in_flight_handlers_finish(event_backend: EventBackend) -> None:
    """On shutdown consumption stops first; the running handler completes and is acked."""
    event, recorder = unique("inflight"), Recorder()
    started, release, stopping = asyncio.Event(), asyncio.Event(), asyncio.Event()

    class Busy(gemstone.MicroService):
        name = unique("busy")
        event_transports = [event_backend.transport()]

        @gemstone.event_handler(event)
        async def on_event(self, body: Any) -> None:
            started.set()
            await release.wait()
            await recorder.add("busy", body)

    busy = Busy()
    transport = busy.event_transports[0]
    stop_consuming = transport.stop_consuming

    async def observed_stop(grace_period: float) -> None:
        stopping.set()
        await stop_consuming(grace_period)

    transport.stop_consuming = observed_stop  # type: ignore[method-assign]
    context = serving(busy)
    await context.__aenter__()
    await busy.emit_event(event, "job", broadcast=False)
    await asyncio.wait_for(started.wait(), 20)
    shutdown = asyncio.create_task(context.__aexit__(None, None, None))
    await asyncio.wait_for(stopping.wait(), 20)
    assert not shutdown.done()
    assert recorder.items == []
    release.set()
    await asyncio.wait_for(shutdown, 30)
    assert recorder.items == [("busy", "job")]
    assert await event_backend.pending(event) == 0


async def test_consumers_start_after_on_service_start(event_backend: EventBackend) -> None:
    """A queued event is handled only once on_service_start has finished."""
    event, recorder = unique("order"), Recorder()
    publisher = publisher_class(event, event_backend.transport())()
    async with running(publisher):
        await publisher.emit_event(event, "queued", broadcast=False)

    class Ordered(gemstone.MicroService):
        name = unique("ordered")
        event_transports = [event_backend.transport()]
        waiting_at_start = -1

        async def on_service_start(self) -> None:
            self.waiting_at_start = await event_backend.pending(event)

        @gemstone.event_handler(event)
        async def on_event(self, body: Any) -> None:
            await recorder.add("ordered", (body, self.waiting_at_start))

    async with running(Ordered()):
        await recorder.wait_count(1)
    assert recorder.items == [("ordered", ("queued", 1))]
