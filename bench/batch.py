"""In-process cost per call of a batch through the router (no HTTP, no sockets).

python bench/batch.py [SIZE]    (SIZE: calls per batch, 1000 unless given)
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import gemstone_aio as gemstone
from gemstone_aio.protocol import CallContext
from gemstone_aio.server import ROUTER_KEY


class Hello(gemstone.MicroService):
    name = "bench_batch"
    use_metrics = False  # as in bench/servers.py: the default install has no prometheus-client

    @gemstone.exposed_method()
    async def say_hello(self, name: str) -> str:
        return "hello " + name


async def main() -> None:
    app = Hello().make_app()
    router = app[ROUTER_KEY]
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    body = json.dumps(
        [
            {"jsonrpc": "2.0", "method": "say_hello", "params": {"name": "w"}, "id": i}
            for i in range(size)
        ]
    ).encode()
    single = b'{"jsonrpc": "2.0", "method": "say_hello", "params": {"name": "w"}, "id": 1}'
    context = CallContext()  # an anonymous caller
    for _ in range(3):
        await router.handle(body, context)
    rounds = 20_000 // size
    started = time.perf_counter()
    for _ in range(rounds):
        await router.handle(body, context)
    per_call_batch = (time.perf_counter() - started) / (rounds * size)
    started = time.perf_counter()
    for _ in range(rounds * size):
        await router.handle(single, context)
    per_call_single = (time.perf_counter() - started) / (rounds * size)
    print(f"{size}-call batch: {per_call_batch * 1e6:.1f} us per call")
    print(f"single calls:    {per_call_single * 1e6:.1f} us per call (router only, no HTTP)")
    print(f"ratio batch/single: {per_call_batch / per_call_single:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
