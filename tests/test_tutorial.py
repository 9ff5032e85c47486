"""The tutorial's system runs: a registry, an inventory and an orders service, one event."""

from __future__ import annotations

import asyncio

import pytest
from examples.tutorial.inventory import Inventory
from examples.tutorial.orders import Orders

import gemstone_aio as gemstone
from gemstone_aio.registry import ServiceRegistry
from gemstone_aio.testing import serving

WAIT = 10.0


class QuickInventory(Inventory):
    restock_every = 0.05


async def wait_until(condition: object, what: str) -> None:
    async with asyncio.timeout(WAIT):
        while not condition():  # type: ignore[operator]  # noqa: ASYNC110 -- state of a running service
            await asyncio.sleep(0.02)


async def test_tutorial_system() -> None:
    """Orders finds the inventory through the registry and takes stock out with an event."""
    async with serving(ServiceRegistry()) as registry:
        inventory, orders = QuickInventory(), Orders()
        for service in (inventory, orders):
            service.service_registry_urls = [registry.accessible_at or ""]
        async with serving(inventory), serving(orders):
            await wait_until(lambda: inventory.restocks > 0, "a periodic restock")
            async with asyncio.timeout(WAIT):  # the first heartbeat is on its way
                while "shop.inventory" not in await registry.list_services():  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            async with gemstone.RemoteService(orders.accessible_at or "") as client:
                assert await client.call("place_order", "apple", 3) == "ordered 3 apple"
                await wait_until(lambda: inventory.stock["apple"] == 7, "the event to arrive")
                with pytest.raises(gemstone.CalledServiceError) as caught:
                    await client.call("place_order", item="pear", quantity=10)
                assert caught.value.code == -32010
                assert caught.value.data == {"item": "pear", "available": 5}  # restocked from 4
