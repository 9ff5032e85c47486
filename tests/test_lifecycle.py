"""Start-up and shutdown order, draining in-flight calls, real signals on a real process."""

from __future__ import annotations

import asyncio
import signal
import socket
import textwrap
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

import gemstone_aio as gemstone
from gemstone_aio.server import POOL_KEY, STOPPING_KEY
from gemstone_aio.testing import serving
from tests.fixtures.config import StartProcess, wait_until

BAD_STDERR = ("Task was destroyed", "Unclosed", "never awaited", "Traceback", "Warning")


async def call(url: str, method: str, *params: object) -> object:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url, json={"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}
        ) as response,
    ):
        body = await response.json()
        assert "error" not in body, body
        return body["result"]


def refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


class Ordered(gemstone.MicroService):
    """Records every step of its life."""

    name = "ordered"
    shutdown_grace_period = 10.0

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []
        self.call_started = asyncio.Event()
        self.release = asyncio.Event()
        self.app: web.Application | None = None

    def make_app(self) -> web.Application:
        app = super().make_app()

        async def stopping(app: web.Application) -> None:
            self.events.append("stopping callbacks")

        app[STOPPING_KEY].append(stopping)
        self.app = app
        return app

    async def on_service_start(self) -> None:
        self.events.append("on_service_start")

    async def on_service_stop(self) -> None:
        assert self.app is not None
        # The pool is still open while on_service_stop runs.
        await self.app[POOL_KEY].run(self.events.append, "on_service_stop (pool open)")

    async def tick(self) -> None:
        if "periodic started" not in self.events:
            self.events.append("periodic started")
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.events.append("periodic cancelled")
            raise

    periodic_tasks = [(tick, 0.01)]

    @gemstone.exposed_method()
    async def hold(self) -> str:
        self.call_started.set()
        await self.release.wait()
        self.events.append("in-flight call finished")
        return "done"


async def test_startup_and_shutdown_order() -> None:
    """Stopping callbacks → stop accepting → drain → periodic tasks → on_service_stop → pool."""
    service = Ordered()
    async with serving(service):
        url, port = service.accessible_at or "", service.port
        assert service.events[0] == "on_service_start"
        await wait_until(lambda: "periodic started" in service.events)
        pending = asyncio.create_task(call(url, "hold"))
        await asyncio.wait_for(service.call_started.wait(), 5)
        service.stop()
        # The listener closes while the call is still in flight...
        await wait_until(lambda: refuses_connections(port))
        assert "in-flight call finished" not in service.events
        # ... and the call still completes.
        service.release.set()
        assert await asyncio.wait_for(pending, 5) == "done"
    assert service.events == [
        "on_service_start",
        "periodic started",
        "stopping callbacks",
        "in-flight call finished",
        "periodic cancelled",
        "on_service_stop (pool open)",
    ]
    assert service.app is not None
    with pytest.raises(RuntimeError, match="shutdown"):
        service.app[POOL_KEY].executor.submit(print)


class Loaded(gemstone.MicroService):
    name = "loaded"
    shutdown_grace_period = 10.0
    max_parallel_blocking_tasks = 8
    expected = 48

    def __init__(self) -> None:
        super().__init__()
        self.started = 0
        self.all_started = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None

    def on_service_start(self) -> None:
        self.loop = asyncio.get_running_loop()

    def _count(self) -> None:
        self.started += 1
        if self.started == self.expected:
            self.all_started.set()

    @gemstone.exposed_method()
    async def nap(self, n: int) -> int:
        self._count()
        await asyncio.sleep(0.3)
        return n

    @gemstone.exposed_method()
    def block(self, n: int) -> int:
        import time

        assert self.loop is not None
        self.loop.call_soon_threadsafe(self._count)
        time.sleep(0.1)
        return -n


async def test_grace_period_drains_in_flight_calls_under_load() -> None:
    """Every call in flight when stop() is called completes (async and blocking)."""
    service = Loaded()
    async with serving(service):
        url = service.accessible_at or ""
        calls = [call(url, "nap", i) for i in range(24)] + [
            call(url, "block", i) for i in range(24)
        ]
        pending = asyncio.gather(*calls)
        # All 48 have reached the service (the blocking ones at least queued, 8 threads).
        await wait_until(lambda: service.started >= 8 + 24, timeout=10)
        service.stop()
        results = await asyncio.wait_for(pending, 15)
    assert results == list(range(24)) + [-i for i in range(24)]
    assert service.started == Loaded.expected


async def test_calls_longer_than_the_grace_period_are_cut() -> None:
    """Past shutdown_grace_period a call still running is answered -32005 (with its id), and
    shutdown completes."""

    class Stubborn(gemstone.MicroService):
        name = "stubborn"
        shutdown_grace_period = 0.2

        def __init__(self) -> None:
            super().__init__()
            self.entered = asyncio.Event()
            self.stopped = False

        def on_service_stop(self) -> None:
            self.stopped = True

        @gemstone.exposed_method()
        async def forever(self) -> None:
            self.entered.set()
            await asyncio.sleep(60)

    service = Stubborn()
    loop = asyncio.get_running_loop()

    async def post_forever(url: str) -> dict[str, object]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, json={"jsonrpc": "2.0", "method": "forever", "id": 7}) as response,
        ):
            assert response.status == 200
            return await response.json()  # type: ignore[no-any-return]

    async with serving(service):
        pending = asyncio.create_task(post_forever(service.accessible_at or ""))
        await asyncio.wait_for(service.entered.wait(), 5)
        service.stop()
        began = loop.time()
    assert loop.time() - began < 5
    assert service.stopped
    answer = await asyncio.wait_for(pending, 5)
    assert answer["id"] == 7
    assert answer["error"]["code"] == -32005  # type: ignore[index]


SCRIPT = textwrap.dedent(
    """
    import asyncio
    import time

    import gemstone_aio as gemstone


    class SignalService(gemstone.MicroService):
        name = "signal_service"
        port = 0
        shutdown_grace_period = 10.0

        async def heartbeat(self) -> None:
            await asyncio.sleep(0)

        periodic_tasks = [(heartbeat, 0.05)]

        def on_service_stop(self) -> None:
            print("on_service_stop ran", flush=True)

        @gemstone.exposed_method()
        async def slow(self, seconds: float) -> str:
            print("slow started", flush=True)
            await asyncio.sleep(seconds)
            return "slow finished"

        @gemstone.exposed_method()
        def slow_blocking(self, seconds: float) -> str:
            print("slow_blocking started", flush=True)
            time.sleep(seconds)
            return "slow_blocking finished"


    if __name__ == "__main__":
        SignalService().start()
    """
)


@pytest.fixture
def signal_script(tmp_path: Path) -> Path:
    path = tmp_path / "signal_service.py"
    path.write_text(SCRIPT)
    return path


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_signal_drains_in_flight_calls_and_exits_0(
    service_process: StartProcess, signal_script: Path, sig: signal.Signals
) -> None:
    """A signal to a real process: the calls in flight (async and blocking) complete,
    the process exits with 0 and nothing is reported on stderr but the log lines."""
    child = await service_process(signal_script, "--port=0")
    url = await child.wait_serving()
    pending = asyncio.gather(call(url, "slow", 0.5), call(url, "slow_blocking", 0.5))
    await child.wait_for_line("^slow started$", stream="stdout")
    await child.wait_for_line("^slow_blocking started$", stream="stdout")
    child.proc.send_signal(sig)
    assert list(await asyncio.wait_for(pending, 10)) == ["slow finished", "slow_blocking finished"]
    assert await child.finish() == 0
    assert child.stdout[-1] == "on_service_stop ran"
    assert any("shutting down" in line for line in child.stderr)
    for bad in BAD_STDERR:
        assert not any(bad in line for line in child.stderr), child.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(
            ["--port=abc"],
            "signal_service: error: invalid value 'abc' for configurable 'port': "
            "not an integer (from command-line option --port)",
            id="bad-value",
        ),
        pytest.param(
            ["--colour=red"],
            "signal_service: error: unrecognized arguments: --colour=red (see --help)",
            id="unknown-option",
        ),
    ],
)
async def test_bad_command_line_is_a_one_line_error(
    service_process: StartProcess, signal_script: Path, args: list[str], expected: str
) -> None:
    """A bad command line ends the process with status 2 and one line on stderr."""
    child = await service_process(signal_script, *args)
    assert await child.finish() == 2
    assert child.stderr == [expected]
    assert child.stdout == []


async def test_help_on_a_real_process(service_process: StartProcess, signal_script: Path) -> None:
    """--help lists the configurables on stdout and exits with 0."""
    child = await service_process(signal_script, "--help")
    assert await child.finish() == 0
    text = "\n".join(child.stdout)
    assert text.startswith("usage: signal_service.py")
    for option in ("--port", "--host", "--accessible_at", "--endpoint", "--service_registry_urls"):
        assert option in text
    assert child.stderr == []


async def test_failing_on_service_start_stops_start_up() -> None:
    """An exception in on_service_start propagates from serve(); nothing is left running."""

    class Failing(gemstone.MicroService):
        name = "failing_start"

        def __init__(self) -> None:
            super().__init__()
            self.ticks = 0

        async def tick(self) -> None:
            self.ticks += 1

        periodic_tasks = [(tick, 0.01)]

        async def on_service_start(self) -> None:
            raise RuntimeError("cannot start: database unreachable")

    service = Failing()
    with pytest.raises(RuntimeError, match="database unreachable"):
        async with serving(service):
            pytest.fail("the service must not start")
    assert service.ticks == 0
    assert not any(t.get_name().startswith("periodic:") for t in asyncio.all_tasks())
