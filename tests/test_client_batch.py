"""Batches: many calls and notifications in one HTTP request, each resolved on its own."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gemstone_aio import CalledServiceError, RemoteService
from gemstone_aio.client import (
    AccessDeniedError,
    BadResponseError,
    InvalidParamsError,
    MethodNotFoundError,
    ServiceUnavailableError,
)
from tests.fixtures.client import ClientTarget


def _counting_session() -> tuple[aiohttp.ClientSession, list[int]]:
    requests: list[int] = []

    async def on_start(session: Any, ctx: Any, params: Any) -> None:
        requests.append(1)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    return aiohttp.ClientSession(trace_configs=[trace]), requests


async def test_batch_resolves_each_call_in_one_request(
    target: ClientTarget, target_url: str
) -> None:
    session, requests = _counting_session()
    async with session:
        svc = RemoteService(target_url, session=session)
        async with svc.batch() as batch:
            hello = batch.call("say_hello", "batch")
            diff = batch.call("subtract", minuend=10, subtrahend=3)
            added = batch.call("math.add", 1, 2)
            batch.notify("record", "from a batch")
            missing = batch.call("nope")
            bad = batch.call("subtract", "x", 1)
            denied = batch.call("secret")
            assert len(batch) == 7
        assert len(requests) == 1
    assert hello.result() == "hello batch"
    assert await diff == 7
    assert await added == 3
    with pytest.raises(MethodNotFoundError):
        await missing
    with pytest.raises(InvalidParamsError):
        await bad
    with pytest.raises(AccessDeniedError):
        await denied
    assert await asyncio.wait_for(target.notified.get(), 5) == "from a batch"


async def test_all_notification_batch(target: ClientTarget, target_url: str) -> None:
    async with RemoteService(target_url) as svc, svc.batch() as batch:
        batch.notify("record", 1)
        batch.notify("record", 2)
    got = {await asyncio.wait_for(target.notified.get(), 5) for _ in range(2)}
    assert got == {1, 2}


async def test_empty_batch_sends_nothing(target_url: str) -> None:
    session, requests = _counting_session()
    async with session:
        async with RemoteService(target_url, session=session).batch():
            pass
        assert requests == []


async def test_batch_is_sent_once(target_url: str) -> None:
    async with RemoteService(target_url) as svc:
        batch = svc.batch()
        future = batch.call("echo", 5)
        await batch.send()
        assert future.result() == 5
        with pytest.raises(RuntimeError, match="has been sent"):
            batch.call("echo", 6)
        with pytest.raises(RuntimeError, match="has been sent"):
            await batch.send()


async def test_exception_in_block_sends_nothing_and_cancels(target_url: str) -> None:
    session, requests = _counting_session()
    async with session:
        svc = RemoteService(target_url, session=session)
        batch = svc.batch()
        with pytest.raises(KeyError):  # noqa: PT012 - the error must come from inside the block
            async with batch:
                future = batch.call("echo", 1)
                raise KeyError("stop")
        assert future.cancelled()
        assert requests == []


async def test_ids_are_matched_whatever_the_order(raw_server: Any) -> None:
    async def handler(request: web.Request) -> web.Response:
        messages = json.loads(await request.read())
        replies = [
            {"jsonrpc": "2.0", "result": m["params"][0] * 10, "id": m["id"]}
            for m in reversed(messages)
        ]
        replies.append({"jsonrpc": "2.0", "result": "stray", "id": "unknown"})
        return web.json_response(replies)

    url = await raw_server(handler)
    async with RemoteService(url) as svc, svc.batch() as batch:
        futures = [batch.call("times_ten", i) for i in range(5)]
    assert [f.result() for f in futures] == [0, 10, 20, 30, 40]


async def test_missing_entry_is_an_error(raw_server: Any) -> None:
    async def handler(request: web.Request) -> web.Response:
        first = json.loads(await request.read())[0]
        return web.json_response([{"jsonrpc": "2.0", "result": "ok", "id": first["id"]}])

    url = await raw_server(handler)
    async with RemoteService(url) as svc, svc.batch() as batch:
        answered = batch.call("a")
        forgotten = batch.call("b")
    assert answered.result() == "ok"
    with pytest.raises(BadResponseError, match=f"{url} sent no response for the batch entry id"):
        forgotten.result()


async def test_whole_batch_error_object_fails_every_call(raw_server: Any) -> None:
    async def handler(request: web.Request) -> web.Response:
        error = {"code": -32004, "message": "Request too large"}
        return web.json_response({"jsonrpc": "2.0", "error": error, "id": None})

    url = await raw_server(handler)
    async with RemoteService(url) as svc, svc.batch() as batch:
        calls = [batch.call("a"), batch.call("b")]
    for call in calls:
        with pytest.raises(CalledServiceError, match="Request too large") as info:
            call.result()
        assert info.value.code == -32004


@pytest.mark.parametrize(
    "body", [b"not json", b'{"jsonrpc": "2.0", "result": 1, "id": 1}', b"[1]", b'"text"', b""]
)
async def test_bad_batch_replies(raw_server: Any, body: bytes) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    url = await raw_server(handler)
    async with RemoteService(url) as svc:
        batch = svc.batch()
        future = batch.call("a")
        with pytest.raises(BadResponseError, match=url):
            await batch.send()
    with pytest.raises(BadResponseError, match=url):
        future.result()


async def test_transport_failure_fails_the_batch_and_its_calls(refused_url: str) -> None:
    async with RemoteService(refused_url) as svc:
        batch = svc.batch()
        future = batch.call("a")
        batch.notify("b")
        with pytest.raises(ServiceUnavailableError, match=refused_url):
            await batch.__aexit__(None, None, None)
    with pytest.raises(ServiceUnavailableError):
        future.result()
