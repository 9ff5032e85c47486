"""Private methods' names stay hidden from ``/metrics`` and ``statistics``.

A caller the service's access check does not admit never learns a private method's name
from them (as from ``rpc.discover``): calls of private methods are reported under
``(private)``. A service opts in to naming them (``metrics_show_private_methods``), or
puts ``/metrics`` behind its authentication (``metrics_require_authentication``), and
then an admitted scraper sees the names. Everything goes through a real aiohttp server.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pytest_aiohttp import AiohttpClient

import gemstone_aio as gemstone
from gemstone_aio.errors import ServiceConfigurationError

TOKEN = "s3cret-token"
SECRET = "rotate_signing_keys"


def _service_class(**attrs: object) -> type[gemstone.MicroService]:
    class Vault(gemstone.MicroService):
        name = f"vault_{uuid.uuid4().hex[:8]}"
        api_tokens = [TOKEN]

        @gemstone.exposed_method()
        async def status(self) -> str:
            return "sealed"

        @gemstone.exposed_method(private=True)
        async def rotate_signing_keys(self, generation: int) -> int:
            return generation + 1

    assert SECRET in Vault.__gemstone_exposed__
    for key, value in attrs.items():
        setattr(Vault, key, value)
    return Vault


def _rpc(method: str, params: Any = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": 1}
    if params is not None:
        message["params"] = params
    return message


async def _call(client: Any, method: str, params: Any = None, token: str | None = None) -> Any:
    headers = {"X-Api-Token": token} if token else {}
    response = await client.post("/api", json=_rpc(method, params), headers=headers)
    assert response.status == 200
    return await response.json()


async def _some_calls(client: Any) -> None:
    """One denied call of the private method, one admitted, one public call."""
    assert (await _call(client, SECRET, [1]))["error"]["code"] == -32001
    assert (await _call(client, SECRET, [1], token=TOKEN))["result"] == 2
    assert (await _call(client, "status"))["result"] == "sealed"


def _calls_by_method(text: str) -> dict[tuple[str, str], float]:
    families = {family.name: family for family in text_string_to_metric_families(text)}
    return {
        (sample.labels["method"], sample.labels["code"]): sample.value
        for sample in families["gemstone_calls"].samples
        if sample.name == "gemstone_calls_total"
    }


def _latency_methods(text: str) -> set[str]:
    families = {family.name: family for family in text_string_to_metric_families(text)}
    return {
        sample.labels["method"] for sample in families["gemstone_call_duration_seconds"].samples
    }


# -- /metrics ---------------------------------------------------------------------------


async def test_metrics_do_not_name_private_methods_by_default(
    aiohttp_client: AiohttpClient,
) -> None:
    client = await aiohttp_client(_service_class(use_metrics=True)().make_app())
    await _some_calls(client)

    # Anonymous, and with a token: a public /metrics runs no access check, so every
    # scraper gets the same series.
    for headers in ({}, {"X-Api-Token": TOKEN}):
        response = await client.get("/metrics", headers=headers)
        assert response.status == 200
        text = await response.text()
        assert SECRET not in text
        calls = _calls_by_method(text)
        assert calls[("(private)", "-32001")] == 1
        assert calls[("(private)", "ok")] == 1
        assert calls[("status", "ok")] == 1
        assert _latency_methods(text) == {"(private)", "status"}

    # OpenMetrics too.
    response = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.status == 200
    assert SECRET not in await response.text()


async def test_metrics_name_private_methods_when_the_service_opts_in(
    aiohttp_client: AiohttpClient,
) -> None:
    service = _service_class(use_metrics=True, metrics_show_private_methods=True)()
    client = await aiohttp_client(service.make_app())
    await _some_calls(client)
    text = await (await client.get("/metrics")).text()
    calls = _calls_by_method(text)
    assert calls[(SECRET, "-32001")] == 1
    assert calls[(SECRET, "ok")] == 1
    assert "(private)" not in text


async def test_metrics_behind_the_services_authentication(aiohttp_client: AiohttpClient) -> None:
    service = _service_class(use_metrics=True, metrics_require_authentication=True)()
    client = await aiohttp_client(service.make_app())
    await _some_calls(client)

    for headers in ({}, {"X-Api-Token": "wrong"}):
        response = await client.get("/metrics", headers=headers)
        assert response.status == 403
        text = await response.text()
        assert SECRET not in text
        assert "gemstone_" not in text  # not even which metrics exist
        assert response.headers["Cache-Control"] == "no-store"

    response = await client.get("/metrics", headers={"X-Api-Token": TOKEN})
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    calls = _calls_by_method(await response.text())
    # An admitted scraper may learn the names, as rpc.discover tells an authenticated caller.
    assert calls[(SECRET, "-32001")] == 1
    assert calls[(SECRET, "ok")] == 1
    assert calls[("status", "ok")] == 1
    # The scrapes are not calls: nothing new was counted.
    assert sum(calls.values()) == 3


async def test_metrics_behind_an_authenticate_request_override(
    aiohttp_client: AiohttpClient,
) -> None:
    class Gate(gemstone.MicroService):
        name = f"gate_{uuid.uuid4().hex[:8]}"
        use_metrics = True
        metrics_require_authentication = True

        def authenticate_request(self, request: Any) -> Any:
            if request.headers.get("Authorization") == "Bearer scraper":
                return "prometheus"
            if request.headers.get("Authorization") == "Bearer explode":
                raise RuntimeError("identity provider down")
            return None

        @gemstone.exposed_method(private=True)
        async def rotate_signing_keys(self) -> None:
            return None

    client = await aiohttp_client(Gate().make_app())
    assert (await client.get("/metrics")).status == 403
    # An access check that raises refuses (fails closed).
    assert (await client.get("/metrics", headers={"Authorization": "Bearer explode"})).status == 403
    response = await client.get("/metrics", headers={"Authorization": "Bearer scraper"})
    assert response.status == 200


def test_metrics_authentication_that_nothing_can_pass_is_refused() -> None:
    service = _service_class(use_metrics=True, metrics_require_authentication=True, api_tokens=())()
    with pytest.raises(ServiceConfigurationError, match="metrics_require_authentication"):
        service.make_app()


# -- statistics -------------------------------------------------------------------------


async def test_statistics_name_private_methods_only_to_authenticated_callers(
    aiohttp_client: AiohttpClient,
) -> None:
    client = await aiohttp_client(_service_class(use_statistics=True)().make_app())
    await _some_calls(client)

    anonymous = (await _call(client, "statistics"))["result"]
    assert SECRET not in str(anonymous)
    assert anonymous["method_calls"]["(private)"] == {
        "total_calls": 2,
        "average_resp_time": anonymous["method_calls"]["(private)"]["average_resp_time"],
        "success_calls": 1,
        "failed_calls": 1,
    }
    assert set(anonymous["method_calls"]) == {"(private)", "status"}

    admitted = (await _call(client, "statistics", token=TOKEN))["result"]
    assert admitted["method_calls"][SECRET]["total_calls"] == 2
    assert "(private)" not in admitted["method_calls"]
    # Same totals either way: the names are hidden, not the calls.
    assert admitted["method_calls_count"] == anonymous["method_calls_count"] + 1


async def test_statistics_name_private_methods_when_the_service_opts_in(
    aiohttp_client: AiohttpClient,
) -> None:
    service = _service_class(use_statistics=True, metrics_show_private_methods=True)()
    client = await aiohttp_client(service.make_app())
    await _some_calls(client)
    anonymous = (await _call(client, "statistics"))["result"]
    assert anonymous["method_calls"][SECRET]["failed_calls"] == 1
