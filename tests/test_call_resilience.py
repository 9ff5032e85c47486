"""Instances in their own processes under load: kill -9, SIGSTOP, a rolling restart.

Three instances of one service run as child processes and register with a registry; a
caller (this process, or two caller processes) keeps calling them through
``get_service`` while one instance is killed, frozen or restarted. The figures (failed
calls) are recorded as test properties (``record_property``).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import os
import signal
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import unused_port

from gemstone_aio import MicroService, RemoteService
from gemstone_aio.client import CallTimeoutError, ServiceUnavailableError
from gemstone_aio.errors import GemstoneError
from gemstone_aio.registry import ServiceRegistry
from tests.fixtures.calls import Recorder
from tests.fixtures.config import ServiceProcess, StartProcess
from tests.fixtures.discovery import RegistryFactory, unique, wait_until

STORE = textwrap.dedent(
    """
    import asyncio
    import sys

    import gemstone_aio as gemstone


    class Store(gemstone.MicroService):
        host = "127.0.0.1"
        service_registry_ping_interval = 1.0

        def __init__(self) -> None:
            super().__init__()
            self.answered = 0

        async def _run(self, delay: float) -> str:
            await asyncio.sleep(delay)
            self.answered += 1
            return str(self.accessible_at)

        @gemstone.exposed_method(idempotent=True)
        async def read(self, delay: float = 0.0) -> str:
            return await self._run(delay)

        @gemstone.exposed_method()
        async def write(self, delay: float = 0.0) -> str:
            return await self._run(delay)

        @gemstone.exposed_method()
        async def answered_calls(self) -> int:
            return self.answered


    if __name__ == "__main__":
        name, port, registry, cache_ttl = sys.argv[1:5]
        Store.name = name
        service = Store()
        service.port = int(port)
        service.service_registry_urls = [registry]
        service.service_locate_cache_ttl = float(cache_ttl)
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

    import gemstone_aio as gemstone


    class Caller(gemstone.MicroService):
        name = "rolling-caller"


    async def main() -> None:
        registry, pattern, cache_ttl, loops = sys.argv[1:5]
        caller = Caller()
        caller.service_registry_urls = [registry]
        caller.service_locate_cache_ttl = float(cache_ttl)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        answered = collections.Counter()
        failures = []

        async def load(method: str) -> None:
            while not stop.is_set():
                try:
                    service = await caller.get_service(pattern)
                    answered[await service.call(method, 0.005)] += 1
                except Exception as exc:
                    failures.append(f"{method}: {type(exc).__name__}: {exc}")
                    await asyncio.sleep(0.01)

        tasks = [
            asyncio.create_task(load("write" if index % 2 else "read"))
            for index in range(int(loops))
        ]
        print("started", flush=True)
        await stop.wait()
        await asyncio.gather(*tasks)
        await caller.discovery.aclose()
        print(json.dumps({"answered": answered, "failures": failures}), flush=True)


    asyncio.run(main())
    """
)


class Caller(MicroService):
    name = "resilience-caller"


async def _instances(
    start: StartProcess,
    script: Path,
    registry: ServiceRegistry,
    name: str,
    ports: list[int],
    cache_ttl: float,
) -> list[ServiceProcess]:
    procs = [
        await start(script, name, str(port), str(registry.accessible_at), str(cache_ttl))
        for port in ports
    ]
    urls = {await proc.wait_serving() for proc in procs}

    async def registered() -> bool:
        return set(await registry.locate_service(name)) == urls

    await wait_until(registered, what="three instances to register")
    return procs


async def _answered(url: str) -> int:
    async with RemoteService(url, timeout=5) as client:
        return int(await client.call("answered_calls"))


class Load:
    """Loops calling ``get_service(name)`` from this process; what they got, with times."""

    def __init__(self, caller: Caller, name: str, timeout: float = 30.0) -> None:
        self.caller = caller
        self.name = name
        self.timeout = timeout
        self.stop = asyncio.Event()
        self.answered: collections.Counter[str] = collections.Counter()
        self.completed: list[float] = []
        self.failures: list[tuple[str, float, GemstoneError]] = []
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, method: str, delay: float, loops: int) -> None:
        self.tasks += [asyncio.create_task(self._loop(method, delay)) for _ in range(loops)]

    async def _loop(self, method: str, delay: float) -> None:
        while not self.stop.is_set():
            began = time.monotonic()
            try:
                service = await self.caller.get_service(self.name)
                url = await service.request(method, [delay], timeout=self.timeout)
            except GemstoneError as exc:
                self.failures.append((method, began, exc))
                await asyncio.sleep(0.01)
                continue
            self.answered[url] += 1
            self.completed.append(time.monotonic())

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks)

    def reached(self, urls: list[str], each: int) -> Callable[[], Any]:
        async def condition() -> bool:
            return all(self.answered[url] >= each for url in urls)

        return condition


async def test_kill_9_of_one_of_three_instances_under_load(
    service_process: StartProcess,
    start_registry: RegistryFactory,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    """kill -9 of an instance with calls in flight: idempotent calls all succeed (retried on
    another instance), other calls fail only if they were in flight on it, and no call is
    sent to it once it is ejected (it stays registered: nothing unregistered it)."""
    registry = await start_registry()
    script = tmp_path / "store.py"
    script.write_text(STORE)
    name = unique("store")
    procs = await _instances(service_process, script, registry, name, [0, 0, 0], 5.0)
    urls = [proc.url for proc in procs]
    caller = Caller()
    caller.service_registry_urls = [str(registry.accessible_at)]
    recorder = Recorder()
    caller.discovery.locator.metrics = recorder
    load = Load(caller, name)
    load.start("read", 0.2, 6)
    load.start("write", 0.02, 3)
    victim, victim_url = procs[0], urls[0]
    try:
        await wait_until(load.reached(urls, 5), what="calls answered by every instance")

        async def reads_in_flight_there() -> bool:
            peer = caller.discovery.locator.peer(victim_url)
            return peer is not None and peer.in_flight >= 3

        await wait_until(reads_in_flight_there, what="calls in flight on the victim")
        victim.proc.kill()
        await victim.finish()
        after = sum(load.answered.values())

        async def calls_went_on() -> bool:
            return sum(load.answered.values()) >= after + 150

        await wait_until(calls_went_on, timeout=20, what="150 calls after the kill")
    finally:
        await load.finish()
        await caller.discovery.aclose()
    assert victim_url in await registry.locate_service(name)  # still listed
    read_failures = [exc for method, _, exc in load.failures if method == "read"]
    write_failures = [(began, exc) for method, began, exc in load.failures if method == "write"]
    record_property("kill9_failed_idempotent_calls", len(read_failures))
    record_property("kill9_failed_other_calls", len(write_failures))
    record_property("kill9_retried_calls", len(recorder.of("retried")))
    assert read_failures == []
    assert "failed" in recorder.of("retried")  # reads in flight on it went elsewhere
    ejected_at = recorder.first("ejected", victim_url)
    assert ejected_at is not None
    assert recorder.calls_started_while_ejected(victim_url) == []
    assert len(write_failures) <= 3  # at most the writes in flight on it
    for began, exc in write_failures:
        assert began < ejected_at
        assert isinstance(exc, ServiceUnavailableError)
        assert "may have been run" in str(exc)


async def test_a_frozen_instance_does_not_stop_the_calls(
    service_process: StartProcess,
    start_registry: RegistryFactory,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    """SIGSTOP one of three (it still accepts connections): calls keep completing on the
    other two, the few that reached it time out, and it is ejected."""
    registry = await start_registry()
    script = tmp_path / "store.py"
    script.write_text(STORE)
    name = unique("store")
    procs = await _instances(service_process, script, registry, name, [0, 0, 0], 5.0)
    urls = [proc.url for proc in procs]
    caller = Caller()
    caller.service_registry_urls = [str(registry.accessible_at)]
    recorder = Recorder()
    caller.discovery.locator.metrics = recorder
    load = Load(caller, name, timeout=2.0)
    load.start("read", 0.005, 6)
    frozen = procs[0].proc
    try:
        await wait_until(load.reached(urls, 5), what="calls answered by every instance")
        frozen.send_signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        try:

            async def ejected_and_calls_went_on() -> bool:
                done = [t for t in load.completed if t > stopped_at]
                ejected = recorder.first("ejected", urls[0])
                return ejected is not None and len(done) >= 400 and done[-1] > ejected + 0.5

            await wait_until(ejected_and_calls_went_on, timeout=30, what="its ejection")
        finally:
            os.kill(frozen.pid, signal.SIGCONT)
    finally:
        await load.finish()
        await caller.discovery.aclose()
    timed_out = [exc for _, _, exc in load.failures if isinstance(exc, CallTimeoutError)]
    after = [stopped_at, *(t for t in load.completed if t > stopped_at)]
    longest_gap = max(b - a for a, b in itertools.pairwise(after))
    record_property("sigstop_longest_gap_s", round(longest_gap, 3))
    record_property("sigstop_timed_out_calls", len(timed_out))
    # Round-robin stalled every loop until the frozen calls' 2 s time-out.
    assert longest_gap < 1.0
    assert recorder.calls_started_while_ejected(urls[0]) == []
    assert len(load.failures) == len(timed_out)  # nothing but the calls that reached it


async def test_a_rolling_restart_under_load_fails_no_call(
    service_process: StartProcess,
    start_registry: RegistryFactory,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    """SIGTERM then start again, each of three instances in turn, under load from two
    caller processes: not one call fails, idempotent or not. A stopping instance
    unregisters and keeps serving for the callers' cache time; a connection refused in
    the meantime is retried on another instance."""
    registry = await start_registry()
    store = tmp_path / "store.py"
    store.write_text(STORE)
    callers_script = tmp_path / "caller.py"
    callers_script.write_text(CALLER)
    name = unique("store")
    cache_ttl = 0.5
    ports = [unused_port() for _ in range(3)]
    procs = await _instances(service_process, store, registry, name, ports, cache_ttl)
    urls = [proc.url for proc in procs]
    callers = [
        await service_process(
            callers_script, str(registry.accessible_at), name, str(cache_ttl), "4"
        )
        for _ in range(2)
    ]
    for caller in callers:
        await caller.wait_for_line("^started", stream="stdout")

    def busy(url: str, count: int) -> Callable[[], Any]:
        async def answered_enough() -> bool:
            return await _answered(url) >= count

        return answered_enough

    for url in urls:
        await wait_until(busy(url, 50), what=f"calls answered by {url}")
    began = time.monotonic()
    for index, port in enumerate(ports):
        procs[index].proc.send_signal(signal.SIGTERM)
        assert await procs[index].finish() == 0
        procs[index] = await service_process(
            store, name, str(port), str(registry.accessible_at), str(cache_ttl)
        )
        assert await procs[index].wait_serving() == urls[index]
        await wait_until(busy(urls[index], 50), what=f"calls to {urls[index]} again")
    record_property("rolling_restart_s", round(time.monotonic() - began, 2))
    summaries: list[dict[str, Any]] = []
    for caller in callers:
        caller.proc.send_signal(signal.SIGTERM)
        line = await caller.wait_for_line(r"^\{", stream="stdout", timeout=20)
        summaries.append(json.loads(line.string))
        assert await caller.finish() == 0
    failures = [failure for summary in summaries for failure in summary["failures"]]
    calls = sum(sum(summary["answered"].values()) for summary in summaries)
    record_property("rolling_restart_calls", calls)
    record_property("rolling_restart_failed_calls", len(failures))
    assert failures == []
    assert all(set(summary["answered"]) == set(urls) for summary in summaries)
