"""``gemstone registry`` runs the reference registry; ``gemstone call`` finds services in it."""

from __future__ import annotations

import json

import pytest

from gemstone_aio.client import AccessDeniedError, RemoteService
from gemstone_aio.testing import serving
from tests.fixtures.cli import RunCli, free_port, start_cli, stop, wait_for_line
from tests.fixtures.services import Calculator


async def test_registry_command_serves_the_reference_registry(gemstone_cli: RunCli) -> None:
    port = free_port()
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
