"""What self-description costs: generating the OpenRPC document, and serving it.

``python bench/openrpc_document.py`` builds services of 10, 100 and 500 typed methods
(each with a pydantic model param, an enum, an optional and a list) and reports:

- the first ``rpc.discover`` (generation of the document) in ms, against building the
  application itself (the params models, which the service needs anyway) in the same run;
- a later ``rpc.discover`` (cached) against a trivial method call, both through the
  router without HTTP, in µs;
- the slowest trivial call made while the first ``rpc.discover`` generates the document
  (in a worker thread), in ms: how long the event loop was held.
"""

from __future__ import annotations

import asyncio
import enum
import statistics
import time
from typing import Any

import pydantic

import gemstone_aio as gemstone
from gemstone_aio.protocol import CallContext
from gemstone_aio.protocol import _jsonrpc as jsonrpc
from gemstone_aio.server import ROUTER_KEY


class Kind(enum.Enum):
    A = "a"
    B = "b"


class Payload(pydantic.BaseModel):
    name: str
    kind: Kind = Kind.A
    tags: list[str] = []


def make_service(methods: int) -> type[gemstone.MicroService]:
    namespace: dict[str, Any] = {"name": f"bench_{methods}"}
    for index in range(methods):

        async def method(
            self: Any, payload: Payload, count: int | None = None, labels: list[str] | None = None
        ) -> Payload:
            """Do something with a payload.

            Args:
                payload: The thing.
                count: How many.
                labels: Free labels.
            """
            return payload

        method.__name__ = method.__qualname__ = f"method_{index}"
        namespace[f"method_{index}"] = gemstone.exposed_method()(method)

    async def ping(self: Any) -> str:
        return "pong"

    namespace["ping"] = gemstone.exposed_method()(ping)
    return type(f"Bench{methods}", (gemstone.MicroService,), namespace)


async def time_call(router: Any, body: bytes, rounds: int) -> float:
    context = CallContext()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await router.handle(body, context)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


async def worst_ping_during_first_discover(methods: int, discover: bytes, ping: bytes) -> float:
    router = make_service(methods)().make_app()[ROUTER_KEY]
    task = asyncio.ensure_future(router.handle(discover, CallContext()))
    worst = 0.0
    while not task.done():
        worst = max(worst, await time_call(router, ping, 1))
        await asyncio.sleep(0)
    await task
    return worst


async def main() -> None:
    discover = jsonrpc.dumps({"jsonrpc": "2.0", "method": "rpc.discover", "id": 1})
    ping = jsonrpc.dumps({"jsonrpc": "2.0", "method": "ping", "id": 1})
    print(
        f"{'methods':>8} {'make_app ms':>12} {'1st discover ms':>16} {'ratio':>6}"
        f" {'cached discover µs':>19} {'ping µs':>8} {'ratio':>6} {'doc KiB':>8}"
    )
    for methods in (10, 100, 500):
        service_class = make_service(methods)
        started = time.perf_counter()
        app = service_class().make_app()
        build = time.perf_counter() - started
        router = app[ROUTER_KEY]
        started = time.perf_counter()
        answer = await router.handle(discover, CallContext())
        first = time.perf_counter() - started
        assert answer is not None
        cached = await time_call(router, discover, 50)
        trivial = await time_call(router, ping, 500)
        worst = await worst_ping_during_first_discover(methods, discover, ping)
        print(
            f"{methods:>8} {build * 1e3:>12.1f} {first * 1e3:>16.1f} {first / build:>6.2f}"
            f" {cached * 1e6:>19.0f} {trivial * 1e6:>8.1f} {cached / trivial:>6.0f}"
            f" {len(answer) / 1024:>8.1f} {worst * 1e3:>25.1f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
