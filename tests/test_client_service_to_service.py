"""A service calling another service, and itself, through RemoteService."""

from __future__ import annotations

import asyncio
import time

import gemstone_aio as gemstone
from gemstone_aio import RemoteService
from gemstone_aio.testing import serving


class Backend(gemstone.MicroService):
    name = "s2s_backend"

    @gemstone.exposed_method()
    def say_hello(self, name: str) -> str:
        return f"hello {name}"

    @gemstone.exposed_method()
    async def nap(self, seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds


class Frontend(gemstone.MicroService):
    name = "s2s_frontend"

    def __init__(self, backend_url: str) -> None:
        super().__init__()
        self.backend_url = backend_url
        self.backend: RemoteService | None = None
        self.me: RemoteService | None = None

    async def on_service_start(self) -> None:
        self.backend = RemoteService(self.backend_url, timeout=5)

    def myself(self) -> RemoteService:
        # Made on first use: with port 0 the real URL is known only once serving.
        if self.me is None:
            assert self.accessible_at is not None
            self.me = RemoteService(self.accessible_at, timeout=5)
        return self.me

    async def on_service_stop(self) -> None:
        for client in (self.backend, self.me):
            if client is not None:
                await client.close()

    @gemstone.exposed_method()
    async def relay(self, name: str) -> str:
        assert self.backend is not None
        return f"backend says: {await self.backend.methods.say_hello(name=name)}"

    @gemstone.exposed_method()
    async def relay_nap(self, seconds: float) -> float:
        assert self.backend is not None
        return float(await self.backend.call("nap", seconds))

    @gemstone.exposed_method()
    async def countdown(self, n: int) -> list[int]:
        if n == 0:
            return [0]
        return [n, *await self.myself().call("countdown", n - 1)]

    @gemstone.exposed_method()
    def blocking_relay(self, name: str) -> str:
        # A plain def runs in the service's thread pool: no loop there, so the
        # blocking facade applies.
        with RemoteService(self.backend_url, timeout=5) as backend:
            return f"blocking backend says: {backend.methods.say_hello(name)}"

    @gemstone.exposed_method()
    def blocking_countdown(self, n: int) -> list[int]:
        if n == 0:
            return [0]
        assert self.accessible_at is not None
        with RemoteService(self.accessible_at, timeout=5) as me:
            return [n, *me.methods.blocking_countdown(n - 1)]

    @gemstone.exposed_method()
    async def ping(self) -> str:
        return "pong"


async def test_service_calls_another_service_and_itself() -> None:
    async with serving(Backend()) as backend:
        assert backend.accessible_at is not None
        async with serving(Frontend(backend.accessible_at)) as frontend:
            assert frontend.accessible_at is not None
            assert frontend.port != backend.port
            async with RemoteService(frontend.accessible_at) as svc:
                assert await svc.call("relay", "a") == "backend says: hello a"
                assert await svc.call("countdown", 5) == [5, 4, 3, 2, 1, 0]
                assert await svc.call("blocking_relay", "b") == "blocking backend says: hello b"
                assert await svc.call("blocking_countdown", 2) == [2, 1, 0]


async def test_outgoing_calls_do_not_block_the_loop() -> None:
    async with serving(Backend()) as backend:
        assert backend.accessible_at is not None
        async with serving(Frontend(backend.accessible_at)) as frontend:
            assert frontend.accessible_at is not None
            async with RemoteService(frontend.accessible_at) as svc:
                started = time.monotonic()
                relays = [asyncio.create_task(svc.call("relay_nap", 0.5)) for _ in range(8)]
                # While eight relays wait on the backend, the frontend still answers at once.
                assert await svc.request("ping", timeout=5) == "pong"
                assert time.monotonic() - started < 0.4
                assert not any(task.done() for task in relays)
                assert await asyncio.gather(*relays) == [0.5] * 8
                assert time.monotonic() - started < 1.5
