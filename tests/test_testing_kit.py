"""The test kit's fixtures, run once with in-memory events and once on RabbitMQ.

``gemstone_amqp_url`` is the kit's switch: overridden here to take both values, the same
tests run on the test's own in-memory bus and on the session's private RabbitMQ node.
"""

from __future__ import annotations

import pydantic
import pytest

import gemstone_aio as gemstone
from gemstone_aio.testing import (
    EventCapture,
    EventNotHandledError,
    HandledEvent,
    PublishedEvent,
    ServiceKit,
)


@pytest.fixture(params=["memory", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def gemstone_amqp_url(request: pytest.FixtureRequest) -> str | None:
    """Both backends: ``None`` is the in-memory bus, a URL the test RabbitMQ node."""
    if request.param == "memory":
        return None
    url: str = request.getfixturevalue("rabbitmq_url")
    return url


class Order(pydantic.BaseModel):
    item: str
    quantity: int


class Stock(gemstone.MicroService):
    name = "kit.stock"
    event_transports = [gemstone.InMemoryEventTransport(max_attempts=2, retry_delay=0.01)]

    def __init__(self) -> None:
        super().__init__()
        self.stock = {"apple": 10}

    @gemstone.exposed_method()
    async def available(self, item: str) -> int:
        return self.stock.get(item, 0)

    @gemstone.event_handler("kit.order_placed")
    async def take_out(self, order: Order) -> None:
        if order.quantity < 0:
            raise ValueError(f"negative quantity {order.quantity}")
        self.stock[order.item] -= order.quantity


class Shop(gemstone.MicroService):
    name = "kit.shop"

    @gemstone.exposed_method()
    async def order(self, item: str, quantity: int) -> str:
        stock = await self.get_service("kit.stock")
        if await stock.call("available", item) < quantity:
            return "out of stock"
        await self.emit_event(
            "kit.order_placed", {"item": item, "quantity": quantity}, broadcast=False
        )
        return "ordered"


async def test_services_find_each_other_and_the_event_is_handled(
    gemstone_services: ServiceKit, gemstone_events: EventCapture
) -> None:
    """Two services served with a registry; the waiter returns once the event was handled."""
    stock, shop = await gemstone_services.serve(Stock(), Shop())
    assert gemstone_services.registry is not None
    assert await gemstone_services.client(shop).call("order", "apple", 3) == "ordered"
    handled = await gemstone_events.wait_handled("kit.order_placed")
    assert handled == [
        HandledEvent("kit.order_placed", {"item": "apple", "quantity": 3}, "kit.stock", "ok")
    ]
    assert stock.stock["apple"] == 7
    assert gemstone_events.published() == [
        PublishedEvent("kit.order_placed", {"item": "apple", "quantity": 3}, False, "kit.shop")
    ]
    assert gemstone_events.published_bodies("kit.order_placed") == [
        {"item": "apple", "quantity": 3}
    ]


async def test_a_dead_lettered_event_fails_the_wait_with_its_reason(
    gemstone_services: ServiceKit, gemstone_events: EventCapture
) -> None:
    """The consumer's declared retry settings hold; the waiter fails at once with the reason."""
    _, shop = await gemstone_services.serve(Stock(), Shop())
    assert await gemstone_services.client(shop).call("order", "apple", -1) == "ordered"
    with pytest.raises(EventNotHandledError, match="negative quantity -1"):
        await gemstone_events.wait_handled("kit.order_placed")
    (letter,) = await gemstone_events.wait_dead_lettered("kit.order_placed")
    assert (letter.service, letter.attempts) == ("kit.stock", 2)


async def test_an_event_nobody_handles_times_out_with_a_summary(
    gemstone_services: ServiceKit, gemstone_events: EventCapture
) -> None:
    """The timeout names the event and what was seen of it."""
    (shop,) = await gemstone_services.serve(Shop(), registry=False)
    assert gemstone_services.registry is None
    await shop.emit_event("kit.nobody_listens", {"n": 1})
    (published,) = await gemstone_events.wait_published("kit.nobody_listens")
    assert published.broadcast is True
    with pytest.raises(EventNotHandledError) as caught:
        await gemstone_events.wait_handled("kit.nobody_listens", timeout=0.2)
    assert str(caught.value) == (
        "event 'kit.nobody_listens' was not handled 1 time(s) (so far: 1 published, "
        "0 handled, 0 dead-lettered) within 0.2 s"
    )


async def test_a_client_needs_a_served_service(gemstone_services: ServiceKit) -> None:
    """Asking a client for a service that is not served is a clear error."""
    with pytest.raises(ValueError, match=r"kit\.stock is not served"):
        gemstone_services.client(Stock())
