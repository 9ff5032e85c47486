"""Requests/s of a trivial JSON-RPC call: gemstone-aio against a bare aiohttp handler.

Both servers run in their own process; the load comes from ``wrk`` (Debian package) in
another process, on loopback. Runs alternate between the two servers and the medians
are compared, because these machines are shared and noisy.

    python bench/rpc_throughput.py [--seconds 5] [--rounds 3] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BODY = '{"jsonrpc": "2.0", "method": "%s", "params": {"name": "world"}, "id": 1}'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(kind: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "_servers.py"), kind, str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{kind} server did not start")


def wrk(port: int, method: str, seconds: int, connections: int) -> tuple[float, float, float]:
    body = (BODY % method).replace('"', '\\"')
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            f'wrk.body = "{body}"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name,
         f"http://127.0.0.1:{port}/api"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def latency(label: str) -> float:
        match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out)
        assert match, out
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"errors during the run:\n{out}")
    return rps, latency("50%"), latency("99%")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    cases = [("bare aiohttp", "bare", "say_hello"), ("gemstone-aio async", "gemstone", "say_hello"),
             ("gemstone-aio blocking", "gemstone", "say_hello_blocking")]  # fmt: skip
    results: dict[str, list[tuple[float, float, float]]] = {label: [] for label, _, _ in cases}
    servers = {kind: start(kind) for kind in ("bare", "gemstone")}
    try:
        for _, port in servers.values():  # warm up
            wrk(port, "say_hello", 1, args.connections)
        for _ in range(args.rounds):
            for label, kind, method in cases:
                results[label].append(wrk(servers[kind][1], method, args.seconds, args.connections))
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait()
    base = statistics.median(r[0] for r in results["bare aiohttp"])
    print(f"{'case':24} {'req/s':>9} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7}")
    for label, runs in results.items():
        rps = statistics.median(r[0] for r in runs)
        p50 = statistics.median(r[1] for r in runs)
        p99 = statistics.median(r[2] for r in runs)
        print(f"{label:24} {rps:9.0f} {rps / base:6.2f} {p50:7.2f} {p99:7.2f}")


if __name__ == "__main__":
    main()
