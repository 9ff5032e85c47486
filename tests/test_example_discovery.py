"""``examples/example_discovery``: a registry and two services calling each other by name.

Each runs in its own process, as a user would start them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp.test_utils import unused_port

from gemstone_aio import RemoteService
from tests.fixtures.discovery import wait_until

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "example_discovery"


@contextlib.asynccontextmanager
async def running(script: str, **env: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run an example script; on exit stop it with SIGTERM and expect a clean exit."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE / script),
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 20)
        assert code == 0, f"{script} exited with {code}"


async def test_two_services_call_each_other_by_name() -> None:
    """Both services register, find each other through the registry and call each other."""
    ports = {name: unused_port() for name in ("registry", "one", "two")}
    registry_url = f"http://127.0.0.1:{ports['registry']}/api"
    async with (
        running("registry.py", PORT=str(ports["registry"])),
        RemoteService(registry_url, timeout=5) as registry,
    ):
        async with (
            running("service1.py", PORT=str(ports["one"]), REGISTRY_URL=registry_url),
            running("service2.py", PORT=str(ports["two"]), REGISTRY_URL=registry_url),
        ):

            async def both_registered() -> bool:
                try:
                    listed = await registry.call("list_services")
                except Exception:
                    return False
                return set(listed) == {"service.1", "service.2"}

            await wait_until(both_registered, timeout=40, what="both services to register")
            one_url = f"http://127.0.0.1:{ports['one']}/api"
            two_url = f"http://127.0.0.1:{ports['two']}/api"
            assert await registry.call("list_services") == {
                "service.1": [one_url],
                "service.2": [two_url],
            }
            async with RemoteService(one_url) as one, RemoteService(two_url) as two:
                assert await one.call("greet_loudly", "ana") == "HELLO ANA!"
                assert await two.call("shouted_greeting", "bo") == "HELLO BO!"
        # SIGTERM is a graceful stop: both unregistered on the way out
        assert await registry.call("list_services") == {}
