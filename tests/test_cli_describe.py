"""``gemstone describe`` against real services, in subprocesses."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

import gemstone_aio as gemstone
from gemstone_aio.testing import serving
from tests.fixtures.cli import DOC, LEGACY_SPECS, RunCli, WireRecorder, free_port


class Shelf(gemstone.MicroService):
    """Books on a shelf."""

    name = "shelf"

    def authenticate_request(self, request: web.Request) -> Any:
        return request.headers.get("X-Api-Token") == "librarian"

    @gemstone.exposed_method()
    async def add(self, title: str, copies: int = 1, *tags: str) -> int:
        """Put a book on the shelf.

        Args:
            title: The book's title.
            copies: How many copies.
            tags: Labels for the book.

        Returns:
            The number of copies now on the shelf.
        """
        return copies

    @gemstone.exposed_method(private=True)
    async def burn(self, title: str) -> None:
        """Remove a book for good."""


async def test_describe_a_service(gemstone_cli: RunCli) -> None:
    async with serving(Shelf()) as service:
        table, raw, staff = await asyncio.gather(
            gemstone_cli("describe", service.accessible_at),
            gemstone_cli("describe", "--json", service.accessible_at),
            gemstone_cli("describe", "--token", "librarian", service.accessible_at),
        )
    assert table.code == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == f"shelf {gemstone.__version__} — {service.accessible_at}"
    signature = "add(title: string, copies: integer = …, *tags: string) -> integer"
    assert signature in lines
    assert lines[lines.index(signature) + 1] == "    Put a book on the shelf."
    assert not any(line.startswith("burn(") for line in lines)  # private, not authenticated
    assert "burn(title: string) -> null" in staff.stdout.splitlines()
    assert raw.code == 0, raw.stderr
    document = json.loads(raw.stdout)
    assert document["info"]["title"] == "shelf"
    assert "add" in [m["name"] for m in document["methods"]]


async def test_describe_a_hand_written_openrpc_document(
    typed_recorder: tuple[WireRecorder, str], gemstone_cli: RunCli
) -> None:
    _, url = typed_recorder
    table, raw = await asyncio.gather(
        gemstone_cli("describe", url), gemstone_cli("describe", "--json", url)
    )
    assert table.code == 0, table.stderr
    assert table.stdout.splitlines()[:3] == [
        f"recorder 1.0 — {url}",
        "",
        "store(count: integer, flag: boolean = …, label: string = …, tags: array[string] = …)"
        " -> object",
    ]
    assert json.loads(raw.stdout) == DOC


async def test_describe_falls_back_to_get_service_specs(
    legacy_recorder: tuple[WireRecorder, str], gemstone_cli: RunCli
) -> None:
    _, url = legacy_recorder
    table, raw = await asyncio.gather(
        gemstone_cli("describe", url), gemstone_cli("describe", "--json", url)
    )
    assert table.code == 0, table.stderr
    assert table.stdout.splitlines() == [
        f"old-style — {url} (from get_service_specs)",
        "",
        "get_service_specs",
        "",
        "greet",
        "    Say hello to someone.",
    ]
    assert json.loads(raw.stdout) == LEGACY_SPECS


async def test_describe_failures(
    plain_recorder: tuple[WireRecorder, str], gemstone_cli: RunCli
) -> None:
    _, url = plain_recorder
    dead = f"http://127.0.0.1:{free_port()}/api"
    mute, unreachable = await asyncio.gather(
        gemstone_cli("describe", url), gemstone_cli("describe", dead)
    )
    assert mute.code == 1
    assert mute.stderr == (
        f"error: {url} answers neither rpc.discover nor get_service_specs "
        "(-32601: Method not found)\n"
    )
    assert unreachable.code == 3
    assert unreachable.stderr.startswith(f"error: cannot reach {dead}")
