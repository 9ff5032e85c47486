"""The reference registry: protocol, validation, token, expiry, and its command line."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import unused_port

from gemstone_aio import RemoteService
from gemstone_aio.client import AccessDeniedError, InvalidParamsError
from gemstone_aio.errors import CalledServiceError, ServiceConfigurationError
from gemstone_aio.registry import DEFAULT_EXPIRE_AFTER, ServiceRegistry
from gemstone_aio.testing import serving
from tests.fixtures.discovery import RegistryFactory, unique, wait_until

SRC = Path(__file__).resolve().parents[1] / "src"


async def test_default_expiry_is_a_few_default_intervals() -> None:
    """Instances expire after three of the default 30 s ping intervals."""
    assert DEFAULT_EXPIRE_AFTER == 90.0
    assert ServiceRegistry.expire_after == 3 * 30


async def test_ping_locate_list_unregister(start_registry: RegistryFactory) -> None:
    """The four methods over real HTTP, with params by name and by position."""
    registry = await start_registry()
    base = unique()
    async with RemoteService(str(registry.accessible_at)) as client:
        assert await client.call("ping", name=f"{base}.a", url="http://127.0.0.1:1/api") is True
        assert await client.call("ping", f"{base}.a", "http://127.0.0.1:2/api") is True
        assert await client.call("ping", f"{base}.b", "http://127.0.0.1:3/api") is True
        await client.call("ping", f"{base}.a", "http://127.0.0.1:1/api")  # keeps its place
        assert await client.call("locate_service", name=f"{base}.a") == [
            "http://127.0.0.1:1/api",
            "http://127.0.0.1:2/api",
        ]
        assert await client.call("locate_service", f"{base}.?") == [
            "http://127.0.0.1:1/api",
            "http://127.0.0.1:2/api",
            "http://127.0.0.1:3/api",
        ]
        assert await client.call("list_services") == {
            f"{base}.a": ["http://127.0.0.1:1/api", "http://127.0.0.1:2/api"],
            f"{base}.b": ["http://127.0.0.1:3/api"],
        }
        assert await client.call("unregister", f"{base}.a", "http://127.0.0.1:1/api") is True
        assert await client.call("unregister", f"{base}.a", "http://127.0.0.1:1/api") is False
        # the name must match: another service cannot remove this URL by mistake
        assert await client.call("unregister", f"{base}.x", "http://127.0.0.1:2/api") is False
        assert await client.call("locate_service", f"{base}.a") == ["http://127.0.0.1:2/api"]


async def test_a_url_moves_to_a_new_name_only_with_the_token(
    start_registry: RegistryFactory,
) -> None:
    """One entry per URL: with the token a URL pinging under a new name moves to it."""
    registry = await start_registry(token="t")
    old, new = unique(), unique()
    async with RemoteService(str(registry.accessible_at), token="t") as client:
        await client.call("ping", old, "http://127.0.0.1:5/api")
        await client.call("ping", new, "http://127.0.0.1:5/api")
        assert await client.call("locate_service", old) == []
        assert await client.call("locate_service", new) == ["http://127.0.0.1:5/api"]


async def test_without_a_token_a_url_never_moves(start_registry: RegistryFactory) -> None:
    """An open registry refuses another name for a live URL (calls would go to a stranger)."""
    registry = await start_registry(expire_after=0.5)
    real, stranger = unique(), unique()
    url = "http://127.0.0.1:5/api"
    async with RemoteService(str(registry.accessible_at)) as client:
        await client.call("ping", real, url)
        with pytest.raises(AccessDeniedError, match="is registered as"):
            await client.call("ping", stranger, url)
        assert await client.call("locate_service", real) == [url]
        assert await client.call("locate_service", stranger) == []
        # once the real instance left, the URL is free again
        assert await client.call("unregister", real, url) is True
        assert await client.call("ping", stranger, url) is True


@pytest.mark.parametrize(
    ("name", "url", "complaint"),
    [
        pytest.param("", "http://127.0.0.1:1/api", "name must be", id="empty-name"),
        pytest.param("a\nb", "http://127.0.0.1:1/api", "name must be", id="control-char"),
        pytest.param("x" * 300, "http://127.0.0.1:1/api", "name must be", id="long-name"),
        pytest.param("ok", "ftp://host/api", "'ftp://host/api'", id="ftp-url"),
        pytest.param("ok", "/api", "'/api'", id="relative-url"),
        pytest.param("ok", "not a url", "'not a url'", id="junk-url"),
        pytest.param("ok", "http://" + "h" * 3000, "url must be", id="long-url"),
    ],
)
async def test_bad_pings_are_rejected_with_the_value(
    start_registry: RegistryFactory, name: str, url: str, complaint: str
) -> None:
    """A ping with a bad name or URL gets Invalid params naming the value, and stores nothing."""
    registry = await start_registry()
    async with RemoteService(str(registry.accessible_at)) as client:
        with pytest.raises(InvalidParamsError) as caught:
            await client.call("ping", name, url)
        assert complaint in caught.value.message
        assert await client.call("list_services") == {}


async def test_wrong_param_types_are_invalid_params(start_registry: RegistryFactory) -> None:
    """Non-string params are rejected by the params model."""
    registry = await start_registry()
    async with RemoteService(str(registry.accessible_at)) as client:
        with pytest.raises(InvalidParamsError):
            await client.call("ping", name=1, url=["x"])
        with pytest.raises(InvalidParamsError):
            await client.call("locate_service")


async def test_token_protects_ping_and_unregister(start_registry: RegistryFactory) -> None:
    """With a token, ping/unregister need it (constant-time check); lookups stay open."""
    registry = await start_registry(token="s3cret")
    url = str(registry.accessible_at)
    name = unique()
    async with (
        RemoteService(url) as anonymous,
        RemoteService(url, token="wrong") as wrong,
        RemoteService(url, token="s3cret") as right,
    ):
        for client in (anonymous, wrong):
            with pytest.raises(AccessDeniedError):
                await client.call("ping", name, "http://127.0.0.1:1/api")
        assert await anonymous.call("locate_service", name) == []
        assert await right.call("ping", name, "http://127.0.0.1:1/api") is True
        assert await anonymous.call("locate_service", name) == ["http://127.0.0.1:1/api"]
        with pytest.raises(AccessDeniedError):
            await wrong.call("unregister", name, "http://127.0.0.1:1/api")
        assert await anonymous.call("list_services") == {name: ["http://127.0.0.1:1/api"]}
        assert await right.call("unregister", name, "http://127.0.0.1:1/api") is True


async def test_expiry_and_purge(start_registry: RegistryFactory) -> None:
    """Silent instances stop being located, and the table forgets them."""
    registry = await start_registry(expire_after=0.3)
    name = unique()
    async with RemoteService(str(registry.accessible_at)) as client:
        await client.call("ping", name, "http://127.0.0.1:1/api")
        await client.call("ping", name, "http://127.0.0.1:2/api")

        async def first_expired() -> bool:
            await client.call("ping", name, "http://127.0.0.1:2/api")
            return bool(await client.call("locate_service", name) == ["http://127.0.0.1:2/api"])

        await wait_until(first_expired, what="expiry")

        async def first_purged() -> bool:
            await client.call("ping", name, "http://127.0.0.1:2/api")
            return list(registry._by_url) == ["http://127.0.0.1:2/api"]

        await wait_until(first_purged, what="the purge")


async def test_the_table_is_bounded(start_registry: RegistryFactory) -> None:
    """Past max_instances, a new URL replaces a one-off ping, else Server overloaded."""
    registry = await start_registry()
    registry.max_instances = 2
    name = unique()
    async with RemoteService(str(registry.accessible_at)) as client:
        for url in ("http://127.0.0.1:1/api", "http://127.0.0.1:2/api") * 2:
            await client.call("ping", name, url)  # each pinged twice: real instances
        with pytest.raises(CalledServiceError) as caught:
            await client.call("ping", name, "http://127.0.0.1:3/api")
        assert caught.value.code == -32002
        assert "max_instances (2)" in caught.value.message
        assert await client.call("ping", name, "http://127.0.0.1:2/api") is True


async def test_a_flood_cannot_lock_real_instances_out(start_registry: RegistryFactory) -> None:
    """Ten batches of one-off pings fill both caps; real instances still get in and stay."""
    registry = await start_registry()
    registry.max_instances = 2_000
    registry.max_instances_per_name = 500
    real, flooded = unique("real"), unique("flooded")
    url = str(registry.accessible_at)
    async with RemoteService(url) as client:
        established = "http://127.0.0.1:9001/api"
        await client.call("ping", real, established)
        await client.call("ping", real, established)
        for batch_number in range(10):
            async with client.batch() as batch:
                for n in range(1_000):
                    port = 10_000 + batch_number * 1_000 + n
                    name = flooded if n % 2 else unique("junk")
                    batch.notify("ping", name, f"http://127.0.0.1:{port}/api")
        assert len(registry._by_url) == 2_000
        assert len(registry._by_name[flooded]) <= 500
        newcomer = "http://127.0.0.1:9002/api"
        assert await client.call("ping", real, newcomer) is True
        assert await client.call("ping", flooded, "http://127.0.0.1:9003/api") is True
        assert await client.call("locate_service", real) == [established, newcomer]
        assert "http://127.0.0.1:9003/api" in await client.call("locate_service", flooded)


async def test_token_holders_are_not_capped(start_registry: RegistryFactory) -> None:
    """The caps protect an open registry; with a token every ping is a trusted one."""
    registry = await start_registry(token="t")
    registry.max_instances = registry.max_instances_per_name = 2
    name = unique()
    async with RemoteService(str(registry.accessible_at), token="t") as client:
        for port in range(1, 6):
            await client.call("ping", name, f"http://127.0.0.1:{port}/api")
        assert len(await client.call("locate_service", name)) == 5


async def test_bad_expire_after_stops_start_up() -> None:
    """A non-positive expire_after is a configuration error naming the value."""
    registry = ServiceRegistry()
    registry.expire_after = 0
    with pytest.raises(
        ServiceConfigurationError, match=r"expire_after must be a positive .* got 0"
    ):
        async with serving(registry):
            pass


async def test_runs_as_a_module() -> None:
    """``python -m gemstone_aio.registry --host --port`` serves the registry until SIGTERM."""
    port = unused_port()
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gemstone_aio.registry", "--host", "127.0.0.1",
        "--port", str(port), "--expire-after", "5", "--token", "t",
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api"
    try:
        async with RemoteService(url, timeout=2) as anonymous, RemoteService(url, token="t") as ok:

            async def answers() -> bool:
                try:
                    return bool(await anonymous.call("list_services") == {})
                except Exception:
                    return False

            await wait_until(answers, timeout=20, what="the registry to listen")
            with pytest.raises(AccessDeniedError):
                await anonymous.call("ping", "a", "http://127.0.0.1:1/api")
            assert await ok.call("ping", "a", "http://127.0.0.1:1/api") is True
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)
    assert process.returncode == 0


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        pytest.param(["--port", "http"], "invalid int value: 'http'", id="port"),
        pytest.param(["--expire-after", "-1"], "must be positive, got '-1'", id="expiry"),
    ],
)
def test_bad_arguments_exit_with_a_reason(args: list[str], reason: str) -> None:
    """Bad flags exit non-zero with a one-line reason naming the value, no traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "gemstone_aio.registry", *args],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert reason in result.stderr
    assert "Traceback" not in result.stderr
