"""Request access (the handler object) and the deprecated decorators, over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient

import gemstone_aio as gemstone
from tests.fixtures.auth import DENIED, call, post_rpc


class Shop(gemstone.MicroService):
    """Reads and sets cookies and headers through the handler."""

    name = "shop"
    api_tokens = ("shop-token",)

    @gemstone.exposed_method(requires_handler_reference=True)
    async def login(self, handler: gemstone.RequestHandler, user: str) -> str:
        handler.set_cookie("session", f"s-{user}", httponly=True, max_age=60)
        handler.set_header("X-Logged-In", user)
        return user

    @gemstone.exposed_method()
    def remember(self, colour: str) -> str:
        # A blocking method without the parameter: the context accessor works in the pool.
        gemstone.current_handler().set_cookie("colour", colour)
        return colour

    @gemstone.exposed_method(requires_handler_reference=True)
    async def logout(self, handler: gemstone.RequestHandler) -> None:
        handler.clear_cookie("session")

    @gemstone.exposed_method(requires_handler_reference=True)
    async def inspect(self, handler: gemstone.RequestHandler) -> dict[str, Any]:
        assert handler.microservice is self
        assert isinstance(handler.request, web.Request)
        return {
            "cookie": handler.get_cookie("session"),
            "missing": handler.get_cookie("nothing", "default"),
            "agent": handler.get_header("x-client"),
            "cookies": dict(handler.cookies),
            "identity": handler.identity,
        }

    @gemstone.exposed_method(private=True, requires_handler_reference=True)
    async def vip(self, handler: gemstone.RequestHandler) -> str:
        handler.set_cookie("vip", "yes")
        return "welcome"


async def test_cookies_and_headers_reach_the_response(aiohttp_client: AiohttpClient) -> None:
    """Cookies and headers set by a method are on the HTTP response."""
    client = await aiohttp_client(Shop().make_app())
    response = await client.post("/api", json=call("login", {"user": "ada"}))
    assert await response.json() == {"jsonrpc": "2.0", "result": "ada", "id": 1}
    assert response.headers["X-Logged-In"] == "ada"
    morsel = response.cookies["session"]
    assert morsel.value == "s-ada"
    assert morsel["httponly"] is True
    assert morsel["max-age"] == "60"


async def test_cookie_from_blocking_method_and_batch(aiohttp_client: AiohttpClient) -> None:
    """In a batch, every element's cookies reach the one HTTP response, blocking methods included."""
    client = await aiohttp_client(Shop().make_app())
    batch = [call("login", ["bob"], id=1), call("remember", ["green"], id=2)]
    response = await client.post("/api", json=batch)
    assert len(await response.json()) == 2
    assert response.cookies["session"].value == "s-bob"
    assert response.cookies["colour"].value == "green"


async def test_cookie_on_notification_response(aiohttp_client: AiohttpClient) -> None:
    """A notification gets 204 with no body, and still carries the cookies it set."""
    client = await aiohttp_client(Shop().make_app())
    response = await client.post("/api", json=call("remember", ["red"], id=...))
    assert response.status == 204
    assert response.cookies["colour"].value == "red"


async def test_clear_cookie(aiohttp_client: AiohttpClient) -> None:
    """clear_cookie expires the cookie in the caller's browser."""
    client = await aiohttp_client(Shop().make_app())
    response = await client.post("/api", json=call("logout"))
    assert response.cookies["session"]["max-age"] == "0"


async def test_handler_reads_the_request(aiohttp_client: AiohttpClient) -> None:
    """The handler exposes the request's cookies and headers; identity is None for public calls."""
    client = await aiohttp_client(Shop().make_app())
    _, body = await post_rpc(
        client, call("inspect"), headers={"Cookie": "session=s-x; a=1", "X-Client": "cli/1"}
    )
    assert body["result"] == {
        "cookie": "s-x",
        "missing": "default",
        "agent": "cli/1",
        "cookies": {"session": "s-x", "a": "1"},
        "identity": None,
    }


async def test_denied_private_method_sets_nothing(aiohttp_client: AiohttpClient) -> None:
    """A denied private method never runs: no cookie; admitted, its cookie arrives."""
    client = await aiohttp_client(Shop().make_app())
    denied = await client.post("/api", json=call("vip"))
    assert (await denied.json())["error"] == DENIED
    assert "vip" not in denied.cookies
    admitted = await client.post("/api", json=call("vip"), headers={"X-Api-Token": "shop-token"})
    assert (await admitted.json())["result"] == "welcome"
    assert admitted.cookies["vip"].value == "yes"


def test_current_handler_outside_a_call() -> None:
    """current_handler() outside a call says so."""
    with pytest.raises(gemstone.GemstoneError, match="outside a JSON-RPC call"):
        gemstone.current_handler()


def test_deprecated_decorators_warn_naming_the_replacement() -> None:
    """Each deprecated decorator warns and names what to use instead."""
    with pytest.warns(DeprecationWarning, match=r"use @exposed_method\(\) instead"):

        @gemstone.public_method
        def a() -> None: ...

    with pytest.warns(DeprecationWarning, match=r"use @exposed_method\(private=True\)"):

        @gemstone.private_api_method
        def b() -> None: ...

    with pytest.warns(DeprecationWarning, match="requires_handler_reference=True"):

        @gemstone.requires_handler_reference
        def c() -> None: ...

    with pytest.warns(DeprecationWarning, match="'async def'"):

        @gemstone.async_method
        def d() -> None: ...


def make_legacy_service() -> type[gemstone.MicroService]:
    """A service written with the gemstone 0.8 decorators (each one warns)."""
    with pytest.warns(DeprecationWarning, match="is deprecated; use") as caught:

        class Legacy(gemstone.MicroService):
            name = "legacy"

            def authenticate_request(self, request: web.Request) -> Any:
                return request.headers.get("X-User")

            @gemstone.public_method
            def hello(self) -> str:
                return "hello"

            @gemstone.private_api_method
            def secret(self, x: int) -> int:
                return x + 1

            @gemstone.requires_handler_reference
            @gemstone.private_api_method
            def private_with_handler(self, handler: gemstone.RequestHandler) -> Any:
                handler.set_cookie("legacy", "1")
                return handler.identity

            @gemstone.public_method
            @gemstone.requires_handler_reference
            def public_with_handler(self, handler: gemstone.RequestHandler, n: int) -> int:
                return n * len(handler.get_header("X-Pad", "") or "")

            @gemstone.public_method
            @gemstone.async_method
            async def coroutine(self) -> str:
                return "awaited"

    assert len(caught) == 8
    assert all(issubclass(w.category, DeprecationWarning) for w in caught)
    return Legacy


async def test_deprecated_decorators_still_work(aiohttp_client: AiohttpClient) -> None:
    """Services using the deprecated decorators serve as gemstone 0.8 documented."""
    client = await aiohttp_client(make_legacy_service()().make_app())
    batch = [
        call("hello", id=1),
        call("secret", [1], id=2),
        call("private_with_handler", id=3),
        call("public_with_handler", {"n": 2}, id=4),
        call("coroutine", id=5),
    ]
    anonymous = await client.post("/api", json=batch, headers={"X-Pad": "abc"})
    assert sorted(await anonymous.json(), key=lambda r: r["id"]) == [
        {"jsonrpc": "2.0", "result": "hello", "id": 1},
        {"jsonrpc": "2.0", "error": DENIED, "id": 2},
        {"jsonrpc": "2.0", "error": DENIED, "id": 3},
        {"jsonrpc": "2.0", "result": 6, "id": 4},
        {"jsonrpc": "2.0", "result": "awaited", "id": 5},
    ]
    assert "legacy" not in anonymous.cookies
    known = await client.post("/api", json=batch, headers={"X-User": "root"})
    results = {r["id"]: r["result"] for r in await known.json()}
    assert results[2] == 2
    assert results[3] == "root"
    assert known.cookies["legacy"].value == "1"
