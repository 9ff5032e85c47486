"""A service under gunicorn with aiohttp's worker: it serves, and it registers."""

from __future__ import annotations

import asyncio
import signal
import sys
import textwrap
from pathlib import Path

from aiohttp.test_utils import unused_port

import gemstone_aio as gemstone
from gemstone_aio.registry import ServiceRegistry
from gemstone_aio.testing import serving
from tests.fixtures.config import subprocess_env, wait_until

MODULE = textwrap.dedent(
    """
    import os

    import gemstone_aio as gemstone
    from gemstone_aio.server import app_factory


    class UnderGunicorn(gemstone.MicroService):
        name = "under_gunicorn"
        port = int(os.environ["SERVICE_PORT"])
        service_registry_urls = [os.environ["REGISTRY_URL"]]
        service_registry_ping_interval = 0.5

        @gemstone.exposed_method()
        async def hello(self) -> str:
            return f"hello from {os.getpid()}"


    factory = app_factory(UnderGunicorn())
    """
)


async def test_a_service_under_gunicorn_serves_and_registers(tmp_path: Path) -> None:
    (tmp_path / "gunicorn_service.py").write_text(MODULE)
    port = unused_port()
    registry = ServiceRegistry()
    async with serving(registry):
        env = subprocess_env(SERVICE_PORT=str(port), REGISTRY_URL=registry.accessible_at or "")
        env["PYTHONPATH"] = f"{tmp_path}:{env['PYTHONPATH']}"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gunicorn", "gunicorn_service:factory",
            "--worker-class", "aiohttp.GunicornWebWorker",
            "--bind", f"127.0.0.1:{port}", "--workers", "1",
            env=env, cwd=str(tmp_path),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}/api"
        try:
            async with gemstone.RemoteService(registry.accessible_at or "") as reg:

                async def registered() -> bool:
                    return url in await reg.call("locate_service", "under_gunicorn")

                loop = asyncio.get_running_loop()
                deadline = loop.time() + 30
                while not await registered():
                    assert proc.returncode is None, await proc.stderr.read()  # type: ignore[union-attr]
                    assert loop.time() < deadline, "never registered"
                    await asyncio.sleep(0.1)
            async with gemstone.RemoteService(url) as client:
                assert (await client.call("hello")).startswith("hello from ")
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 30)
        await wait_until(lambda: proc.returncode == 0, 5)
