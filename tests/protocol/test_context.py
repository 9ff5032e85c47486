"""CallContext: one per request, the caller's identity checked at most once, current everywhere."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

import gemstone_aio as gemstone
from gemstone_aio.errors import GemstoneError
from gemstone_aio.protocol import (
    BlockingRunner,
    CallContext,
    current_call,
    current_context,
    exposed_method,
)

from ._support import WAIT, call, make_router, method_table, request, turns


class Access:
    """An access check that counts its runs and may be held until released."""

    def __init__(self, identity: Any) -> None:
        self.identity = identity
        self.runs = 0
        self.seen: list[CallContext] = []
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, context: CallContext) -> Any:
        self.runs += 1
        self.seen.append(context)
        await self.release.wait()
        return self.identity


def test_a_bare_context() -> None:
    context = CallContext()
    assert context.service is None
    assert context.transport is None
    assert dict(context.headers) == {}
    assert context.request_id is None
    assert context.known_identity is None
    assert context.handler_if_built is None


def test_a_context_keeps_what_it_is_given() -> None:
    service, transport = object(), object()
    context = CallContext(
        service=service, transport=transport, headers={"X-A": "b"}, request_id="req-1"
    )
    assert context.service is service
    assert context.transport is transport
    assert context.headers["X-A"] == "b"
    assert context.request_id == "req-1"


async def test_without_an_access_check_the_caller_is_anonymous() -> None:
    context = CallContext()
    assert await context.identity() is None
    assert not await context.is_authenticated()
    assert context.known_identity is None


async def test_the_access_check_runs_on_first_need_and_once() -> None:
    access = Access("alice")
    context = CallContext(authenticate=access)
    before = context.known_identity
    assert before is None  # not asked yet: the check has not run
    assert access.seen == []
    assert await context.identity() == "alice"
    assert await context.is_authenticated()
    assert await context.identity() == "alice"
    assert context.known_identity == "alice"
    assert access.runs == 1
    assert access.seen == [context]


async def test_concurrent_askers_share_one_access_check() -> None:
    access = Access("alice")
    access.release.clear()
    context = CallContext(authenticate=access)
    askers = [asyncio.create_task(context.identity()) for _ in range(5)]
    await turns()
    assert access.runs == 1
    access.release.set()
    assert await asyncio.wait_for(asyncio.gather(*askers), WAIT) == ["alice"] * 5
    assert access.runs == 1


@pytest.mark.parametrize("identity", [None, False, "", 0])
async def test_a_falsy_identity_is_anonymous_and_kept(identity: Any) -> None:
    access = Access(identity)
    context = CallContext(authenticate=access)
    assert not await context.is_authenticated()
    assert not await context.is_authenticated()
    assert access.runs == 1
    assert context.known_identity == identity


async def test_a_failing_access_check_is_not_taken_as_an_answer() -> None:
    attempts = 0

    async def flaky(context: CallContext) -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("the identity provider is down")
        return "alice"

    context = CallContext(authenticate=flaky)
    with pytest.raises(ConnectionError):
        await context.identity()
    assert context.known_identity is None
    assert await context.identity() == "alice"  # asked again, not cached as anonymous


def test_the_handler_object_is_built_once_on_first_use() -> None:
    built: list[CallContext] = []

    def make_handler(context: CallContext) -> dict[str, str]:
        built.append(context)
        return {"made": "once"}

    context = CallContext(make_handler=make_handler)
    assert context.handler_if_built is None
    handler = context.handler
    assert handler == {"made": "once"}
    assert context.handler is handler
    assert context.handler_if_built is handler
    assert built == [context]


def test_no_handler_object_without_a_transport() -> None:
    with pytest.raises(GemstoneError, match="no handler object"):
        _ = CallContext().handler


def test_current_context_outside_a_call() -> None:
    with pytest.raises(GemstoneError, match="outside a JSON-RPC call"):
        current_context()


def test_current_context_is_the_current_call() -> None:
    context = CallContext()
    token = current_call.set(context)
    try:
        assert current_context() is context
    finally:
        current_call.reset(token)
    with pytest.raises(GemstoneError):
        current_context()


@exposed_method()
async def async_context() -> bool:
    return current_context() is EXPECTED[0]


@exposed_method()
def blocking_context() -> list[Any]:
    return [
        current_context() is EXPECTED[0],
        threading.current_thread() is not threading.main_thread(),
    ]


EXPECTED: list[CallContext] = []


async def test_the_context_reaches_methods_and_their_threads(
    blocking_runner: BlockingRunner,
) -> None:
    router = make_router(method_table(async_context, blocking_context), blocking_runner)
    context = CallContext()
    EXPECTED[:] = [context]
    try:
        assert (await call(router, request("async_context", id=1), context))["result"] is True
        assert (await call(router, request("blocking_context", id=1), context))["result"] == [
            True,
            True,
        ]
        answer = await call(
            router,
            [request("async_context", id=1), request("blocking_context", id=2)],
            context,
        )
        assert [element["result"] for element in answer] == [True, [True, True]]
    finally:
        EXPECTED.clear()


class ContextService(gemstone.MicroService):
    name = "protocol-context"
    api_tokens = {"tok-alice": "alice"}

    @gemstone.exposed_method()
    async def describe(self) -> dict[str, Any]:
        context = current_context()
        return {
            "service": context.service is self,
            "transport": context.transport is not None,
            "header": context.headers.get("x-custom"),  # case-insensitive over HTTP
            "request_id": context.request_id,
            "identity": await context.identity(),
        }

    @gemstone.exposed_method()
    def describe_blocking(self) -> dict[str, Any]:
        context = current_context()
        return {"service": context.service is self, "request_id": context.request_id}


async def test_the_server_builds_one_context_per_request(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(ContextService().make_app())
    response = await client.post(
        "/api",
        json=[request("describe", id=1), request("describe_blocking", id=2)],
        headers={"X-Custom": "value", "X-Request-Id": "req-42", "X-Api-Token": "tok-alice"},
    )
    assert response.status == 200
    assert response.headers["X-Request-Id"] == "req-42"
    first, second = await response.json()
    assert first["result"] == {
        "service": True,
        "transport": True,
        "header": "value",
        "request_id": "req-42",
        "identity": "alice",
    }
    assert second["result"] == {"service": True, "request_id": "req-42"}
