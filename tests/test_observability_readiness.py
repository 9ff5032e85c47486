"""Which readiness checks fail ``/ready``: required ones, and the rest only when named.

The framework's checks of shared infrastructure (the registry, the event transports) are
reported in the body of ``/ready`` but do not fail it unless ``ready_required_checks``
names them: an outage of something every instance shares would otherwise take every
instance out of the load balancer at once. A real registry is served and stopped here;
the broker's case, on a real RabbitMQ, is in ``tests/test_observability_wiring.py``.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import Any

import aiohttp
import pytest
from pytest_aiohttp import AiohttpClient

import gemstone_aio as gemstone
from gemstone_aio.errors import ServiceConfigurationError
from gemstone_aio.event import InMemoryEventTransport
from gemstone_aio.observability import CheckResult, add_readiness_check
from gemstone_aio.registry import ServiceRegistry
from gemstone_aio.testing import serving
from tests.fixtures.discovery import wait_until


def _service_class(**attrs: object) -> type[gemstone.MicroService]:
    class Stock(gemstone.MicroService):
        name = f"stock_{uuid.uuid4().hex[:8]}"

        @gemstone.exposed_method()
        async def count(self, item: str) -> int:
            return len(item)

    for key, value in attrs.items():
        setattr(Stock, key, value)
    return Stock


def _base(service: gemstone.MicroService) -> str:
    assert service.accessible_at is not None
    return service.accessible_at.rsplit("/", 1)[0]


async def _ready(service: gemstone.MicroService) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(_base(service) + "/ready") as response,
    ):
        body: dict[str, Any] = await response.json()
        return response.status, body


async def _call(service: gemstone.MicroService, method: str, *params: Any) -> dict[str, Any]:
    assert service.accessible_at is not None
    payload = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    async with (
        aiohttp.ClientSession() as session,
        session.post(service.accessible_at, json=payload) as response,
    ):
        reply: dict[str, Any] = await response.json()
        return reply


def _check(body: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [check for check in body["checks"] if check["name"] == name]
    assert isinstance(found, dict)
    return found


class _SwitchableTransport(InMemoryEventTransport):
    """The in-memory transport, reporting itself down while ``up`` is false."""

    up = True

    def readiness(self) -> tuple[bool, str | None]:
        return (True, "in memory") if self.up else (False, "switched off")


# -- the registry: a real one, stopped during the test -----------------------------------


async def test_a_registry_outage_is_reported_but_does_not_fail_ready() -> None:
    registry = ServiceRegistry()
    async with contextlib.AsyncExitStack() as registry_running:
        await registry_running.enter_async_context(serving(registry))
        url = str(registry.accessible_at)
        relaxed = _service_class(service_registry_urls=[url], service_registry_ping_interval=0.1)()
        strict = _service_class(
            service_registry_urls=[url],
            service_registry_ping_interval=0.1,
            ready_required_checks=["registry"],
        )()
        async with serving(relaxed), serving(strict):

            async def both_reached() -> bool:
                for service in (relaxed, strict):
                    status, body = await _ready(service)
                    if status != 200 or not _check(body, "registry")["ok"]:
                        return False
                return True

            await wait_until(both_reached, what="both services to reach the registry")

            # Stop the registry: it shuts down as on SIGTERM and its socket closes.
            await registry_running.aclose()

            async def outage_seen() -> bool:
                _, relaxed_body = await _ready(relaxed)
                _, strict_body = await _ready(strict)
                return not (
                    _check(relaxed_body, "registry")["ok"] or _check(strict_body, "registry")["ok"]
                )

            await wait_until(outage_seen, what="both services to see the registry down")

            status, body = await _ready(relaxed)
            assert status == 200
            assert body["status"] == "ready"
            assert _check(body, "registry") == {
                "name": "registry",
                "ok": False,
                "detail": "no registry answered the last ping",
                "required": False,
            }
            assert (await _call(relaxed, "count", "apple"))["result"] == 5

            # The operator who asked for it gets the old behaviour.
            status, body = await _ready(strict)
            assert status == 503
            assert body["status"] == "not ready"
            assert _check(body, "registry")["required"] is True


# -- event transports -------------------------------------------------------------------


async def test_a_transport_down_is_reported_and_fails_ready_only_when_named(
    aiohttp_client: AiohttpClient,
) -> None:
    relaxed = _service_class(event_transports=[_SwitchableTransport()])()
    strict = _service_class(
        event_transports=[_SwitchableTransport()], ready_required_checks=["events: *"]
    )()
    relaxed_client = await aiohttp_client(relaxed.make_app())
    strict_client = await aiohttp_client(strict.make_app())
    check_name = "events: _SwitchableTransport"
    for client in (relaxed_client, strict_client):
        assert (await client.get("/ready")).status == 200

    for service in (relaxed, strict):
        (transport,) = service.event_transports
        assert isinstance(transport, _SwitchableTransport)
        transport.up = False

    response = await relaxed_client.get("/ready")
    assert response.status == 200
    assert _check(await response.json(), check_name) == {
        "name": check_name,
        "ok": False,
        "detail": "switched off",
        "required": False,
    }
    response = await strict_client.get("/ready")
    assert response.status == 503
    assert _check(await response.json(), check_name)["required"] is True


# -- the service's own checks and the setting --------------------------------------------


async def test_own_checks_are_required_unless_registered_as_optional(
    aiohttp_client: AiohttpClient,
) -> None:
    service = _service_class()()
    app = service.make_app()

    async def database() -> CheckResult:
        return CheckResult("database", True, None)

    async def cache() -> CheckResult:
        return CheckResult("cache", False, "warming up")

    add_readiness_check(app, database)
    add_readiness_check(app, cache, required=False)
    client = await aiohttp_client(app)
    response = await client.get("/ready")
    assert response.status == 200
    body = await response.json()
    assert _check(body, "database") == {
        "name": "database",
        "ok": True,
        "detail": None,
        "required": True,
    }
    assert _check(body, "cache") == {
        "name": "cache",
        "ok": False,
        "detail": "warming up",
        "required": False,
    }


async def test_a_named_optional_check_becomes_required(aiohttp_client: AiohttpClient) -> None:
    service = _service_class(
        ready_required_checks="cache, events: *"
    )()  # as a configurator gives it
    app = service.make_app()

    async def cache() -> CheckResult:
        return CheckResult("cache", False, "warming up")

    add_readiness_check(app, cache, required=False)
    client = await aiohttp_client(app)
    response = await client.get("/ready")
    assert response.status == 503
    body = await response.json()
    assert _check(body, "cache")["required"] is True
    assert _check(body, "events: InMemoryEventTransport")["required"] is True


async def test_a_required_name_that_no_check_reports_fails_ready(
    aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    # A typo, or a registry that is not configured: never passes silently.
    service = _service_class(ready_required_checks=["regsitry"])()
    client = await aiohttp_client(service.make_app())
    with caplog.at_level(logging.WARNING, logger=service.logger.name):
        for _ in range(2):
            response = await client.get("/ready")
            assert response.status == 503
    assert _check(await response.json(), "regsitry") == {
        "name": "regsitry",
        "ok": False,
        "detail": "named in ready_required_checks, but no check reported it",
        "required": True,
    }
    warnings = [r for r in caplog.records if "ready_required_checks names" in r.getMessage()]
    assert len(warnings) == 1  # once, not on every probe
    assert "'regsitry'" in warnings[0].getMessage()


@pytest.mark.parametrize("value", [5, ["registry", ""], [None]])
def test_a_bad_ready_required_checks_value_is_named(value: object) -> None:
    service = _service_class(ready_required_checks=value)()
    with pytest.raises(ServiceConfigurationError, match="ready_required_checks"):
        service.make_app()
