"""The registry fails closed: loopback without a token, tokens for lookups, URL rules, globs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gemstone_aio as gemstone
from gemstone_aio import RemoteService
from gemstone_aio.client import AccessDeniedError, InvalidParamsError
from gemstone_aio.discovery import MAX_PATTERN_LENGTH, glob_matches
from gemstone_aio.errors import ServiceConfigurationError
from gemstone_aio.registry import ServiceRegistry
from gemstone_aio.testing import serving
from tests.fixtures.discovery import RegistryFactory, unique, wait_until

SRC = Path(__file__).resolve().parents[1] / "src"
NOT_HERE = "192.0.2.1"  # TEST-NET-1: never an address of this machine, so never bound


@pytest.mark.parametrize("host", [NOT_HERE, "0.0.0.0", "::", "registry.example"])
def test_no_token_off_loopback_refuses_to_start(host: str) -> None:
    """Without a token only loopback is served; the error names the settings to change."""
    registry = ServiceRegistry()
    registry.host = host
    with pytest.raises(ServiceConfigurationError) as caught:
        registry.on_service_start()
    message = str(caught.value)
    assert "ServiceRegistry.token" in message
    assert "insecure" in message
    assert repr(host) in message


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_needs_no_token(host: str) -> None:
    registry = ServiceRegistry()
    registry.host = host
    registry.on_service_start()


def test_a_token_or_insecure_allows_other_addresses() -> None:
    with_token, insecure = ServiceRegistry(), ServiceRegistry()
    with_token.host = insecure.host = NOT_HERE
    with_token.token = "t"
    insecure.insecure = True
    with_token.on_service_start()
    insecure.on_service_start()


def test_lookups_require_token_needs_a_token() -> None:
    registry = ServiceRegistry()
    registry.lookups_require_token = True
    with pytest.raises(ServiceConfigurationError, match="lookups_require_token"):
        registry.on_service_start()


def test_the_module_refuses_an_open_registry_on_a_network_in_one_line() -> None:
    """``python -m gemstone_aio.registry --host X`` without a token exits 2, no traceback."""
    env = {k: v for k, v in os.environ.items() if k != "GEMSTONE_REGISTRY_TOKEN"}
    result = subprocess.run(
        [sys.executable, "-m", "gemstone_aio.registry", "--host", NOT_HERE, "--port", "0"],
        env={**env, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "without a token" in line]
    assert len(errors) == 1
    assert "error: ServiceRegistry would serve on '192.0.2.1'" in errors[0]


async def test_lookups_can_require_the_token(start_registry: RegistryFactory) -> None:
    """With lookups_require_token, locate_service, lookup and list_services need the token."""
    registry = await start_registry(token="s3cret")
    registry.lookups_require_token = True
    url = str(registry.accessible_at)
    name = unique()
    async with RemoteService(url) as anonymous, RemoteService(url, token="s3cret") as member:
        await member.call("ping", name, "http://127.0.0.1:1/api")
        for method, params in (
            ("locate_service", [name]),
            ("lookup", [name]),
            ("list_services", []),
        ):
            with pytest.raises(AccessDeniedError):
                await anonymous.call(method, *params)
        assert await member.call("locate_service", name) == ["http://127.0.0.1:1/api"]
        assert await member.call("list_services") == {name: ["http://127.0.0.1:1/api"]}


async def test_services_find_each_other_through_a_closed_registry(
    start_registry: RegistryFactory,
) -> None:
    """``service_registry_token`` is sent with lookups too, so get_service works."""
    registry = await start_registry(token="t0ken")
    registry.lookups_require_token = True
    target = unique()

    class Target(gemstone.MicroService):
        name = target
        service_registry_ping_interval = 0.1

        @gemstone.exposed_method()
        async def hello(self) -> str:
            return "hello"

    class Caller(gemstone.MicroService):
        name = unique("caller")

    for cls in (Target, Caller):
        cls.service_registry_urls = [str(registry.accessible_at)]
        cls.service_registry_token = "t0ken"
    async with serving(Target()), serving(Caller()) as caller:

        async def found() -> bool:
            try:
                return bool(await (await caller.get_service(target)).call("hello") == "hello")
            except LookupError:
                return False

        await wait_until(found, what="the target through the closed registry")


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        pytest.param("https://user:pass@127.0.0.1:22/", "user information", id="userinfo"),
        pytest.param("http://user@127.0.0.1:8000/api", "user information", id="user"),
        pytest.param("http://169.254.169.254/latest/meta-data", "link-local", id="metadata"),
        pytest.param("http://[fe80::1]:8000/api", "link-local", id="link-local-v6"),
        pytest.param("http://0.0.0.0:8000/api", "unspecified", id="unspecified"),
        pytest.param("http://224.0.0.1:8000/api", "multicast", id="multicast"),
    ],
)
async def test_urls_that_cannot_be_a_service_are_refused(
    start_registry: RegistryFactory, url: str, complaint: str
) -> None:
    registry = await start_registry()
    async with RemoteService(str(registry.accessible_at)) as client:
        with pytest.raises(InvalidParamsError, match=complaint):
            await client.call("ping", unique(), url)
        assert await client.call("list_services") == {}


async def test_allowed_networks(start_registry: RegistryFactory) -> None:
    """With allowed_networks, only IP hosts inside them are accepted."""
    registry = await start_registry()
    registry.allowed_networks = "127.0.0.0/8, 10.0.0.0/8"
    registry.on_service_start()  # re-read the setting
    name = unique()
    async with RemoteService(str(registry.accessible_at)) as client:
        assert await client.call("ping", name, "http://127.0.0.1:1/api") is True
        assert await client.call("ping", name, "http://10.1.2.3:1/api") is True
        with pytest.raises(InvalidParamsError, match="outside allowed_networks"):
            await client.call("ping", name, "http://192.168.1.1:1/api")
        with pytest.raises(InvalidParamsError, match="IP address as host"):
            await client.call("ping", name, "http://orders.internal:1/api")


def test_a_bad_allowed_network_is_named() -> None:
    registry = ServiceRegistry()
    registry.allowed_networks = "10.0.0.0/8,not-a-net"
    with pytest.raises(ServiceConfigurationError, match=r"allowed_networks .*'not-a-net'"):
        registry.on_service_start()


# -- globs ---------------------------------------------------------------------------------

HOSTILE = "*a" * 100 + "*b"  # about x4 per extra ``*a`` with a backtracking regex


def test_a_hostile_glob_is_matched_in_linear_time() -> None:
    name = "a" * 256
    started = time.perf_counter()
    assert not glob_matches(HOSTILE, name)
    assert not glob_matches("*?" * 127 + "b", name)
    assert time.perf_counter() - started < 0.010


async def test_a_hostile_lookup_is_answered_in_under_10_ms(
    start_registry: RegistryFactory,
) -> None:
    """The registry's loop is never stalled by a pattern (the whole call, over HTTP)."""
    registry = await start_registry()
    async with RemoteService(str(registry.accessible_at)) as client:
        async with client.batch() as batch:
            for n in range(500):
                batch.notify("ping", "a" * 250 + f"{n:05d}"[-5:], f"http://127.0.0.1:{n + 1}/api")
        await client.call("locate_service", "warm-up")
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            assert await client.call("locate_service", HOSTILE) == []
            timings.append(time.perf_counter() - started)
    assert min(timings) < 0.010, timings


async def test_patterns_are_capped(start_registry: RegistryFactory) -> None:
    registry = await start_registry()
    async with RemoteService(str(registry.accessible_at)) as client:
        with pytest.raises(InvalidParamsError, match=f"at most {MAX_PATTERN_LENGTH}"):
            await client.call("locate_service", "*" * (MAX_PATTERN_LENGTH + 1))
    with pytest.raises(ValueError, match=f"at most {MAX_PATTERN_LENGTH}"):
        glob_matches("?" * (MAX_PATTERN_LENGTH + 1), "x")
