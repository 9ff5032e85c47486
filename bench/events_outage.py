"""Memory of a publisher through a broker outage under a burst of fire-and-forget emits.

Issue 20, item 3. A service publishing over RabbitMQ loses its broker (``rabbitmqctl
stop_app``: connections drop, the listener closes); it then emits ``--events`` events
fire-and-forget (``self.emit_event(...)`` without ``await``, the gemstone 0.10 style)
as fast as it can, in bursts of 1,000 with a yield to the loop in between. The script
prints the process's resident memory before the outage, after the burst, and after the
broker came back and the publications kept were confirmed, with the counts (kept,
dropped, delivered) and the log lines written.

Each configuration runs in a fresh process (memory an interpreter once took is not given
back, so one run would skew the next): the default ``max_pending_publications`` (10,000)
and no bound (``None``, the behaviour before issue 20), both with ``publish_timeout``
long enough that nothing times out during the burst. Without ``--url`` a private
RabbitMQ node is started (the one the tests use) and stopped at the end.

    python bench/events_outage.py [--events 200000] [--bounds 10000,none]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]


def rss_mib() -> float:
    """Resident memory of this process, from ``/proc/self/status``."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class Counter(logging.Handler):
    """Counts the log records of gemstone-aio and of the client libraries."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.ours = 0
        self.library = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(("aiormq", "aio_pika")):
            self.library += 1
        else:
            self.ours += 1


async def child(url: str, ctl: list[str], ctl_env: dict[str, str], events: int, bound: Any) -> None:
    import gemstone_aio as gemstone
    from gemstone_aio.testing import serving

    counter = Counter()
    logging.getLogger().addHandler(counter)
    logging.getLogger().setLevel(logging.INFO)
    event = f"outage-{uuid.uuid4().hex[:8]}"
    delivered = 0
    all_in = asyncio.Event()

    class Publisher(gemstone.MicroService):
        name = "outage-publisher"
        event_transports = [
            gemstone.RabbitMqEventTransport(url, publish_timeout=600, reconnect_interval=0.5)
        ]
        max_pending_publications = bound
        use_metrics = False

    class Consumer(gemstone.MicroService):
        name = "outage-consumer"
        event_transports = [gemstone.RabbitMqEventTransport(url, reconnect_interval=0.5)]
        max_parallel_blocking_tasks = 64
        use_metrics = False

        @gemstone.event_handler(event)
        async def on_event(self, body: Any) -> None:
            nonlocal delivered
            delivered += 1
            if delivered == expected:
                all_in.set()

    def broker(action: str) -> None:
        subprocess.run([*ctl, action], env=ctl_env, check=True, capture_output=True)

    publisher = Publisher()
    expected = events if bound is None else bound
    async with serving(Consumer()), serving(publisher):
        await publisher.emit_event(event, -1, broadcast=False)  # connected, route declared
        gc.collect()
        before = rss_mib()
        await asyncio.to_thread(broker, "stop_app")
        started = time.perf_counter()
        for n in range(events):
            publisher.emit_event(event, n, broadcast=False)  # fire-and-forget
            if n % 1000 == 999:
                await asyncio.sleep(0)
        emit_seconds = time.perf_counter() - started
        await asyncio.sleep(2)  # the publications started wait for the broker
        gc.collect()
        during = rss_mib()
        runtime = publisher._event_runtime
        assert runtime is not None
        under_way, dropped = runtime.bound.under_way, runtime.bound.dropped
        await asyncio.to_thread(broker, "start_app")
        back = time.perf_counter()
        await asyncio.wait_for(all_in.wait(), 600)
        drain_seconds = time.perf_counter() - back
        gc.collect()
        after = rss_mib()
    print(
        json.dumps(
            {
                "bound": bound,
                "events": events,
                "emit_seconds": round(emit_seconds, 3),
                "rss_before_mib": round(before, 1),
                "rss_during_mib": round(during, 1),
                "growth_during_mib": round(during - before, 1),
                "rss_after_mib": round(after, 1),
                "under_way": under_way,
                "dropped": dropped,
                "delivered": delivered,
                "drain_seconds": round(drain_seconds, 1),
                "log_lines": counter.ours,
                "library_log_lines": counter.library,
            }
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--bounds", default="10000,none", help="comma-separated; none: no bound")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--ctl", help=argparse.SUPPRESS)
    parser.add_argument("--bound", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        ctl = json.loads(args.ctl)
        bound = None if args.bound == "none" else int(args.bound)
        asyncio.run(child(args.url, ctl["argv"], ctl["env"], args.events, bound))
        return

    from tests.fixtures.rabbitmq import RabbitMqNode, _executable

    base = Path(tempfile.mkdtemp(prefix="gemstone-bench-outage-"))
    node = RabbitMqNode(base)
    try:
        print("starting a private RabbitMQ node ...", flush=True)
        node.start()
        ctl = {"argv": [_executable("rabbitmqctl"), "-n", node.nodename], "env": node.env}
        for bound in args.bounds.split(","):
            done = subprocess.run(
                [
                    sys.executable, __file__, "--child", "--url", node.url,
                    "--ctl", json.dumps(ctl), "--bound", bound, "--events", str(args.events),
                ],
                capture_output=True, text=True, check=False,
                env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
            )  # fmt: skip
            if done.returncode != 0:
                raise SystemExit(f"bound {bound}: exit {done.returncode}\n{done.stderr[-3000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            label = "no bound" if result["bound"] is None else f"bound {result['bound']:,}"
            print(
                f"{label:>14}: {result['events']:,} fire-and-forget emits in "
                f"{result['emit_seconds']} s; RSS {result['rss_before_mib']} MiB -> "
                f"{result['rss_during_mib']} MiB during the outage "
                f"(+{result['growth_during_mib']} MiB), {result['rss_after_mib']} MiB after; "
                f"{result['under_way']:,} waiting, {result['dropped']:,} dropped, "
                f"{result['delivered']:,} delivered {result['drain_seconds']} s after the "
                f"broker came back; {result['log_lines']} log lines "
                f"({result['library_log_lines']} from aiormq/aio-pika)",
                flush=True,
            )
    finally:
        node.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
