"""In-process cost of the hot paths, without sockets or a load generator.

Each case runs a fixed workload on one event loop: the router alone
(``Router.handle`` on body bytes) and the whole endpoint (the aiohttp handler on a
mocked request, next to the bare aiohttp handler of ``bench/servers.py`` doing the same
JSON work). Wall-clock figures move with the machine's load, so there is also a
``--callgrind`` mode: every case runs under ``valgrind --tool=callgrind`` twice, with
``N`` and ``2N`` iterations, and the difference divided by ``N`` is the instruction
count of one call, start-up excluded. Instruction counts repeat to a fraction of a
percent whatever else the machine does.

    python bench/hotpath.py                 # µs per call (best of --rounds)
    python bench/hotpath.py --callgrind     # instructions per call (needs valgrind)
    python bench/hotpath.py --case single --iterations 20000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from aiohttp import web  # noqa: E402
from aiohttp.test_utils import make_mocked_request  # noqa: E402
from servers import Hello, bare_handler  # noqa: E402

from gemstone_aio.protocol import CallContext  # noqa: E402
from gemstone_aio.server import ROUTER_KEY  # noqa: E402

HELLO = {"jsonrpc": "2.0", "method": "say_hello", "params": {"name": "world"}, "id": 1}
BODIES = {
    "single": json.dumps(HELLO).encode(),
    "positional": json.dumps({**HELLO, "params": ["world"]}).encode(),
    "blocking": json.dumps({**HELLO, "method": "say_hello_blocking"}).encode(),
    "model": json.dumps(
        {**HELLO, "method": "create_user", "params": {"user": {"name": "ann", "age": 3}}}
    ).encode(),
    "batch100": json.dumps([{**HELLO, "id": i} for i in range(100)]).encode(),
}
# (case, body key, calls per iteration, target)
CASES: list[tuple[str, str, int, str]] = [
    ("router single", "single", 1, "router"),
    ("router positional", "positional", 1, "router"),
    ("router blocking", "blocking", 1, "router"),
    ("router model", "model", 1, "router"),
    ("router batch100", "batch100", 100, "router"),
    ("endpoint single", "single", 1, "endpoint"),
    ("bare single", "single", 1, "bare"),
    ("endpoint model", "model", 1, "endpoint"),
    ("bare model", "model", 1, "bare"),
    ("endpoint batch100", "batch100", 100, "endpoint"),
    ("bare batch100", "batch100", 100, "bare"),
]
DEFAULT_ITERATIONS = {"router": 5000, "endpoint": 3000, "bare": 3000}


class _Payload:
    """The little of aiohttp's StreamReader that the handlers use: a body received whole."""

    def __init__(self, body: bytes) -> None:
        self._chunks = [b"", body]

    def set_read_chunk_size(self, size: int) -> None:
        pass

    def is_eof(self) -> bool:
        return True

    def read_nowait(self, n: int = -1) -> bytes:
        data, self._chunks = b"".join(reversed(self._chunks)), []
        return data

    async def readany(self) -> bytes:
        return self._chunks.pop() if self._chunks else b""


def _workload(target: str, body: bytes) -> tuple[Callable[[], Awaitable[Any]], Any]:
    """Return one call of the case and the app to clean up (or None)."""
    if target == "router":
        app = Hello().make_app()
        router, context = app[ROUTER_KEY], CallContext()
        return (lambda: router.handle(body, context)), app
    if target == "endpoint":
        app = Hello().make_app()
        handler: Any = None
        for resource in app.router.resources():
            for route in resource:
                if route.method == "POST":
                    handler = route.handler
    else:
        app = web.Application()
        app.router.add_post("/api", bare_handler)
        handler = bare_handler
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}

    # make_mocked_request builds mocks, slow to call; give it plain stand-ins and clone it.
    protocol = SimpleNamespace(ssl_context=None, peername=None, sockname=None, transport=None)
    writer = SimpleNamespace(transport=None)
    template = make_mocked_request(
        "POST", "/api", headers=headers, app=app, protocol=protocol, writer=writer
    )

    def one() -> Awaitable[Any]:
        request = template.clone()
        request._payload = _Payload(body)  # type: ignore[assignment]
        return handler(request)

    return one, app


async def _run(case: str, iterations: int, rounds: int) -> float:
    _name, key, calls, target = next(c for c in CASES if c[0] == case)
    one, app = _workload(target, BODIES[key])
    runner = web.AppRunner(app)
    await runner.setup()  # runs the cleanup contexts: the pool, the hooks
    try:
        answer = await one()
        text = answer if isinstance(answer, bytes) else answer.body
        if b'"error"' in text:
            raise SystemExit(f"{case}: the call failed: {text[:200]!r}")
        best = float("inf")
        for _ in range(rounds):
            started = time.perf_counter()
            for _ in range(iterations):
                await one()
            best = min(best, (time.perf_counter() - started) / (iterations * calls))
        return best
    finally:
        await runner.cleanup()


def _instructions(case: str, iterations: int) -> int:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--case",
        case,
        "--iterations",
        str(iterations),
        "--rounds",
        "1",
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    match = re.search(r"Collected : (\d+)", done.stderr)
    if match is None:
        raise SystemExit(f"no instruction count from valgrind:\n{done.stderr[-2000:]}")
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", choices=[c[0] for c in CASES])
    parser.add_argument("--iterations", type=int)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--callgrind", action="store_true")
    args = parser.parse_args()
    cases = args.case or [c[0] for c in CASES]
    results: dict[str, float] = {}
    for case in cases:
        target = next(c for c in CASES if c[0] == case)[3]
        calls = next(c for c in CASES if c[0] == case)[2]
        if args.callgrind:
            n = args.iterations or 1000
            if calls > 1:
                n = max(1, n // calls)
            low, high = _instructions(case, n), _instructions(case, 2 * n)
            results[case] = (high - low) / (n * calls)
            print(f"{case:20s} {results[case]:10.0f} instructions per call", flush=True)
        else:
            n = args.iterations or DEFAULT_ITERATIONS[target]
            if calls > 1:
                n = max(1, n // calls)
            results[case] = asyncio.run(_run(case, n, args.rounds))
            print(f"{case:20s} {results[case] * 1e6:8.2f} µs per call", flush=True)
    for kind in ("single", "model", "batch100"):
        ours, bare = results.get(f"endpoint {kind}"), results.get(f"bare {kind}")
        if ours and bare:
            print(f"endpoint/bare cost ratio, {kind}: {ours / bare:.2f} (1.00 = no overhead)")


if __name__ == "__main__":
    main()
