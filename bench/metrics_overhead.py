"""Throughput of a service with and without Prometheus metrics, measured with wrk.

Usage::

    python bench/metrics_overhead.py [--rounds 5] [--duration 5] [--connections 32]

Each mode runs as its own server process (one event loop, like a deployed service);
wrk (a separate process, Debian package ``wrk``) POSTs a JSON-RPC ``add`` call
(``bench/post_add.lua``) as fast as it can. The modes are interleaved round by round so
that drift in the machine's load hits all of them alike, and the median of the rounds
is reported with its ratio to the baseline measured in the same run.

Two figures per mode: requests/s (what wrk saw) and the server's CPU time per request
(user + system time of the server process during the wrk run, read from ``/proc``,
divided by the requests wrk completed). On a machine shared with other work the
requests/s swing with the neighbours' load; CPU time per request is the steadier
measure of what metrics cost, since a one-loop server's throughput is bounded by it.

Modes:

- ``bare``: no metrics, no request ids (the framework's floor);
- ``baseline``: no metrics, request ids on (the default when prometheus-client is absent);
- ``metrics``: metrics on (the default when prometheus-client is installed).

The goal is ``metrics`` at most 5% below ``baseline``.

``--instructions`` adds the steadiest figure of all: each server runs under valgrind's
callgrind, a client sends exactly ``--calls`` requests one after another, and the
instructions the server executed for them are divided by their number. Instruction
counts do not depend on what else the machine is doing (valgrind is slow: count a few
minutes for the servers to start).

A further, in-process figure isolates what metrics add to the dispatch of one call: the
router answers the same request body in a loop, with and without the metrics observer,
interleaved, best of many repeats (the minimum is the run least disturbed by other
work on the machine).
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from _harness import callgrind_count, cpu_seconds

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
MODES = ("bare", "baseline", "metrics")


def serve(mode: str, port_file: str) -> None:
    """Run the benchmark service on a free port, written to ``port_file``, until SIGTERM."""
    import asyncio

    import gemstone_aio as gemstone

    class Bench(gemstone.MicroService):
        name = "bench"
        host = "127.0.0.1"
        use_metrics = mode == "metrics"
        request_id_header = None if mode == "bare" else "X-Request-Id"

        @gemstone.exposed_method()
        async def add(self, a: int, b: int) -> int:
            return a + b

    service = Bench()
    service.port = 0  # bound by the server itself: no race for a port picked in advance

    async def run() -> None:
        ready = asyncio.Event()
        task = asyncio.create_task(service.serve(ready=ready, argv=[]))  # not our argv
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            waiter.cancel()
            task.result()
            return
        await asyncio.to_thread(Path(port_file).write_text, str(service.port))
        await task

    asyncio.run(run())


def start_server(
    command: list[str], mode: str, workdir: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], Path]:
    port_file = workdir / f"port.{mode}"
    process = subprocess.Popen(
        [*command, __file__, "--serve", mode, str(port_file)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, port_file


def wait_port(process: subprocess.Popen[bytes], port_file: Path, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while not (port_file.exists() and port_file.read_text().strip()):
        if process.poll() is not None:
            raise RuntimeError(
                f"the {port_file.suffix[1:]} server exited with {process.returncode}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(f"the {port_file.suffix[1:]} server did not start in {timeout} s")
        time.sleep(0.2)
    port = int(port_file.read_text())
    wait_healthy(port, deadline)
    return port


def wait_healthy(port: int, deadline: float) -> None:
    url = f"http://127.0.0.1:{port}/health"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def run_wrk(port: int, duration: int, connections: int, threads: int) -> tuple[float, int]:
    done = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "-s",
            str(HERE / "post_add.lua"),
            f"http://127.0.0.1:{port}/api",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    if "Non-2xx" in done.stdout or "Socket errors" in done.stdout:
        raise RuntimeError(f"wrk saw errors:\n{done.stdout}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    total = re.search(r"(\d+) requests in", done.stdout)
    if rate is None or total is None:
        raise RuntimeError(f"unexpected wrk output:\n{done.stdout}")
    return float(rate.group(1)), int(total.group(1))


def _bench_service(metrics: bool) -> object:
    import gemstone_aio as gemstone

    class Bench(gemstone.MicroService):
        name = "bench_router"
        use_metrics = metrics

        @gemstone.exposed_method()
        async def add(self, a: int, b: int) -> int:
            return a + b

    return Bench()


def micro(repeats: int = 25, calls: int = 2000) -> None:
    """Time router dispatch of one call with and without the metrics observer."""
    import asyncio

    from gemstone_aio.protocol import CallContext
    from gemstone_aio.server import ROUTER_KEY

    body = b'{"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": 1}'
    routers = {
        "baseline": _bench_service(False).make_app()[ROUTER_KEY],  # type: ignore[attr-defined]
        "metrics": _bench_service(True).make_app()[ROUTER_KEY],  # type: ignore[attr-defined]
    }
    caller = CallContext()

    async def run(router: object) -> float:
        handle = router.handle  # type: ignore[attr-defined]
        started = time.perf_counter()
        for _ in range(calls):
            await handle(body, caller)
        return (time.perf_counter() - started) / calls * 1e6

    async def all_rounds() -> dict[str, float]:
        best = {mode: float("inf") for mode in routers}
        for _ in range(repeats):
            for mode, router in routers.items():
                best[mode] = min(best[mode], await run(router))
        return best

    best = asyncio.run(all_rounds())
    extra = best["metrics"] - best["baseline"]
    print(
        f"router dispatch, best of {repeats} x {calls} calls: baseline {best['baseline']:.2f} us, "
        f"metrics {best['metrics']:.2f} us (+{extra:.2f} us per call)"
    )


def _post_calls(port: int, calls: int) -> None:
    body = b'{"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": 1}'
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        for _ in range(calls):
            connection.request("POST", "/api", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            if response.status != 200 or b'"result":3' not in response.read():
                raise RuntimeError(f"unexpected answer from port {port}")
    finally:
        connection.close()


def instructions(calls: int, workdir: Path, modes: tuple[str, ...]) -> None:
    """Instructions per request under callgrind, for each mode (``baseline`` among them)."""
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("--instructions needs valgrind (Debian package valgrind)")
    python = os.path.realpath(sys.executable)  # not a shim: valgrind must run Python itself
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    servers: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    per_request: dict[str, float] = {}
    try:
        for mode in modes:
            out = workdir / f"callgrind.{mode}.out"
            command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", python]
            servers[mode] = start_server(command, mode, workdir, env)
        for mode in modes:
            process, port_file = servers[mode]
            port = wait_port(process, port_file, 1800)
            _post_calls(port, 20)  # warm-up
            out = workdir / f"callgrind.{mode}.out"
            total = callgrind_count(process.pid, out, lambda: _post_calls(port, calls))  # noqa: B023
            per_request[mode] = total / calls
    finally:
        for process, _ in servers.values():
            process.terminate()
        for process, _ in servers.values():
            process.wait(120)
    base = per_request["baseline"]
    for mode in modes:
        print(
            f"  {mode:9s} {per_request[mode]:12.0f} instructions/request ({per_request[mode] / base:.1%})"
        )
    print(f"metrics cost: {per_request['metrics'] / base - 1:.1%} more instructions per request")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--serve", nargs=2, metavar=("MODE", "PORT_FILE"), help=argparse.SUPPRESS)
    parser.add_argument("--micro-only", action="store_true", help="only the in-process figure")
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions under callgrind"
    )
    parser.add_argument("--calls", type=int, default=300, help="requests for --instructions")
    parser.add_argument(
        "--instruction-modes",
        default="baseline,metrics",
        help="comma-separated modes for --instructions (baseline must be one)",
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], args.serve[1])
        return
    sys.path.insert(0, str(SRC))
    micro()
    if args.instructions:
        import tempfile

        with tempfile.TemporaryDirectory() as workdir:
            print(f"\ninstructions per request under callgrind ({args.calls} requests):")
            modes = tuple(args.instruction_modes.split(","))
            instructions(args.calls, Path(workdir), modes)
    if args.micro_only:
        return

    import tempfile

    env = {**os.environ, "PYTHONPATH": str(SRC)}
    servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    try:
        with tempfile.TemporaryDirectory() as workdir:
            for mode in MODES:
                process, port_file = start_server([sys.executable], mode, Path(workdir), env)
                servers[mode] = (process, wait_port(process, port_file, 60))
        for mode in MODES:  # warm-up
            run_wrk(servers[mode][1], 1, args.connections, args.threads)
        results: dict[str, list[float]] = {mode: [] for mode in MODES}
        cpu_us: dict[str, list[float]] = {mode: [] for mode in MODES}
        for round_number in range(args.rounds):
            for mode in MODES:
                process, port = servers[mode]
                before = cpu_seconds(process.pid)
                rps, total = run_wrk(port, args.duration, args.connections, args.threads)
                cpu_us[mode].append((cpu_seconds(process.pid) - before) / total * 1e6)
                results[mode].append(rps)
            print(
                f"round {round_number + 1}: "
                + ", ".join(
                    f"{mode} {results[mode][-1]:.0f}/s {cpu_us[mode][-1]:.0f} us" for mode in MODES
                ),
                flush=True,
            )
    finally:
        for process, _ in servers.values():
            process.terminate()
        for process, _ in servers.values():
            process.wait(10)

    base = statistics.median(results["baseline"])
    base_cpu = statistics.median(cpu_us["baseline"])
    print(
        f"\nmedians over {args.rounds} rounds of {args.duration} s "
        f"({args.connections} connections, {args.threads} wrk threads):"
    )
    best_base = max(results["baseline"])
    best_cpu = min(cpu_us["baseline"])
    print(
        f"  {'mode':9s} {'req/s':>9s} {'vs base':>8s} {'CPU us/req':>11s} {'vs base':>8s}"
        f"   | best: {'req/s':>9s} {'vs base':>8s} {'CPU us/req':>11s} {'vs base':>8s}"
    )
    for mode in MODES:
        rps = statistics.median(results[mode])
        cpu = statistics.median(cpu_us[mode])
        top, low = max(results[mode]), min(cpu_us[mode])
        print(
            f"  {mode:9s} {rps:9.0f} {rps / base:8.1%} {cpu:11.1f} {cpu / base_cpu:8.1%}"
            f"   |       {top:9.0f} {top / best_base:8.1%} {low:11.1f} {low / best_cpu:8.1%}"
        )
    throughput = 1 - statistics.median(results["metrics"]) / base
    cpu_cost = statistics.median(cpu_us["metrics"]) / base_cpu - 1
    print(
        f"metrics overhead: {throughput:.1%} of throughput, {cpu_cost:.1%} more CPU per "
        "request (goal: at most 5%)"
    )


if __name__ == "__main__":
    main()
