"""Event-loop time that hostile request bodies cost the router (issue: bounded error answers).

    python bench/hostile_params.py [--rounds 20]

Each body is answered by the router of a real service (``make_app()``), the same call path
the endpoint uses, and timed with ``time.perf_counter`` around ``router.handle``: that is
the time the event loop is held. Prints the median, the worst round and the answer size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import gemstone_aio as gemstone
from gemstone_aio.protocol import CallContext
from gemstone_aio.server import ROUTER_KEY


class Target(gemstone.MicroService):
    name = "bench_hostile"
    use_metrics = False

    @gemstone.exposed_method()
    async def add(self, a: float, b: float) -> float:
        return a + b

    @gemstone.exposed_method()
    async def total(self, values: list[int]) -> int:
        return sum(values)


def _body(method: str, params: Any) -> bytes:
    request = {"jsonrpc": "2.0", "method": method, "params": params, "id": 1}
    return json.dumps(request, separators=(",", ":")).encode()


BODIES = {
    "usual call (reference)": _body("add", {"a": 1, "b": 2}),
    "80,000 unknown named params (0.8 MB)": _body("add", {f"n{i:x}": 0 for i in range(80_000)}),
    "80,000 invalid list items (0.3 MB)": _body("total", {"values": ["x"] * 80_000}),
    "one 0.8 MB unknown name": _body("add", {"a": 1, "b": 2, "x" * 800_000: 0}),
}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    app = Target().make_app()
    router = app[ROUTER_KEY]
    for label, body in BODIES.items():
        times = []
        answer = b""
        for _ in range(args.rounds):
            began = time.perf_counter()
            answer = await router.handle(body, CallContext()) or b""
            times.append(time.perf_counter() - began)
        print(
            f"{label:40s} body {len(body) / 1e6:5.2f} MB  loop time median "
            f"{statistics.median(times) * 1000:7.2f} ms  worst {max(times) * 1000:7.2f} ms  "
            f"answer {len(answer):6d} bytes"
        )


if __name__ == "__main__":
    asyncio.run(main())
