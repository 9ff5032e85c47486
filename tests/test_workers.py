"""Worker processes on one port: spread, supervised, drained, registered once."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import textwrap
import time
from pathlib import Path

import aiohttp
from aiohttp.test_utils import unused_port

from gemstone_aio import RemoteService
from gemstone_aio.registry import ServiceRegistry
from gemstone_aio.testing import serving
from tests.fixtures.config import StartProcess, wait_until

WORKERS = textwrap.dedent(
    """
    import os
    import sys

    import gemstone_aio as gemstone

    TICKS = sys.argv[1]


    def tick() -> None:
        with open(TICKS, "a") as ticks:
            ticks.write(f"{os.getpid()}\\n")


    class Spread(gemstone.MicroService):
        name = "spread"
        port = int(sys.argv[2])
        worker_processes = 2
        periodic_tasks = [(tick, 0.2)]
        service_registry_urls = [sys.argv[3]]
        service_registry_ping_interval = 0.3
        unregister_propagation_delay = 0

        @gemstone.exposed_method()
        async def pid(self) -> int:
            return os.getpid()


    if __name__ == "__main__":
        Spread().start(argv=[])
    """
)


def _ticks(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


async def _pids(url: str, calls: int) -> set[int]:
    seen: set[int] = set()
    for _ in range(calls):
        # A new connection each time: the kernel spreads connections, not requests.
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, json={"jsonrpc": "2.0", "method": "pid", "id": 1}) as response,
        ):
            seen.add((await response.json())["result"])
    return seen


async def _answering(url: str) -> bool:
    try:
        return bool(await _pids(url, 1))
    except aiohttp.ClientError:
        return False


async def test_two_workers_share_the_port_and_are_supervised(
    service_process: StartProcess, tmp_path: Path
) -> None:
    script = tmp_path / "spread.py"
    script.write_text(WORKERS)
    ticks = tmp_path / "ticks.txt"
    port = unused_port()
    registry = ServiceRegistry()
    async with serving(registry), RemoteService(registry.accessible_at or "") as reg:
        await _check_workers(service_process, script, ticks, port, reg)


async def _check_workers(
    service_process: StartProcess, script: Path, ticks: Path, port: int, reg: RemoteService
) -> None:
    supervisor = await service_process(script, str(ticks), str(port), reg.url)
    await supervisor.wait_for_line("supervising 2 workers")
    url = f"http://127.0.0.1:{port}/api"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    pids: set[int] = set()
    while len(pids) < 2:  # both workers listen once each has printed its line
        assert loop.time() < deadline, pids
        if await _answering(url):
            pids |= await _pids(url, 20)
        else:
            await asyncio.sleep(0.1)
    assert supervisor.proc.pid not in pids
    # The workers share one URL: one instance in the registry (the primary pings it).
    assert await reg.call("locate_service", "spread") == [url]
    # Periodic tasks run in the primary worker only.
    await wait_until(lambda: len(_ticks(ticks)) >= 5, 10)
    assert len(set(_ticks(ticks))) == 1
    # A worker that dies is replaced.
    victim = next(iter(pids))
    os.kill(victim, signal.SIGKILL)
    await supervisor.wait_for_line(rf"worker \d \(pid {victim}\) exited")
    deadline = loop.time() + 20
    replaced: set[int] = set()
    while not (replaced - pids):
        assert loop.time() < deadline
        if await _answering(url):
            replaced |= await _pids(url, 10)
    # SIGTERM drains every worker and ends the supervisor cleanly.
    began = time.monotonic()
    supervisor.proc.send_signal(signal.SIGTERM)
    assert await supervisor.finish() == 0
    assert time.monotonic() - began < 15
    await supervisor.wait_for_line("2 workers stopped")
    assert not await _answering(url)


BUSY = textwrap.dedent(
    """
    import sys

    import gemstone_aio as gemstone


    class Busy(gemstone.MicroService):
        name = "busy"
        port = int(sys.argv[1])


    if __name__ == "__main__":
        Busy().start(argv=[])
    """
)


async def test_a_port_in_use_is_one_line_and_status_3_from_start(
    service_process: StartProcess, tmp_path: Path
) -> None:
    script = tmp_path / "busy.py"
    script.write_text(BUSY)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        child = await service_process(script, str(port))
        assert await child.finish() == 3
    assert child.stderr[-1] == (
        f"error: busy cannot listen on 127.0.0.1:{port}: Address already in use"
    )
    assert not any("Traceback" in line for line in child.stderr)
