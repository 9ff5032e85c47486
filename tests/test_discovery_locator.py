"""``get_service``: errors, several registries, the cache, balancing and dead instances."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

import gemstone_aio as gemstone
from gemstone_aio import RemoteService
from gemstone_aio.discovery import RegistryUnavailableError, ServiceNotFoundError
from gemstone_aio.registry import ServiceRegistry
from gemstone_aio.testing import serving
from tests.fixtures.discovery import RegistryFactory, unique, wait_until


class Caller(gemstone.MicroService):
    name = "locator-caller"


class Echo(gemstone.MicroService):
    name = "locator-echo"

    @gemstone.exposed_method()
    async def where(self) -> str:
        return str(self.accessible_at)


class CountingRegistry(ServiceRegistry):
    """A registry that counts the lookups it answers."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    @gemstone.exposed_method()
    async def locate_service(self, name: str) -> list[str]:
        self.lookups += 1
        return await super().locate_service(name)

    @gemstone.exposed_method()
    async def lookup(self, name: str) -> dict[str, Any]:
        self.lookups += 1
        return await super().lookup(name)


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/api"


async def announce(registry: ServiceRegistry, name: str, *urls: str) -> None:
    async with RemoteService(str(registry.accessible_at)) as client:
        for url in urls:
            await client.call("ping", name, url)


def caller_of(*registries: ServiceRegistry | str, cache_ttl: float = 5.0) -> Caller:
    caller = Caller()
    caller.service_registry_urls = [
        r if isinstance(r, str) else str(r.accessible_at) for r in registries
    ]
    caller.service_locate_cache_ttl = cache_ttl
    return caller


async def test_no_registry_is_a_configuration_error() -> None:
    """Without registry URLs or strategies, get_service says so, naming the pattern."""
    caller = Caller()
    async with caller.discovery:
        with pytest.raises(gemstone.ServiceConfigurationError, match=r"'orders\.\*'.*no registry"):
            await caller.get_service("orders.*")


async def test_nothing_matching_names_the_pattern(start_registry: RegistryFactory) -> None:
    """An unknown pattern raises ServiceNotFoundError (a LookupError) naming it."""
    registry = await start_registry()
    caller = caller_of(registry)
    pattern = unique() + ".*"
    async with caller.discovery:
        with pytest.raises(
            ServiceNotFoundError, match=pattern.replace(".", r"\.").replace("*", r"\*")
        ) as caught:
            await caller.get_service(pattern)
    assert caught.value.pattern == pattern
    assert isinstance(caught.value, LookupError)


async def test_no_registry_answering_is_a_transport_error() -> None:
    """With every registry down and nothing cached, the error names the pattern and registries."""
    first, second = dead_url(), dead_url()
    caller = caller_of(first, second)
    async with caller.discovery:
        with pytest.raises(RegistryUnavailableError) as caught:
            await caller.get_service("billing")
    message = str(caught.value)
    assert "'billing'" in message
    assert first in message
    assert second in message


async def test_the_first_registry_that_answers_wins(start_registry: RegistryFactory) -> None:
    """Registries are asked in order: a down one and an empty answer fall through."""
    name = unique()
    empty, full, unasked = CountingRegistry(), CountingRegistry(), CountingRegistry()
    async with serving(empty), serving(full), serving(unasked), serving(Echo()) as echo:
        await announce(full, name, str(echo.accessible_at))
        await announce(unasked, name, dead_url())
        caller = caller_of(dead_url(), empty, full, unasked)
        async with caller.discovery:
            service = await caller.get_service(name)
            assert await service.call("where") == echo.accessible_at
    assert (empty.lookups, full.lookups, unasked.lookups) == (1, 1, 0)


async def test_lookups_are_cached_briefly() -> None:
    """Within the cache time the registry is asked once; after it, again."""
    name = unique()
    registry = CountingRegistry()
    async with serving(registry), serving(Echo()) as echo:
        await announce(registry, name, str(echo.accessible_at))
        caller = caller_of(registry, cache_ttl=0.3)
        async with caller.discovery:
            for _ in range(5):
                await caller.get_service(name)
            assert registry.lookups == 1

            async def asked_again() -> bool:
                await caller.get_service(name)
                return registry.lookups == 2

            await wait_until(asked_again, what="the cache to expire")


async def test_the_last_known_instances_serve_while_registries_are_down() -> None:
    """When the cache expired and no registry answers, the last known instances are used."""
    name = unique()
    registry = CountingRegistry()
    async with serving(Echo()) as echo:
        async with serving(registry):
            await announce(registry, name, str(echo.accessible_at))
            caller = caller_of(registry, cache_ttl=0.05)
            await caller.get_service(name)
        try:

            async def still_served() -> bool:
                service = await caller.get_service(name)
                return bool(await service.call("where") == echo.accessible_at)

            await wait_until(still_served, what="a lookup from the stale list")
        finally:
            await caller.discovery.aclose()


async def test_instances_that_refuse_connections_are_skipped(
    start_registry: RegistryFactory,
) -> None:
    """A listed instance that does not accept connections is never handed out."""
    name = unique()
    registry = await start_registry()
    dead = [dead_url(), dead_url()]
    async with serving(Echo()) as echo:
        await announce(registry, name, dead[0], str(echo.accessible_at), dead[1])
        caller = caller_of(registry)
        async with caller.discovery:
            handed = {(await caller.get_service(name)).url for _ in range(6)}
    assert handed == {echo.accessible_at}


async def test_only_dead_instances_is_not_found(start_registry: RegistryFactory) -> None:
    """If every listed instance refuses connections, the error says so."""
    name = unique()
    registry = await start_registry()
    await announce(registry, name, dead_url(), dead_url())
    caller = caller_of(registry)
    async with caller.discovery:
        with pytest.raises(ServiceNotFoundError, match="no instance accepts connections"):
            await caller.get_service(name)


async def test_a_failed_connect_drops_the_instance(start_registry: RegistryFactory) -> None:
    """A call whose instance refuses the connection goes to another one (nothing was
    sent), and the refusing instance is not handed out again while it is ejected."""
    name = unique()
    registry = await start_registry()
    survivor = Echo()
    async with serving(survivor):
        doomed = Echo()
        async with serving(doomed):
            doomed_url = str(doomed.accessible_at)
            await announce(registry, name, doomed_url, str(survivor.accessible_at))
            caller = caller_of(registry)
            reached = {await (await caller.get_service(name)).call("where") for _ in range(2)}
            assert reached == {doomed_url, survivor.accessible_at}  # both seen alive
        try:
            client = await caller.get_service(name)
            # Taken in turn, one of two calls is sent to the stopped instance first.
            for _ in range(2):
                assert await client.call("where") == survivor.accessible_at
            peer = caller.discovery.locator.peer(doomed_url)
            assert peer is not None
            assert peer.ejected_until > 0
            handed = {(await caller.get_service(name)).url for _ in range(6)}
            assert handed == {survivor.accessible_at}
        finally:
            await caller.discovery.aclose()


async def test_get_service_from_inside_a_method(start_registry: RegistryFactory) -> None:
    """A served service calls another by name from one of its methods."""
    registry = await start_registry()
    name = unique()

    class Front(gemstone.MicroService):
        name = unique("front")

        @gemstone.exposed_method()
        async def relay(self) -> str:
            backend = await self.get_service(name)
            return str(await backend.call("where"))

    async with serving(Echo()) as echo:
        await announce(registry, name, str(echo.accessible_at))
        front = Front()
        front.service_registry_urls = [str(registry.accessible_at)]
        async with serving(front), RemoteService(str(front.accessible_at)) as client:
            assert await client.call("relay") == echo.accessible_at


async def test_on_service_stop_may_still_call_other_services(
    start_registry: RegistryFactory,
) -> None:
    """Connections close after ``on_service_stop``, so it can still use ``get_service``."""
    registry = await start_registry()
    name = unique()
    answers: list[str] = []

    class Polite(gemstone.MicroService):
        name = unique("polite")

        async def on_service_stop(self) -> None:
            backend = await self.get_service(name)
            answers.append(str(await backend.call("where")))

    async with serving(Echo()) as echo:
        await announce(registry, name, str(echo.accessible_at))
        polite = Polite()
        polite.service_registry_urls = [str(registry.accessible_at)]
        async with serving(polite):
            pass
        assert answers == [echo.accessible_at]
        assert polite._discovery is not None
        assert polite._discovery.closed


async def test_concurrent_callers_share_one_lookup() -> None:
    """Callers whose cache expired together wait for one lookup (single-flight)."""
    name = unique()
    registry = CountingRegistry()
    async with serving(registry), serving(Echo()) as echo:
        await announce(registry, name, str(echo.accessible_at))
        caller = caller_of(registry, cache_ttl=60)
        async with caller.discovery:
            clients = await asyncio.gather(*(caller.get_service(name) for _ in range(50)))
            assert {client.url for client in clients} == {echo.accessible_at}
            assert registry.lookups == 1
            assert caller.discovery.locator.lookups == 1
