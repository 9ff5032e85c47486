"""How methods run: async ones on the loop, blocking ones in a bounded pool."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from pytest_aiohttp import AiohttpClient

import gemstone_aio as gemstone
from gemstone_aio.server import POOL_KEY
from gemstone_aio.testing import serving

WAIT = 10.0


class Gate(gemstone.MicroService):
    """Blocking methods wait on a gate so the test controls how long they run."""

    name = "gate"
    max_parallel_blocking_tasks = 3

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.changed = threading.Condition(self.lock)

    @gemstone.exposed_method()
    def hold(self) -> str:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.changed.notify_all()
        try:
            assert self.release.wait(WAIT)
            return threading.current_thread().name
        finally:
            with self.lock:
                self.running -= 1

    @gemstone.exposed_method()
    async def where(self) -> str:
        return threading.current_thread().name

    def wait_running(self, count: int) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.running >= count, WAIT)


def rpc(method: str, id_: int) -> str:
    return json.dumps({"jsonrpc": "2.0", "method": method, "id": id_})


async def call(client: Any, method: str, id_: int) -> Any:
    response = await client.post(
        "/api", data=rpc(method, id_), headers={"Content-Type": "application/json"}
    )
    return (await response.json())["result"]


async def test_blocking_calls_overlap_up_to_the_pool_size(aiohttp_client: AiohttpClient) -> None:
    """Five blocking calls on a pool of three: three run at once, async calls still answer."""
    service = Gate()
    client = await aiohttp_client(service.make_app())
    calls = [asyncio.create_task(call(client, "hold", i)) for i in range(5)]
    assert await asyncio.to_thread(service.wait_running, 3)
    # The pool is saturated; the loop is not: async methods answer at once, on the loop thread.
    async with asyncio.timeout(2):
        assert await call(client, "where", 99) == threading.current_thread().name
    assert service.running == 3
    assert not any(task.done() for task in calls)
    service.release.set()
    names = await asyncio.gather(*calls)
    assert service.peak == 3
    assert all(name.startswith("gemstone-gate") for name in names)
    assert len(set(names)) <= 3


async def test_a_blocking_method_never_blocks_the_loop() -> None:
    """While a blocking method holds a thread, loop callbacks keep running on time."""
    service = Gate()
    async with serving(service):
        client_task = asyncio.create_task(_raw_call(service.accessible_at or "", "hold"))
        assert await asyncio.to_thread(service.wait_running, 1)
        ticks = 0
        loop = asyncio.get_running_loop()
        started = loop.time()
        while ticks < 20:
            await asyncio.sleep(0.01)
            ticks += 1
        elapsed = loop.time() - started
        assert elapsed < 1.0  # 20 ticks of 10 ms; a blocked loop would stall here
        service.release.set()
        assert (await client_task).startswith("gemstone-gate")


async def _raw_call(url: str, method: str) -> Any:
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=rpc(method, 1), headers={"Content-Type": "application/json"}) as r,
    ):
        return (await r.json())["result"]


async def test_batch_elements_run_concurrently(aiohttp_client: AiohttpClient) -> None:
    """Three blocking elements of one batch run at the same time (they wait for each other)."""
    service = Gate()
    client = await aiohttp_client(service.make_app())
    body = "[" + ",".join(rpc("hold", i) for i in range(3)) + "]"
    pending = asyncio.create_task(
        client.post("/api", data=body, headers={"Content-Type": "application/json"})
    )
    assert await asyncio.to_thread(service.wait_running, 3)
    service.release.set()
    response = await pending
    answers = await response.json()
    assert sorted(a["id"] for a in answers) == [0, 1, 2]


async def test_overloaded_pool_answers_at_once(aiohttp_client: AiohttpClient) -> None:
    """Past the bound on queued blocking work a call gets -32002 at once instead of waiting."""
    service = Gate()
    service.max_parallel_blocking_tasks = 1
    service.max_pending_blocking_tasks = 1
    client = await aiohttp_client(service.make_app())
    first = asyncio.create_task(call(client, "hold", 1))
    assert await asyncio.to_thread(service.wait_running, 1)
    second = asyncio.create_task(call(client, "hold", 2))  # queued behind the first
    pool = client.app[POOL_KEY]
    async with asyncio.timeout(WAIT):
        while pool.waiting < 1:  # noqa: ASYNC110 -- the pool offers no event; poll with a deadline
            await asyncio.sleep(0.01)
        response = await client.post(
            "/api", data=rpc("hold", 3), headers={"Content-Type": "application/json"}
        )
        answer = await response.json()
    assert answer["error"]["code"] == -32002
    service.release.set()
    assert (await first).startswith("gemstone-gate")
    assert (await second).startswith("gemstone-gate")


async def test_method_timeout(aiohttp_client: AiohttpClient) -> None:
    """A call running past its timeout is abandoned with -32003."""

    class Slow(gemstone.MicroService):
        name = "slow"

        @gemstone.exposed_method(timeout=0.05)
        async def nap(self) -> None:
            await asyncio.sleep(WAIT)

        @gemstone.exposed_method()
        async def quick(self) -> int:
            return 1

    client = await aiohttp_client(Slow().make_app())
    response = await client.post(
        "/api", data=rpc("nap", 1), headers={"Content-Type": "application/json"}
    )
    answer = await response.json()
    assert answer["error"] == {
        "code": -32003,
        "message": "Method timed out",
        "data": {"timeout": 0.05, "limit": "method"},
    }
    assert await call(client, "quick", 2) == 1
