"""Where a server's time goes per request: cProfile on a server process of ``bench/servers.py``.

The server runs with ``--profile``; a client in another process sends exactly
``--calls`` keep-alive POSTs of the case's body over ``--connections`` connections; the
server is stopped and its statistics are printed per request: calls per request, own
time (tottime) and time including callees (cumtime) in µs per request. cProfile slows
Python code down several times, so the µs are for comparing functions with one
another, not with ``bench/rpc_throughput.py``; the calls per request are exact. Only the
event loop's thread is profiled (a blocking method's thread is not).

    python bench/profile_server.py [--kind gemstone|bare] [--case async|blocking|model|batch]
        [--loop asyncio|uvloop] [--calls 20000] [--top 40] [--sort tottime|cumtime]
        [--src PATH] [--save OUT.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pstats
import subprocess
import sys
import tempfile
from pathlib import Path

from _harness import HERE, ROOT, free_port, wait_for_port
from rpc_instructions import BODIES, _post


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("gemstone", "bare"), default="gemstone")
    parser.add_argument("--case", choices=sorted(BODIES), default="async")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sort", choices=("tottime", "cumtime"), default="tottime")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="gemstone_aio from here")
    parser.add_argument("--save", type=Path, help="also keep the raw statistics here")
    args = parser.parse_args()
    body = BODIES[args.case].encode()
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        out = Path(workdir) / "server.prof"
        argv = [sys.executable, str(HERE / "servers.py"), args.kind, str(port)]
        server = subprocess.Popen(
            [*argv, "--loop", args.loop, "--profile", str(out)],
            env={**os.environ, "PYTHONPATH": str(args.src.resolve())},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port)
            sent = args.calls // args.connections * args.connections
            asyncio.run(_post(port, body, sent, args.connections))
        finally:
            server.terminate()
            server.wait(60)
        if not out.exists():
            sys.exit("the server wrote no statistics")
        if args.save:
            args.save.write_bytes(out.read_bytes())
        stats = pstats.Stats(str(out))
    # pstats keeps (file, line, name) -> (primitive calls, calls, tottime, cumtime, callers).
    rows = sorted(
        stats.stats.items(),  # type: ignore[attr-defined]
        key=lambda item: item[1][2 if args.sort == "tottime" else 3],
        reverse=True,
    )
    total = sum(value[2] for _, value in rows)
    print(
        f"{args.kind} [{args.loop}], {args.case}: {sent} requests; profiled time "
        f"{total / sent * 1e6:.1f} µs per request (cProfile on; for comparing functions only)"
    )
    print(f"{'calls/req':>9} {'tottime µs':>10} {'cumtime µs':>10}  function")
    for (filename, line, name), (_, calls, tottime, cumtime, _) in rows[: args.top]:
        where = filename
        for prefix in (str(args.src.resolve()), str(ROOT), sys.prefix, sys.base_prefix):
            where = where.replace(prefix, "")
        place = f"{where}:{line}" if line else where
        print(
            f"{calls / sent:9.2f} {tottime / sent * 1e6:10.2f} {cumtime / sent * 1e6:10.2f}  "
            f"{name} ({place})"
        )


if __name__ == "__main__":
    main()
