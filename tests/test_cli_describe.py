"""``gemstone describe`` against real services, in subprocesses."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from aiohttp.test_utils import unused_port

import gemstone_aio as gemstone
from gemstone_aio.testing import serving
from tests.fixtures.cli import DOC, LEGACY_SPECS, RunCli, WireRecorder


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
    signature = "add(title: string, copies: integer = 1, *tags: string) -> integer"
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
    dead = f"http://127.0.0.1:{unused_port()}/api"
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


async def test_describe_lists_the_events(gemstone_cli: RunCli) -> None:
    """After the methods come the events, from the service's AsyncAPI document: payload
    type, whether the service emits (and how) or handles each, and its description."""
    from examples.self_description import PizzaService

    async with serving(PizzaService()) as service:
        result = await gemstone_cli("describe", service.accessible_at)
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    events = lines[lines.index("events") :]
    assert events == [
        "events",
        "",
        "menu.viewed: any (untyped) — emits broadcast",
        "",
        "order.placed: Order — emits one-of-N",
        "    An order as the kitchen sees it.",
        "",
        "oven.ready: OvenReady — handles",
        "    An oven is free for the next pizza.",
    ]


class Marked(gemstone.MicroService):
    """Docstrings with reStructuredText markup; the framework's statistics method."""

    name = "marked"
    use_statistics = True

    @gemstone.exposed_method()
    async def weigh(self, item: str, unit: str = "kg", exact: bool = False) -> float:
        """Weigh ``item`` in ``unit``, see :class:`~shop.Scale` and :ref:`the scales <x>`."""
        return 1.0


class OwnStatistics(gemstone.MicroService):
    """A service whose own method is called ``statistics``."""

    name = "own_statistics"

    @gemstone.exposed_method()
    async def statistics(self) -> int:
        """How many items were sold."""
        return 3


async def test_describe_shows_defaults_hides_builtins_and_renders_docs(
    gemstone_cli: RunCli,
) -> None:
    """Defaults are shown, inline markup is read as text, the framework's methods appear
    only with --all; a service's own method named like a built-in is listed."""
    async with serving(Marked()) as marked, serving(OwnStatistics()) as own:
        table, everything, theirs = await asyncio.gather(
            gemstone_cli("describe", marked.accessible_at),
            gemstone_cli("describe", "--all", marked.accessible_at),
            gemstone_cli("describe", own.accessible_at),
        )
    assert table.code == 0, table.stderr
    lines = table.stdout.splitlines()
    signature = 'weigh(item: string, unit: string = "kg", exact: boolean = false) -> number'
    assert lines[2:5] == [
        signature,
        "    Weigh item in unit, see Scale and the scales.",
        "",
    ]
    assert lines[-1] == (
        "(built-in methods not shown: get_service_specs, rpc.discover, statistics; "
        "--all shows them)"
    )
    assert not any(line.startswith(("rpc.discover(", "statistics(")) for line in lines)
    all_lines = everything.stdout.splitlines()
    for builtin in ("rpc.discover() -> ", "get_service_specs() -> ", "statistics() -> "):
        assert any(line.startswith(builtin) for line in all_lines), builtin
    assert "statistics() -> integer" in theirs.stdout.splitlines()


async def test_describe_lists_the_methods_when_the_events_cannot_be_fetched(
    gemstone_cli: RunCli,
) -> None:
    """A document linking an AsyncAPI document that is not served: the methods are listed,
    and a warning says the events are not."""

    async def discover(request: web.Request) -> web.Response:
        message = await request.json()
        document = {**DOC, "x-asyncapi": "http://127.0.0.1:1/api/asyncapi.json"}
        return web.json_response({"jsonrpc": "2.0", "id": message["id"], "result": document})

    app = web.Application()
    app.router.add_post("/api", discover)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/api"
    try:
        result = await gemstone_cli("describe", url)
    finally:
        await runner.cleanup()
    assert result.code == 0, result.stderr
    assert result.stdout.startswith(f"recorder 1.0 — {url}")
    assert "events" not in result.stdout.splitlines()
    assert result.stderr == (
        f"warning: events not listed: cannot fetch {url}/asyncapi.json: HTTP 404\n"
    )
