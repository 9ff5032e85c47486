"""The tutorial's system runs: a registry, an inventory and an orders service, one event."""

from __future__ import annotations

import asyncio
import signal
import sys
from asyncio.subprocess import PIPE
from pathlib import Path

import pytest
from aiohttp.test_utils import unused_port
from examples.tutorial.inventory import Inventory
from examples.tutorial.orders import Orders

import gemstone_aio as gemstone
from gemstone_aio.registry import ServiceRegistry
from gemstone_aio.testing import serving
from tests.fixtures.cli import RunCli, cli_env, wait_for_line

WAIT = 10.0


class QuickInventory(Inventory):
    restock_every = 0.05


async def wait_until(condition: object, what: str) -> None:
    async with asyncio.timeout(WAIT):
        while not condition():  # type: ignore[operator]  # noqa: ASYNC110 -- state of a running service
            await asyncio.sleep(0.02)


async def test_tutorial_system() -> None:
    """Orders finds the inventory through the registry and takes stock out with an event."""
    async with serving(ServiceRegistry()) as registry:
        inventory, orders = QuickInventory(), Orders()
        for service in (inventory, orders):
            service.service_registry_urls = [registry.accessible_at or ""]
            service.unregister_propagation_delay = 0  # nobody caches their addresses
        async with serving(inventory), serving(orders):
            await wait_until(lambda: inventory.restocks > 0, "a periodic restock")
            async with asyncio.timeout(WAIT):  # the first heartbeat is on its way
                while "shop.inventory" not in await registry.list_services():  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            async with gemstone.RemoteService(orders.accessible_at or "") as client:
                assert await client.call("place_order", "apple", 3) == "ordered 3 apple"
                await wait_until(lambda: inventory.stock["apple"] == 7, "the event to arrive")
                with pytest.raises(gemstone.CalledServiceError) as caught:
                    await client.call("place_order", item="pear", quantity=10)
                assert caught.value.code == -32010
                assert caught.value.data == {"item": "pear", "available": 5}  # restocked from 4


# -- the tutorial as written: each service its own process ---------------------------------

ROOT = Path(__file__).resolve().parents[1]


async def _python(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, *args, cwd=ROOT, env=cli_env(env), stdout=PIPE, stderr=PIPE
    )


async def _shop(amqp_url: str | None) -> tuple[dict[str, int], list[asyncio.subprocess.Process]]:
    """Start the registry, the inventory and orders as the tutorial does, on free ports."""
    ports = {"registry": unused_port(), "inventory": unused_port(), "orders": unused_port()}
    env = {"REGISTRY_URL": f"http://127.0.0.1:{ports['registry']}/api"}
    if amqp_url is not None:
        env["GEMSTONE_AMQP_URL"] = amqp_url
    procs = [
        await _python("-m", "gemstone_aio", "registry", "--port", str(ports["registry"]), env=env)
    ]
    await wait_for_line(procs[0].stderr, "serving at")
    for name in ("inventory", "orders"):
        proc = await _python("-m", f"examples.tutorial.{name}", "--port", str(ports[name]), env=env)
        procs.append(proc)
        await wait_for_line(proc.stderr, "serving at")
    async with gemstone.RemoteService(env["REGISTRY_URL"]) as registry:
        async with asyncio.timeout(WAIT):  # each registers as it starts
            while len(await registry.call("list_services")) < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    return ports, procs


async def _stop_all(procs: list[asyncio.subprocess.Process]) -> list[bytes]:
    for proc in reversed(procs):
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    return [(await asyncio.wait_for(p.communicate(), 30))[1] for p in procs]


@pytest.mark.rabbitmq
async def test_the_tutorial_in_separate_processes_with_a_broker(
    rabbitmq_url: str, gemstone_cli: RunCli
) -> None:
    """Steps 1-5 of docs/tutorial.md as written: three processes, RabbitMQ, the CLI call;
    the inventory then has 7 apples."""
    ports, procs = await _shop(rabbitmq_url)
    try:
        registry = f"http://127.0.0.1:{ports['registry']}/api"
        result = await gemstone_cli(
            "call",
            "--registry",
            registry,
            "shop.orders",
            "place_order",
            "item=apple",
            "quantity:=3",
        )
        assert (result.code, result.stdout) == (0, '"ordered 3 apple"\n'), result.stderr
        async with gemstone.RemoteService(f"http://127.0.0.1:{ports['inventory']}/api") as inv:
            async with asyncio.timeout(WAIT):  # the event crosses the broker
                while await inv.call("available", "apple") != 7:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
    finally:
        errors = await _stop_all(procs)
    assert b"no subscriber in this process" not in errors[2]


async def test_the_tutorial_without_a_broker_warns_once(gemstone_cli: RunCli) -> None:
    """Without GEMSTONE_AMQP_URL the event stays in the orders process: stock stays 10, and
    orders logs one WARNING naming the event and how to configure a broker."""
    ports, procs = await _shop(None)
    try:
        async with gemstone.RemoteService(f"http://127.0.0.1:{ports['orders']}/api") as orders:
            for _ in range(2):
                assert await orders.call("place_order", "apple", 1) == "ordered 1 apple"
        async with gemstone.RemoteService(f"http://127.0.0.1:{ports['inventory']}/api") as inv:
            assert await inv.call("available", "apple") == 10
    finally:
        errors = await _stop_all(procs)
    warnings = [line for line in errors[2].decode().splitlines() if "no subscriber" in line]
    assert len(warnings) == 1, errors[2].decode()
    assert "WARNING" in warnings[0]
    assert "'order.placed'" in warnings[0]
    assert "RabbitMqEventTransport" in warnings[0]
