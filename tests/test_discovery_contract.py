"""The discovery contract, run against every backend (HTTP reference registry, Redis)."""

from __future__ import annotations

import gemstone_aio as gemstone
from gemstone_aio.testing import serving
from tests.fixtures.discovery import Backend, unique, wait_until


def url_of(n: int) -> str:
    return f"http://127.0.0.1:{20000 + n}/api"


async def test_ping_then_locate_by_exact_name(discovery_backend: Backend) -> None:
    """A pinged instance is located by its exact name; other names find nothing."""
    strategy = await discovery_backend.strategy()
    name = unique()
    await strategy.ping(name, url_of(1))
    assert await strategy.locate(name) == [url_of(1)]
    assert await strategy.locate(name + "x") == []
    assert await strategy.locate(unique()) == []


async def test_instances_of_one_name_are_listed_once_each(discovery_backend: Backend) -> None:
    """Several URLs under one name are all located; pinging again adds no duplicate."""
    strategy = await discovery_backend.strategy()
    name = unique()
    for n in (1, 2, 3, 2, 1):
        await strategy.ping(name, url_of(n))
    assert sorted(await strategy.locate(name)) == [url_of(1), url_of(2), url_of(3)]


async def test_glob_star_and_question_mark(discovery_backend: Backend) -> None:
    """``*`` matches any run of characters, ``?`` exactly one, over the whole name."""
    strategy = await discovery_backend.strategy()
    base = unique()
    names = {f"{base}.orders": 1, f"{base}.orders2": 2, f"{base}.users": 3, f"x{base}.orders": 4}
    for name, n in names.items():
        await strategy.ping(name, url_of(n))
    assert sorted(await strategy.locate(f"{base}.*")) == [url_of(1), url_of(2), url_of(3)]
    assert sorted(await strategy.locate(f"{base}.orders?")) == [url_of(2)]
    assert sorted(await strategy.locate(f"{base}.order?")) == [url_of(1)]
    assert sorted(await strategy.locate(f"*{base}.orders")) == [url_of(1), url_of(4)]
    assert await strategy.locate(f"{base}.ord") == []


async def test_sql_and_bracket_characters_are_literal(discovery_backend: Backend) -> None:
    """``_``, ``%``, ``[`` and ``]`` match only themselves (no LIKE, no character class)."""
    strategy = await discovery_backend.strategy()
    base = unique()
    await strategy.ping(f"{base}_a", url_of(1))
    await strategy.ping(f"{base}xa", url_of(2))
    await strategy.ping(f"{base}%", url_of(3))
    await strategy.ping(f"{base}[ab]", url_of(4))
    await strategy.ping(f"{base}a", url_of(5))
    await strategy.ping(f"{base}[", url_of(6))
    assert await strategy.locate(f"{base}_a") == [url_of(1)]
    assert await strategy.locate(f"{base}%") == [url_of(3)]
    assert await strategy.locate(f"{base}[ab]") == [url_of(4)]
    assert await strategy.locate(f"{base}[") == [url_of(6)]
    assert sorted(await strategy.locate(f"{base}[*")) == [url_of(4), url_of(6)]


async def test_unregister_removes_only_that_instance(discovery_backend: Backend) -> None:
    """Unregistering one URL leaves the other instances of the name listed."""
    strategy = await discovery_backend.strategy()
    name = unique()
    await strategy.ping(name, url_of(1))
    await strategy.ping(name, url_of(2))
    await strategy.unregister(name, url_of(1))
    assert await strategy.locate(name) == [url_of(2)]
    await strategy.unregister(name, url_of(1))  # twice is harmless
    await strategy.unregister(unique(), url_of(9))  # unknown is harmless
    assert await strategy.locate(name) == [url_of(2)]


async def test_instances_expire_without_pings(discovery_backend: Backend) -> None:
    """An instance that stops pinging is no longer located; one that keeps pinging is."""
    strategy = await discovery_backend.strategy(expiry=0.4)
    name = unique()
    await strategy.ping(name, url_of(1))
    await strategy.ping(name, url_of(2))

    async def only_second_left() -> bool:
        await strategy.ping(name, url_of(2))
        return await strategy.locate(name) == [url_of(2)]

    await wait_until(only_second_left, timeout=5, what="the silent instance to expire")


async def test_service_heartbeats_and_unregisters(discovery_backend: Backend) -> None:
    """A served service is located once it listens and is gone right after a graceful stop."""
    strategy = await discovery_backend.strategy(expiry=60)
    name = unique()

    class Pinger(gemstone.MicroService):
        @gemstone.exposed_method()
        async def hello(self) -> str:
            return "hello"

    Pinger.name = name
    service = Pinger()
    service.discovery_strategies = [strategy]
    service.service_registry_ping_interval = 0.1
    async with serving(service):
        url = str(service.accessible_at)

        async def located() -> bool:
            return await strategy.locate(name) == [url]

        await wait_until(located, what="the first ping")
    assert await strategy.locate(name) == []


async def test_get_service_balances_over_live_instances(discovery_backend: Backend) -> None:
    """``get_service`` hands out each of three live instances in turn."""
    strategy = await discovery_backend.strategy(expiry=60)
    name = unique()

    class Member(gemstone.MicroService):
        @gemstone.exposed_method()
        async def where(self) -> str:
            return str(self.accessible_at)

    Member.name = name

    class Caller(gemstone.MicroService):
        name = unique("caller")

    members = [Member() for _ in range(3)]
    caller = Caller()
    caller.discovery_strategies = [strategy]
    async with serving(members[0]), serving(members[1]), serving(members[2]), serving(caller):
        urls = {str(m.accessible_at) for m in members}
        for member in members:
            await strategy.ping(name, str(member.accessible_at))
        seen = [await (await caller.get_service(name)).call("where") for _ in range(6)]
        assert set(seen[:3]) == urls
        assert seen[3:] == seen[:3]
