"""The events examples, run against the test RabbitMQ node."""

from __future__ import annotations

from typing import Any

import pytest
from examples.example_events.service import EventTestService, Greeting
from examples.example_events.service2 import EventTestService2
from examples.example_events.worker import ResizeJob, ResizeWorker

import gemstone_aio as gemstone
from gemstone_aio.event import RabbitMqEventTransport
from tests.fixtures.events import RabbitBackend, Recorder, unique
from tests.test_events_contract import call, running

pytestmark = pytest.mark.rabbitmq


def on_broker(cls: type[Any], url: str, **attrs: Any) -> Any:
    """The example class, pointed at the test broker, with a unique service name."""
    attrs.setdefault(
        "event_transports", [RabbitMqEventTransport(url, max_attempts=2, retry_delay=0.01)]
    )
    return type(cls.__name__, (cls,), {"name": unique(cls.name), **attrs})


async def test_say_hello_reaches_every_subscriber(rabbitmq_url: str) -> None:
    """service2.say_hello emits said_hello; both running subscribers handle it."""
    recorder = Recorder()

    class Observed(EventTestService):
        @gemstone.event_handler("said_hello")
        def said_hello(self, body: Greeting) -> None:
            super().said_hello(body)
            recorder.add_threadsafe(self.name or "", body.name)

    subscriber_cls = on_broker(Observed, rabbitmq_url)
    first, second = subscriber_cls(), subscriber_cls()
    publisher = on_broker(EventTestService2, rabbitmq_url)()
    name = unique("Ann")
    async with running(first, second, publisher):
        assert (await call(publisher, "say_hello", name))["result"] == f"hello {name}"
        await recorder.wait_for(lambda items: sum(v == name for _, v in items) == 2)
    assert name in first.greeted
    assert name in second.greeted


async def test_competing_workers_share_the_jobs(rabbitmq_url: str) -> None:
    """Two workers: every resize job is done by exactly one; a bad job is dead-lettered."""
    recorder = Recorder()

    class Observed(ResizeWorker):
        @gemstone.event_handler("resize_image")
        async def resize(self, job: ResizeJob) -> None:
            await super().resize(job)
            await recorder.add(str(id(self)), job["image"])

    backend = RabbitBackend(rabbitmq_url)
    workers = on_broker(Observed, rabbitmq_url)
    one, two = workers(), workers()
    publisher = on_broker(EventTestService2, rabbitmq_url)()
    images = [unique("img") for _ in range(10)]
    try:
        async with running(one, two, publisher):
            for image in images:
                assert (await call(publisher, "request_resize", image, 64))["result"] == "queued"
            await recorder.wait_for(lambda items: set(images) <= {v for _, v in items})
            bad = unique("bad")
            await call(publisher, "request_resize", bad, 0)
            letters = await backend.dead_letters("resize_image", 1)
    finally:
        await backend.close()
    done = [job["image"] for job in one.done + two.done if job["image"] in images]
    assert sorted(done) == sorted(images)
    assert any(
        "cannot resize" in letter.reason and bad.encode() in letter.body for letter in letters
    )
