"""One worker process against two on this machine: requests/s and server CPU per request.

Run: ``python bench/workers.py [--seconds 5] [--rounds 5] [--connections 32] [--pin CORE]
[--loop asyncio|uvloop] [--src PATH]`` (needs ``wrk``, the Debian package, and for
``--pin`` ``taskset``; everything on 127.0.0.1, on free ports, in processes this script
starts and stops).

Two servers of the same service run side by side for the whole benchmark: one with
``worker_processes = 1`` (a plain process) and one with ``worker_processes = 2`` (a
supervisor and two workers sharing the port with ``SO_REUSEPORT``). The method is a
trivial async one (``say_hello(name: str)``, the same request body as the "async method"
case of ``bench/run.py``), metrics off as installed without the ``metrics`` extra.

The load is ``wrk -t1`` (one thread: as little of the machine as wrk can take, at most
one core), not pinned by default: ``--pin CORE`` runs it under ``taskset -c CORE``. On
this 2-core machine pinning it to core 1 changed nothing measurable (ratio 1.99x
pinned, 1.98x not, the same CPU per request), so the default leaves the scheduler free.
Each round measures both servers back to back, odd rounds in the other order; every
figure printed is a median over the rounds, and the ratios (2 workers / 1 worker) are
medians of the per-round ratios.

Figures per run:

- requests/s, as wrk counts them;
- server CPU per request: user + system time of the server's processes (the
  supervisor and every worker, read from ``/proc``) during the run, divided by the
  requests completed;
- wrk's own CPU per request (user + system, once reaped), to see what the load generator
  takes from the two cores: with it, the most two workers can serve is about
  ``cores / (server CPU + wrk CPU per request)``, the "CPU bound" column;
- how the requests were spread: each worker's share of the server CPU;
- what everything else on the machine used meanwhile (its busy time from ``/proc/stat``
  less the server's and wrk's), in cores: a round disturbed by other work shows tens of
  percent (the two accountings differ by about -10% of a core with one worker at full
  speed, so small negative figures are noise, not a measurement).

``--src PATH`` runs the servers on another copy of the sources.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from _harness import ROOT, cpu_seconds, free_port, wait_for_port
from run import HELLO

SERVER = textwrap.dedent(
    """
    import os
    import sys

    import gemstone_aio as gemstone


    class Hello(gemstone.MicroService):
        name = "bench_hello"
        host = "127.0.0.1"
        use_metrics = False  # as installed without the metrics extra (bench/servers.py)

        @gemstone.exposed_method()
        async def say_hello(self, name: str) -> str:
            return "hello " + name

        @gemstone.exposed_method()
        async def pid(self) -> int:
            return os.getpid()


    if __name__ == "__main__":
        service = Hello()
        service.port = int(sys.argv[1])
        service.worker_processes = int(sys.argv[2])
        service.use_uvloop = sys.argv[3] == "uvloop"
        service.start(argv=[])
    """
)

BODY = json.dumps(HELLO)
PID = json.dumps({"jsonrpc": "2.0", "method": "pid", "id": 1})


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (a supervisor's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def served_by(port: int) -> int:
    """The pid of the process that answers a request on a new connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("POST", "/api", PID, {"Content-Type": "application/json"})
        return int(json.loads(connection.getresponse().read())["result"])
    finally:
        connection.close()


@dataclass
class Server:
    workers: int
    script: Path
    src: Path
    loop: str
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    pids: list[int] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.workers} worker{'s' if self.workers > 1 else ''}"

    def start(self) -> None:
        self.port = free_port()
        env = {**os.environ, "PYTHONPATH": str(self.src)}
        argv = [sys.executable, str(self.script), str(self.port), str(self.workers), self.loop]
        self.process = subprocess.Popen(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port)
        # Every worker listens once each has answered a request on a new connection.
        seen: set[int] = set()
        deadline = time.monotonic() + 30
        while len(seen) < self.workers:
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.name}: only {len(seen)} answered after 30 s")
            try:
                seen.add(served_by(self.port))
            except OSError:
                time.sleep(0.05)
        self.pids = [self.process.pid, *children(self.process.pid)]
        serving = set(self.pids[1:]) if self.workers > 1 else {self.process.pid}
        if serving != seen or len(serving) != self.workers:
            raise SystemExit(f"{self.name}: answered by {seen}, processes {self.pids}")

    def cpu(self) -> dict[int, float]:
        """CPU seconds so far of every process of this server, by pid."""
        return {pid: cpu_seconds(pid) for pid in self.pids}

    def check_unchanged(self) -> None:
        assert self.process is not None
        now = [self.process.pid, *children(self.process.pid)] if self.workers > 1 else self.pids
        if sorted(now) != sorted(self.pids):
            raise SystemExit(f"{self.name}: processes changed from {self.pids} to {now}")

    def stop(self) -> None:
        if self.process is None:
            return
        leftovers = [pid for pid in self.pids if pid != self.process.pid]
        self.process.terminate()  # a supervisor passes it on and drains its workers
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for pid in leftovers:  # a worker the supervisor did not stop (it should have)
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                continue


@dataclass
class Run:
    rps: float
    requests: int
    server_us: float  # server CPU per request, µs
    wrk_us: float  # wrk's CPU per request, µs
    shares: list[float]  # each worker's share of the server CPU
    others: float  # cores' worth of CPU used by everything else on the machine meanwhile


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy so far (``/proc/stat``, all cores)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # not idle, iowait


def wrk(url: str, seconds: int, connections: int, pin: str | None, script: Path) -> str:
    """Run wrk (under ``taskset -c PIN``: taskset execs wrk, same process); its output.

    Its CPU time lands in this process's children's times once it is reaped.
    """
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url]
    if pin is not None:
        command = ["taskset", "-c", pin, *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stderr}")
    return done.stdout


def measure(server: Server, args: argparse.Namespace, script: Path) -> Run:
    url = f"http://127.0.0.1:{server.port}/api"
    before = server.cpu()
    times_before = os.times()  # wrk's CPU: the reaped children's times (servers run on)
    busy_before = machine_busy()
    out = wrk(url, args.seconds, args.connections, args.pin, script)
    busy_after = machine_busy()
    times_after = os.times()
    after = server.cpu()
    server.check_unchanged()
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"errors during the run against {url}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    used = {pid: after[pid] - before[pid] for pid in after}
    total = sum(used.values())
    wrk_cpu = (times_after.children_user - times_before.children_user) + (
        times_after.children_system - times_before.children_system
    )
    workers = [pid for pid in server.pids if server.workers == 1 or pid != server.pids[0]]
    shares = [used[pid] / total if total else 0.0 for pid in workers]
    others = (busy_after - busy_before - total - wrk_cpu) / (
        times_after.elapsed - times_before.elapsed
    )
    return Run(rps, requests, total / requests * 1e6, wrk_cpu / requests * 1e6, shares, others)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--pin", default="none", help="the core wrk runs on (default: none)")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="gemstone_aio from here")
    args = parser.parse_args()
    if not 1 <= args.rounds <= 20 or not 1 <= args.seconds <= 60:
        raise SystemExit("at most 20 rounds of at most 60 s")
    args.pin = None if args.pin == "none" else args.pin
    for tool in ("wrk", *(["taskset"] if args.pin is not None else [])):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not on the PATH")
    cores = os.cpu_count() or 1
    print(
        f"{cores} cores; wrk -t1 -c{args.connections} -d{args.seconds}s "
        f"{'pinned to core ' + args.pin if args.pin is not None else 'not pinned'}; "
        f"{args.rounds} rounds; {args.loop}; sources {args.src}"
    )
    runs: dict[int, list[Run]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "server.py").write_text(SERVER)
        lua = work / "post.lua"
        lua.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(BODY)}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
        servers = [Server(n, work / "server.py", args.src.resolve(), args.loop) for n in (1, 2)]
        try:
            for server in servers:
                server.start()
            for server in servers:  # warm up (and check) both before measuring
                wrk(f"http://127.0.0.1:{server.port}/api", 1, args.connections, args.pin, lua)
            for round_ in range(args.rounds):
                order = servers if round_ % 2 == 0 else servers[::-1]
                for server in order:
                    runs[server.workers].append(measure(server, args, lua))
                one, two = runs[1][-1], runs[2][-1]
                print(
                    f"round {round_ + 1} ({' then '.join(s.name for s in order)}): "
                    f"1 worker {one.rps:,.0f} req/s {one.server_us:.0f} µs/req; "
                    f"2 workers {two.rps:,.0f} req/s {two.server_us:.0f} µs/req "
                    f"(worker shares {'/'.join(f'{s:.0%}' for s in two.shares)}); "
                    f"ratios {two.rps / one.rps:.2f}x req/s, "
                    f"{two.server_us / one.server_us:.2f}x CPU/req; other processes "
                    f"{one.others:.0%}/{two.others:.0%} of a core",
                    flush=True,
                )
        finally:
            for server in servers:
                server.stop()
    print()
    print("| server | req/s | server CPU µs/req | wrk CPU µs/req | CPU bound req/s |")
    print("|---|---|---|---|---|")
    for workers in (1, 2):
        rs = runs[workers]
        server_us = statistics.median(r.server_us for r in rs)
        wrk_us = statistics.median(r.wrk_us for r in rs)
        # One worker can use one core; two share the cores with wrk.
        bound = 1e6 / server_us if workers == 1 else cores * 1e6 / (server_us + wrk_us)
        print(
            f"| {workers} worker{'s' if workers > 1 else ''} "
            f"| {statistics.median(r.rps for r in rs):,.0f} | {server_us:.0f} "
            f"| {wrk_us:.0f} | {bound:,.0f} |"
        )
    rps_ratio = statistics.median(b.rps / a.rps for a, b in zip(runs[1], runs[2], strict=True))
    cpu_ratio = statistics.median(
        b.server_us / a.server_us for a, b in zip(runs[1], runs[2], strict=True)
    )
    print(
        f"\n2 workers / 1 worker (medians of per-round ratios): {rps_ratio:.2f}x requests/s "
        f"(the limit is {min(cores, 2)}x), {cpu_ratio:.2f}x server CPU per request"
    )


if __name__ == "__main__":
    main()
