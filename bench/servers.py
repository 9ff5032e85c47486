"""gemstone-aio and the bare-aiohttp baseline, for the HTTP benchmarks.

``python bench/servers.py {gemstone,bare} PORT [--loop asyncio|uvloop] [--profile OUT]
[--set NAME=JSON ...]`` (or ``BENCH_LOOP=uvloop`` in the environment; the flag wins;
default ``asyncio``). ``--set`` changes an attribute of the gemstone-aio service
(``--set request_id_header=null``), to measure what one feature costs.
``--profile OUT`` runs the server under cProfile (the event loop's thread) and writes
the statistics to ``OUT`` when it stops (SIGTERM or SIGINT): see ``bench/profile_server.py``.

Every server answers the same four things: ``say_hello(name: str)`` (async),
``say_hello_blocking(name: str)`` (a plain function in a thread pool),
``create_user(user: User)`` (a pydantic-model param) and batches of them.

The bare handler is the limit: the same JSON-RPC work by hand. Its blocking case is a
plain ``loop.run_in_executor`` on a :class:`~concurrent.futures.ThreadPoolExecutor` with
as many threads as gemstone-aio's default pool. Both servers run on the loop asked for:
gemstone-aio through ``MicroService.use_uvloop`` (and, for versions without it, the
event loop policy), the bare handler through ``web.run_app(..., loop=...)``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
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


# As many threads as gemstone-aio's default pool (min(32, cores + 4)).
_pool = ThreadPoolExecutor(Hello.max_parallel_blocking_tasks)
LOOPS = ("asyncio", "uvloop")


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("gemstone", "bare"))
    parser.add_argument("port", type=int)
    parser.add_argument("--loop", choices=LOOPS, default=os.environ.get("BENCH_LOOP", "asyncio"))
    parser.add_argument("--profile", metavar="OUT", help="write cProfile statistics to OUT")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="set an attribute of the gemstone-aio service (a JSON value)",
    )
    args = parser.parse_args()
    if args.profile is None:
        serve(args)
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        serve(args)
    finally:
        profiler.disable()
        profiler.dump_stats(args.profile)


def serve(args: argparse.Namespace) -> None:
    uvloop: Any = None
    if args.loop == "uvloop":
        import uvloop
    if args.kind == "gemstone":
        service = Hello()
        for setting in args.set:
            name, _, value = setting.partition("=")
            if not hasattr(service, name):
                parser_error = f"--set {setting}: the service has no attribute {name!r}"
                raise SystemExit(parser_error)
            setattr(service, name, json.loads(value))
        service.port = args.port
        service.refresh_accessible_at()
        service.use_uvloop = uvloop is not None
        if uvloop is not None:
            # Versions of gemstone-aio before use_uvloop run on asyncio.run(): the policy
            # picks the loop there. With use_uvloop = True the policy is not consulted.
            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        service.start(argv=[])  # the port comes from this script's own arguments
    else:
        app = web.Application()
        app.router.add_post("/api", bare_handler)
        loop = uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()
        web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None, loop=loop)


if __name__ == "__main__":
    main()
