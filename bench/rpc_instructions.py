"""Instructions a server executes per trivial call: gemstone-aio against a bare aiohttp handler.

Requests per second on a shared machine move with the neighbours' load; the
instructions a server executes do not. Each server of ``bench/servers.py`` runs under
valgrind's callgrind with instrumentation off while it starts and warms up; then it is
switched on, a client in another process sends exactly ``--calls`` keep-alive POSTs of
the case's body over ``--connections`` connections (so requests queue up as under wrk),
the counters (every thread's, the executor's included) are dumped, and their total is
divided by the calls.

    python bench/rpc_instructions.py [--calls 3000] [--connections 32] [--rounds 2]
        [--loops asyncio,uvloop] [--case async|blocking|model|batch] [--src PATH]
        [--set NAME=JSON ...]

The ratio printed is bare / gemstone-aio: 1.00 would mean the framework costs nothing
beyond the bare handler's JSON work. It does not see cache misses, so wall-clock ratios
(``bench/rpc_throughput.py``) come out a few percent lower.

``--src`` imports gemstone-aio from another checkout, for before/after figures:
``git worktree add /tmp/before REV`` then ``--src /tmp/before/src`` (both servers get
it on ``PYTHONPATH``; the bare handler does not use it, so its figure is a control).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _harness import HERE, ROOT, callgrind_count, free_port, wait_for_port
from run import CASES

# The suite's request bodies, by short name.
BODIES = dict(zip(("async", "blocking", "model", "batch"), CASES.values(), strict=True))


async def _post(port: int, body: bytes, calls: int, connections: int) -> None:
    request = (
        b"POST /api HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )

    async def one_connection(count: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(count):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"unexpected answer: {head[:200]!r}")
            length = re.search(rb"(?i)content-length:\s*(\d+)", head)
            assert length is not None, head
            answer = await reader.readexactly(int(length.group(1)))
            if b'"error"' in answer:
                raise SystemExit(f"the call failed: {answer[:200]!r}")
        writer.close()
        await writer.wait_closed()

    per = calls // connections
    await asyncio.gather(*(one_connection(per) for _ in range(connections)))


def measure(
    kind: str,
    *,
    loop: str,
    body: bytes,
    calls: int,
    connections: int,
    src: Path,
    settings: tuple[str, ...] = (),
) -> float:
    """Return the instructions ``kind``'s server executed per call."""
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        out = Path(workdir) / "callgrind.out"
        server = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={out}",
                sys.executable,
                str(HERE / "servers.py"),
                kind,
                str(port),
                "--loop",
                loop,
                *(f"--set={setting}" for setting in settings if kind == "gemstone"),
            ],
            env={**os.environ, "PYTHONPATH": str(src)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port, timeout=300)
            asyncio.run(_post(port, body, 500, connections))  # warm-up, not counted
            sent = calls // connections * connections
            total = callgrind_count(
                server.pid, out, lambda: asyncio.run(_post(port, body, calls, connections))
            )
            return total / sent
        finally:
            server.terminate()
            server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--loops", default="asyncio", help="asyncio, uvloop or asyncio,uvloop")
    parser.add_argument("--case", choices=sorted(BODIES), default="async")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="gemstone_aio from here")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="set an attribute of the gemstone-aio service (servers.py --set)",
    )
    args = parser.parse_args()
    loops = [loop.strip() for loop in args.loops.split(",") if loop.strip()]
    if not loops or set(loops) - {"asyncio", "uvloop"}:
        parser.error("--loops takes asyncio, uvloop or both")
    body = BODIES[args.case].encode()
    per = " (one call = one request of 100 elements)" if args.case == "batch" else ""
    src = args.src.resolve()
    if src != (ROOT / "src").resolve():
        print(f"gemstone_aio from {src}")
    for loop in loops:
        results: dict[str, list[float]] = {"bare": [], "gemstone": []}
        for round_ in range(args.rounds):
            for kind in results:
                results[kind].append(
                    measure(
                        kind,
                        loop=loop,
                        body=body,
                        calls=args.calls,
                        connections=args.connections,
                        src=src,
                        settings=tuple(args.set),
                    )
                )
                print(
                    f"{loop} round {round_ + 1}: {kind:8s} {results[kind][-1]:10,.0f} "
                    f"instructions per call{per}",
                    flush=True,
                )
        bare, ours = (statistics.median(results[k]) for k in ("bare", "gemstone"))
        print(
            f"{loop} median ({args.case}): bare aiohttp {bare:,.0f}, gemstone-aio {ours:,.0f} "
            f"instructions per call; ratio {bare / ours:.3f}"
        )


if __name__ == "__main__":
    main()
