"""Quick check: requests/s of a trivial call through gemstone-aio against a bare aiohttp handler.

Both servers run in their own process; the load comes from ``wrk`` in another process,
on loopback; rounds alternate between the servers and medians are compared.

    python bench/rpc_throughput.py [--seconds 5] [--rounds 3] [--connections 32]
        [--case async|blocking|model|batch]

``python bench/run.py`` is the full suite (peers, batches, memory, start-up).
"""

from __future__ import annotations

import argparse
import statistics
import sys

from _harness import Server, wrk
from run import CASES

# The suite's request bodies, by short name.
BODIES = dict(zip(("async", "blocking", "model", "batch"), CASES.values(), strict=True))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--case", choices=sorted(BODIES), default="async")
    args = parser.parse_args()
    servers = [
        Server(kind, [sys.executable, "bench/servers.py", kind]).start()
        for kind in ("bare", "gemstone")
    ]
    results: dict[str, list[float]] = {s.name: [] for s in servers}
    cpu: dict[str, list[float]] = {s.name: [] for s in servers}
    body = BODIES[args.case]
    try:
        for server in servers:
            wrk(server.url, body, seconds=1, connections=args.connections)
        for _ in range(args.rounds):
            for server in servers:
                before = server.cpu_seconds()
                run = wrk(server.url, body, seconds=args.seconds, connections=args.connections)
                results[server.name].append(run.rps)
                cpu[server.name].append((server.cpu_seconds() - before) / run.requests * 1e6)
    finally:
        for server in servers:
            server.stop()
    bare, ours = statistics.median(results["bare"]), statistics.median(results["gemstone"])
    print(
        f"bare aiohttp: {bare:.0f} req/s; gemstone-aio: {ours:.0f} req/s; ratio {ours / bare:.2f}"
    )
    bare_cpu, our_cpu = statistics.median(cpu["bare"]), statistics.median(cpu["gemstone"])
    print(
        f"server CPU per request: bare {bare_cpu:.1f} µs; gemstone-aio {our_cpu:.1f} µs; "
        f"ratio {bare_cpu / our_cpu:.2f}"
    )


if __name__ == "__main__":
    main()
