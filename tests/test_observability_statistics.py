"""The ``statistics`` method of gemstone 0.10 (``use_statistics = True``)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

import gemstone_aio as gemstone
from gemstone_aio.errors import ServiceConfigurationError


class Counted(gemstone.MicroService):
    name = "counted"
    use_statistics = True

    @gemstone.exposed_method()
    def say_hello(self, name: str = "world") -> str:
        return f"hello {name}"

    @gemstone.exposed_method()
    async def fail(self) -> None:
        raise ValueError("no")


def _rpc(method: str, params: Any = None, id_: Any = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": id_}
    if params is not None:
        message["params"] = params
    return message


async def _call(client: Any, method: str, params: Any = None) -> dict[str, Any]:
    response = await client.post("/api", json=_rpc(method, params))
    body: dict[str, Any] = await response.json()
    return body


async def test_statistics_counts_calls_per_method(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(Counted().make_app())
    first = (await _call(client, "statistics"))["result"]
    assert first["method_calls_count"] == 0
    assert first["method_calls"] == {}
    assert first["total_runtime"] >= 0

    assert (await _call(client, "say_hello", ["ann"]))["result"] == "hello ann"
    assert (await _call(client, "say_hello"))["result"] == "hello world"
    assert (await _call(client, "say_hello", {"nom": "x"}))["error"]["code"] == -32602
    assert (await _call(client, "fail"))["error"]["code"] == -32603
    assert (await _call(client, "not_there"))["error"]["code"] == -32601

    stats = (await _call(client, "statistics"))["result"]
    assert stats["total_runtime"] >= first["total_runtime"]
    # 4 calls of existing methods plus the first statistics call; missing names don't count.
    assert stats["method_calls_count"] == 6 - 1
    calls = stats["method_calls"]
    assert set(calls) == {"say_hello", "fail", "statistics"}
    hello = calls["say_hello"]
    assert hello["total_calls"] == 3
    assert hello["success_calls"] == 2
    assert hello["failed_calls"] == 1
    assert hello["average_resp_time"] > 0
    assert calls["fail"] == {
        "total_calls": 1,
        "average_resp_time": calls["fail"]["average_resp_time"],
        "success_calls": 0,
        "failed_calls": 1,
    }
    assert calls["statistics"]["success_calls"] == 1


async def test_no_statistics_method_unless_asked(aiohttp_client: AiohttpClient) -> None:
    class Plain(Counted):
        name = f"plain_{uuid.uuid4().hex[:8]}"
        use_statistics = False

    client = await aiohttp_client(Plain().make_app())
    assert (await _call(client, "statistics"))["error"]["code"] == -32601


def test_a_user_method_named_statistics_clashes() -> None:
    class Clash(gemstone.MicroService):
        name = "clash"
        use_statistics = True

        @gemstone.exposed_method()
        async def statistics(self) -> str:
            return "mine"

    with pytest.raises(ServiceConfigurationError, match=r"'statistics'.*Clash already exposes"):
        Clash().make_app()
