"""The configuration, periodic-task, module and web-page examples, run for real."""

from __future__ import annotations

import signal
from typing import Any

import aiohttp
from examples.modules_service import ModularService
from examples.periodic_task import TickingService
from examples.web_page import WebPageService
from pytest_aiohttp import AiohttpClient

from tests.fixtures.config import ROOT, StartProcess, wait_until


async def rpc(url: str, method: str, *params: object) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url, json={"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}
        ) as response,
    ):
        return (await response.json())["result"]


async def test_hello_world_configurable(service_process: StartProcess) -> None:
    """Command line and environment reach the configurables before on_service_start."""
    child = await service_process(
        ROOT / "examples" / "hello_world_configurable.py",
        "--port=0",
        "--b",
        "2",
        "--c=x, y",
        HELLO_WORLD_SERVICE_A="from env",
        HELLO_WORLD_SERVICE_B="9",
    )
    url = await child.wait_serving()
    await child.wait_for_line(r"^a=", stream="stdout")
    assert child.stdout[0] == "a='from env' b=2 c=['x', 'y']"
    assert await rpc(url, "say_hello", "config") == "hello config"
    configuration = await rpc(url, "configuration")
    assert configuration["b"] == 2
    assert configuration["accessible_at"] == url
    child.proc.send_signal(signal.SIGTERM)
    assert await child.finish() == 0


async def test_hello_world_configurable_bad_value(service_process: StartProcess) -> None:
    """A bad value for ``b`` stops it with a one-line message."""
    child = await service_process(
        ROOT / "examples" / "hello_world_configurable.py", "--port=0", "--b=two"
    )
    assert await child.finish() == 2
    assert child.stderr == [
        "hello_world_service: error: invalid value 'two' for configurable 'b': "
        "not an integer (from command-line option --b)"
    ]


async def test_periodic_task_example(aiohttp_client: AiohttpClient) -> None:
    """The ticks counter grows and the blocking report runs in the pool."""

    class Fast(TickingService):
        name = "ticking_fast"
        interval = 0.02

    service = Fast()
    client = await aiohttp_client(service.make_app())

    async def ticks() -> int:
        response = await client.post(
            "/api", json={"jsonrpc": "2.0", "method": "ticks_so_far", "id": 1}
        )
        result: int = (await response.json())["result"]
        return result

    first = await ticks()
    await wait_until(lambda: service.ticks >= first + 3 and service.last_report > 0)
    assert await ticks() >= first + 3


async def test_modules_example(aiohttp_client: AiohttpClient) -> None:
    """Both modules' methods are served and know their service."""
    client = await aiohttp_client(ModularService().make_app())
    replies = []
    for method in ("module1.say_hello", "module2.say_hello"):
        response = await client.post(
            "/api", json={"jsonrpc": "2.0", "method": method, "params": ["ann"], "id": 1}
        )
        replies.append((await response.json())["result"])
    assert replies == [
        "hello ann from module 1 of modular_service",
        "hello ann from module 2 of modular_service",
    ]


async def test_web_page_example(aiohttp_client: AiohttpClient) -> None:
    """The page (template), its stylesheet (static) and the API are served together."""
    client = await aiohttp_client(WebPageService().make_app())
    page = await client.get("/")
    assert page.status == 200
    html = await page.text()
    assert "<title>web_page_service</title>" in html
    assert '<link rel="stylesheet" href="/static/style.css">' in html
    assert 'fetch("/api"' in html
    css = await client.get("/static/style.css")
    assert css.status == 200
    assert "#answer" in await css.text()
    reply = await client.post(
        "/api", json={"jsonrpc": "2.0", "method": "say_hello", "params": ["page"], "id": 1}
    )
    assert (await reply.json())["result"] == "hello page"
