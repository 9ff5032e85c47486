"""Many instances in one process: a registry, three workers, another service and a caller."""

from __future__ import annotations

import contextlib

import gemstone_aio as gemstone
from gemstone_aio import RemoteService
from gemstone_aio.client import ServiceUnavailableError
from gemstone_aio.testing import serving
from tests.fixtures.discovery import RegistryFactory, unique, wait_until


class Node(gemstone.MicroService):
    name = "multi-node"
    service_registry_ping_interval = 0.1

    @gemstone.exposed_method()
    async def where(self) -> str:
        return str(self.accessible_at)


async def test_instances_come_expire_and_leave(start_registry: RegistryFactory) -> None:
    """Locate by glob; a crashed instance expires and is never handed out; a stop unregisters."""
    registry = await start_registry(expire_after=1.5)
    registry_url = str(registry.accessible_at)
    base = unique("fleet")
    workers = [Node() for _ in range(3)]
    other = Node()
    for node in workers:
        node.name = f"{base}.worker"  # type: ignore[misc]
    other.name = f"{base}.other"  # type: ignore[misc]
    caller = Node()
    caller.name = unique("caller")  # type: ignore[misc]
    caller.service_locate_cache_ttl = 0.5
    stacks = [contextlib.AsyncExitStack() for _ in workers]
    async with contextlib.AsyncExitStack() as outer, RemoteService(registry_url) as reg:
        for node in [*workers, other, caller]:
            node.service_registry_urls = [registry_url]
            node.unregister_propagation_delay = 0  # stops here simulate crashes
        for node, stack in zip(workers, stacks, strict=True):
            outer.push_async_callback(stack.aclose)
            await stack.enter_async_context(serving(node))
        await outer.enter_async_context(serving(other))
        await outer.enter_async_context(serving(caller))
        urls = [str(node.accessible_at) for node in workers]

        async def locate(pattern: str) -> list[str]:
            found: list[str] = await reg.call("locate_service", pattern)
            return sorted(found)

        async def all_registered() -> bool:
            return len(await locate(f"{base}.*")) == 4

        await wait_until(all_registered, what="four instances to register")
        assert await locate(f"{base}.worker") == sorted(urls)
        assert await locate(f"{base}.w?rker") == sorted(urls)
        assert await locate(f"{base}.o*") == [other.accessible_at]
        assert await locate(f"{base}.worker?") == []

        # round-robin: three calls reach the three workers
        reached = {await (await caller.get_service(f"{base}.w*")).call("where") for _ in urls}
        assert reached == set(urls)

        # crash the first worker: it stops pinging and goes away without unregistering
        crashed = urls[0]
        await workers[0].discovery.aclose()
        await stacks[0].aclose()
        assert crashed in await locate(f"{base}.worker")  # only expiry will remove it

        failures: list[str] = []
        handed_after_failure: list[str] = []
        for _ in range(9):
            client = await caller.get_service(f"{base}.worker")
            if failures:
                handed_after_failure.append(client.url)
            try:
                assert await client.call("where") == client.url
            except ServiceUnavailableError:
                failures.append(client.url)
        assert failures in ([], [crashed])
        assert crashed not in handed_after_failure

        async def crashed_expired() -> bool:
            return await locate(f"{base}.worker") == sorted(urls[1:])

        await wait_until(crashed_expired, what="the crashed worker to expire")
        for _ in range(6):
            assert (await caller.get_service(f"{base}.worker")).url in urls[1:]
        listed = await reg.call("list_services")
        assert sorted(listed[f"{base}.worker"]) == sorted(urls[1:])

        # a graceful stop unregisters at once (well before the 1.5 s expiry)
        await stacks[1].aclose()
        assert await locate(f"{base}.worker") == [urls[2]]
        assert await locate(f"{base}.*") == sorted([urls[2], str(other.accessible_at)])
