"""Discovery through Redis instead of a registry process (needs the ``redis`` extra).

Start Redis, then run ``python examples/redis_discovery.py inventory`` and
``python examples/redis_discovery.py shop`` (on one host or many: they share Redis).
``REDIS_URL`` says where Redis is.
"""

import os
import sys

import gemstone_aio as gemstone
from gemstone_aio.discovery import RedisDiscoveryStrategy

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
discovery = RedisDiscoveryStrategy(REDIS_URL, ttl=90)


class InventoryService(gemstone.MicroService):
    name = "inventory"
    port = 8010
    discovery_strategies = (discovery,)

    @gemstone.exposed_method()
    async def stock(self, item: str) -> int:
        return {"apple": 3}.get(item, 0)


class ShopService(gemstone.MicroService):
    name = "shop"
    port = 8011
    discovery_strategies = (discovery,)

    @gemstone.exposed_method()
    async def can_sell(self, item: str) -> bool:
        inventory = await self.get_service("inventory")
        in_stock: int = await inventory.call("stock", item)
        return in_stock > 0


if __name__ == "__main__":
    service = InventoryService() if sys.argv[1:] == ["inventory"] else ShopService()
    service.start()
