"""Step 1 of the tutorial: the inventory keeps stock counts.

It restocks every few seconds (a periodic task) and takes stock out when an order is
placed (an event from the orders service, handled by exactly one inventory instance).
Run it with ``python -m examples.tutorial.inventory`` from the repository root.
"""

from __future__ import annotations

import pydantic

import gemstone_aio as gemstone
from examples.tutorial.settings import REGISTRY_URL, event_transports


class OrderPlaced(pydantic.BaseModel):
    """The body of an ``order.placed`` event."""

    item: str
    quantity: int


class Inventory(gemstone.MicroService):
    """Stock counts of the shop's items."""

    name = "shop.inventory"
    port = 8001
    service_registry_urls = [REGISTRY_URL]
    service_registry_ping_interval = 5
    restock_every = 5.0

    def __init__(self) -> None:
        super().__init__()
        self.event_transports = event_transports()
        self.stock = {"apple": 10, "pear": 4}
        self.restocks = 0
        self.periodic_tasks = [(self.restock, self.restock_every)]

    @gemstone.exposed_method()
    async def available(self, item: str) -> int:
        """How many of ``item`` are in stock (0 for unknown items)."""
        return self.stock.get(item, 0)

    @gemstone.event_handler("order.placed")
    async def take_out(self, order: OrderPlaced) -> None:
        self.stock[order.item] = self.stock.get(order.item, 0) - order.quantity

    async def restock(self) -> None:
        """Every item below 5 is filled up to 5."""
        for item, count in self.stock.items():
            self.stock[item] = max(count, 5)
        self.restocks += 1


if __name__ == "__main__":
    Inventory().start()
