"""Modules: grouped methods, self.microservice, and name collisions at start-up."""

from __future__ import annotations

import pytest
from pytest_aiohttp import AiohttpClient

import gemstone_aio as gemstone
from gemstone_aio.testing import serving


class Greetings(gemstone.Module):
    @gemstone.exposed_method("greetings.hello")
    def hello(self, name: str) -> str:
        return f"{self.microservice.greeting} {name}"  # type: ignore[attr-defined]

    @gemstone.exposed_method("greetings.owner")
    async def owner(self) -> str:
        return str(self.microservice.name)


class Maths(gemstone.Container):
    @gemstone.exposed_method("maths.add")
    async def add(self, a: int, b: int) -> int:
        return a + b


class Host(gemstone.MicroService):
    name = "module_host"
    greeting = "hi"
    modules = [Greetings(), Maths()]

    @gemstone.exposed_method()
    def local(self) -> str:
        return "local"


async def rpc(client: object, method: str, *params: object) -> object:
    response = await client.post(  # type: ignore[attr-defined]
        "/api", json={"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}
    )
    return await response.json()


async def test_module_methods_are_served_with_self_microservice(
    aiohttp_client: AiohttpClient,
) -> None:
    """Module methods are exposed beside the service's and reach it as self.microservice."""
    client = await aiohttp_client(Host().make_app())
    assert (await rpc(client, "greetings.hello", "ann"))["result"] == "hi ann"  # type: ignore[index]
    assert (await rpc(client, "greetings.owner"))["result"] == "module_host"  # type: ignore[index]
    assert (await rpc(client, "maths.add", 2, 3))["result"] == 5  # type: ignore[index]
    assert (await rpc(client, "local"))["result"] == "local"  # type: ignore[index]


def test_container_is_module() -> None:
    """``Container`` (the 0.10 name) is ``Module``."""
    assert gemstone.Container is gemstone.Module


def test_each_service_instance_owns_its_modules() -> None:
    """A module listed on the class is copied per instance: no last-one-wins sharing."""
    first, second = Host(), Host()
    first_module, second_module = first.modules[0], second.modules[0]
    assert first_module is not second_module
    assert first_module.microservice is first
    assert second_module.microservice is second
    assert Host.modules[0] not in (first_module, second_module)


def test_unmounted_module_says_so() -> None:
    """A module not mounted on a service raises a clear error for self.microservice."""
    with pytest.raises(gemstone.GemstoneError, match="Greetings is not mounted on a service"):
        _ = Greetings().microservice


class OtherGreetings(gemstone.Module):
    @gemstone.exposed_method("greetings.hello")
    def hello(self) -> str:
        return "other"


def test_collision_between_modules_names_both() -> None:
    """Two modules exposing one name are rejected, naming the name and both modules."""

    class Clash(gemstone.MicroService):
        name = "clash"
        modules = [Greetings(), OtherGreetings()]

    with pytest.raises(gemstone.ServiceConfigurationError) as caught:
        Clash().make_app()
    assert str(caught.value) == (
        "method name 'greetings.hello' is exposed by both Greetings and OtherGreetings"
    )


def test_collision_between_service_and_module_names_both() -> None:
    """A module method named like one of the service's is rejected too."""

    class Local(gemstone.Module):
        @gemstone.exposed_method("local")
        def local(self) -> str:
            return "module"

    class Clash(Host):
        name = "clash_with_service"
        modules = [Local()]

    with pytest.raises(gemstone.ServiceConfigurationError) as caught:
        Clash().make_app()
    message = str(caught.value)
    assert "'local'" in message
    assert "Clash" in message
    assert "Local" in message


async def test_collision_stops_start_up() -> None:
    """Serving a service with a collision fails before it listens."""

    class Clash(gemstone.MicroService):
        name = "clash_serving"
        modules = [Greetings(), OtherGreetings()]

    service = Clash()
    with pytest.raises(gemstone.ServiceConfigurationError, match="Greetings and OtherGreetings"):
        async with serving(service):
            pytest.fail("the service must not start")
