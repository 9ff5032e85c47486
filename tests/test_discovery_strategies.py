"""Globs, and what is particular to each strategy (the shared contract is elsewhere)."""

from __future__ import annotations

import asyncio
import builtins
import re
import sys
from typing import Any

import pytest
import redis.asyncio

import gemstone_aio as gemstone
from gemstone_aio import RemoteService
from gemstone_aio.discovery import (
    DefaultDiscoveryStrategy,
    EtcdDiscoveryStrategy,
    HttpDiscoveryStrategy,
    HttpRegistryStrategy,
    RedisDiscoveryStrategy,
)
from gemstone_aio.discovery._glob import glob_matches, redis_match_pattern
from gemstone_aio.registry import ServiceRegistry
from gemstone_aio.testing import serving
from tests.fixtures.discovery import RegistryFactory, unique, wait_until


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        pytest.param("orders", "orders", True, id="exact"),
        pytest.param("orders", "orders2", False, id="whole-name"),
        pytest.param("orders.*", "orders.eu", True, id="star"),
        pytest.param("orders.*", "orders.", True, id="star-empty"),
        pytest.param("*", "", True, id="star-all"),
        pytest.param("o**s", "orders", True, id="double-star"),
        pytest.param("orders.??", "orders.eu", True, id="question"),
        pytest.param("orders.??", "orders.e", False, id="question-one-short"),
        pytest.param("a?c", "a\u00e9c", True, id="question-one-character"),
        pytest.param("a_c", "abc", False, id="underscore-literal"),
        pytest.param("a%", "abc", False, id="percent-literal"),
        pytest.param("a%", "a%", True, id="percent-itself"),
        pytest.param("[ab]", "a", False, id="no-character-class"),
        pytest.param("[ab]", "[ab]", True, id="brackets-literal"),
        pytest.param("a[", "a[", True, id="lone-bracket"),
        pytest.param("a\\*", "a\\b", True, id="backslash-literal"),
        pytest.param("a.c", "abc", False, id="dot-literal"),
        pytest.param("A*", "abc", False, id="case-sensitive"),
        pytest.param("x*", "x\ny", True, id="star-spans-newline"),
    ],
)
def test_glob(pattern: str, name: str, matches: bool) -> None:
    """Only ``*`` and ``?`` are wildcards, over the whole name, case-sensitively."""
    assert glob_matches(pattern, name) is matches


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("orders.*", "orders.*"),
        ("a?c", "a*c"),
        ("a[b]\\", "a\\[b\\]\\\\"),
    ],
)
def test_redis_match_pattern_escapes_brackets(pattern: str, expected: str) -> None:
    """Redis's own glob syntax is neutralised; ``?`` widens (names are checked exactly)."""
    assert redis_match_pattern(pattern) == expected


def test_old_names_of_the_http_strategy() -> None:
    """The 0.10 and 0.11 names and the 0.10 module path still work."""
    assert DefaultDiscoveryStrategy is HttpRegistryStrategy
    assert HttpDiscoveryStrategy is HttpRegistryStrategy


@pytest.mark.parametrize("url", ["", "127.0.0.1:5000/api", "ftp://x/api"])
def test_http_strategy_rejects_non_http_urls(url: str) -> None:
    """A registry URL must be http(s); the error names it."""
    with pytest.raises(ValueError, match=re.escape(repr(url))):
        HttpRegistryStrategy(url)


async def test_an_older_registry_without_unregister_is_fine() -> None:
    """Registries with only ``ping``/``locate_service`` (gemstone 0.10's protocol) work."""

    class OldRegistry(gemstone.MicroService):
        name = unique("old-registry")

        def __init__(self) -> None:
            super().__init__()
            self.services: dict[str, str] = {}

        @gemstone.exposed_method()
        async def ping(self, name: str, url: str) -> bool:
            self.services[name] = url
            return True

        @gemstone.exposed_method()
        async def locate_service(self, name: str) -> list[str]:
            return [self.services[name]] if name in self.services else []

    async with serving(OldRegistry()) as old:
        strategy = HttpRegistryStrategy(str(old.accessible_at))
        try:
            await strategy.ping("a", "http://127.0.0.1:1/api")
            assert await strategy.locate("a") == ["http://127.0.0.1:1/api"]
            await strategy.unregister("a", "http://127.0.0.1:1/api")  # no such method: ignored
        finally:
            await strategy.aclose()


async def test_heartbeat_with_the_registry_token(start_registry: RegistryFactory) -> None:
    """``service_registry_token`` admits the heartbeat to a protected registry; a wrong one does not."""
    registry = await start_registry(token="t0ken")

    class Member(gemstone.MicroService):
        name = unique()
        service_registry_ping_interval = 0.1

    good, bad = Member(), Member()
    for member, token in ((good, "t0ken"), (bad, "nope")):
        member.service_registry_urls = [str(registry.accessible_at)]
        member.service_registry_token = token
    async with serving(good), serving(bad), RemoteService(str(registry.accessible_at)) as reg:

        async def good_listed() -> bool:
            return bool(await reg.call("locate_service", Member.name) == [good.accessible_at])

        await wait_until(good_listed, what="the member with the token")
        assert good.discovery.heartbeat.announced
        assert not bad.discovery.heartbeat.announced


@pytest.mark.redis
async def test_redis_keys_expire_on_their_own(redis_url: str) -> None:
    """Every key of the namespace expires by itself; unregistering leaves only the names index."""
    namespace = unique("ns")
    strategy = RedisDiscoveryStrategy(redis_url, time_to_live=30, namespace=namespace)
    client = redis.asyncio.from_url(redis_url)
    try:
        await strategy.ping("a", "http://127.0.0.1:1/api")
        keys = [key async for key in client.scan_iter(match=f"{namespace}:*")]
        assert len(keys) == 3  # the name's set, the names index, the URL's owner
        for key in keys:
            assert 0 < await client.pttl(key) <= 30_000
        await strategy.unregister("a", "http://127.0.0.1:1/api")
        keys = [key async for key in client.scan_iter(match=f"{namespace}:*")]
        assert keys == [f"{namespace}:names".encode()]
        assert await strategy.locate("a") == []
        assert await strategy.locate("*") == []
    finally:
        await client.aclose()
        await strategy.aclose()


async def _command_calls(client: Any) -> dict[str, int]:
    stats = await client.info("commandstats")
    return {key.removeprefix("cmdstat_"): value["calls"] for key, value in stats.items()}


@pytest.mark.redis
async def test_redis_lookup_reads_only_the_name_looked_up(redis_url: str) -> None:
    """A lookup is one script call on that name's set: no SCAN, whatever the directory's size."""
    namespace = unique("ns")
    strategy = RedisDiscoveryStrategy(redis_url, namespace=namespace)
    client = redis.asyncio.from_url(redis_url)
    try:
        for n in range(1_000):
            await strategy.ping(f"svc-{n % 100}", f"http://127.0.0.1:{20_000 + n}/api")
        before = await _command_calls(client)
        found = await strategy.locate("svc-7")
        after = await _command_calls(client)
        assert len(found) == 10
        assert after.get("scan", 0) == before.get("scan", 0)
        assert after.get("keys", 0) == before.get("keys", 0)
        assert after["evalsha"] - before.get("evalsha", 0) == 1
        assert after["zrangebyscore"] - before.get("zrangebyscore", 0) == 1
    finally:
        await client.aclose()
        await strategy.aclose()


@pytest.mark.redis
async def test_redis_a_url_belongs_to_one_name(redis_url: str) -> None:
    """A URL pinging under another name moves to it (a restarted process serving another one)."""
    strategy = RedisDiscoveryStrategy(redis_url, namespace=unique("ns"))
    try:
        await strategy.ping("old", "http://127.0.0.1:5/api")
        await strategy.ping("new", "http://127.0.0.1:5/api")
        assert await strategy.locate("old") == []
        assert await strategy.locate("new") == ["http://127.0.0.1:5/api"]
    finally:
        await strategy.aclose()


@pytest.mark.parametrize(
    "url",
    [
        "https://user:pass@127.0.0.1:22/",
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0:8000/api",
        "ftp://127.0.0.1/api",
    ],
)
async def test_redis_refuses_urls_the_registry_refuses(url: str) -> None:
    """The URL rules of the reference registry apply before anything is written."""
    strategy = RedisDiscoveryStrategy("redis://127.0.0.1:1/0", namespace=unique("ns"))
    with pytest.raises(ValueError, match="url must"):
        await strategy.ping("a", url)


def test_redis_outside_loopback_needs_a_password() -> None:
    """A Redis on another host without a password is refused unless insecure=True."""
    with pytest.raises(ValueError, match="without a password"):
        RedisDiscoveryStrategy("redis://10.1.2.3:6379/0")
    RedisDiscoveryStrategy("redis://:secret@10.1.2.3:6379/0")
    RedisDiscoveryStrategy("redis://10.1.2.3:6379/0", insecure=True)
    assert "secret" not in repr(RedisDiscoveryStrategy("redis://:secret@10.1.2.3:6379/0"))


@pytest.mark.redis
async def test_redis_url_without_a_database(redis_url: str) -> None:
    """``redis://host:port`` (no ``/db``, which crashed gemstone 0.10) works."""
    strategy = RedisDiscoveryStrategy(redis_url.rsplit("/", 1)[0], namespace=unique("ns"))
    try:
        await strategy.ping("b", "http://127.0.0.1:2/api")
        assert await strategy.locate("b") == ["http://127.0.0.1:2/api"]
    finally:
        await strategy.aclose()


def test_redis_ttl_must_be_positive() -> None:
    """A non-positive TTL is refused, naming the value."""
    with pytest.raises(ValueError, match="got 0"):
        RedisDiscoveryStrategy(ttl=0)


def test_missing_redis_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the redis package, the error says which extra to install."""
    real_import = builtins.__import__

    def no_redis(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "redis" or name.startswith("redis."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "redis.asyncio")
    monkeypatch.setattr(builtins, "__import__", no_redis)
    with pytest.raises(ImportError, match=r"gemstone-aio\[redis\]"):
        RedisDiscoveryStrategy()


def test_a_class_level_strategy_serves_in_successive_event_loops() -> None:
    """A strategy shared as a class attribute works across services and event loops."""
    shared = HttpRegistryStrategy("http://127.0.0.1:1/api")

    class Shared(gemstone.MicroService):
        name = unique()
        service_registry_ping_interval = 0.1
        discovery_strategies = (shared,)

    async def one_round() -> list[str]:
        registry = ServiceRegistry()
        async with serving(registry):
            shared.url = str(registry.accessible_at)
            first, second = Shared(), Shared()
            async with serving(first), serving(second):

                async def both() -> bool:
                    return len(await shared.locate(str(Shared.name))) == 2

                await wait_until(both, what="both instances")
            try:
                return await shared.locate(str(Shared.name))
            finally:
                await shared.aclose()  # the test used it after the services released it

    assert asyncio.run(one_round()) == []
    assert asyncio.run(one_round()) == []


def test_etcd_outside_loopback_needs_credentials() -> None:
    """An etcd on another host without user and password is refused unless insecure=True."""
    with pytest.raises(ValueError, match="without credentials"):
        EtcdDiscoveryStrategy("http://10.1.2.3:2379")
    EtcdDiscoveryStrategy("http://10.1.2.3:2379", insecure=True)
    shown = repr(EtcdDiscoveryStrategy("http://root:secret@10.1.2.3:2379"))
    assert "secret" not in shown


@pytest.mark.etcd
async def test_etcd_changes_are_pushed_to_watching_callers(etcd_endpoint: str) -> None:
    """A caller's looked-up prefix is watched: others' pings and leases' ends arrive as pushes."""
    namespace = unique("ns")
    instance = EtcdDiscoveryStrategy(etcd_endpoint, ttl=1, namespace=namespace)
    caller = EtcdDiscoveryStrategy(etcd_endpoint, namespace=namespace)
    try:
        await instance.ping("orders", "http://127.0.0.1:1/api")
        assert await caller.locate("orders") == ["http://127.0.0.1:1/api"]
        assert await caller.locate("ord*") == ["http://127.0.0.1:1/api"]
        watched = len(caller._watched)
        await instance.ping("orders", "http://127.0.0.1:2/api")

        async def pushed() -> bool:
            return sorted(await caller.locate("orders")) == [
                "http://127.0.0.1:1/api",
                "http://127.0.0.1:2/api",
            ]

        await wait_until(pushed, timeout=5, what="the new instance to be pushed")
        assert len(caller._watched) == watched  # answered from the watch, not a new read
        await instance.aclose()  # stops pinging without unregistering: the leases run out

        async def expired() -> bool:
            return await caller.locate("orders") == []

        await wait_until(expired, timeout=10, what="the leases to run out")
    finally:
        await instance.aclose()
        await caller.aclose()
