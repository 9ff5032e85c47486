"""GET /health and GET /ready against a real aiohttp server."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import pytest
from pytest_aiohttp import AiohttpClient

import gemstone_aio as gemstone
from gemstone_aio.observability import READINESS_KEY, CheckResult, add_readiness_check
from gemstone_aio.testing import serving


def _service_class(**attrs: object) -> type[gemstone.MicroService]:
    class Probe(gemstone.MicroService):
        name = f"probe_{uuid.uuid4().hex[:8]}"

        @gemstone.exposed_method()
        async def ping(self) -> str:
            return "pong"

    for key, value in attrs.items():
        setattr(Probe, key, value)
    return Probe


async def test_health_answers_ok_json(aiohttp_client: AiohttpClient) -> None:
    service = _service_class()()
    client = await aiohttp_client(service.make_app())
    response = await client.get("/health")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == {"status": "ok", "service": service.name}
    assert response.headers["Cache-Control"] == "no-store"


async def test_ready_after_startup_lists_the_started_check(aiohttp_client: AiohttpClient) -> None:
    service = _service_class()()
    client = await aiohttp_client(service.make_app())
    response = await client.get("/ready")
    assert response.status == 200
    assert await response.json() == {
        "status": "ready",
        "service": service.name,
        "checks": [
            {"name": "started", "ok": True, "detail": None, "required": True},
            # Every service has an event transport (in-memory by default): always ready,
            # and reported only (shared infrastructure, see ready_required_checks).
            {
                "name": "events: InMemoryEventTransport",
                "ok": True,
                "detail": "in memory",
                "required": False,
            },
        ],
    }


async def test_ready_flips_with_a_registered_check(aiohttp_client: AiohttpClient) -> None:
    service = _service_class()()
    app = service.make_app()
    connected = True

    async def broker() -> CheckResult:
        return CheckResult("broker", connected, "connected" if connected else "connection lost")

    add_readiness_check(app, broker)
    client = await aiohttp_client(app)

    response = await client.get("/ready")
    assert response.status == 200
    assert (await response.json())["checks"][1] == {
        "name": "broker",
        "ok": True,
        "detail": "connected",
        "required": True,
    }

    connected = False
    response = await client.get("/ready")
    assert response.status == 503
    body = await response.json()
    assert body["status"] == "not ready"
    assert body["checks"][1] == {
        "name": "broker",
        "ok": False,
        "detail": "connection lost",
        "required": True,
    }

    connected = True
    assert (await client.get("/ready")).status == 200


async def test_a_raising_check_fails_without_leaking_its_traceback(
    aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    service = _service_class()()
    app = service.make_app()

    async def broken() -> tuple[str, bool, str | None]:
        raise RuntimeError("password=hunter2")

    app[READINESS_KEY].checks.append(broken)
    client = await aiohttp_client(app)
    response = await client.get("/ready")
    assert response.status == 503
    text = await response.text()
    assert "hunter2" not in text
    assert "Traceback" not in text
    check = (await response.json())["checks"][1]
    assert check["ok"] is False
    assert check["detail"] == "check raised RuntimeError"
    assert check["name"].endswith("broken")
    failures = [r for r in caplog.records if r.exc_info and "readiness check" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].exc_info is not None
    assert isinstance(failures[0].exc_info[1], RuntimeError)


async def test_a_hanging_check_times_out(aiohttp_client: AiohttpClient) -> None:
    service = _service_class(ready_check_timeout=0.05)()
    app = service.make_app()
    never = asyncio.Event()

    async def hanging() -> tuple[str, bool, str | None]:
        await never.wait()
        return ("hanging", True, None)

    add_readiness_check(app, hanging)
    client = await aiohttp_client(app)
    response = await client.get("/ready")
    assert response.status == 503
    check = (await response.json())["checks"][1]
    assert check["ok"] is False
    assert check["detail"] == "timed out after 0.05 s"


async def test_not_ready_before_start_and_after_shutdown(aiohttp_client: AiohttpClient) -> None:
    service = _service_class()()
    app = service.make_app()
    state = app[READINESS_KEY]
    ready, results = await state.evaluate()
    assert not ready
    assert results[0] == CheckResult("started", False, "not serving")

    client = await aiohttp_client(app)
    assert (await client.get("/ready")).status == 200
    await client.close()  # shutdown and cleanup, as on SIGTERM
    ready, results = await state.evaluate()
    assert not ready
    assert results[0] == CheckResult("started", False, "not serving")


async def test_ready_on_a_listening_server() -> None:
    service = _service_class()()
    async with serving(service) as running:
        base = running.accessible_at
        assert base is not None
        url = base.rsplit("/", 1)[0] + "/ready"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 200
            assert (await response.json())["status"] == "ready"


async def test_paths_are_configurable_and_can_be_turned_off(aiohttp_client: AiohttpClient) -> None:
    service = _service_class(health_path="/-/live", ready_path=None)()
    client = await aiohttp_client(service.make_app())
    assert (await client.get("/-/live")).status == 200
    assert (await client.get("/health")).status == 404
    assert (await client.get("/ready")).status == 404


async def test_probes_are_not_counted_as_calls(aiohttp_client: AiohttpClient) -> None:
    service = _service_class(use_statistics=True)()
    client = await aiohttp_client(service.make_app())
    for _ in range(3):
        assert (await client.get("/health")).status == 200
        assert (await client.get("/ready")).status == 200
    response = await client.post("/api", json={"jsonrpc": "2.0", "method": "statistics", "id": 1})
    stats = (await response.json())["result"]
    assert stats["method_calls_count"] == 0
    assert stats["method_calls"] == {}
