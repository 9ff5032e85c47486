"""Once-per-cluster periodic tasks: three real instances, a real Redis, the leader killed."""

from __future__ import annotations

import asyncio
import itertools
import signal
import textwrap
import time
from pathlib import Path

import pytest

import gemstone_aio as gemstone
from gemstone_aio.cluster import RedisLeaseStore, once_per_cluster
from gemstone_aio.errors import ServiceConfigurationError
from tests.fixtures.config import ServiceProcess, StartProcess, wait_until

pytestmark = pytest.mark.redis

PERIOD = 1.0

INSTANCE = textwrap.dedent(
    """
    import os
    import sys
    import time

    import gemstone_aio as gemstone
    from gemstone_aio.cluster import RedisLeaseStore, once_per_cluster

    RUNS = sys.argv[1]


    def report() -> None:
        with open(RUNS, "a") as runs:
            runs.write(f"{time.time():.3f} {os.getpid()}\\n")


    class Reporter(gemstone.MicroService):
        name = sys.argv[3]
        port = 0
        cluster_lease_store = RedisLeaseStore(sys.argv[2])
        periodic_tasks = [(once_per_cluster(report), float(sys.argv[4]))]


    if __name__ == "__main__":
        Reporter().start(argv=[])
    """
)


def _runs(path: Path) -> list[tuple[float, int]]:
    if not path.exists():
        return []
    runs = []
    for line in path.read_text().splitlines():
        when, pid = line.split()
        runs.append((float(when), int(pid)))
    return runs


async def test_three_instances_run_the_task_once_per_period_and_fail_over(
    service_process: StartProcess, redis_url: str, tmp_path: Path
) -> None:
    script = tmp_path / "reporter.py"
    script.write_text(INSTANCE)
    runs_file = tmp_path / "runs.txt"
    name = f"reporter_{time.monotonic_ns()}"
    instances: list[ServiceProcess] = []
    for _ in range(3):
        child = await service_process(script, str(runs_file), redis_url, name, str(PERIOD))
        await child.wait_serving()
        instances.append(child)
    await wait_until(lambda: len(_runs(runs_file)) >= 5, 15)
    runs = _runs(runs_file)
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(runs)]
    # Once per period across the three instances, not three times.
    assert all(gap > PERIOD * 0.8 for gap in gaps), gaps
    # Kill the leader (the instance of the last run) without a chance to release its lease.
    leader_pid = runs[-1][1]
    leader = next(child for child in instances if child.proc.pid == leader_pid)
    killed_at = time.time()
    leader.proc.send_signal(signal.SIGKILL)
    await leader.finish()
    await wait_until(
        lambda: any(pid != leader_pid for when, pid in _runs(runs_file) if when > killed_at), 10
    )
    after = [when for when, pid in _runs(runs_file) if when > killed_at]
    last_before = max(when for when, _ in _runs(runs_file) if when <= killed_at)
    # The next run happened within one period (plus scheduling slack) of the last one.
    assert after[0] - last_before < PERIOD * 1.5, (last_before, after)
    for child in instances:
        if child is not leader:
            child.proc.send_signal(signal.SIGTERM)
            assert await child.finish() == 0


async def test_a_once_per_cluster_task_needs_a_lease_store() -> None:
    def report() -> None:
        return None

    class NoStore(gemstone.MicroService):
        name = "no_store"
        periodic_tasks = [(once_per_cluster(report), 5)]

    with pytest.raises(ServiceConfigurationError, match="cluster_lease_store"):
        NoStore().make_app()


async def test_the_lease_store_takes_renews_and_releases(redis_url: str) -> None:
    store = RedisLeaseStore(redis_url)
    key = f"test.{time.monotonic_ns()}"
    try:
        assert await store.acquire(key, "a", 5)
        assert not await store.acquire(key, "b", 5)
        assert await store.acquire(key, "a", 5)  # renewing
        await store.release(key, "b")  # not the holder: nothing happens
        assert not await store.acquire(key, "b", 5)
        await store.release(key, "a")
        assert await store.acquire(key, "b", 0.05)
        await asyncio.sleep(0.1)
        assert await store.acquire(key, "a", 5)
        assert await store.last_run(key) is None
        now = await store.now()
        await store.mark_run(key, now, keep=5)
        assert await store.last_run(key) == pytest.approx(now)
        assert "redis://" not in repr(store)
    finally:
        await store.aclose()
