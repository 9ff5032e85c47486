"""What HTTPS costs per call, against plain HTTP, measured in one run.

Two server processes of the same service, one plain and one serving TLS (a certificate
from a CA trustme makes at start, ECDSA P-256 like trustme's default), are called from
this process by ``RemoteService`` over keep-alive connections, in interleaved rounds so
drift hits both alike. Printed for each concurrency: calls/s, mean latency, the server's
and the client's CPU per call, and the difference HTTPS makes. Then the cost of a call
on a new connection each time (a full TLS handshake) for comparison.

    PYTHONPATH=src python bench/tls_overhead.py [--seconds 2] [--rounds 5] [--concurrency 1 16]
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
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import trustme
from _harness import cpu_seconds

import gemstone_aio as gemstone
from gemstone_aio.tls import client_context

ROOT = Path(__file__).resolve().parent.parent


class BenchService(gemstone.MicroService):
    name = "bench_tls_target"

    @gemstone.exposed_method()
    async def add(self, a: int, b: int) -> int:
        return a + b


def serve(certfile: str | None, keyfile: str | None) -> None:
    service = BenchService()
    service.port = 0
    service.ssl_certfile, service.ssl_keyfile = certfile, keyfile
    service.refresh_accessible_at()
    service.start(argv=[])  # the bench script's own options are not configuration


def start_server(*tls: str) -> tuple[subprocess.Popen[str], str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", *tls], stderr=subprocess.PIPE, text=True, env=env
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        match = re.search(r"serving at (https?://\S+)", line)
        if match:
            return proc, match.group(1)
    raise SystemExit("the bench server did not start")


Call = Callable[[], Awaitable[object]]


def adding(client: gemstone.RemoteService) -> Call:
    """One call of the benchmark on ``client``."""

    async def call() -> object:
        return await client.call("add", 1, 2)

    return call


async def measure(call: Call, seconds: float, concurrency: int, pid: int) -> tuple[float, ...]:
    """(calls/s, mean latency µs, server CPU µs/call, client CPU µs/call)."""
    done = 0
    latency = 0.0
    deadline = time.perf_counter() + seconds
    client_cpu, server_cpu = time.process_time(), cpu_seconds(pid)

    async def worker() -> None:
        nonlocal done, latency
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await call()
            latency += time.perf_counter() - started
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return (
        done / elapsed,
        latency / done * 1e6,
        (cpu_seconds(pid) - server_cpu) / done * 1e6,
        (time.process_time() - client_cpu) / done * 1e6,
    )


def _median(samples: list[tuple[float, ...]], index: int) -> float:
    return statistics.median(sample[index] for sample in samples)


async def run(
    servers: dict[str, tuple[int, str]],
    ca_file: str,
    seconds: float,
    rounds: int,
    levels: list[int],
) -> None:
    tls = client_context(ca_file)
    clients = {
        "http": gemstone.RemoteService(servers["http"][1]),
        "https": gemstone.RemoteService(servers["https"][1], ssl_context=tls),
    }
    try:
        for client in clients.values():
            assert await client.call("add", 1, 2) == 3
        for label, client in clients.items():
            await measure(adding(client), 0.3, 4, servers[label][0])
        print(
            f"{seconds} s per sample, {rounds} rounds, medians; server and client in separate processes"
        )
        for concurrency in levels:
            samples: dict[str, list[tuple[float, ...]]] = {"http": [], "https": []}
            for round_ in range(rounds):
                order = list(clients) if round_ % 2 == 0 else list(reversed(clients))
                for label in order:
                    client = clients[label]
                    samples[label].append(
                        await measure(
                            adding(client),
                            seconds,
                            concurrency,
                            servers[label][0],
                        )
                    )
            print(f"\nkeep-alive, concurrency {concurrency}:")
            for label in ("http", "https"):
                s = samples[label]
                print(
                    f"  {label:5s} {_median(s, 0):7.0f} calls/s  {_median(s, 1):7.1f} µs/call  "
                    f"server CPU {_median(s, 2):6.1f} µs/call  client CPU {_median(s, 3):6.1f} µs/call"
                )
            plain, secure = samples["http"], samples["https"]
            print(
                f"  HTTPS adds {_median(secure, 1) - _median(plain, 1):+.1f} µs latency per call "
                f"({_median(secure, 1) / _median(plain, 1):.2f}x), server CPU "
                f"{_median(secure, 2) - _median(plain, 2):+.1f} µs, client CPU "
                f"{_median(secure, 3) - _median(plain, 3):+.1f} µs per call"
            )
        print("\nnew connection per call (concurrency 1):")
        for label, (pid, url) in servers.items():
            results = []
            for _ in range(rounds):
                connector = aiohttp.TCPConnector(
                    force_close=True, ssl=tls if label == "https" else True
                )
                async with aiohttp.ClientSession(connector=connector) as session:
                    one = gemstone.RemoteService(url, session=session)
                    results.append(await measure(adding(one), seconds / 2, 1, pid))
            print(
                f"  {label:5s} {_median(results, 1):7.1f} µs/call  server CPU "
                f"{_median(results, 2):6.1f} µs/call  client CPU {_median(results, 3):6.1f} µs/call"
            )
    finally:
        for client in clients.values():
            await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()
    if args.serve is not None:
        serve(*(args.serve or [None, None]))
        return
    with tempfile.TemporaryDirectory() as directory:
        ca = trustme.CA()
        issued = ca.issue_cert("127.0.0.1")
        ca_file, certfile, keyfile = (
            str(Path(directory) / n) for n in ("ca.pem", "c.pem", "c.key")
        )
        ca.cert_pem.write_to_path(ca_file)
        issued.cert_chain_pems[0].write_to_path(certfile)
        issued.private_key_pem.write_to_path(keyfile)
        os.chmod(keyfile, 0o600)
        plain, plain_url = start_server()
        secure, secure_url = start_server(certfile, keyfile)
        try:
            servers = {"http": (plain.pid, plain_url), "https": (secure.pid, secure_url)}
            asyncio.run(run(servers, ca_file, args.seconds, args.rounds, args.concurrency))
        finally:
            for proc in (plain, secure):
                proc.terminate()
                proc.wait(10)
                if proc.stderr is not None:
                    proc.stderr.close()


if __name__ == "__main__":
    main()
