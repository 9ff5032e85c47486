"""Quick check: requests/s of one case through gemstone-aio against a bare aiohttp handler.

Both servers run in their own process on the same event loop; the load comes from
``wrk`` in another process, on loopback; each round measures both servers back to back
(odd rounds the other way round) and the ratio printed is the median of the per-round
ratios, next to the server CPU time per request.

    python bench/rpc_throughput.py [--seconds 5] [--rounds 3] [--connections 32]
        [--case async|blocking|model|batch] [--loop asyncio|uvloop] [--src PATH]
        [--steady-client]

``--steady-client`` pins the servers to CPU 0 and wrk to CPU 1 and keeps CPU 1 awake
(see ``_harness.steady_client``: on a virtual machine, waking an idle wrk costs a slow
server more per request than a fast one, which exaggerates every ratio).

``--src`` imports gemstone-aio from another checkout (``git worktree add /tmp/before
REV``, then ``--src /tmp/before/src``), for before/after figures.
``python bench/run.py`` is the full suite (peers, every case on both loops, memory, start-up).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from _harness import HERE, ROOT, Server, steady_client, wrk
from run import CASES

# The suite's request bodies, by short name.
BODIES = dict(zip(("async", "blocking", "model", "batch"), CASES.values(), strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--case", choices=sorted(BODIES), default="async")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="gemstone_aio from here")
    parser.add_argument("--steady-client", action="store_true", help="keep wrk's CPU awake")
    args = parser.parse_args()
    with steady_client(args.steady_client):
        measure(args)


def measure(args: argparse.Namespace) -> None:
    servers = [
        Server(
            kind,
            [sys.executable, str(HERE / "servers.py"), kind, "--loop", args.loop],
            src=args.src.resolve(),
        ).start()
        for kind in ("bare", "gemstone")
    ]
    rps: dict[str, list[float]] = {s.name: [] for s in servers}
    cpu: dict[str, list[float]] = {s.name: [] for s in servers}
    body = BODIES[args.case]
    try:
        for server in servers:
            wrk(server.url, body, seconds=1, connections=args.connections)
        for round_ in range(args.rounds):
            for server in servers if round_ % 2 == 0 else servers[::-1]:
                before = server.cpu_seconds()
                run = wrk(server.url, body, seconds=args.seconds, connections=args.connections)
                rps[server.name].append(run.rps)
                cpu[server.name].append((server.cpu_seconds() - before) / run.requests * 1e6)
    finally:
        for server in servers:
            server.stop()
    ratio = statistics.median(o / b for o, b in zip(rps["gemstone"], rps["bare"], strict=True))
    cpu_ratio = statistics.median(b / o for o, b in zip(cpu["gemstone"], cpu["bare"], strict=True))
    bare, ours = statistics.median(rps["bare"]), statistics.median(rps["gemstone"])
    steady = " (steady client)" if args.steady_client else ""
    print(
        f"{args.case} on {args.loop}{steady}: bare aiohttp {bare:.0f} req/s; gemstone-aio {ours:.0f} "
        f"req/s; ratio {ratio:.2f} (median of per-round ratios)"
    )
    bare_cpu, our_cpu = statistics.median(cpu["bare"]), statistics.median(cpu["gemstone"])
    print(
        f"server CPU per request: bare {bare_cpu:.1f} µs; gemstone-aio {our_cpu:.1f} µs; "
        f"ratio {cpu_ratio:.2f}"
    )


if __name__ == "__main__":
    main()
