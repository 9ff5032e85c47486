"""``gemstone describe`` against real services, in subprocesses."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import gemstone_aio as gemstone
from gemstone_aio.testing import serving
from tests.fixtures.cli import DOC, RunCli, WireRecorder, free_port
from tests.fixtures.services import Calculator


class OldStyle(gemstone.MicroService):
    """A 0.10-style service that describes itself with get_service_specs."""

    name = "old-style"

    @gemstone.exposed_method()
    async def get_service_specs(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "methods": {"get_service_specs": None, "greet": "Say hello to someone."},
        }

    @gemstone.exposed_method()
    async def greet(self, who: str) -> str:
        """Say hello to someone."""
        return f"hello {who}"


async def test_describe_from_rpc_discover(
    typed_recorder: tuple[WireRecorder, str], gemstone_cli: RunCli
) -> None:
    _, url = typed_recorder
    table, raw = await asyncio.gather(
        gemstone_cli("describe", url), gemstone_cli("describe", "--json", url)
    )
    assert table.code == 0, table.stderr
    assert f"recorder 1.0 — {url}" in table.stdout
    assert (
        "store(count: integer, flag: boolean = …, label: string = …, "
        "tags: array[string] = …) -> object"
    ) in table.stdout
    assert raw.code == 0, raw.stderr
    assert json.loads(raw.stdout) == DOC


async def test_describe_falls_back_to_get_service_specs(gemstone_cli: RunCli) -> None:
    async with serving(OldStyle()) as service:
        table, raw = await asyncio.gather(
            gemstone_cli("describe", service.accessible_at),
            gemstone_cli("describe", "--json", service.accessible_at),
        )
    assert table.code == 0, table.stderr
    assert "old-style" in table.stdout
    assert "greet" in table.stdout
    assert "Say hello to someone." in table.stdout
    assert json.loads(raw.stdout)["methods"]["greet"] == "Say hello to someone."


async def test_describe_failures(gemstone_cli: RunCli) -> None:
    dead = f"http://127.0.0.1:{free_port()}/api"
    async with serving(Calculator()) as calc:
        mute, unreachable = await asyncio.gather(
            gemstone_cli("describe", calc.accessible_at), gemstone_cli("describe", dead)
        )
    assert mute.code == 1
    assert mute.stderr == (
        f"error: {calc.accessible_at} answers neither rpc.discover nor get_service_specs "
        "(-32601: Method not found)\n"
    )
    assert unreachable.code == 3
    assert unreachable.stderr.startswith(f"error: cannot reach {dead}")
