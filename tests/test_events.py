"""Events API details that need no broker: configuration errors, per-instance transports."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

import gemstone_aio as gemstone
from gemstone_aio.event._base import BaseEventTransport, encode_body
from gemstone_aio.event._dispatch import BoundHandler
from gemstone_aio.event._memory import (
    InMemoryEventBus,
    InMemoryEventTransport,
    current_default_bus,
)
from gemstone_aio.testing import serving
from tests.fixtures.events import Recorder, unique


def test_each_instance_gets_its_own_transport_copies() -> None:
    """A transport in the class body is a template; instances never share one."""
    template = gemstone.RabbitMqEventTransport("amqp://guest:guest@127.0.0.1:1/")

    class Service(gemstone.MicroService):
        name = unique("svc")
        event_transports = [template]

    first, second = Service(), Service()
    assert first.event_transports is not second.event_transports
    assert first.event_transports[0] is not second.event_transports[0]
    assert first.event_transports[0] is not template
    assert Service.event_transports == [template]
    copy = first.event_transports[0]
    assert isinstance(copy, gemstone.RabbitMqEventTransport)
    assert copy.url == template.url


def test_rabbitmq_transport_settings_are_checked_and_the_password_hidden() -> None:
    """Bad settings fail at once, naming the value; repr never shows the password."""
    transport = gemstone.RabbitMqEventTransport("amqp://user:s3cret@127.0.0.1:5672/")
    assert "s3cret" not in repr(transport)
    with pytest.raises(gemstone.ServiceConfigurationError, match="max_attempts"):
        InMemoryEventTransport(max_attempts=0)
    with pytest.raises(gemstone.ServiceConfigurationError, match="retry_delay"):
        InMemoryEventTransport(retry_delay=-1)
    with pytest.raises(gemstone.ServiceConfigurationError, match="prefetch_count"):
        gemstone.RabbitMqEventTransport(prefetch_count=0)
    with pytest.raises(gemstone.ServiceConfigurationError, match="not both"):
        gemstone.RabbitMqEventTransport("amqp://127.0.0.1/", 5672)


def test_retry_backoff_doubles_up_to_its_bound() -> None:
    """The delay before retry n is retry_delay * 2**(n-1), capped by max_retry_delay."""
    transport = InMemoryEventTransport(retry_delay=0.5, max_retry_delay=3)
    assert [transport.retry_backoff(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_encode_body_names_the_event_and_the_problem() -> None:
    """Bodies are compact UTF-8 JSON; anything else raises EventBodyError (a TypeError)."""
    assert encode_body("e", {"k": "é", "n": [1, 2.5, None, True]}) == (
        '{"k":"é","n":[1,2.5,null,true]}'.encode()
    )
    with pytest.raises(gemstone.EventBodyError, match=r"'orders\.created'.*not JSON-serialisable"):
        encode_body("orders.created", {"at": object()})
    with pytest.raises(TypeError):
        encode_body("e", b"bytes")


def test_emit_before_the_service_runs_is_a_clear_error() -> None:
    """Outside a running service there is no transport to publish on."""

    class Idle(gemstone.MicroService):
        name = unique("idle")

    with pytest.raises(gemstone.EventPublishError, match="is not running"):
        Idle().emit_event("something", 1)
    with pytest.raises(gemstone.EventBodyError):
        Idle().emit_event("something", {1, 2})  # the body is checked first
    with pytest.raises(gemstone.ServiceConfigurationError, match="invalid event name"):
        Idle().emit_event("", 1)


def test_handlers_must_take_the_body() -> None:
    """A handler without a body parameter is refused when the service is built."""

    class Broken(gemstone.MicroService):
        name = unique("broken")

        @gemstone.event_handler("e")
        async def no_body(self) -> None:
            return None

    with pytest.raises(gemstone.ServiceConfigurationError, match="exactly one argument"):
        Broken().make_app()


def test_unannotated_and_any_handlers_get_raw_json() -> None:
    """Only an annotation other than Any/object turns on validation."""

    class Service(gemstone.MicroService):
        name = unique("svc")

        @gemstone.event_handler("a")
        def plain(self, body):
            return None

        @gemstone.event_handler("b")
        def any_body(self, body: Any) -> None:
            return None

        @gemstone.event_handler("c")
        def typed(self, body: list[int]) -> None:
            return None

    handlers = BoundHandler.bind([Service()])
    assert handlers["a"][0].adapter is None
    assert handlers["b"][0].adapter is None
    assert handlers["c"][0].adapter is not None
    assert handlers["c"][0].adapter.validate_json("[1, 2]") == [1, 2]


async def test_default_transport_is_in_memory_and_shared_by_services_of_a_process() -> None:
    """With no event_transports, two services in one process exchange events."""
    event, recorder = unique("local"), Recorder()

    class Listener(gemstone.MicroService):
        name = unique("listener")

        @gemstone.event_handler(event)
        async def on_event(self, body: Any) -> None:
            await recorder.add("listener", body)

    class Talker(gemstone.MicroService):
        name = unique("talker")

    talker = Talker()
    async with serving(Listener()), serving(talker):
        await talker.emit_event(event, "hi")
        await recorder.wait_count(1)
    assert recorder.items == [("listener", "hi")]
    assert current_default_bus().pending(event) == 0


async def test_publish_result_waits_from_threads_and_is_awaitable() -> None:
    """From a thread, .result() blocks until confirmed; on the loop it must be awaited."""
    bus = InMemoryEventBus()
    event = unique("threads")

    class Service(gemstone.MicroService):
        name = unique("svc")
        event_transports = [InMemoryEventTransport(bus=bus)]

    service = Service()
    async with serving(service):
        result = service.emit_event(event, 1, broadcast=False)
        with pytest.raises(RuntimeError, match="await"):
            result.result()
        await result
        assert result.done()
        outcome: list[Any] = []

        def worker() -> None:
            service.emit_event(event, 2, broadcast=False).result(timeout=10)
            outcome.append("confirmed")

        thread = threading.Thread(target=worker)
        thread.start()
        await asyncio.to_thread(thread.join, 10)
    assert outcome == ["confirmed"]
    assert bus.pending(event) == 2


def test_base_transport_is_abstract() -> None:
    """Custom transports implement the five coroutine methods."""
    with pytest.raises(TypeError, match="abstract"):
        BaseEventTransport()  # type: ignore[abstract]


async def test_an_in_memory_event_without_subscriber_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One WARNING per event nothing in the process subscribes to, naming the event and
    how to configure a broker; none for an event that has a subscriber."""
    lonely, heard = unique("lonely"), unique("heard")
    recorder = Recorder()

    class Listener(gemstone.MicroService):
        name = unique("listener")

        @gemstone.event_handler(heard)
        async def on_event(self, body: Any) -> None:
            await recorder.add("listener", body)

    class Talker(gemstone.MicroService):
        name = unique("talker")

    talker = Talker()
    with caplog.at_level(logging.WARNING):
        async with serving(Listener()), serving(talker):
            for body in (1, 2):
                await talker.emit_event(lonely, body, broadcast=False)
                await talker.emit_event(heard, body)
            await recorder.wait_count(2)
    messages = [r.getMessage() for r in caplog.records if "no subscriber" in r.getMessage()]
    assert len(messages) == 1
    assert repr(lonely) in messages[0]
    assert "RabbitMqEventTransport" in messages[0]
    (record,) = [r for r in caplog.records if "no subscriber" in r.getMessage()]
    assert record.name == f"gemstone_aio.service.{Talker.name}"


def test_rabbitmq_names_stay_within_amqp_limits() -> None:
    """An event whose queue names RabbitMQ could not take is refused with its reason; an
    instance's broadcast queue name is cut to fit, keeping the instance id."""
    from gemstone_aio.event._amqp_topology import check_event_name, instance_queue_name

    check_event_name("e" * 234)  # gemstone.dead-letter. + 234 bytes = 255
    with pytest.raises(ValueError, match="too long for RabbitMQ"):
        check_event_name("e" * 235)
    name = instance_queue_name("e" * 200, "service" * 20, "0123456789ab")
    assert len(name.encode()) == 255
    assert name.endswith(".0123456789ab")
    assert name.startswith("gemstone.broadcast." + "e" * 200 + ".service")
