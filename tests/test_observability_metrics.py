"""GET /metrics after real calls, parsed with prometheus-client's own parser."""

from __future__ import annotations

import asyncio
import sys
import threading
import uuid
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pytest_aiohttp import AiohttpClient

import gemstone_aio as gemstone
from gemstone_aio.errors import ServiceConfigurationError
from gemstone_aio.observability import MetricsHooks
from gemstone_aio.observability._prometheus import PrometheusMetrics
from gemstone_aio.server import METRICS_KEY, POOL_KEY


def _service_class(**attrs: object) -> type[gemstone.MicroService]:
    class Shop(gemstone.MicroService):
        name = f"shop_{uuid.uuid4().hex[:8]}"

        def __init__(self) -> None:
            super().__init__()
            self.gate = asyncio.Event()
            self.entered = asyncio.Event()
            self.thread_gate = threading.Event()

        @gemstone.exposed_method()
        async def add(self, a: int, b: int) -> int:
            return a + b

        @gemstone.exposed_method()
        async def fail(self) -> None:
            raise ValueError("boom")

        @gemstone.exposed_method()
        async def wait_gate(self) -> str:
            self.entered.set()
            await self.gate.wait()
            return "through"

        @gemstone.exposed_method()
        def blocking_gate(self) -> str:
            self.thread_gate.wait(10)
            return "through"

    for key, value in attrs.items():
        setattr(Shop, key, value)
    return Shop


def _rpc(method: str, params: Any = None, id_: Any = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    if id_ is not None:
        message["id"] = id_
    return message


async def _scrape(client: Any, path: str = "/metrics") -> dict[str, Any]:
    response = await client.get(path)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {family.name: family for family in text_string_to_metric_families(await response.text())}


def _value(families: dict[str, Any], sample_name: str, **labels: str) -> float:
    family_name = sample_name.removesuffix("_total").removesuffix("_count").removesuffix("_sum")
    for sample in families[family_name].samples:
        if sample.name == sample_name and sample.labels == labels:
            return float(sample.value)
    raise AssertionError(f"no sample {sample_name}{labels}")


async def test_calls_by_method_and_code_and_latency(aiohttp_client: AiohttpClient) -> None:
    service = _service_class()()
    client = await aiohttp_client(service.make_app())
    for _ in range(3):
        await client.post("/api", json=_rpc("add", [1, 2]))
    await client.post("/api", json=_rpc("add", ["x", 2]))  # -32602
    await client.post("/api", json=_rpc("fail"))  # -32603
    await client.post("/api", json=_rpc("no_such_method"))  # -32601
    await client.post("/api", json=_rpc("another_missing_one"))  # -32601
    batch = [_rpc("add", [1, 1], 10), _rpc("add", [2, 2], None)]  # a call and a notification
    await client.post("/api", json=batch)

    families = await _scrape(client)
    calls = families["gemstone_calls"]
    assert calls.type == "counter"
    assert _value(families, "gemstone_calls_total", method="add", code="ok") == 5
    assert _value(families, "gemstone_calls_total", method="add", code="-32602") == 1
    assert _value(families, "gemstone_calls_total", method="fail", code="-32603") == 1
    # Made-up names share one label value: callers cannot grow the registry.
    assert _value(families, "gemstone_calls_total", method="(unknown)", code="-32601") == 2
    methods = {sample.labels["method"] for sample in calls.samples}
    assert methods == {"add", "fail", "(unknown)"}

    latency = families["gemstone_call_duration_seconds"]
    assert latency.type == "histogram"
    assert _value(families, "gemstone_call_duration_seconds_count", method="add") == 6
    assert _value(families, "gemstone_call_duration_seconds_sum", method="add") > 0
    buckets = [
        s for s in latency.samples if s.name.endswith("_bucket") and s.labels["method"] == "add"
    ]
    assert buckets[-1].labels["le"] == "+Inf"
    assert buckets[-1].value == 6

    info = families["gemstone_service_info"]
    assert info.samples[0].labels["name"] == service.name
    assert info.samples[0].labels["version"] == gemstone.__version__


async def test_in_flight_requests_are_counted(aiohttp_client: AiohttpClient) -> None:
    service = _service_class()()
    client = await aiohttp_client(service.make_app())
    families = await _scrape(client)
    assert _value(families, "gemstone_requests_in_flight") == 0

    pending = asyncio.create_task(client.post("/api", json=_rpc("wait_gate")))
    await asyncio.wait_for(service.entered.wait(), 5)  # type: ignore[attr-defined]
    families = await _scrape(client)
    assert _value(families, "gemstone_requests_in_flight") == 1

    service.gate.set()  # type: ignore[attr-defined]
    response = await asyncio.wait_for(pending, 5)
    assert (await response.json())["result"] == "through"
    families = await _scrape(client)
    assert _value(families, "gemstone_requests_in_flight") == 0


async def test_pool_queue_depth(aiohttp_client: AiohttpClient) -> None:
    service = _service_class(max_parallel_blocking_tasks=1)()
    app = service.make_app()
    client = await aiohttp_client(app)
    calls = [
        asyncio.create_task(client.post("/api", json=_rpc("blocking_gate", id_=i)))
        for i in range(3)
    ]
    pool = app[POOL_KEY]

    async def until_queued() -> None:
        # The pool has no notification for "queued"; poll the condition under a deadline.
        while pool.waiting < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.005)

    try:
        await asyncio.wait_for(until_queued(), 5)
        families = await _scrape(client)
        assert _value(families, "gemstone_pool_queued") == 2
        assert _value(families, "gemstone_pool_running") == 1
        assert _value(families, "gemstone_pool_workers") == 1
    finally:
        service.thread_gate.set()  # type: ignore[attr-defined]
        responses = await asyncio.wait_for(asyncio.gather(*calls), 10)
    assert [(await r.json())["result"] for r in responses] == ["through"] * 3
    families = await _scrape(client)
    assert _value(families, "gemstone_pool_queued") == 0


async def test_event_and_registry_hooks(aiohttp_client: AiohttpClient) -> None:
    service = _service_class()()
    client = await aiohttp_client(service.make_app())
    hooks = service.metrics
    assert hooks.enabled
    hooks.event_published("user.created")
    hooks.event_published("user.created")
    hooks.event_publish_failed("user.deleted")
    hooks.event_handled("user.created", "ok", duration=0.01)
    hooks.event_failed("user.created")
    hooks.event_retried("user.created", 0.02)
    hooks.event_dead_lettered("user.created")
    hooks.registry_ping_failed("http://127.0.0.1:1/api")
    hooks.registry_ping_succeeded("http://127.0.0.1:1/api")
    hooks.periodic_task_run("cleanup", 0.5, ok=False)

    families = await _scrape(client)
    assert _value(families, "gemstone_events_published_total", event="user.created") == 2
    assert _value(families, "gemstone_events_publish_failed_total", event="user.deleted") == 1
    for outcome in ("ok", "failed", "retried", "dead_lettered"):
        assert (
            _value(families, "gemstone_events_handled_total", event="user.created", outcome=outcome)
            == 1
        )
    assert (
        _value(families, "gemstone_event_handler_duration_seconds_count", event="user.created") == 2
    )
    assert (
        _value(
            families,
            "gemstone_registry_pings_total",
            registry="http://127.0.0.1:1/api",
            outcome="failed",
        )
        == 1
    )
    assert _value(families, "gemstone_periodic_runs_total", task="cleanup", outcome="failed") == 1


def test_unknown_event_outcome_is_refused_by_both_hook_kinds() -> None:
    for hooks in (MetricsHooks(), PrometheusMetrics("x", {})):
        with pytest.raises(ValueError, match=r"unknown event outcome 'exploded'"):
            hooks.event_handled("e", "exploded")


async def test_each_service_has_its_own_registry(aiohttp_client: AiohttpClient) -> None:
    first = _service_class()()
    second = _service_class()()
    client_one = await aiohttp_client(first.make_app())
    client_two = await aiohttp_client(second.make_app())
    await client_one.post("/api", json=_rpc("add", [1, 2]))
    await client_one.post("/api", json=_rpc("add", [1, 2]))
    await client_two.post("/api", json=_rpc("add", [1, 2]))
    assert _value(await _scrape(client_one), "gemstone_calls_total", method="add", code="ok") == 2
    assert _value(await _scrape(client_two), "gemstone_calls_total", method="add", code="ok") == 1


async def test_metrics_off(aiohttp_client: AiohttpClient) -> None:
    service = _service_class(use_metrics=False)()
    app = service.make_app()
    client = await aiohttp_client(app)
    assert (await client.get("/metrics")).status == 404
    assert not service.metrics.enabled
    assert app[METRICS_KEY] is service.metrics
    service.metrics.event_published("nobody.listens")  # the hooks exist and do nothing
    response = await client.post("/api", json=_rpc("add", [1, 2]))
    assert (await response.json())["result"] == 3


async def test_metrics_path_is_configurable(aiohttp_client: AiohttpClient) -> None:
    service = _service_class(metrics_path="/-/prometheus")()
    client = await aiohttp_client(service.make_app())
    await client.post("/api", json=_rpc("add", [1, 2]))
    families = await _scrape(client, "/-/prometheus")
    assert _value(families, "gemstone_calls_total", method="add", code="ok") == 1
    assert (await client.get("/metrics")).status == 404


async def test_openmetrics_when_the_scraper_asks(aiohttp_client: AiohttpClient) -> None:
    service = _service_class()()
    client = await aiohttp_client(service.make_app())
    response = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert (await response.text()).endswith("# EOF\n")


def test_asking_for_metrics_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # as if not installed
    service = _service_class(use_metrics=True)()
    with pytest.raises(ServiceConfigurationError, match=r"install the 'metrics' extra"):
        service.make_app()
    # The default (None) quietly goes without.
    auto = _service_class()()
    auto.make_app()
    assert not auto.metrics.enabled


def test_a_bad_use_metrics_value_is_named() -> None:
    service = _service_class(use_metrics="yes")()
    with pytest.raises(ServiceConfigurationError, match=r"use_metrics must be .* got 'yes'"):
        service.make_app()
