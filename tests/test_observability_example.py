"""The example of docs/observability.md, run against a real aiohttp server."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from pytest_aiohttp import AiohttpClient

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "observability_service.py"


def _rpc(method: str, params: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params or [], "id": 1}


async def test_the_example_service(aiohttp_client: AiohttpClient) -> None:
    service = runpy.run_path(str(EXAMPLE))["Inventory"]()
    client = await aiohttp_client(service.make_app())

    response = await client.post(
        "/api", json=_rpc("take", ["apple"]), headers={"X-Request-Id": "order-42"}
    )
    assert response.headers["X-Request-Id"] == "order-42"
    assert (await response.json())["result"] == 2
    response = await client.post("/api", json=_rpc("take", ["pear"]))
    assert (await response.json())["error"]["data"] == "no 'pear' left"

    stats = (await (await client.post("/api", json=_rpc("statistics"))).json())["result"]
    assert stats["method_calls"]["take"]["success_calls"] == 1
    assert stats["method_calls"]["take"]["failed_calls"] == 1

    families = {
        f.name: f
        for f in text_string_to_metric_families(await (await client.get("/metrics")).text())
    }
    samples = {
        (s.labels["method"], s.labels["code"]): s.value
        for s in families["gemstone_calls"].samples
        if s.name == "gemstone_calls_total"
    }
    assert samples[("take", "ok")] == 1
    assert samples[("take", "-32602")] == 1

    assert (await client.get("/ready")).status == 200
    service.database_up = False
    response = await client.get("/ready")
    assert response.status == 503
    assert (await response.json())["checks"][1] == {
        "name": "database",
        "ok": False,
        "detail": "down",
        "required": True,
    }
