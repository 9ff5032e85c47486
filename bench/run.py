"""The benchmark suite: one command, writes BENCHMARKS.md.

    python bench/run.py [--seconds 5] [--rounds 3] [--connections 32] [--no-peers]

- Builds a separate virtual environment (``bench/.peers-venv``) holding the peers: the
  original gemstone (newest release) on Tornado, pjrpc (aiohttp), fastapi-jsonrpc
  (uvicorn) and jsonrpcserver (inside aiohttp).
- Every server runs in its own process; the load generator is ``wrk`` (Debian package)
  in another process, on loopback. Each round measures every server back to back (odd
  rounds in reverse order); ratios are medians of per-round ratios against the bare
  aiohttp handler, next to the server's CPU time per request.
- Then the client, event, memory and start-up figures.

Benchmarks are not tests and never run in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from _harness import HERE, ROOT, Server, free_port, wrk

VENV = HERE / ".peers-venv"
PEER_PACKAGES = [
    "gemstone",
    "redis",
    "tornado",
    "pjrpc[aiohttp]",
    "aiohttp",
    "fastapi-jsonrpc",
    "uvicorn",
    "jsonrpcserver",
    "pydantic",
]

HELLO = {"jsonrpc": "2.0", "method": "say_hello", "params": {"name": "world"}, "id": 1}
CASES: dict[str, str] = {
    "async method, validated str param": json.dumps(HELLO),
    "blocking (def) method": json.dumps({**HELLO, "method": "say_hello_blocking"}),
    "pydantic-model param": json.dumps(
        {
            "jsonrpc": "2.0",
            "method": "create_user",
            "params": {"user": {"name": "ann", "age": 30}},
            "id": 1,
        }
    ),
    "100-call batch": json.dumps([{**HELLO, "id": i} for i in range(100)]),
}
# Which peer can do which case like for like (a blocking method must run off the loop).
SUPPORTS = {
    "gemstone (original, Tornado)": set(CASES),
    "pjrpc (aiohttp)": set(CASES) - {"blocking (def) method"},
    "fastapi-jsonrpc (uvicorn)": set(CASES),
    "jsonrpcserver (in aiohttp)": set(CASES) - {"blocking (def) method"},
}


def peers_python() -> str:
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES],
            check=True,
            capture_output=True,
        )
    return str(python)


def versions(python: str, packages: list[str]) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for name in sys.argv[1:]:\n"
        "    try: out[name] = m.version(name)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    done = subprocess.run(
        [python, "-c", code, *packages], capture_output=True, text=True, check=True
    )
    return dict(json.loads(done.stdout))


def http_figures(args: argparse.Namespace, peers: str | None) -> list[str]:
    servers = [
        Server(
            "bare aiohttp handler (the limit)", [sys.executable, str(HERE / "servers.py"), "bare"]
        ),
        Server("gemstone-aio", [sys.executable, str(HERE / "servers.py"), "gemstone"]),
    ]
    if peers:
        scripts = {
            "gemstone (original, Tornado)": "gemstone_original_server.py",
            "pjrpc (aiohttp)": "pjrpc_server.py",
            "fastapi-jsonrpc (uvicorn)": "fastapi_jsonrpc_server.py",
            "jsonrpcserver (in aiohttp)": "jsonrpcserver_server.py",
        }
        servers += [
            Server(name, [peers, str(HERE / "peers" / script)]) for name, script in scripts.items()
        ]
    # One sample per (case, server, round): req/s, p50, p99, server CPU µs per request.
    results: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
    for server in servers:
        server.start()
    try:
        for server in servers:  # warm-up
            wrk(
                server.url,
                CASES["async method, validated str param"],
                seconds=1,
                connections=args.connections,
            )
        for round_ in range(args.rounds):
            # Odd rounds go through the servers backwards: a slow drift of the machine's
            # load then favours nobody.
            order = servers if round_ % 2 == 0 else servers[::-1]
            for case, body in CASES.items():
                for server in order:
                    if case not in SUPPORTS.get(server.name, set(CASES)):
                        continue
                    cpu_before = server.cpu_seconds()
                    run = wrk(server.url, body, seconds=args.seconds, connections=args.connections)
                    cpu = (server.cpu_seconds() - cpu_before) / max(run.requests, 1) * 1e6
                    results.setdefault((case, server.name), []).append(
                        (run.rps, run.p50, run.p99, cpu)
                    )
    finally:
        for server in servers:
            server.stop()
    lines = [
        "Each round measures every server once per case, back to back (odd rounds in reverse "
        "order); a server's ratio is the median over the rounds of its req/s divided by the bare "
        "handler's req/s in the same round. CPU is the server process's user + system time per "
        "request (from `/proc`), which moves less with the neighbours' load than req/s does.",
        "",
    ]
    for case in CASES:
        base_runs = results[(case, servers[0].name)]
        batch = case.startswith("100-call")
        unit = "batches/s" if batch else "req/s"
        cpu_unit = "CPU µs per batch" if batch else "CPU µs per request"
        lines += [
            f"### {case}",
            "",
            f"| server | {unit} | ratio to bare | p50 ms | p99 ms | {cpu_unit} | CPU ratio to bare |"
            + (" µs per call |" if batch else ""),
            "|---|---|---|---|---|---|---|" + ("---|" if batch else ""),
        ]
        for server in servers:
            runs = results.get((case, server.name))
            if not runs:
                lines.append(
                    f"| {server.name} | n/a (no like-for-like mode) | | | | | |"
                    + (" |" if batch else "")
                )
                continue
            rps = statistics.median(r[0] for r in runs)
            ratio = statistics.median(r[0] / b[0] for r, b in zip(runs, base_runs, strict=True))
            cpu = statistics.median(r[3] for r in runs)
            cpu_ratio = statistics.median(b[3] / r[3] for r, b in zip(runs, base_runs, strict=True))
            p50 = statistics.median(r[1] for r in runs)
            p99 = statistics.median(r[2] for r in runs)
            row = (
                f"| {server.name} | {rps:,.0f} | {ratio:.2f}x | {p50:.2f} | {p99:.2f} "
                f"| {cpu:,.0f} | {cpu_ratio:.2f}x |"
            )
            if batch:
                row += f" {1e6 / (rps * 100):.1f} |" if rps else " (no batch finished) |"
            lines.append(row)
        lines.append("")
    return lines


def run_script(name: str, extra: list[str]) -> list[str]:
    script = HERE / name
    if not script.exists():
        return [f"`bench/{name}` is not there yet.", ""]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, str(script), *extra], capture_output=True, text=True, env=env, cwd=ROOT
    )
    output = (done.stdout + done.stderr).strip() or "(no output)"
    return [f"`python bench/{name}`:", "", "```", output, "```", ""]


def memory_and_startup(args: argparse.Namespace) -> list[str]:
    lines = ["| figure | gemstone-aio | bare aiohttp | ratio |", "|---|---|---|---|"]
    idle: dict[str, int] = {}
    growth: dict[str, tuple[int, int]] = {}
    body = CASES["async method, validated str param"]
    for kind in ("gemstone", "bare"):
        server = Server(kind, [sys.executable, str(HERE / "servers.py"), kind]).start()
        try:
            time.sleep(0.5)
            idle[kind] = server.rss_kib()
            wrk(server.url, body, seconds=2, connections=args.connections)  # warm-up
            before, calls = server.rss_kib(), 0
            while calls < 100_000:
                calls += wrk(server.url, body, seconds=5, connections=args.connections).requests
            growth[kind] = (server.rss_kib() - before, calls)
        finally:
            server.stop()
    lines.append(f"| resident size, idle | {idle['gemstone'] / 1024:.1f} MiB | {idle['bare'] / 1024:.1f} MiB | "
                 f"{idle['gemstone'] / idle['bare']:.2f}x |")  # fmt: skip
    lines.append(f"| growth over {growth['gemstone'][1]:,} calls (after warm-up) | {growth['gemstone'][0] / 1024:.2f} MiB "
                 f"| {growth['bare'][0] / 1024:.2f} MiB ({growth['bare'][1]:,} calls) | |")  # fmt: skip
    starts: dict[str, list[float]] = {"gemstone": [], "bare": []}
    for _ in range(5):
        for kind in starts:
            starts[kind].append(time_to_first_answer(kind, body))
    g, b = statistics.median(starts["gemstone"]), statistics.median(starts["bare"])
    lines.append(
        f"| process start to first answered call | {g * 1000:.0f} ms | {b * 1000:.0f} ms | {g / b:.2f}x |"
    )
    return [*lines, ""]


def time_to_first_answer(kind: str, body: str) -> float:
    import urllib.request

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(HERE / "servers.py"), kind, str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        while True:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/api", data=body.encode(),
                                                 headers={"Content-Type": "application/json"})  # fmt: skip
                with urllib.request.urlopen(request, timeout=1) as response:
                    response.read()
                return time.perf_counter() - started
            except OSError:
                if time.perf_counter() - started > 30:
                    raise
                time.sleep(0.005)
    finally:
        process.terminate()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    peers = None if args.no_peers else peers_python()
    ours = versions(sys.executable, ["gemstone-aio", "aiohttp", "pydantic", "aio-pika"])
    theirs = (
        versions(
            peers,
            [
                "gemstone",
                "tornado",
                "pjrpc",
                "fastapi-jsonrpc",
                "fastapi",
                "uvicorn",
                "jsonrpcserver",
            ],
        )
        if peers
        else {}
    )
    started = time.time()
    lines = [
        "# Benchmarks",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `python bench/run.py --seconds {args.seconds} "
        f"--rounds {args.rounds} --connections {args.connections}`.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}, "
        f"Python {platform.python_version()}. Load: `wrk -t1 -c{args.connections}` in its own process on "
        "loopback; each server in its own process (one event loop, default settings).",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in {**ours, **theirs}.items()) + ".",
        "",
        "Every figure is a median over the rounds, and every ratio is against a baseline measured in the "
        "same run, because the machine is shared and noisy.",
        "",
        "## HTTP JSON-RPC",
        "",
        *http_figures(args, peers),
        "### Instructions per trivial call",
        "",
        "Requests/s move with the neighbours' load; the instructions a server executes do not "
        "(valgrind's callgrind, the same servers, 32 connections).",
        "",
        *run_script("rpc_instructions.py", []),
        "## Client",
        "",
        *run_script("client.py", []),
        "## Events",
        "",
        *run_script("events.py", []),
        "## In-process router cost",
        "",
        *run_script("batch.py", []),
        "## Memory and start-up",
        "",
        *memory_and_startup(args),
        f"The whole run took {time.time() - started:.0f} s.",
        "",
    ]
    Path(args.output).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
