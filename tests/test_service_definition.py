"""Defining services: names, decorators, duplicates, per-instance state."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

import gemstone_aio as gemstone
from gemstone_aio.protocol import get_method_spec


def test_missing_name_is_an_error_naming_the_class() -> None:
    """A service without a name cannot be constructed; the error names the class."""

    class Nameless(gemstone.MicroService):
        pass

    with pytest.raises(gemstone.ServiceConfigurationError, match="Nameless"):
        Nameless()


@pytest.mark.parametrize("value", [0, -1, 1.5, "4", True])
def test_bad_pool_size_is_an_error(value: Any) -> None:
    """``max_parallel_blocking_tasks`` must be a positive integer; the error shows the value."""

    class Service(gemstone.MicroService):
        name = "service"
        max_parallel_blocking_tasks = value

    with pytest.raises(gemstone.ServiceConfigurationError, match=repr(value).replace(".", r"\.")):
        Service()


@pytest.mark.parametrize("name", ["1abc", "_x", "a-b", "a b", "", "a/b", "rpc.discover", "rpc"])
def test_invalid_and_reserved_method_names(name: str) -> None:
    """Names must match ``^[a-zA-Z][a-zA-Z0-9_.]*$`` and not start with ``rpc.``."""
    with pytest.raises(gemstone.ServiceConfigurationError, match="Invalid method name"):
        gemstone.exposed_method(name)


@pytest.mark.parametrize("name", ["a", "math.add", "users.register", "stuff.2", "A_b9"])
def test_valid_method_names(name: str) -> None:
    """Dotted names and digits after the first letter are fine."""

    def method(self: Any) -> None: ...

    assert gemstone.exposed_method(name)(method) is method
    spec = get_method_spec(method)
    assert spec is not None
    assert spec.name == name


def test_decorators_return_the_function_unchanged() -> None:
    """Decorated methods stay plain methods that unit tests can call."""

    class Service(gemstone.MicroService):
        name = "plain"

        @gemstone.exposed_method()
        def add(self, a: int, b: int) -> int:
            return a + b

    assert Service().add(1, 2) == 3


def test_duplicate_names_rejected_at_class_creation() -> None:
    """Two methods exposed under one name fail when the class is created, naming both."""
    with pytest.raises(gemstone.ServiceConfigurationError, match=r"'first' and 'second'.*'same'"):

        class Service(gemstone.MicroService):
            name = "dupes"

            @gemstone.exposed_method("same")
            def first(self) -> None: ...

            @gemstone.exposed_method("same")
            def second(self) -> None: ...


def test_is_coroutine_is_accepted_and_deprecated() -> None:
    """``is_coroutine=`` warns and is ignored: the function's own kind decides."""
    with pytest.warns(DeprecationWarning, match="is_coroutine"):
        decorator = gemstone.exposed_method(is_coroutine=True)

    def method(self: Any) -> None: ...

    spec = get_method_spec(decorator(method))
    assert spec is not None
    assert "is_coroutine" not in spec.extra


class Mixed(gemstone.MicroService):
    name = "mixed"
    secret_value = 42

    @gemstone.exposed_method()
    async def visible(self) -> str:
        return "yes"

    @gemstone.exposed_method("math.add")
    async def add(self, a: int, b: int) -> int:
        return a + b

    def helper(self) -> str:
        return "never over RPC"


@pytest.mark.parametrize(
    "method",
    [
        "helper",
        "start",
        "serve",
        "stop",
        "__init__",
        "make_app",
        "secret_value",
        "name",
        "add",
        "on_service_start",
    ],
)
async def test_only_exposed_methods_are_callable(
    aiohttp_client: AiohttpClient, method: str
) -> None:
    """Helpers, framework methods and attributes are never reachable over RPC."""
    client = await aiohttp_client(Mixed().make_app())
    response = await client.post(
        "/api",
        data=json.dumps({"jsonrpc": "2.0", "method": method, "id": 1}),
        headers={"Content-Type": "application/json"},
    )
    answer = await response.json()
    assert answer["error"]["code"] == -32601


async def test_dotted_names_are_callable(aiohttp_client: AiohttpClient) -> None:
    """A method exposed as ``math.add`` is called by that name."""
    client = await aiohttp_client(Mixed().make_app())
    response = await client.post(
        "/api",
        data=json.dumps({"jsonrpc": "2.0", "method": "math.add", "params": [1, 2], "id": 1}),
        headers={"Content-Type": "application/json"},
    )
    assert (await response.json())["result"] == 3


def test_no_mutable_state_shared_between_instances() -> None:
    """List attributes are copied per instance: changing one service leaves others alone."""

    class Service(gemstone.MicroService):
        name = "lists"
        static_dirs = [("/s", "/tmp")]

    first, second = Service(), Service()
    first.static_dirs.append(("/t", "/tmp"))
    assert second.static_dirs == [("/s", "/tmp")]
    assert Service.static_dirs == [("/s", "/tmp")]
    assert gemstone.MicroService.static_dirs == ()


def test_subclass_inherits_and_extends_methods() -> None:
    """A subclass keeps its parent's exposed methods and may add more."""

    class Child(Mixed):
        name = "child"

        @gemstone.exposed_method()
        async def extra(self) -> int:
            return 1

    assert set(Child.__gemstone_exposed__) == {"visible", "math.add", "extra"}
    assert set(Mixed.__gemstone_exposed__) == {"visible", "math.add"}


@pytest.mark.parametrize(
    ("decorator", "private", "handler_ref"),
    [
        (gemstone.public_method, False, False),
        (gemstone.private_api_method, True, False),
        (gemstone.requires_handler_reference, False, True),
    ],
)
def test_deprecated_decorators_work_and_warn(
    decorator: Any, private: bool, handler_ref: bool
) -> None:
    """The gemstone 0.8 decorators still expose methods, and warn naming the replacement."""

    def method(self: Any, handler: Any = None) -> None: ...

    with pytest.warns(DeprecationWarning, match="exposed_method"):
        decorator(method)
    spec = get_method_spec(method)
    assert spec is not None
    assert (spec.private, spec.requires_handler_reference) == (private, handler_ref)


def test_async_method_warns() -> None:
    """``@async_method`` is accepted with a warning pointing to ``async def``."""

    def method(self: Any) -> None: ...

    with pytest.warns(DeprecationWarning, match="async def"):
        assert gemstone.async_method(method) is method


def test_module_collision_names_both() -> None:
    """A name exposed by the service and by a module is rejected naming both classes."""

    class Tools(gemstone.Module):
        @gemstone.exposed_method("visible")
        async def other(self) -> str:
            return "module"

    class Service(Mixed):
        name = "collide"
        modules = [Tools()]

    with pytest.raises(gemstone.ServiceConfigurationError, match=r"Service.*Tools|Tools.*Service"):
        Service().make_app()


async def test_module_methods_are_served(aiohttp_client: AiohttpClient) -> None:
    """Modules add their methods; ``self.microservice`` is the service."""

    class Tools(gemstone.Module):
        @gemstone.exposed_method("tools.owner")
        async def owner(self) -> str:
            return str(self.microservice.name)

    class Service(gemstone.MicroService):
        name = "with_module"
        modules = [Tools()]

    client = await aiohttp_client(Service().make_app())
    response = await client.post(
        "/api",
        data=json.dumps({"jsonrpc": "2.0", "method": "tools.owner", "id": 1}),
        headers={"Content-Type": "application/json"},
    )
    assert (await response.json())["result"] == "with_module"


def test_accessible_at_is_derived() -> None:
    """``accessible_at`` follows host, port and endpoint unless set explicitly."""

    class Service(gemstone.MicroService):
        name = "urls"
        port = 8123
        endpoint = "/rpc"

    service = Service()
    assert service.accessible_at == "http://127.0.0.1:8123/rpc"
    service.port = 9000
    service.refresh_accessible_at()
    assert service.accessible_at == "http://127.0.0.1:9000/rpc"

    class Fixed(Service):
        accessible_at = "https://api.example.test/rpc"

    fixed = Fixed()
    fixed.port = 1
    fixed.refresh_accessible_at()
    assert fixed.accessible_at == "https://api.example.test/rpc"
