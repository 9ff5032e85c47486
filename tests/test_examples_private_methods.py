"""examples/private_methods.py: its service, and the curl call its docstring shows, for real."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from gemstone_aio.testing import serving
from tests.fixtures.auth import docstring_curl, load_example, run_curl

private_methods = load_example("private_methods")


async def test_docstring_curl_call_works() -> None:
    """The documented curl call reaches the private method; without the header it is denied."""
    async with serving(private_methods.BankService()) as service:
        url = service.accessible_at
        assert url is not None
        argv = docstring_curl(private_methods, url)
        assert await run_curl(argv) == {
            "jsonrpc": "2.0",
            "result": {"account": "alice", "balance": 120, "asked_by": "teller"},
            "id": 1,
        }
        position = argv.index("X-Api-Token: s3cr3t-teller-token")
        without_token = argv[: position - 1] + argv[position + 1 :]
        assert await run_curl(without_token) == {
            "jsonrpc": "2.0",
            "error": {"code": -32001, "message": "Access denied"},
            "id": 1,
        }


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({}, {"error": {"code": -32001, "message": "Access denied"}}, id="no-token"),
        pytest.param(
            {"X-Api-Token": "guess"},
            {"error": {"code": -32001, "message": "Access denied"}},
            id="wrong",
        ),
        pytest.param(
            {"X-Api-Token": "s3cr3t-teller-token"},
            {"result": {"account": "bob", "balance": 7, "asked_by": "teller"}},
            id="right",
        ),
    ],
)
async def test_example_service(headers: dict[str, str], expected: dict[str, Any]) -> None:
    """The example's service serves its public method to anyone and its private one to the teller."""
    async with (
        serving(private_methods.BankService()) as service,
        aiohttp.ClientSession() as session,
    ):
        url = service.accessible_at
        assert url is not None
        batch = [
            {"jsonrpc": "2.0", "method": "status", "id": 1},
            {"jsonrpc": "2.0", "method": "balance", "params": ["bob"], "id": 2},
        ]
        async with session.post(url, json=batch, headers=headers) as response:
            body = await response.json()
        assert sorted(body, key=lambda r: r["id"]) == [
            {"jsonrpc": "2.0", "result": "open", "id": 1},
            {"jsonrpc": "2.0", "id": 2, **expected},
        ]
