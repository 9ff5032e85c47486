"""``gemstone registry`` runs the reference registry; ``gemstone call`` finds services in it."""

from __future__ import annotations

import json

import pytest
from aiohttp.test_utils import unused_port

from gemstone_aio.client import AccessDeniedError, InvalidParamsError, RemoteService
from gemstone_aio.testing import serving
from tests.fixtures.cli import RunCli, start_cli, stop, wait_for_line
from tests.fixtures.services import Calculator


async def test_registry_command_serves_the_reference_registry(gemstone_cli: RunCli) -> None:
    port = unused_port()
    url = f"http://127.0.0.1:{port}/api"
    proc = await start_cli("registry", "--port", str(port), "--expiry", "30", "--token", "t0k")
    try:
        await wait_for_line(proc.stderr, "serving at")
        async with serving(Calculator()) as calc:
            assert calc.accessible_at is not None
            async with RemoteService(url) as anonymous:
                with pytest.raises(AccessDeniedError):
                    await anonymous.call("ping", name="calculator", url=calc.accessible_at)
            async with RemoteService(url, token="t0k") as member:
                assert await member.call("ping", name="calculator", url=calc.accessible_at)
            found = await gemstone_cli("call", "--registry", url, "calc*", "subtract", "5", "2")
            assert found.code == 0, found.stderr
            assert f"[!] Service URL : {calc.accessible_at}" in found.stderr
            assert found.stdout == "3\n"
            listed = await gemstone_cli("call_raw", "--json", url, "list_services")
            assert json.loads(listed.stdout) == {"calculator": [calc.accessible_at]}
    finally:
        assert await stop(proc) == 0


async def test_registry_rejects_a_bad_expiry(gemstone_cli: RunCli) -> None:
    result = await gemstone_cli("registry", "--expiry", "0")
    assert result.code == 2
    assert result.stderr == "error: --expiry must be a positive number of seconds, got 0.0\n"


async def test_registry_refuses_an_open_registry_on_a_network(gemstone_cli: RunCli) -> None:
    """Without a token, another address than loopback is refused in one line, naming the fix."""
    result = await gemstone_cli("registry", "--host", "192.0.2.1", "--port", "0")
    assert result.code == 2
    assert "Traceback" not in result.stderr
    assert "without a token" in result.stderr
    assert "--insecure" in result.stderr


async def test_registry_takes_the_security_options(gemstone_cli: RunCli) -> None:
    port = unused_port()
    url = f"http://127.0.0.1:{port}/api"
    proc = await start_cli(
        "registry", "--port", str(port), "--token", "t0k", "--lookups-require-token",
        "--allowed-networks", "127.0.0.0/8", "--warmup", "0",
    )  # fmt: skip
    try:
        await wait_for_line(proc.stderr, "serving at")
        async with RemoteService(url) as anonymous, RemoteService(url, token="t0k") as member:
            with pytest.raises(AccessDeniedError):
                await anonymous.call("list_services")
            with pytest.raises(InvalidParamsError, match="allowed_networks"):
                await member.call("ping", "a", "http://10.0.0.1:1/api")
            assert await member.call("ping", "a", "http://127.0.0.1:1/api") is True
            assert await member.call("lookup", "a") == {
                "urls": ["http://127.0.0.1:1/api"],
                "complete": True,
                "epoch": (await member.call("lookup", "a"))["epoch"],
            }
    finally:
        assert await stop(proc) == 0
