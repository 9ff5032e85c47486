"""Fault injection on the HTTP side: hanging handlers, vanishing clients, SIGTERM under load."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import unused_port
from pytest_aiohttp import AiohttpClient

import gemstone_aio as gemstone
from gemstone_aio.testing import serving
from tests.test_serving import wait_until_answering

ROOT = Path(__file__).resolve().parent.parent
WAIT = 10.0


class Hangs(gemstone.MicroService):
    """Handlers that hang until the test lets them go."""

    name = "hangs"
    max_parallel_blocking_tasks = 2

    def __init__(self) -> None:
        super().__init__()
        self.let_go = threading.Event()
        self.async_let_go = asyncio.Event()
        self.entered = asyncio.Event()
        self.finished: list[str] = []

    @gemstone.exposed_method(timeout=0.2)
    def hang_blocking(self) -> str:
        self.let_go.wait(WAIT)
        self.finished.append("blocking")
        return "late"

    @gemstone.exposed_method(timeout=0.2)
    async def hang_async(self) -> str:
        try:
            await asyncio.sleep(WAIT)
        except asyncio.CancelledError:
            self.finished.append("async cancelled")
            raise
        return "late"

    @gemstone.exposed_method()
    async def wait_for_release(self) -> str:
        self.entered.set()
        try:
            await self.async_let_go.wait()
        except asyncio.CancelledError:
            self.finished.append("release cancelled")
            raise
        self.finished.append("released")
        return "done"

    @gemstone.exposed_method(cancellable=False)
    async def wait_for_release_to_the_end(self) -> str:
        self.entered.set()
        await self.async_let_go.wait()
        self.finished.append("released")
        return "done"

    @gemstone.exposed_method()
    def quick(self) -> str:
        return threading.current_thread().name


async def rpc(client: Any, method: str) -> Any:
    response = await client.post("/api", json={"jsonrpc": "2.0", "method": method, "id": 1})
    return await response.json()


async def test_hanging_handlers_time_out_and_the_pool_recovers(
    aiohttp_client: AiohttpClient,
) -> None:
    """A hung call gets -32003; other calls are served meanwhile; the pool is whole afterwards."""
    service = Hangs()
    client = await aiohttp_client(service.make_app())
    answer = await rpc(client, "hang_blocking")
    assert answer["error"]["code"] == -32003
    # One of the two threads is still held by the hung function; the other serves.
    assert (await rpc(client, "quick"))["result"].startswith("gemstone-hangs")
    answer = await rpc(client, "hang_async")
    assert answer["error"]["code"] == -32003
    assert "async cancelled" in service.finished  # async work is cancelled at once
    service.let_go.set()
    # Once the hung function returns, both threads serve again: two blocking calls overlap.
    results = await asyncio.gather(*(rpc(client, "quick") for _ in range(4)))
    assert all(r["result"].startswith("gemstone-hangs") for r in results)
    async with asyncio.timeout(WAIT):
        while "blocking" not in service.finished:  # noqa: ASYNC110 -- a thread sets it
            await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    ("method", "outcome"),
    [("wait_for_release", "release cancelled"), ("wait_for_release_to_the_end", "released")],
)
async def test_client_disconnecting_mid_call(method: str, outcome: str) -> None:
    """A caller that goes away mid-call cancels it (an uncancellable method completes);
    nothing leaks; the service answers on."""
    service = Hangs()
    async with serving(service):
        url = service.accessible_at or ""
        tasks_before = len(asyncio.all_tasks())
        session = aiohttp.ClientSession()
        pending = asyncio.create_task(
            session.post(url, json={"jsonrpc": "2.0", "method": method, "id": 1})
        )
        await asyncio.wait_for(service.entered.wait(), WAIT)  # the handler is running
        pending.cancel()
        await session.close()
        with pytest.raises(asyncio.CancelledError):
            await pending
        if outcome == "released":
            service.async_let_go.set()
        async with asyncio.timeout(WAIT):
            while outcome not in service.finished:  # noqa: ASYNC110 -- set by the handler
                await asyncio.sleep(0.01)
        assert service.finished == [outcome]
        async with (
            aiohttp.ClientSession() as fresh,
            fresh.post(url, json={"jsonrpc": "2.0", "method": "quick", "id": 2}) as response,
        ):
            assert (await response.json())["result"].startswith("gemstone-hangs")
        async with asyncio.timeout(WAIT):
            while len(asyncio.all_tasks()) > tasks_before:  # noqa: ASYNC110
                await asyncio.sleep(0.01)


RECORDER = textwrap.dedent(
    """
    import sys, time
    import gemstone_aio as gemstone

    class Recorder(gemstone.MicroService):
        name = "recorder"
        seen = []

        @gemstone.exposed_method()
        def record(self, n: int) -> int:
            time.sleep(0.01)
            self.seen.append(n)
            return n

        @gemstone.exposed_method()
        async def ping(self) -> str:
            return "pong"

    service = Recorder()
    service.start()  # --port=N on the command line (CommandLineConfigurator)
    print(" ".join(map(str, service.seen)), flush=True)
    """
)


@pytest.mark.timeout(120)
async def test_sigterm_under_load_loses_nothing(tmp_path: Path) -> None:
    """SIGTERM during load: every executed call was answered, every answer was executed."""
    script = tmp_path / "recorder.py"
    script.write_text(RECORDER)
    port = unused_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script), f"--port={port}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api"
    answered: set[int] = set()
    refused = 0
    counter = iter(range(1_000_000))
    stop_sending = asyncio.Event()

    async def caller(session: aiohttp.ClientSession) -> None:
        nonlocal refused
        while not stop_sending.is_set():
            n = next(counter)
            try:
                async with session.post(
                    url, json={"jsonrpc": "2.0", "method": "record", "params": [n], "id": n}
                ) as r:
                    answer = await r.json()
            except (aiohttp.ClientConnectionError, json.JSONDecodeError):
                refused += 1
                await asyncio.sleep(0.01)
                continue
            if "result" in answer:
                assert answer["result"] == n
                answered.add(n)
            else:
                assert answer["error"]["code"] in (-32002, -32005), answer

    try:
        async with aiohttp.ClientSession() as session:
            await wait_until_answering(session, url)
            callers = [asyncio.create_task(caller(session)) for _ in range(20)]
            async with asyncio.timeout(30):
                while len(answered) < 200:  # noqa: ASYNC110 -- load is running
                    await asyncio.sleep(0.02)
            process.send_signal(signal.SIGTERM)
            stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
            stop_sending.set()
            await asyncio.gather(*callers)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    executed = {int(n) for n in stdout.decode().split()}
    assert answered, "no call was answered"
    assert answered == executed, (
        sorted(executed - answered)[:10],
        sorted(answered - executed)[:10],
    )
    assert refused > 0  # new calls after SIGTERM were refused, not queued forever
    assert "Traceback" not in stderr.decode()
