"""Serving for real: start, answer, and shut down cleanly on stop() and on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import unused_port

import gemstone_aio as gemstone
from gemstone_aio.testing import serving

ROOT = Path(__file__).resolve().parent.parent

SLOW_SERVICE = textwrap.dedent(
    """
    import sys, time
    import gemstone_aio as gemstone

    class Slow(gemstone.MicroService):
        name = "slow"

        @gemstone.exposed_method()
        def slow(self, seconds: float) -> str:
            print("started", flush=True)
            time.sleep(seconds)
            return "finished"

        @gemstone.exposed_method()
        async def ping(self) -> str:
            return "pong"

    service = Slow()
    service.start()  # --port=N on the command line (CommandLineConfigurator)
    print("exited cleanly", flush=True)
    """
)


async def rpc(session: aiohttp.ClientSession, url: str, method: str, params: Any = None) -> Any:
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": 1}
    if params is not None:
        body["params"] = params
    async with session.post(url, json=body) as response:
        return await response.json()


async def wait_until_answering(session: aiohttp.ClientSession, url: str) -> None:
    async with asyncio.timeout(20):
        while True:
            try:
                await rpc(session, url, "ping")
                return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_signal_lets_in_flight_calls_finish(tmp_path: Path, sig: signal.Signals) -> None:
    """On SIGTERM/SIGINT an in-flight blocking call completes, then the process exits 0, quietly."""
    script = tmp_path / "slow_service.py"
    script.write_text(SLOW_SERVICE)
    port = unused_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONWARNINGS": "default"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script), f"--port={port}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api"
    try:
        async with aiohttp.ClientSession() as session:
            await wait_until_answering(session, url)
            in_flight = asyncio.create_task(rpc(session, url, "slow", [1.0]))
            assert process.stdout is not None
            async with asyncio.timeout(10):
                assert (await process.stdout.readline()).strip() == b"started"
            process.send_signal(sig)
            answer = await asyncio.wait_for(in_flight, 10)
            assert answer == {"jsonrpc": "2.0", "result": "finished", "id": 1}
        stdout, stderr = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert b"exited cleanly" in stdout
    text = stderr.decode()
    for bad in ("Traceback", "Task was destroyed", "Unclosed", "never awaited", "Warning"):
        assert bad not in text, text


async def test_serving_helper_and_stop() -> None:
    """``serving`` runs a real listening service; leaving it stops the service."""

    class Hello(gemstone.MicroService):
        name = "hello"

        @gemstone.exposed_method()
        async def hi(self) -> str:
            return "hi"

    service = Hello()
    async with serving(service) as running, aiohttp.ClientSession() as session:
        assert running.port != 0
        assert running.accessible_at == f"http://127.0.0.1:{running.port}/api"
        assert (await rpc(session, running.accessible_at, "hi"))["result"] == "hi"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await rpc(session, running.accessible_at, "hi")


async def test_start_up_failure_is_raised() -> None:
    """An error in ``on_service_start`` surfaces from ``serving`` and leaves nothing running."""

    class Broken(gemstone.MicroService):
        name = "broken"

        async def on_service_start(self) -> None:
            raise RuntimeError("cannot start: database unreachable")

    with pytest.raises(RuntimeError, match="database unreachable"):
        async with serving(Broken()):
            pass


async def test_two_services_in_one_process() -> None:
    """Two services run side by side in one loop, each with its own port and pool."""

    class A(gemstone.MicroService):
        name = "a"

        @gemstone.exposed_method()
        def who(self) -> str:
            return "a"

    class B(gemstone.MicroService):
        name = "b"

        @gemstone.exposed_method()
        def who(self) -> str:
            return "b"

    async with serving(A()) as a, serving(B()) as b, aiohttp.ClientSession() as session:
        assert a.port != b.port
        assert (await rpc(session, a.accessible_at or "", "who"))["result"] == "a"
        assert (await rpc(session, b.accessible_at or "", "who"))["result"] == "b"


async def test_hello_world_example_answers_like_the_readme(tmp_path: Path) -> None:
    """``examples/hello_world.py`` answers the README's curl call with the README's answer."""
    readme = (ROOT / "README.md").read_text()
    port = unused_port()
    runner = tmp_path / "run_hello.py"
    runner.write_text(
        "import runpy, sys\n"
        f"namespace = runpy.run_path({str(ROOT / 'examples' / 'hello_world.py')!r})\n"
        "service = namespace['HelloWorldService']()\n"
        "service.start()  # --port=N on the command line\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(runner), f"--port={port}",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}/api"
            async with asyncio.timeout(20):
                while True:
                    try:
                        async with session.post(
                            url,
                            data='{"jsonrpc": "2.0", "method": "say_hello", "id": 1}',
                            headers={"Content-Type": "application/json"},
                        ) as response:
                            body = await response.text()
                            break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.05)
        assert json.loads(body) == {"jsonrpc": "2.0", "result": "hello world", "id": 1}
        assert body in readme
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 20)
    assert process.returncode == 0
