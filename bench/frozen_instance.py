"""One frozen instance among ten: do the callers keep getting answers? (issue 22, item 3)

Run: ``python bench/frozen_instance.py`` (options below). Everything runs on 127.0.0.1,
on free ports, in processes this script starts and stops:

- a registry (``python -m gemstone_aio.registry``);
- ``--instances`` (10) instances of one service whose ``echo`` answers at once with the
  instance's URL;
- ``--callers`` (2) caller processes, each running ``--loops`` (8) loops of
  ``await (await caller.get_service("bench.echo")).call("echo")`` with the client's
  time-out (``--timeout``, 30 s, the default of ``RemoteService``).

After ``--before`` seconds of load, the script sends SIGSTOP to one instance: the process
stops, yet the kernel still completes TCP handshakes on its socket, so connections
"succeed" and requests are never answered. The load goes on for ``--after`` seconds,
then the frozen instance gets SIGCONT (its stuck calls are answered then) and every
process is stopped. The script prints calls per second before and after the freeze, the
longest time without a single answered call (all callers together), the calls that were
stuck on the frozen instance (answered after SIGCONT, or failed then: the resumed server
closes connections whose request is older than its read deadline), the calls that failed
while it was frozen (time-outs), and how the other instances shared the calls.

``--src PATH`` runs every process on another copy of the sources, to compare with an
older version: ``git archive HEAD src | tar -x -C /tmp/head`` then ``--src /tmp/head/src``.
The caller script uses only ``get_service`` and ``call``, which every version has.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

from _harness import free_port

SRC = Path(__file__).resolve().parents[1] / "src"
NAME = "bench.echo"

INSTANCE = textwrap.dedent(
    """
    import sys

    import gemstone_aio as gemstone


    class Echo(gemstone.MicroService):
        name = "bench.echo"
        host = "127.0.0.1"
        service_registry_ping_interval = 2.0
        use_metrics = False

        @gemstone.exposed_method()
        async def echo(self) -> str:
            return str(self.accessible_at)


    if __name__ == "__main__":
        service = Echo()
        service.port = int(sys.argv[1])
        service.service_registry_urls = [sys.argv[2]]
        service.start(argv=[])
    """
)

CALLER = textwrap.dedent(
    """
    import asyncio
    import collections
    import json
    import signal
    import sys
    import time

    import gemstone_aio as gemstone


    class Caller(gemstone.MicroService):
        name = "bench.caller"


    async def main() -> None:
        registry, loops, timeout, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
        caller = Caller()
        caller.service_registry_urls = [registry]
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        answered = []  # (monotonic time, url)
        failed = []  # (monotonic time, error type)

        async def load() -> None:
            while not stop.is_set():
                try:
                    service = await caller.get_service("bench.echo")
                    service.timeout = timeout
                    url = await service.call("echo")
                except Exception as exc:
                    failed.append((time.monotonic(), type(exc).__name__))
                    await asyncio.sleep(0.01)
                else:
                    answered.append((time.monotonic(), url))

        tasks = [asyncio.create_task(load()) for _ in range(loops)]
        print("started", flush=True)
        await stop.wait()
        await asyncio.wait(tasks, timeout=timeout + 5)
        with open(out, "w") as file:
            json.dump({"answered": answered, "failed": failed}, file)
        print("done", flush=True)


    asyncio.run(main())
    """
)


def rpc(url: str, method: str, params: Any) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)["result"]


def wait_for(what: str, condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what} after {timeout} s")
        time.sleep(0.05)


class Processes:
    """The processes this script started; all stopped (then killed) at the end."""

    def __init__(self, src: Path) -> None:
        self.env = dict(os.environ, PYTHONPATH=str(src), PYTHONUNBUFFERED="1")
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, stdout: Any = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, *args], env=self.env, stdout=stdout, stderr=subprocess.DEVNULL
        )
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.terminate()
        for proc in self.started:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    procs = Processes(args.src)
    try:
        registry_port = free_port()
        registry = f"http://127.0.0.1:{registry_port}/api"
        procs.start(
            "-m", "gemstone_aio.registry", "--host", "127.0.0.1", "--port", str(registry_port)
        )
        wait_for("the registry", lambda: rpc(registry, "list_services", []) is not None)
        (work / "instance.py").write_text(INSTANCE)
        (work / "caller.py").write_text(CALLER)
        ports = [free_port() for _ in range(args.instances)]
        instances = [procs.start(str(work / "instance.py"), str(p), registry) for p in ports]
        urls = {f"http://127.0.0.1:{p}/api" for p in ports}
        wait_for(
            "the instances to register",
            lambda: set(rpc(registry, "locate_service", [NAME])) == urls,
        )
        callers = []
        for index in range(args.callers):
            out = work / f"caller{index}.json"
            proc = procs.start(
                str(work / "caller.py"),
                registry,
                str(args.loops),
                str(args.timeout),
                str(out),
                stdout=subprocess.PIPE,
            )
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != b"started":
                raise SystemExit("a caller did not start")
            callers.append((proc, out))
        began = time.monotonic()
        time.sleep(args.before)
        frozen = instances[0]
        frozen_url = f"http://127.0.0.1:{ports[0]}/api"
        os.kill(frozen.pid, signal.SIGSTOP)
        frozen_at = time.monotonic()
        time.sleep(args.after)
        resumed_at = time.monotonic()
        os.kill(frozen.pid, signal.SIGCONT)
        for proc, _ in callers:
            proc.terminate()
        for proc, _ in callers:
            proc.wait(timeout=args.timeout + 20)
        answered: list[tuple[float, str]] = []
        failed: list[tuple[float, str]] = []
        for _, out in callers:
            result = json.loads(out.read_text())
            answered += [(t, url) for t, url in result["answered"]]
            failed += [(t, kind) for t, kind in result["failed"]]
    finally:
        procs.stop_all()
    answered.sort()
    during = [t for t, _ in answered if frozen_at <= t < resumed_at]
    edges = [frozen_at, *during, resumed_at]
    gap = max(b - a for a, b in itertools.pairwise(edges))
    before = [t for t, _ in answered if began + 0.5 <= t < frozen_at]
    first_5s = [t for t in during if t < frozen_at + 5]
    per_instance = collections.Counter(
        url for t, url in answered if frozen_at <= t < resumed_at and url != frozen_url
    )
    seconds = int(resumed_at - frozen_at)
    series = [
        sum(1 for t in during if frozen_at + i <= t < frozen_at + i + 1) for i in range(seconds)
    ]
    return {
        "calls_per_s_before": len(before) / (frozen_at - began - 0.5),
        "calls_per_s_first_5s": len(first_5s) / 5,
        "calls_per_s_frozen": len(during) / (resumed_at - frozen_at),
        "longest_gap_s": gap,
        "stuck_on_frozen": sum(1 for t, url in answered if url == frozen_url and t >= resumed_at),
        "failed": collections.Counter(kind for t, kind in failed if frozen_at <= t < resumed_at),
        "failed_after_resume": sum(1 for t, _ in failed if t >= resumed_at),
        "instances_answering": len(per_instance),
        "spread": sorted(per_instance.values()) or [0],
        "series": series,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--src", type=Path, default=SRC, help="gemstone_aio sources to run")
    parser.add_argument("--instances", type=int, default=10)
    parser.add_argument("--callers", type=int, default=2)
    parser.add_argument("--loops", type=int, default=8, help="concurrent loops per caller")
    parser.add_argument("--timeout", type=float, default=30.0, help="the callers' time-out")
    parser.add_argument("--before", type=float, default=3.0, help="seconds before the freeze")
    parser.add_argument("--after", type=float, default=20.0, help="seconds frozen")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    if not 1 <= args.runs <= 10 or not 0 < args.before + args.after <= 120:
        raise SystemExit("at most 10 runs of at most 120 s each")
    print(
        f"{args.instances} instances, {args.callers} callers x {args.loops} loops, "
        f"time-out {args.timeout:g} s, sources {args.src}"
    )
    results = []
    for number in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as work:
            result = run(args, Path(work))
        results.append(result)
        print(
            f"run {number}: {result['calls_per_s_before']:.0f} calls/s before the freeze, "
            f"{result['calls_per_s_first_5s']:.0f}/s in its first 5 s, "
            f"{result['calls_per_s_frozen']:.0f}/s over {args.after:g} s frozen; longest "
            f"time without an answer {result['longest_gap_s']:.2f} s; "
            f"{result['stuck_on_frozen'] + result['failed_after_resume']} calls stuck on the "
            f"frozen instance ({result['failed_after_resume']} of them failed after SIGCONT); "
            f"failed while frozen {dict(result['failed']) or 0}; "
            f"the {result['instances_answering']} others answered "
            f"{result['spread'][0]}..{result['spread'][-1]} calls each"
        )
        print(f"  answered per second while frozen: {result['series']}")
    if len(results) > 1:
        for key in ("calls_per_s_before", "calls_per_s_frozen", "longest_gap_s"):
            print(f"median {key}: {statistics.median(r[key] for r in results):.2f}")


if __name__ == "__main__":
    main()
