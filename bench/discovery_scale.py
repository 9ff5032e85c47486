"""Lookup cost at scale: HTTP registry, Redis and etcd with 10,000 instances over 1,000 names.

Run: ``PYTHONPATH=src python bench/discovery_scale.py`` (needs ``redis-server`` and ``etcd``
on the PATH; each backend is started privately on free 127.0.0.1 ports and stopped at
the end). Options: ``--backends http,redis,etcd``, ``--rounds N``.

For each backend the directory is filled with 1,000 names of 10 instances each (10,000
instances), plus one name each of 100, 1,000 and 10,000 instances. The script then
times lookups through the strategy a service uses (``strategy.lookup(name)``: the
request, the backend's work and decoding the answer), and prints the median and p90 of
each size: the curve of lookup time against the instances of the name looked up. For
etcd, "cold" is the first lookup of a name (a range read, then a watch starts) and
"warm" the later ones (answered from the watched prefix).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

from _harness import free_port

from gemstone_aio import RemoteService
from gemstone_aio.discovery import (
    BaseDiscoveryStrategy,
    EtcdDiscoveryStrategy,
    HttpRegistryStrategy,
    RedisDiscoveryStrategy,
)

NAMES = 1_000
PER_NAME = 10
SIZES = (10, 100, 1_000, 10_000)
TOKEN = "bench-token"
SRC = str(Path(__file__).resolve().parents[1] / "src")


def url_of(n: int) -> str:
    return f"http://10.{n // 65_536 % 256}.{n // 256 % 256}.{n % 256}:8000/api"


def directory() -> Iterator[tuple[str, str]]:
    """Every (name, url) registered: 1,000 names x 10, then the big names."""
    n = 0
    for index in range(NAMES):
        for _ in range(PER_NAME):
            yield f"svc-{index:04d}", url_of(n)
            n += 1
    for size in SIZES[1:]:
        for _ in range(size):
            yield f"big-{size}", url_of(n)
            n += 1


def name_of(size: int) -> str:
    return "svc-0500" if size == PER_NAME else f"big-{size}"


@contextlib.contextmanager
def process(command: list[str], ready: Callable[[], bool], what: str) -> Iterator[None]:
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start")
            time.sleep(0.05)
        yield
    finally:
        proc.terminate()
        proc.wait(10)


def answers_http(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=0.5):
                return True
        except OSError as exc:
            return getattr(exc, "code", None) is not None  # an HTTP error: it listens

    return check


def listens(port: int) -> Callable[[], bool]:
    def check() -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return True
        return False

    return check


@contextlib.asynccontextmanager
async def http_backend(workdir: Path) -> AsyncIterator[BaseDiscoveryStrategy]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    os.environ["PYTHONPATH"] = SRC + os.pathsep + os.environ.get("PYTHONPATH", "")
    command = [sys.executable, "-m", "gemstone_aio.registry", "--port", str(port)]
    with process([*command, "--token", TOKEN], listens(port), "the registry"):
        async with RemoteService(url, token=TOKEN, timeout=60) as client:
            pairs = list(directory())
            for start in range(0, len(pairs), 1_000):
                async with client.batch() as batch:
                    for name, instance in pairs[start : start + 1_000]:
                        batch.notify("ping", name, instance)
        strategy = HttpRegistryStrategy(url, token=TOKEN, timeout=60)
        try:
            yield strategy
        finally:
            await strategy.aclose()


@contextlib.asynccontextmanager
async def redis_backend(workdir: Path) -> AsyncIterator[BaseDiscoveryStrategy]:
    port = free_port()
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    command = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
               "--appendonly", "no", "--dir", str(workdir)]  # fmt: skip
    with process(command, listens(port), "redis-server"):
        strategy = RedisDiscoveryStrategy(f"redis://127.0.0.1:{port}/0", ttl=3600)
        try:
            pairs = list(directory())
            for start in range(0, len(pairs), 50):
                await asyncio.gather(*(strategy.ping(n, u) for n, u in pairs[start : start + 50]))
            yield strategy
        finally:
            await strategy.aclose()


@contextlib.asynccontextmanager
async def etcd_backend(workdir: Path) -> AsyncIterator[BaseDiscoveryStrategy]:
    client_port, peer_port = free_port(), free_port()
    client_url, peer_url = f"http://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
    command = [
        shutil.which("etcd") or "/usr/bin/etcd", "--name", "bench",
        "--data-dir", str(workdir / "etcd"),
        "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
        "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
        "--initial-cluster", f"bench={peer_url}", "--quota-backend-bytes", str(4 << 30),
    ]  # fmt: skip
    with process(command, answers_http(f"{client_url}/health"), "etcd"):
        strategy = EtcdDiscoveryStrategy(client_url, ttl=3600)
        try:
            pairs = list(directory())
            for start in range(0, len(pairs), 50):
                await asyncio.gather(*(strategy.ping(n, u) for n, u in pairs[start : start + 50]))
            yield strategy
        finally:
            await strategy.aclose()


BACKENDS: dict[str, Callable[[Path], contextlib.AbstractAsyncContextManager[BaseDiscoveryStrategy]]]
BACKENDS = {"http": http_backend, "redis": redis_backend, "etcd": etcd_backend}


async def timed(call: Callable[[], Awaitable[object]], rounds: int) -> list[float]:
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        await call()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def describe(timings: list[float]) -> str:
    ordered = sorted(timings)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return f"median {statistics.median(ordered):7.2f} ms  p90 {p90:7.2f} ms"


async def run(backend: str, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        filled = time.perf_counter()
        async with BACKENDS[backend](Path(tmp)) as strategy:
            total = NAMES * PER_NAME + sum(SIZES[1:])
            print(f"{backend}: {total} instances in {NAMES + 3} names, filled in "
                  f"{time.perf_counter() - filled:.1f} s")  # fmt: skip
            for size in SIZES:
                name = name_of(size)
                if backend == "etcd":
                    cold = await timed(lambda n=name: strategy.lookup(n), 1)  # type: ignore[misc]
                    print(f"  {size:>6} instances  cold   {cold[0]:7.2f} ms")
                found = await strategy.lookup(name)
                assert len(found.urls) == size, (size, len(found.urls))
                count = rounds if size <= 1_000 else max(10, rounds // 10)
                timings = await timed(lambda n=name: strategy.lookup(n), count)  # type: ignore[misc]
                label = "warm " if backend == "etcd" else ""
                print(f"  {size:>6} instances  {label} {describe(timings)}  ({count} lookups)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="http,redis,etcd")
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    for backend in args.backends.split(","):
        asyncio.run(run(backend.strip(), args.rounds))


if __name__ == "__main__":
    main()
