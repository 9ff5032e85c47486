"""The dispatcher counts the deliveries a broker saw come back as attempts (issue 20, item 4)."""

from __future__ import annotations

import logging
from typing import Any

from gemstone_aio.event._base import Delivery
from gemstone_aio.event._dispatch import BoundHandler, EventDispatcher
from gemstone_aio.event._memory import InMemoryEventTransport


class CountedDelivery(Delivery):
    """A delivery whose broker says it came back ``previous`` times before."""

    def __init__(self, previous: int) -> None:
        self.event_name = "job"
        self.body = b'"work"'
        self.headers = {}
        self.broadcast = False
        self.previous_deliveries = previous
        self.outcome: tuple[str, Any] | None = None

    async def ack(self) -> None:
        self.outcome = ("ack", None)

    async def dead_letter(self, reason: str, attempts: int) -> None:
        self.outcome = ("dead", (reason, attempts))

    async def requeue(self) -> None:
        self.outcome = ("requeue", None)


class Owner:
    __gemstone_events__ = {"job": ["on_job"]}

    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.runs = 0

    async def on_job(self, body: str) -> None:
        self.runs += 1
        if self.fail:
            raise RuntimeError("still broken")


async def run_blocking(func: Any, *args: Any) -> Any:
    return func(*args)


def dispatcher(owner: Owner, max_attempts: int) -> EventDispatcher:
    transport = InMemoryEventTransport(max_attempts=max_attempts, retry_delay=0)
    handlers = BoundHandler.bind([owner])["job"]
    return EventDispatcher("job", handlers, transport, run_blocking, logging.getLogger("t"))


async def test_a_message_delivered_max_attempts_times_is_dead_lettered_unrun() -> None:
    """Three deliveries came back unsettled (the consumer died each time): the fourth is
    dead-lettered before the handler runs, saying why."""
    owner = Owner(fail=False)
    delivery = CountedDelivery(previous=3)
    await dispatcher(owner, max_attempts=3)(delivery)
    assert owner.runs == 0
    assert delivery.outcome is not None
    kind, (reason, attempts) = delivery.outcome
    assert kind == "dead"
    assert attempts == 3
    assert reason.startswith("delivered 3 times without being acknowledged")


async def test_earlier_deliveries_use_up_attempts() -> None:
    """Two deliveries came back: of five attempts, the handler gets three here."""
    owner = Owner(fail=True)
    delivery = CountedDelivery(previous=2)
    await dispatcher(owner, max_attempts=5)(delivery)
    assert owner.runs == 3
    assert delivery.outcome is not None
    assert delivery.outcome[0] == "dead"
    assert delivery.outcome[1][1] == 5


async def test_a_first_delivery_runs_as_before() -> None:
    owner = Owner(fail=False)
    delivery = CountedDelivery(previous=0)
    await dispatcher(owner, max_attempts=1)(delivery)
    assert (owner.runs, delivery.outcome) == (1, ("ack", None))
