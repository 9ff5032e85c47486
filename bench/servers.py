"""gemstone-aio and the bare-aiohttp baseline, for the HTTP benchmarks.

``python bench/servers.py gemstone PORT`` or ``python bench/servers.py bare PORT``.

Every server answers the same four things: ``say_hello(name: str)`` (async),
``say_hello_blocking(name: str)`` (a plain function in a thread pool),
``create_user(user: User)`` (a pydantic-model param) and batches of them.
"""

from __future__ import annotations

import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pydantic
import pydantic_core
from aiohttp import web

import gemstone_aio as gemstone


class User(pydantic.BaseModel):
    name: str
    age: int


class Hello(gemstone.MicroService):
    name = "bench_hello"
    # As installed by ``pip install gemstone-aio``: prometheus-client (the ``metrics``
    # extra) is not there, so metrics are off. This machine has the extra for the tests;
    # ``bench/metrics_overhead.py`` measures what turning metrics on costs.
    use_metrics = False

    @gemstone.exposed_method()
    async def say_hello(self, name: str) -> str:
        return "hello " + name

    @gemstone.exposed_method()
    def say_hello_blocking(self, name: str) -> str:
        return "hello " + name

    @gemstone.exposed_method()
    async def create_user(self, user: User) -> str:
        return user.name


_pool = ThreadPoolExecutor(8)


def _blocking(name: str) -> str:
    return "hello " + name


async def _one(call: dict[str, Any]) -> dict[str, Any]:
    """The same JSON-RPC work as the framework, by hand: check, validate, run, wrap."""
    if call.get("jsonrpc") != "2.0" or not isinstance(call.get("method"), str):
        return {
            "jsonrpc": "2.0",
            "error": {"code": -32600, "message": "Invalid Request"},
            "id": None,
        }
    method, params = call["method"], call.get("params") or {}
    if method == "create_user":
        result: Any = User.model_validate(params["user"]).name
    else:
        name = params["name"]
        if not isinstance(name, str):
            return {
                "jsonrpc": "2.0",
                "error": {"code": -32602, "message": "Invalid params"},
                "id": call.get("id"),
            }
        if method == "say_hello_blocking":
            result = await asyncio.get_running_loop().run_in_executor(_pool, _blocking, name)
        else:
            result = "hello " + name
    return {"jsonrpc": "2.0", "result": result, "id": call.get("id")}


async def bare_handler(request: web.Request) -> web.Response:
    body = pydantic_core.from_json(await request.read())
    if isinstance(body, list):
        answer: Any = await asyncio.gather(*(_one(call) for call in body))
    else:
        answer = await _one(body)
    return web.Response(body=pydantic_core.to_json(answer), content_type="application/json")


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "gemstone":
        service = Hello()
        service.port = port
        service.refresh_accessible_at()
        service.start(argv=[])  # the port comes from this script's own arguments
    else:
        app = web.Application()
        app.router.add_post("/api", bare_handler)
        web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
