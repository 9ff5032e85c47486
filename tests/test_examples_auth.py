"""examples/auth_*.py served for real (docs/access-control.md includes them whole)."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

import gemstone_aio as gemstone
from gemstone_aio.client import AccessDeniedError
from gemstone_aio.testing import serving
from tests.fixtures.auth import DENIED, call, docstring_curl, load_example, post_rpc, run_curl

bearer = load_example("auth_bearer")
identity = load_example("auth_identity")
custom = load_example("auth_custom_strategy")
cookie_login = load_example("auth_cookie_login")
client_example = load_example("auth_client")


async def answer(client: Any, method: str, params: Any = None, **kw: Any) -> Any:
    _, body = await post_rpc(client, call(method, params), **kw)
    return body.get("result", body.get("error"))


@pytest.fixture
def reports_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """BearerService reads its tokens from REPORTS_TOKENS."""
    monkeypatch.setenv("REPORTS_TOKENS", "tok1,ci-token")


@pytest.mark.usefixtures("reports_tokens")
async def test_bearer_or_cookie(aiohttp_client: AiohttpClient) -> None:
    """BearerService takes the token from a Bearer header or, failing that, the cookie."""
    client = await aiohttp_client(bearer.BearerService().make_app())
    ok = "report for month 3"

    async def report(headers: dict[str, str]) -> Any:
        return await answer(client, "monthly_report", [3], headers=headers)

    assert await report({"Authorization": "Bearer tok1"}) == ok
    assert await report({"Authorization": "Bearer ci-token"}) == ok
    assert await report({"Cookie": "AuthToken=tok1"}) == ok
    assert await report({"Authorization": "tok1"}) == DENIED
    assert await report({}) == DENIED


async def test_bearer_without_tokens_fails_closed(
    aiohttp_client: AiohttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With REPORTS_TOKENS unset, nobody is admitted, whatever they send."""
    monkeypatch.delenv("REPORTS_TOKENS", raising=False)
    client = await aiohttp_client(bearer.BearerService().make_app())
    for headers in ({"Authorization": "Bearer "}, {"Authorization": "Bearer tok1"}, {}):
        assert await answer(client, "monthly_report", [3], headers=headers) == DENIED


async def test_identity(aiohttp_client: AiohttpClient) -> None:
    """TeamService's identity reaches both accessors, in async and blocking methods."""
    client = await aiohttp_client(identity.TeamService().make_app())
    assert await answer(client, "my_team", headers={"X-Key": "key-bob"}) == "ops"
    assert await answer(client, "greet", headers={"X-Key": "key-ada"}) == "hello ada"
    assert await answer(client, "greet", headers={"X-Key": "key-eve"}) == DENIED


async def test_custom_strategy(aiohttp_client: AiohttpClient) -> None:
    """QueryTokenService finds its token in the query string."""
    client = await aiohttp_client(custom.QueryTokenService().make_app())
    assert await answer(client, "ping", path="/api?token=q-token") == "pong, robot"
    assert await answer(client, "ping", path="/api?token=nope") == DENIED


async def test_login_cookie_round_trip(aiohttp_client: AiohttpClient) -> None:
    """The cookie LoginService.login sets is what later admits the caller."""
    client = await aiohttp_client(cookie_login.LoginService().make_app())
    assert await answer(client, "whoami") == DENIED
    response = await client.post("/api", json=call("login", ["wrong"]))
    assert (await response.json())["result"] is False
    assert "AuthToken" not in response.cookies
    response = await client.post("/api", json=call("login", ["correct horse"]))
    assert (await response.json())["result"] is True
    cookie = response.cookies["AuthToken"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    # The test client keeps cookies like a browser: the next call is admitted.
    assert await answer(client, "whoami") == "ada"


@pytest.mark.usefixtures("reports_tokens")
async def test_client_calls_private_method() -> None:
    """RemoteService's token options pair with the server's Bearer strategy, over a real socket."""
    async with serving(bearer.BearerService()) as service:
        url = service.accessible_at
        assert url is not None
        assert await client_example.fetch_report(url, "tok1", 5) == "report for month 5"
        with pytest.raises(AccessDeniedError) as caught:
            await client_example.fetch_report(url, "stolen", 5)
        assert caught.value.code == -32001
        async with gemstone.RemoteService(url, cookies={"AuthToken": "tok1"}) as svc:
            assert await svc.call("monthly_report", 6) == "report for month 6"


@pytest.mark.usefixtures("reports_tokens")
async def test_bearer_docstring_curl_call_works() -> None:
    """The curl call in auth_bearer.py's docstring is admitted."""
    async with serving(bearer.BearerService()) as service:
        assert service.accessible_at is not None
        argv = docstring_curl(bearer, service.accessible_at)
        assert "Authorization: Bearer tok1" in argv
        assert await run_curl(argv) == {"jsonrpc": "2.0", "result": "report for month 3", "id": 1}
