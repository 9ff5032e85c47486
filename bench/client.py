"""RemoteService calls/s against a raw aiohttp ClientSession posting the same JSON.

Both clients run in this process, in the same run, against the same server process
(started here as a subprocess on a free port), interleaved in rounds so drift hits both
alike. Printed: calls/s of each, and the ratio (goal: RemoteService >= 0.85x raw).

    PYTHONPATH=src python bench/client.py [--seconds 2] [--rounds 3] [--concurrency 1 16]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

import gemstone_aio as gemstone

ROOT = Path(__file__).resolve().parent.parent


class BenchService(gemstone.MicroService):
    name = "bench_client_target"

    @gemstone.exposed_method()
    async def add(self, a: int, b: int) -> int:
        return a + b


def serve(port: int) -> None:
    service = BenchService()
    service.port = port
    service.refresh_accessible_at()
    service.start(argv=[])  # the bench script's own options are not configuration


def start_server() -> tuple[subprocess.Popen[str], str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stderr=subprocess.PIPE, text=True, env=env
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        match = re.search(r"serving at (http://\S+)", line)
        if match:
            return proc, match.group(1)
    raise SystemExit("the bench server did not start")


Call = Callable[[], Awaitable[object]]


async def measure(call: Call, seconds: float, concurrency: int) -> tuple[float, float]:
    """Return (calls per second, client CPU microseconds per call)."""
    done = 0
    deadline = time.perf_counter() + seconds
    cpu = time.process_time()

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await call()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return done / elapsed, (time.process_time() - cpu) / done * 1e6


async def run(url: str, seconds: float, rounds: int, levels: list[int]) -> None:
    ids = itertools.count(1)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session, gemstone.RemoteService(url) as svc:

        async def raw() -> object:
            body = json.dumps(
                {"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": next(ids)}
            ).encode()
            async with session.post(url, data=body, headers=headers) as response:
                reply = json.loads(await response.read())
            return reply["result"]

        async def client() -> object:
            return await svc.call("add", 1, 2)

        assert await raw() == 3
        assert await client() == 3
        await measure(raw, 0.3, 4)  # warm both up
        await measure(client, 0.3, 4)
        print(f"server: {url} (separate process); {seconds} s per sample, {rounds} rounds")
        for concurrency in levels:
            raw_samples = []
            client_samples = []
            for _ in range(rounds):
                raw_samples.append(await measure(raw, seconds, concurrency))
                client_samples.append(await measure(client, seconds, concurrency))
            r = statistics.median(rate for rate, _ in raw_samples)
            c = statistics.median(rate for rate, _ in client_samples)
            r_cpu = statistics.median(cpu for _, cpu in raw_samples)
            c_cpu = statistics.median(cpu for _, cpu in client_samples)
            print(
                f"concurrency {concurrency:>3}: raw aiohttp {r:7.0f} calls/s {r_cpu:5.0f} us CPU/call"
                f" | RemoteService {c:7.0f} calls/s {c_cpu:5.0f} us CPU/call"
                f" | ratio {c / r:.2f}x calls/s, {r_cpu / c_cpu:.2f}x CPU efficiency"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()
    if args.serve:
        serve(0)
        return
    proc, url = start_server()
    try:
        asyncio.run(run(url, args.seconds, args.rounds, args.concurrency))
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


if __name__ == "__main__":
    main()
