"""Deadlines and cancellation that travel (A → B → C in real processes), bounded replies."""

from __future__ import annotations

import asyncio
import json
import textwrap
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient

import gemstone_aio as gemstone
from gemstone_aio.client import ResponseTooLargeError
from gemstone_aio.protocol import TIMEOUT_HEADER
from gemstone_aio.testing import serving
from tests.fixtures.config import ServiceProcess, StartProcess, wait_until

CHAIN = textwrap.dedent(
    """
    import asyncio
    import sys
    from pathlib import Path

    import gemstone_aio as gemstone

    MARKS = Path(sys.argv[2])


    def mark(text: str) -> None:
        with MARKS.open("a") as marks:
            marks.write(text + "\\n")


    class C(gemstone.MicroService):
        name = "chain_c"
        port = 0

        @gemstone.exposed_method()
        async def slow(self) -> str:
            mark(f"c started, budget {gemstone.time_left()}")
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                mark("c cancelled")
                raise
            mark("c finished")
            return "too late"


    class Relay(gemstone.MicroService):
        port = 0
        downstream = ""

        @gemstone.exposed_method()
        async def relay(self) -> str:
            mark(f"{self.name} started, budget {gemstone.time_left()}")
            async with gemstone.RemoteService(self.downstream, timeout=60) as client:
                method = "slow" if self.name == "chain_b" else "relay"
                return str(await client.call(method))


    if __name__ == "__main__":
        kind = sys.argv[1]
        if kind == "c":
            C().start(argv=[])
        else:
            service = type("Relay" + kind, (Relay,), {"name": "chain_" + kind})()
            service.downstream = sys.argv[3]
            service.start(argv=[])
    """
)


async def _chain(
    start: StartProcess, script: Path, marks: Path
) -> tuple[str, list[ServiceProcess]]:
    c = await start(script, "c", str(marks))
    c_url = await c.wait_serving()
    b = await start(script, "b", str(marks), c_url)
    b_url = await b.wait_serving()
    a = await start(script, "a", str(marks), b_url)
    return await a.wait_serving(), [a, b, c]


async def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers=headers) as response,
    ):
        return await response.json()  # type: ignore[no-any-return]


def _lines(marks: Path) -> list[str]:
    return marks.read_text().splitlines() if marks.exists() else []


async def test_a_budget_travels_down_a_chain_and_cancels_the_last_hop(
    service_process: StartProcess, tmp_path: Path
) -> None:
    script = tmp_path / "chain.py"
    script.write_text(CHAIN)
    marks = tmp_path / "marks.txt"
    a_url, _ = await _chain(service_process, script, marks)
    began = time.monotonic()
    answer = await _post(
        a_url, {"jsonrpc": "2.0", "method": "relay", "id": 1}, {TIMEOUT_HEADER: "1.5"}
    )
    elapsed = time.monotonic() - began
    assert answer["error"]["code"] == -32003
    assert answer["error"]["data"]["limit"] == "caller"
    assert 1.4 <= elapsed < 3.0  # at the budget, not at C's 30 s
    await wait_until(lambda: "c cancelled" in _lines(marks), 10)
    lines = _lines(marks)
    # Each hop saw a smaller budget than the one before it.
    budgets = [float(line.rsplit(" ", 1)[1]) for line in lines if "budget" in line]
    assert len(budgets) == 3
    assert 1.5 >= budgets[0] > budgets[1] > budgets[2] > 0
    await asyncio.sleep(0.5)
    assert "c finished" not in _lines(marks)


async def test_a_caller_that_hangs_up_cancels_the_whole_chain(
    service_process: StartProcess, tmp_path: Path
) -> None:
    script = tmp_path / "chain.py"
    script.write_text(CHAIN)
    marks = tmp_path / "marks.txt"
    a_url, _ = await _chain(service_process, script, marks)
    call = asyncio.create_task(_post(a_url, {"jsonrpc": "2.0", "method": "relay", "id": 1}, {}))
    await wait_until(lambda: any(line.startswith("c started") for line in _lines(marks)), 10)
    call.cancel()  # the caller hangs up: its connection closes
    await wait_until(lambda: "c cancelled" in _lines(marks), 10)
    assert "c finished" not in _lines(marks)


class Timed(gemstone.MicroService):
    name = "deadline_timed"

    def __init__(self) -> None:
        super().__init__()
        self.finished: list[str] = []
        self.cancelled = asyncio.Event()

    @gemstone.exposed_method()
    async def budget(self) -> float | None:
        return gemstone.time_left()

    @gemstone.exposed_method()
    def budget_in_a_thread(self) -> float | None:
        return gemstone.time_left()

    @gemstone.exposed_method(timeout=0.2)
    async def own_limit(self) -> str:
        await asyncio.sleep(5)
        return "late"

    @gemstone.exposed_method()
    async def slow(self) -> str:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return "late"

    @gemstone.exposed_method(cancellable=False)
    async def must_finish(self, seconds: float) -> str:
        await asyncio.sleep(seconds)
        self.finished.append("must_finish")
        return "done"


def _rpc(method: str, params: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": 1}
    if params is not None:
        body["params"] = params
    return body


async def test_methods_read_the_remaining_budget(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(Timed().make_app())
    for method in ("budget", "budget_in_a_thread"):
        answer = await (
            await client.post("/api", json=_rpc(method), headers={TIMEOUT_HEADER: "2.5"})
        ).json()
        assert 2.0 < answer["result"] <= 2.5
        answer = await (await client.post("/api", json=_rpc(method))).json()
        assert answer["result"] is None


@pytest.mark.parametrize(("budget", "limit"), [("0.1", "caller"), ("3", "method")])
async def test_the_smallest_limit_wins(
    aiohttp_client: AiohttpClient, budget: str, limit: str
) -> None:
    client = await aiohttp_client(Timed().make_app())
    answer = await (
        await client.post("/api", json=_rpc("own_limit"), headers={TIMEOUT_HEADER: budget})
    ).json()
    assert answer["error"]["code"] == -32003
    assert answer["error"]["data"]["limit"] == limit


async def test_the_budget_stops_the_handler(aiohttp_client: AiohttpClient) -> None:
    service = Timed()
    client = await aiohttp_client(service.make_app())
    answer = await (
        await client.post("/api", json=_rpc("slow"), headers={TIMEOUT_HEADER: "0.1"})
    ).json()
    assert answer["error"]["data"] == {"timeout": pytest.approx(0.1, abs=0.05), "limit": "caller"}
    await asyncio.wait_for(service.cancelled.wait(), 2)


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf", "1e9"])
async def test_a_bad_budget_is_a_clear_error(aiohttp_client: AiohttpClient, value: str) -> None:
    client = await aiohttp_client(Timed().make_app())
    response = await client.post("/api", json=_rpc("budget"), headers={TIMEOUT_HEADER: value})
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == -32600
    assert TIMEOUT_HEADER in error["data"]
    assert repr(value) in error["data"]


async def test_an_uncancellable_method_finishes_after_its_deadline(
    aiohttp_client: AiohttpClient,
) -> None:
    service = Timed()
    client = await aiohttp_client(service.make_app())
    answer = await (
        await client.post("/api", json=_rpc("must_finish", [0.3]), headers={TIMEOUT_HEADER: "0.05"})
    ).json()
    assert answer["error"]["code"] == -32003  # the caller is told at its deadline
    assert service.finished == []
    await wait_until(lambda: service.finished == ["must_finish"], 5)  # and the work completes


async def test_the_client_sends_its_timeout_and_passes_budgets_on() -> None:
    seen: list[str | None] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(request.headers.get(TIMEOUT_HEADER))
        call = await request.json()
        return web.json_response({"jsonrpc": "2.0", "result": None, "id": call["id"]})

    app = web.Application()
    app.router.add_post("/api", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/api"

    class Forwarder(gemstone.MicroService):
        name = "deadline_forwarder"

        @gemstone.exposed_method()
        async def forward(self) -> None:
            async with gemstone.RemoteService(url, timeout=20) as downstream:
                await downstream.call("anything")

    try:
        async with gemstone.RemoteService(url, timeout=7) as direct:
            await direct.call("anything")
            await direct.request("anything", timeout=3)
        forwarder = Forwarder()
        async with (
            serving(forwarder),
            gemstone.RemoteService(forwarder.accessible_at or "", timeout=2) as caller,
        ):
            await caller.call("forward")
    finally:
        await runner.cleanup()
    assert seen[0] == "7.000"
    assert seen[1] == "3.000"
    # Forwarded with what was left of the caller's 2 s, not the forwarder's own 20 s.
    assert seen[2] is not None
    assert 1.0 < float(seen[2]) < 2.0


async def test_a_reply_larger_than_the_bound_fails_the_call() -> None:
    class Big(gemstone.MicroService):
        name = "deadline_big"

        @gemstone.exposed_method()
        async def blob(self, size: int) -> str:
            return "x" * size

    async with serving(Big()) as service:
        url = service.accessible_at or ""
        async with gemstone.RemoteService(url, max_response_size=100_000) as client:
            assert len(await client.call("blob", 1000)) == 1000
            with pytest.raises(ResponseTooLargeError, match="max_response_size"):
                await client.call("blob", 200_000)
            # The client stays usable.
            assert len(await client.call("blob", 10)) == 10


async def test_an_unannounced_large_reply_is_cut_while_it_streams() -> None:
    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(100):
            await response.write(b" " * 10_000)
        call = await request.json()
        await response.write(json.dumps({"jsonrpc": "2.0", "result": 1, "id": call["id"]}).encode())
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/api", chunked)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/api"
        async with gemstone.RemoteService(url, max_response_size=50_000) as client:
            with pytest.raises(ResponseTooLargeError):
                await client.call("anything")
        async with gemstone.RemoteService(url) as client:
            assert await client.call("anything") == 1
    finally:
        await runner.cleanup()
