"""CORS: off by default; listed origins get preflights and labelled answers."""

from __future__ import annotations

from pytest_aiohttp import AiohttpClient

from tests.fixtures.services import Calculator

CALL = {"jsonrpc": "2.0", "method": "get_data", "id": 1}


async def test_cors_is_off_by_default(aiohttp_client: AiohttpClient) -> None:
    """Without ``cors_origins`` no CORS header is sent and preflights are refused (405)."""
    client = await aiohttp_client(Calculator().make_app())
    response = await client.post("/api", json=CALL, headers={"Origin": "https://evil.test"})
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = await client.options("/api", headers={"Origin": "https://evil.test"})
    assert preflight.status == 405


async def test_listed_origin_is_allowed(aiohttp_client: AiohttpClient) -> None:
    """A listed origin gets a preflight answer and labelled responses; others get nothing."""
    service = Calculator()
    service.cors_origins = ["https://app.test"]
    client = await aiohttp_client(service.make_app())
    preflight = await client.options(
        "/api", headers={"Origin": "https://app.test", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.test"
    assert preflight.headers["Access-Control-Allow-Methods"] == "POST"
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    response = await client.post("/api", json=CALL, headers={"Origin": "https://app.test"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.test"
    assert (await response.json())["result"] == ["hello", 5]
    other = await client.post("/api", json=CALL, headers={"Origin": "https://evil.test"})
    assert "Access-Control-Allow-Origin" not in other.headers
    refused = await client.options("/api", headers={"Origin": "https://evil.test"})
    assert refused.status == 403


async def test_wildcard_never_allows_credentials(aiohttp_client: AiohttpClient) -> None:
    """``"*"`` allows any origin but never with credentials."""
    service = Calculator()
    service.cors_origins = ["*"]
    client = await aiohttp_client(service.make_app())
    response = await client.post("/api", json=CALL, headers={"Origin": "https://any.test"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers
