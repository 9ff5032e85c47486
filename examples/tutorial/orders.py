"""Step 2 of the tutorial: the orders service asks the inventory, then announces the order.

It finds the inventory through the registry (``get_service``) and publishes
``order.placed`` with ``broadcast=False``: exactly one inventory instance takes the
stock out, even when several run. Run it with ``python -m examples.tutorial.orders``.
"""

from __future__ import annotations

import gemstone_aio as gemstone
from examples.tutorial.settings import REGISTRY_URL, event_transports


class OutOfStock(gemstone.JsonRpcError):
    """Not enough of the item is in stock."""

    code = -32010
    default_message = "Out of stock"


class Orders(gemstone.MicroService):
    """Takes orders for the shop."""

    name = "shop.orders"
    port = 8002
    service_registry_urls = [REGISTRY_URL]
    service_registry_ping_interval = 5

    def __init__(self) -> None:
        super().__init__()
        self.event_transports = event_transports()

    @gemstone.exposed_method(errors=[OutOfStock])
    async def place_order(self, item: str, quantity: int = 1) -> str:
        """Order ``quantity`` of ``item`` if the inventory has them."""
        inventory = await self.get_service("shop.inventory")
        available: int = await inventory.call("available", item)
        if available < quantity:
            raise OutOfStock(data={"item": item, "available": available})
        await self.emit_event("order.placed", {"item": item, "quantity": quantity}, broadcast=False)
        return f"ordered {quantity} {item}"


if __name__ == "__main__":
    Orders().start()
