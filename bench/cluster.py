"""A cluster on one machine: two services, a paced load, faults on a schedule (issue 24, item 6).

Run: ``python bench/cluster.py`` (options below; about 90 s with the defaults). Everything
runs on 127.0.0.1, on free ports, in processes this script starts and stops (each also
dies with this script: ``PR_SET_PDEATHSIG``):

- the discovery backend, ``--backend``: ``http`` (default: ``python -m
  gemstone_aio.registry``), ``redis`` (a private ``redis-server`` without persistence)
  or ``etcd`` (a private ``etcd`` with its data directory);
- ``--instances`` (20) instances, half of ``bench.front`` and half of ``bench.back``,
  each its own ``start()``-ed process with the framework's defaults (ping every 30 s,
  lookups cached 5 s, the default ``CallPolicy``). ``front.relay()`` calls
  ``back.where()`` through ``await self.get_service("bench.back")`` and answers both
  instances' URLs; both methods are declared idempotent (``--not-idempotent``: not);
- one load process calling ``relay`` through ``get_service("bench.front")`` at a fixed
  ``--rate`` (200 calls/s, open loop: each call starts at its scheduled time whatever
  the others do, at most ``--max-in-flight`` at once) for 6 x ``--spacing`` seconds
  (72 s), each call with a ``--timeout`` (2 s; front's call to back gets 0.5 s less,
  so a failure of back is told apart from one of front).

Faults, on instances of ``--target`` (``back``, or ``front``), every ``--spacing``
(12) seconds, each opening a window the calls are counted in (by start time):

====================  =============================================================
window                fault at its start
====================  =============================================================
baseline              none
kill -9               SIGKILL of instance 0 (it stays dead, still listed until expiry)
SIGSTOP               SIGSTOP of instance 1, SIGCONT ``--stop-for`` (8) s later
SIGTERM + restart     SIGTERM of instance 2 (it unregisters, serves its propagation
                      delay, closes), started again on its port once it has exited
registry restart      the backend is stopped (SIGTERM) and started again on its port
                      (the registry and Redis come back empty, etcd with its data)
after                 none
====================  =============================================================

Printed: the fault timeline; per window the calls, the failed calls by kind and the
latency of the answered ones; the calls each instance answered per window; and the
lookup counts: each caller's ``discovery.locator.lookups`` (refreshes, read through a
``lookups`` method of front and in the load process) against what the cache time
predicts, and the backend's own counters: the registry's ``/metrics``
(``gemstone_calls_total`` by method: ``lookup`` is what callers send, ``locate_service``
this script's readiness checks, ``(private)`` the pings and unregistrations), Redis's
``INFO commandstats`` (pings and lookups are both ``EVALSHA``: told apart only by the
callers' counts), etcd's ``/metrics`` (gRPC messages received by method: ``Range`` reads,
``Watch`` requests, ``LeaseKeepAlive`` pings). Counters restart with
the backend: the figures are before + after its restart. Also the machine's CPU use
during the load (``/proc/stat``), to show the load did not saturate the two cores.

``--logs DIR`` keeps every process's output there, and ``load.json``: every call's
scheduled start, latency, front, back and failure (default: a temporary directory,
removed at the end).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import ctypes
import json
import os
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from _harness import free_port

SRC = Path(__file__).resolve().parents[1] / "src"
FRONT, BACK = "bench.front", "bench.back"
WINDOWS = ("baseline", "kill -9", "SIGSTOP", "SIGTERM + restart", "registry restart", "after")

COMMON = textwrap.dedent(
    """
    def strategies(backend: str, where: str) -> list:
        if backend == "redis":
            from gemstone_aio.discovery import RedisDiscoveryStrategy

            return [RedisDiscoveryStrategy(where)]
        if backend == "etcd":
            from gemstone_aio.discovery import EtcdDiscoveryStrategy

            return [EtcdDiscoveryStrategy(where)]
        return []
    """
)

NODE = COMMON + textwrap.dedent(
    """
    import sys

    import gemstone_aio as gemstone

    ROLE, PORT, BACKEND, WHERE, BACK_TIMEOUT, IDEMPOTENT = sys.argv[1:7]


    class Back(gemstone.MicroService):
        name = "bench.back"
        use_metrics = False

        @gemstone.exposed_method(idempotent=IDEMPOTENT == "1")
        async def where(self) -> str:
            return str(self.accessible_at)


    class Front(gemstone.MicroService):
        name = "bench.front"
        use_metrics = False

        @gemstone.exposed_method(idempotent=IDEMPOTENT == "1")
        async def relay(self) -> list[str]:
            back = None
            try:
                back = await self.get_service("bench.back")
                back.timeout = float(BACK_TIMEOUT)
                where = await back.call("where")
            except Exception as exc:
                data = {"error": type(exc).__name__, "back": getattr(back, "url", None)}
                raise gemstone.InternalError("bench.back failed", data=data) from None
            return [str(self.accessible_at), where]

        @gemstone.exposed_method()
        async def lookups(self) -> int:
            return self.discovery.locator.lookups


    if __name__ == "__main__":
        service = Front() if ROLE == "front" else Back()
        service.host = "127.0.0.1"
        service.port = int(PORT)
        if BACKEND == "http":
            service.service_registry_urls = [WHERE]
        else:
            service.discovery_strategies = strategies(BACKEND, WHERE)
        service.start(argv=[])
    """
)

LOAD = COMMON + textwrap.dedent(
    """
    import asyncio
    import json
    import sys
    import time

    import gemstone_aio as gemstone
    from gemstone_aio import RemoteService
    from gemstone_aio.errors import CalledServiceError

    BACKEND, WHERE = sys.argv[1], sys.argv[2]
    RATE, SECONDS, TIMEOUT, MAX_IN_FLIGHT = map(float, sys.argv[3:7])
    EXPECTED, OUT = sys.argv[7], sys.argv[8]


    class Load(gemstone.MicroService):
        name = "bench.load"


    async def ready(caller: Load, expected: dict) -> None:
        strategy = caller.discovery.strategies[0]
        deadline = time.monotonic() + 90
        while True:
            found = {name: set(await strategy.locate(name)) for name in expected}
            if all(found[name] >= set(urls) for name, urls in expected.items()):
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"not every instance registered: {found}")
            await asyncio.sleep(0.25)


    async def main() -> None:
        caller = Load()
        if BACKEND == "http":
            caller.service_registry_urls = [WHERE]
        else:
            caller.discovery_strategies = strategies(BACKEND, WHERE)
        expected = json.loads(open(EXPECTED).read())
        await ready(caller, expected)
        records = []  # [scheduled s, latency s, front, back, failure kind or None]
        lag = []

        async def one(at: float, t0: float) -> None:
            front = back = kind = None
            try:
                service = await caller.get_service("bench.front")
                service.timeout = TIMEOUT
                front = service.url
                front, back = await service.call("relay")
            except CalledServiceError as exc:
                front = exc.url or front
                data = exc.data if isinstance(exc.data, dict) else {}
                if "error" in data:
                    kind, back = f"back: {data['error']}", data.get("back")
                else:
                    kind = f"front: {type(exc).__name__} {exc.code}"
            except Exception as exc:
                kind = f"front: {type(exc).__name__}"
                front = getattr(exc, "url", None) or front
            records.append([at - t0, time.monotonic() - at, front, back, kind])

        tasks = set()
        t0 = time.monotonic()
        print(f"started {t0!r}", flush=True)
        for index in range(int(RATE * SECONDS)):
            at = t0 + index / RATE
            delay = at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            lag.append(time.monotonic() - at)
            if len(tasks) >= MAX_IN_FLIGHT:
                records.append([at - t0, 0.0, None, None, "not sent: max in flight"])
                continue
            task = asyncio.create_task(one(at, t0))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=TIMEOUT + 5)
        lookups = {}
        for url in expected["bench.front"]:
            try:
                async with RemoteService(url, timeout=2) as front:
                    lookups[url] = await front.call("lookups")
            except Exception as exc:
                lookups[url] = type(exc).__name__
        lookups["load"] = caller.discovery.locator.lookups
        await caller.discovery.aclose()
        lag.sort()
        summary = {
            "records": records,
            "lookups": lookups,
            "lag_p99": lag[int(len(lag) * 0.99)] if lag else 0.0,
            "lag_max": lag[-1] if lag else 0.0,
        }
        with open(OUT, "w") as file:
            json.dump(summary, file)
        print("done", flush=True)


    asyncio.run(main())
    """
)


def listens(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


def wait_for(what: str, condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what} after {timeout:g} s")
        time.sleep(0.05)


def _die_with_parent() -> None:
    # In the child, before exec: SIGKILL it when this script dies, however it dies.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine so far, from ``/proc/stat``."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


class Processes:
    """Every process this script starts: all stopped (SIGCONT, SIGTERM, then SIGKILL) at the end."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.env = dict(os.environ, PYTHONPATH=str(SRC), PYTHONUNBUFFERED="1")
        self.started: list[subprocess.Popen[bytes]] = []
        self._files: list[IO[bytes]] = []

    def start(
        self, argv: list[str], log: str, stdout: int | None = None
    ) -> subprocess.Popen[bytes]:
        out = open(self.logs / f"{log}.log", "ab")  # noqa: SIM115 (closed in stop_all)
        self._files.append(out)
        proc = subprocess.Popen(
            argv,
            env=self.env,
            stdout=stdout if stdout is not None else out,
            stderr=out,
            preexec_fn=_die_with_parent,  # this script runs no threads
        )
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGCONT)
                    proc.terminate()
        deadline = time.monotonic() + 20
        for proc in self.started:
            try:
                proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for file in self._files:
            file.close()


class Lines:
    """Lines of a child's stdout, read with a time limit (``select``: no thread)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.fd = stream.fileno()
        self.buffer = b""

    def read(self, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if select.select([self.fd], [], [], left)[0]:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    return None
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()


# -- the discovery backends ----------------------------------------------------------------


@dataclass
class Backend:
    """A discovery backend process on a fixed port, restartable, with its own counters."""

    kind: str
    procs: Processes
    work: Path
    port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)  # etcd's
    proc: subprocess.Popen[bytes] | None = None
    counted: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def where(self) -> str:
        """What instances are told: the registry URL, the Redis URL, etcd's endpoint."""
        if self.kind == "http":
            return f"http://127.0.0.1:{self.port}/api"
        if self.kind == "redis":
            return f"redis://127.0.0.1:{self.port}/0"
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        if self.kind == "http":
            return [sys.executable, "-m", "gemstone_aio.registry", "--host", "127.0.0.1",
                    "--port", str(self.port)]  # fmt: skip
        if self.kind == "redis":
            return [shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1",
                    "--port", str(self.port), "--save", "", "--appendonly", "no",
                    "--dir", str(self.work)]  # fmt: skip
        client, peer = f"http://127.0.0.1:{self.port}", f"http://127.0.0.1:{self.peer_port}"
        return [shutil.which("etcd") or "etcd", "--name", "bench",
                "--data-dir", str(self.work / "etcd"),
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"bench={peer}"]  # fmt: skip

    def start(self) -> None:
        self.proc = self.procs.start(self.argv(), f"backend-{self.kind}")
        wait_for(f"the {self.kind} backend", self.ready)

    def ready(self) -> bool:
        if self.kind == "etcd":
            try:
                with urllib.request.urlopen(f"{self.where}/health", timeout=0.5) as answer:
                    return b'"true"' in answer.read()
            except OSError:
                return False
        return listens(self.port)

    def restart(self) -> float:
        """Stop (SIGTERM) and start again on the same port; the seconds it was away."""
        assert self.proc is not None
        self.counted.update(self.counters())
        began = time.monotonic()
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.start()
        return time.monotonic() - began

    def counters(self) -> collections.Counter[str]:
        """The backend's own counts so far (since its last start)."""
        found: collections.Counter[str] = collections.Counter()
        try:
            if self.kind == "redis":
                info = subprocess.run(
                    ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "info", "commandstats"],
                    capture_output=True, text=True, timeout=10, check=True,
                ).stdout  # fmt: skip
                for name, calls in re.findall(r"^cmdstat_(\S+?):calls=(\d+)", info, re.M):
                    found[name.upper()] += int(calls)
                return found
            url = f"http://127.0.0.1:{self.port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as answer:
                text = answer.read().decode()
        except (OSError, subprocess.SubprocessError) as exc:
            found[f"(unreadable: {type(exc).__name__})"] += 1
            return found
        if self.kind == "http":
            pattern = r'^gemstone_calls_total\{[^}]*method="([^"]+)"[^}]*\}\s+([\d.e+]+)'
        else:
            pattern = (
                r'^grpc_server_msg_received_total\{[^}]*grpc_method="([^"]+)"[^}]*\}\s+([\d.e+]+)'
            )
        for name, value in re.findall(pattern, text, re.M):
            if float(value):
                found[name] += int(float(value))
        return found


# -- the run -------------------------------------------------------------------------------


@dataclass
class Instance:
    role: str
    index: int
    port: int
    proc: subprocess.Popen[bytes] | None = None
    fault: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def label(self) -> str:
        return f"{self.role} {self.index}" + (f" ({self.fault})" if self.fault else "")


def run(args: argparse.Namespace, work: Path, logs: Path) -> None:
    procs = Processes(logs)
    backend = Backend(args.backend, procs, work)
    fronts = args.instances // 2
    instances = [Instance("front", i, free_port()) for i in range(fronts)]
    instances += [Instance("back", i, free_port()) for i in range(args.instances - fronts)]
    targets = [i for i in instances if i.role == args.target]
    for instance, fault in zip(targets, ("kill -9", "SIGSTOP", "SIGTERM + restart"), strict=False):
        instance.fault = fault
    (work / "node.py").write_text(NODE)
    (work / "load.py").write_text(LOAD)
    expected = work / "expected.json"
    urls = {name: [i.url for i in instances if f"bench.{i.role}" == name] for name in (FRONT, BACK)}
    expected.write_text(json.dumps(urls))
    back_timeout = str(max(args.timeout - 0.5, 0.1))
    idempotent = "0" if args.not_idempotent else "1"

    def start(instance: Instance) -> None:
        argv = [sys.executable, str(work / "node.py"), instance.role, str(instance.port),
                args.backend, backend.where, back_timeout, idempotent]  # fmt: skip
        instance.proc = procs.start(argv, f"{instance.role}-{instance.index}")

    timeline: list[str] = []
    try:
        backend.start()
        for instance in instances:
            start(instance)
        out = logs / "load.json"
        load = procs.start(
            [sys.executable, str(work / "load.py"), args.backend, backend.where,
             str(args.rate), str(6 * args.spacing), str(args.timeout), str(args.max_in_flight),
             str(expected), str(out)],
            "load",
            stdout=subprocess.PIPE,
        )  # fmt: skip
        assert load.stdout is not None
        lines = Lines(load.stdout)
        line = lines.read(120)
        if line is None or not line.startswith("started "):
            raise SystemExit(f"the load process did not start (see {logs}/load.log)")
        t0 = float(line.split()[1])
        busy_before = machine_busy()

        def at(offset: float) -> None:
            while (left := t0 + offset - time.monotonic()) > 0:
                time.sleep(min(left, 0.05))
                restart_if_exited()

        def note(what: str) -> None:
            timeline.append(f"{time.monotonic() - t0:6.1f} s  {what}")

        pending: list[Instance] = []

        def restart_if_exited() -> None:
            for instance in list(pending):
                assert instance.proc is not None
                if instance.proc.poll() is not None:
                    note(f"{instance.label} exited ({instance.proc.returncode}): started again")
                    pending.remove(instance)
                    start(instance)

        s = args.spacing
        at(s)
        if len(targets) > 0:
            os.kill(targets[0].proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
            note(f"SIGKILL {targets[0].label} {targets[0].url}")
        at(2 * s)
        if len(targets) > 1:
            os.kill(targets[1].proc.pid, signal.SIGSTOP)  # type: ignore[union-attr]
            note(f"SIGSTOP {targets[1].label} {targets[1].url}")
            at(2 * s + args.stop_for)
            os.kill(targets[1].proc.pid, signal.SIGCONT)  # type: ignore[union-attr]
            note(f"SIGCONT {targets[1].label}")
        at(3 * s)
        if len(targets) > 2:
            targets[2].proc.terminate()  # type: ignore[union-attr]
            pending.append(targets[2])
            note(f"SIGTERM {targets[2].label} {targets[2].url}")
        at(4 * s)
        note(f"stopping the {args.backend} backend (SIGTERM)")
        away = backend.restart()
        note(f"the {args.backend} backend is back after {away:.2f} s")
        at(6 * s)
        if pending:
            note(f"{pending[0].label} had not exited by the end of the load")
        busy_after = machine_busy()
        line = lines.read(args.timeout + 60)
        if line != "done":
            raise SystemExit(f"the load process did not finish (see {logs}/load.log)")
        counted = backend.counted + backend.counters()
    finally:
        procs.stop_all()
    result = json.loads(out.read_text())
    busy = (busy_after[0] - busy_before[0]) / max(busy_after[1] - busy_before[1], 1)
    report(args, instances, timeline, result, counted, busy)


def report(
    args: argparse.Namespace,
    instances: list[Instance],
    timeline: list[str],
    result: dict[str, Any],
    counted: collections.Counter[str],
    busy: float,
) -> None:
    s = args.spacing
    records = result["records"]

    def window(offset: float) -> str:
        return WINDOWS[min(int(offset // s), len(WINDOWS) - 1)]

    print("\nfaults (seconds from the start of the load):")
    for entry in timeline:
        print(f"  {entry}")
    print(
        f"\nload: {len(records)} calls scheduled at {args.rate:g}/s over {6 * s:g} s; "
        f"start lag p99 {result['lag_p99'] * 1000:.1f} ms, max {result['lag_max'] * 1000:.1f} ms;"
        f" machine CPU busy {busy:.0%} of {os.cpu_count()} cores during the load"
    )
    print(
        "\n| window | from s | calls | failed | failures by kind | failing from-to s "
        "| p50 ms | p99 ms | max ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for number, name in enumerate(WINDOWS):
        mine = [r for r in records if window(r[0]) == name]
        failed = collections.Counter(r[4] for r in mine if r[4])
        answered = sorted(r[1] * 1000 for r in mine if not r[4])
        p50 = statistics.median(answered) if answered else 0.0
        p99 = answered[min(len(answered) - 1, int(len(answered) * 0.99))] if answered else 0.0
        kinds = ", ".join(f"{k} {n}" for k, n in failed.most_common()) or "-"
        times = [r[0] for r in mine if r[4]]
        span = f"{min(times):.1f}-{max(times):.1f}" if times else "-"
        print(
            f"| {name} | {number * s:g} | {len(mine)} | {sum(failed.values())} | {kinds} | {span} "
            f"| {p50:.1f} | {p99:.1f} | {answered[-1] if answered else 0:.0f} |"
        )
    failed_at: collections.Counter[str] = collections.Counter()
    for r in records:
        if r[4]:
            failed_at[r[3] if r[4].startswith("back") else r[2]] += 1
    print("\ncalls answered per instance and window (failed calls it was blamed for):")
    print(f"| instance | port | {' | '.join(WINDOWS)} | total | failed |")
    print("|---|---|" + "---|" * (len(WINDOWS) + 2))
    for instance in instances:
        column = 2 if instance.role == "front" else 3
        per = collections.Counter(
            window(r[0]) for r in records if not r[4] and r[column] == instance.url
        )
        print(
            f"| {instance.label} | {instance.port} | "
            + " | ".join(str(per[name]) for name in WINDOWS)
            + f" | {sum(per.values())} | {failed_at[instance.url]} |"
        )
    unknown = failed_at[None]  # type: ignore[index]
    if unknown:
        print(f"(failed calls no instance can be blamed for: {unknown})")
    lookups = result["lookups"]
    counts = [n for n in lookups.values() if isinstance(n, int)]
    callers = len(lookups)
    predicted = callers * (6 * s / args.cache_ttl + 1)
    print(
        f"\nlookups (locator refreshes, ServiceLocator.lookups): {sum(counts)} by {callers} "
        f"callers ({fronts_text(lookups)}); the cache time ({args.cache_ttl:g} s) predicts at "
        f"most {predicted:.0f} ({callers} x ({6 * s:g} / {args.cache_ttl:g} + 1))"
    )
    label = {"http": "the registry's /metrics", "redis": "Redis INFO commandstats",
             "etcd": "etcd /metrics, gRPC messages received"}[args.backend]  # fmt: skip
    shown = ", ".join(f"{name} {n}" for name, n in counted.most_common())
    print(f"backend counters ({label}, before + after its restart): {shown or 'none'}")


def fronts_text(lookups: dict[str, Any]) -> str:
    values = [f"{n}" for url, n in lookups.items() if url != "load"]
    return f"load {lookups.get('load')}, fronts {' '.join(values)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backend", choices=("http", "redis", "etcd"), default="http")
    parser.add_argument("--instances", type=int, default=20, help="front + back instances")
    parser.add_argument("--target", choices=("back", "front"), default="back")
    parser.add_argument("--rate", type=float, default=200.0, help="calls per second")
    parser.add_argument("--spacing", type=float, default=12.0, help="seconds between faults")
    parser.add_argument("--stop-for", type=float, default=8.0, help="seconds SIGSTOP lasts")
    parser.add_argument("--timeout", type=float, default=2.0, help="each call's time-out")
    parser.add_argument("--max-in-flight", type=int, default=1000)
    parser.add_argument("--not-idempotent", action="store_true")
    parser.add_argument("--logs", type=Path, help="keep the processes' output here")
    args = parser.parse_args()
    args.cache_ttl = 5.0  # the framework's default service_locate_cache_ttl, used as is
    if not 6 <= args.instances <= 100:
        raise SystemExit("--instances: 6 to 100 (each role needs 3 for the faults)")
    if not 0 < args.rate * 6 * args.spacing <= 200_000 or not 3 <= args.spacing <= 60:
        raise SystemExit("--spacing: 3 to 60 s; at most 200,000 calls in all")
    if not 0 < args.stop_for < args.spacing:
        raise SystemExit("--stop-for must be shorter than --spacing")
    tools = {"redis": ["redis-server", "redis-cli"], "etcd": ["etcd"]}.get(args.backend, [])
    for tool in tools:
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not on the PATH")
    print(
        f"{args.backend} backend; {args.instances} instances ({args.instances // 2} front, "
        f"{args.instances - args.instances // 2} back); faults on {args.target}; "
        f"{args.rate:g} calls/s for {6 * args.spacing:g} s, time-out {args.timeout:g} s; "
        f"methods {'not ' if args.not_idempotent else ''}idempotent"
    )
    with tempfile.TemporaryDirectory() as tmp:
        logs = args.logs or Path(tmp) / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        run(args, Path(tmp), logs)


if __name__ == "__main__":
    main()
