"""Servers used by the HTTP benchmarks, started in their own processes.

``python bench/_servers.py gemstone PORT`` or ``python bench/_servers.py bare PORT``.
"""

from __future__ import annotations

import sys

import pydantic_core
from aiohttp import web

import gemstone_aio as gemstone


class Hello(gemstone.MicroService):
    name = "bench_hello"

    @gemstone.exposed_method()
    async def say_hello(self, name: str) -> str:
        return "hello " + name

    @gemstone.exposed_method()
    def say_hello_blocking(self, name: str) -> str:
        return "hello " + name


async def bare_handler(request: web.Request) -> web.Response:
    """The same JSON work as the framework, written by hand: the limit of the stack."""
    body = pydantic_core.from_json(await request.read())
    if body.get("jsonrpc") != "2.0" or body.get("method") != "say_hello":
        raise web.HTTPBadRequest()
    name = body["params"]["name"]
    if not isinstance(name, str):
        raise web.HTTPBadRequest()
    payload = {"jsonrpc": "2.0", "result": "hello " + name, "id": body["id"]}
    return web.Response(body=pydantic_core.to_json(payload), content_type="application/json")


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "gemstone":
        service = Hello()
        service.port = port
        service.refresh_accessible_at()
        service.start()
    else:
        app = web.Application()
        app.router.add_post("/api", bare_handler)
        web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
