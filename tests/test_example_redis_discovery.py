"""``examples/redis_discovery.py``: two services finding each other through Redis."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from gemstone_aio import RemoteService
from gemstone_aio.discovery import RedisDiscoveryStrategy
from gemstone_aio.testing import serving
from tests.fixtures.discovery import unique, wait_until

_PATH = Path(__file__).resolve().parents[1] / "examples" / "redis_discovery.py"
_spec = importlib.util.spec_from_file_location("redis_discovery_example", _PATH)
assert _spec is not None
assert _spec.loader is not None
example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(example)


@pytest.mark.redis
async def test_shop_finds_the_inventory_through_redis(redis_url: str) -> None:
    """The shop locates the inventory by name in Redis and calls it."""
    strategy = RedisDiscoveryStrategy(redis_url, ttl=90, namespace=unique("example"))
    inventory, shop = example.InventoryService(), example.ShopService()
    for service in (inventory, shop):
        service.discovery_strategies = (strategy,)
    async with serving(inventory), serving(shop), RemoteService(str(shop.accessible_at)) as client:

        async def both_announced() -> bool:
            return len(await strategy.locate("*")) == 2

        await wait_until(both_announced, what="both services in Redis")
        assert await client.call("can_sell", "apple") is True
        assert await client.call("can_sell", "pear") is False
    assert await strategy.locate("*") == []
    await strategy.aclose()
