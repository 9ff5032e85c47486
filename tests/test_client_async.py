"""The async client against real services: calls, proxies, auth, errors, retries, reuse."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import gemstone_aio as gemstone
from gemstone_aio import CalledServiceError, RemoteService
from gemstone_aio.client import (
    AccessDeniedError,
    BadResponseError,
    CallTimeoutError,
    HttpStatusError,
    InternalServerError,
    InvalidParamsError,
    MethodNotFoundError,
    ServiceUnavailableError,
)
from gemstone_aio.errors import GemstoneTransportError
from gemstone_aio.testing import serving
from tests.fixtures.client import TOKEN, ClientTarget


async def test_call_by_position_and_by_name(target_url: str) -> None:
    async with RemoteService(target_url) as svc:
        assert await svc.call("say_hello", "world") == "hello world"
        assert await svc.call("say_hello", name="you") == "hello you"
        assert await svc.call("say_hello") == "hello world"
        assert await svc.call("subtract", 42, 23) == 19


async def test_methods_proxy_and_dotted_names(target_url: str) -> None:
    async with RemoteService(target_url) as svc:
        assert await svc.methods.say_hello(name="proxy") == "hello proxy"
        assert await svc.methods.math.add(2, 3) == 5
        assert await svc.methods.math.add(a=4, b=5) == 9


def test_proxy_needs_a_method_name() -> None:
    svc = RemoteService("http://127.0.0.1:9/api")
    with pytest.raises(TypeError, match="name a method"):
        svc.methods()


async def test_params_by_position_and_name_at_once_are_refused(target_url: str) -> None:
    async with RemoteService(target_url) as svc:
        with pytest.raises(TypeError, match="either by position or by name"):
            await svc.call("subtract", 1, subtrahend=2)


async def test_notify_and_notifications_proxy(target: ClientTarget, target_url: str) -> None:
    async with RemoteService(target_url) as svc:
        await svc.notify("record", "first")
        assert await svc.notifications.record(value="second") is None
        got = [await asyncio.wait_for(target.notified.get(), 5) for _ in range(2)]
    assert sorted(map(str, got)) == ["first", "second"]


async def test_method_not_found(target_url: str) -> None:
    async with RemoteService(target_url) as svc:
        with pytest.raises(MethodNotFoundError) as info:
            await svc.call("no_such_method")
    assert info.value.code == -32601
    assert info.value.url == target_url
    assert target_url in str(info.value)


async def test_invalid_params_carry_data(target_url: str) -> None:
    async with RemoteService(target_url) as svc:
        with pytest.raises(InvalidParamsError) as info:
            await svc.call("subtract", "not a number", 1)
    assert info.value.code == -32602
    assert isinstance(info.value.data, list)
    assert info.value.data


async def test_private_method_is_denied_without_credentials(target_url: str) -> None:
    async with RemoteService(target_url) as svc:
        with pytest.raises(AccessDeniedError) as info:
            await svc.call("secret")
    assert info.value.code == -32001
    assert isinstance(info.value, CalledServiceError)


async def test_private_method_is_denied_by_default_authenticate_request() -> None:
    class DefaultAuth(gemstone.MicroService):
        name = "default_auth_client_test"

        @gemstone.exposed_method(private=True)
        async def hidden(self) -> int:
            return 1

    async with serving(DefaultAuth()) as service:
        assert service.accessible_at is not None
        async with RemoteService(service.accessible_at, token="anything") as svc:
            with pytest.raises(AccessDeniedError):
                await svc.call("hidden")


async def test_internal_error_hides_the_exception(target_url: str) -> None:
    async with RemoteService(target_url) as svc:
        with pytest.raises(InternalServerError) as info:
            await svc.call("fail")
    assert info.value.code == -32603
    assert "secret internal detail" not in str(info.value)


@pytest.mark.parametrize(
    ("options", "identity"),
    [
        ({"token": TOKEN}, "header"),
        (
            {"token": TOKEN, "token_header": "Authorization", "token_template": "Bearer {}"},
            "bearer",
        ),
        ({"cookies": {"AuthToken": TOKEN}}, "cookie"),
        ({"headers": {"X-Api-Token": TOKEN}}, "header"),
    ],
)
async def test_auth_options_admit_the_caller(
    target_url: str, options: dict[str, Any], identity: str
) -> None:
    async with RemoteService(target_url, **options) as svc:
        assert await svc.call("secret") == "the secret"
        assert await svc.call("whoami") == identity


async def test_wrong_token_is_denied(target_url: str) -> None:
    async with RemoteService(target_url, token="wrong") as svc:
        with pytest.raises(AccessDeniedError):
            await svc.call("secret")


async def test_connection_refused_names_the_url(refused_url: str) -> None:
    async with RemoteService(refused_url) as svc:
        with pytest.raises(ServiceUnavailableError, match=refused_url):
            await svc.call("say_hello")


async def test_retries_connection_refused_with_backoff(refused_url: str) -> None:
    attempts = 0

    async def on_start(session: Any, ctx: Any, params: Any) -> None:
        nonlocal attempts
        attempts += 1

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        svc = RemoteService(refused_url, session=session, retries=3, retry_backoff=0.01)
        started = time.monotonic()
        with pytest.raises(ServiceUnavailableError, match=refused_url):
            await svc.call("say_hello")
        elapsed = time.monotonic() - started
    assert attempts == 4
    assert elapsed >= 0.01 + 0.02 + 0.04


async def test_retry_reaches_a_service_that_comes_up(refused_url: str) -> None:
    port = int(refused_url.split(":")[2].split("/")[0])
    attempts = 0
    started = asyncio.Event()

    async def on_start(session: Any, ctx: Any, params: Any) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 2:
            started.set()

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(
            {"jsonrpc": "2.0", "result": "up", "id": (await request.json())["id"]}
        )

    app = web.Application()
    app.router.add_post("/api", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    try:
        async with aiohttp.ClientSession(trace_configs=[trace]) as session:
            svc = RemoteService(refused_url, session=session, retries=10, retry_backoff=0.05)
            call = asyncio.create_task(svc.call("anything"))
            await asyncio.wait_for(started.wait(), 5)
            await web.TCPSite(runner, "127.0.0.1", port).start()
            assert await asyncio.wait_for(call, 10) == "up"
    finally:
        await runner.cleanup()


def test_retry_options_are_validated() -> None:
    with pytest.raises(ValueError, match="-1"):
        RemoteService("http://127.0.0.1:9/api", retries=-1)


async def test_timeout_and_per_call_override(raw_server: Any) -> None:
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({})

    url = await raw_server(hang)
    try:
        async with RemoteService(url, timeout=0.2) as svc:
            with pytest.raises(CallTimeoutError, match=url) as info:
                await svc.call("x")
            assert isinstance(info.value, TimeoutError)
            started = time.monotonic()
            with pytest.raises(CallTimeoutError, match=r"0\.05"):
                await svc.request("x", [], timeout=0.05)
            assert time.monotonic() - started < 0.2
    finally:
        release.set()


async def test_timeout_while_the_body_trickles(raw_server: Any) -> None:
    release = asyncio.Event()

    async def stall(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"jsonrpc": ')
        await release.wait()
        return response

    url = await raw_server(stall)
    try:
        async with RemoteService(url, timeout=0.2) as svc:
            with pytest.raises(CallTimeoutError, match=url):
                await svc.call("x")
    finally:
        release.set()


async def test_timeout_covers_retries(refused_url: str) -> None:
    async with RemoteService(refused_url, timeout=0.2, retries=100, retry_backoff=0.05) as svc:
        started = time.monotonic()
        with pytest.raises(CallTimeoutError, match=refused_url):
            await svc.call("x")
        assert time.monotonic() - started < 1


def test_default_timeout_is_finite() -> None:
    svc = RemoteService("http://127.0.0.1:9/api")
    assert svc.timeout is not None
    assert 0 < svc.timeout <= 60


async def test_non_json_reply(raw_server: Any) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text="<html>hello</html>", content_type="text/html")

    url = await raw_server(handler)
    async with RemoteService(url) as svc:
        with pytest.raises(BadResponseError, match=f"{url}.*not JSON"):
            await svc.call("x")


@pytest.mark.parametrize(
    "body",
    [
        {"result": 1, "id": 1},
        {"jsonrpc": "2.0", "result": 1, "error": {"code": 1, "message": "x"}, "id": 1},
        {"jsonrpc": "2.0", "error": "boom", "id": 1},
        [1, 2],
        {"jsonrpc": "2.0", "result": 1, "id": 987654321},
        {"jsonrpc": "2.0", "result": 1},
    ],
)
async def test_non_json_rpc_reply(raw_server: Any, body: object) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(body)

    url = await raw_server(handler)
    async with RemoteService(url) as svc:
        with pytest.raises(BadResponseError, match=url):
            await svc.call("x")


@pytest.mark.parametrize("status", [404, 500, 503])
async def test_http_error_status(raw_server: Any, status: int) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, text="nope")

    url = await raw_server(handler)
    async with RemoteService(url) as svc:
        with pytest.raises(HttpStatusError, match=f"{url} answered HTTP {status}") as info:
            await svc.call("x")
    assert info.value.status == status
    assert isinstance(info.value, GemstoneTransportError)


async def test_error_object_with_error_status_is_a_called_service_error(raw_server: Any) -> None:
    async def handler(request: web.Request) -> web.Response:
        reply = {"jsonrpc": "2.0", "error": {"code": -32050, "message": "custom"}, "id": None}
        return web.json_response(reply, status=500)

    url = await raw_server(handler)
    async with RemoteService(url) as svc:
        with pytest.raises(CalledServiceError) as info:
            await svc.call("x")
    assert type(info.value) is CalledServiceError
    assert info.value.code == -32050


async def test_owned_session_reuses_one_connection(raw_server: Any) -> None:
    peers: list[object] = []

    async def handler(request: web.Request) -> web.Response:
        assert request.transport is not None
        peers.append(request.transport.get_extra_info("peername"))
        message = json.loads(await request.read())
        return web.json_response({"jsonrpc": "2.0", "result": 1, "id": message["id"]})

    url = await raw_server(handler)
    async with RemoteService(url) as svc:
        for _ in range(20):
            assert await svc.call("x") == 1
    assert len(peers) == 20
    assert len(set(peers)) == 1


async def test_borrowed_session_reuses_connections_and_stays_open(target_url: str) -> None:
    created = 0

    async def on_create(session: Any, ctx: Any, params: Any) -> None:
        nonlocal created
        created += 1

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(on_create)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        async with RemoteService(target_url, session=session) as svc:
            for i in range(30):
                assert await svc.call("echo", i) == i
        assert not session.closed
        assert created == 1


async def test_closed_borrowed_session_is_reported(target_url: str) -> None:
    session = aiohttp.ClientSession()
    await session.close()
    svc = RemoteService(target_url, session=session)
    with pytest.raises(RuntimeError, match="borrowed session"):
        await svc.call("say_hello")


async def test_concurrent_calls_share_the_client(target_url: str) -> None:
    async with RemoteService(target_url) as svc:
        results = await asyncio.gather(*(svc.call("nap", 0.2) for _ in range(10)))
    assert results == [0.2] * 10


async def test_sync_context_manager_refused_in_a_loop(target_url: str) -> None:
    svc = RemoteService(target_url)
    with pytest.raises(RuntimeError, match="async with"), svc:
        pass
