"""The old API in its one compatibility place: module paths and deprecated decorators."""

from __future__ import annotations

import importlib
import inspect

import pytest

import gemstone_aio as gemstone
from gemstone_aio._compat import LEGACY_MODULES


@pytest.mark.parametrize("path", sorted(LEGACY_MODULES))
def test_every_old_module_path_imports_and_holds_names(path: str) -> None:
    """Each old path is a module whose names are the objects that live elsewhere now."""
    module = importlib.import_module(path)
    for name in module.__all__:
        value = getattr(module, name)
        for source in LEGACY_MODULES[path]:
            origin = importlib.import_module(source)
            if hasattr(origin, name):
                assert getattr(origin, name) is value
                break
        else:
            pytest.fail(f"{path}.{name} comes from none of {LEGACY_MODULES[path]}")
    if path != "gemstone_aio.core":
        assert module.__all__, f"{path} holds no names"


@pytest.mark.parametrize(
    ("statement", "name", "expected"),
    [
        (
            "from gemstone_aio.event.transport import X",
            "RabbitMqEventTransport",
            "RabbitMqEventTransport",
        ),
        ("from gemstone_aio.event.transport import X", "BaseEventTransport", "BaseEventTransport"),
        ("from gemstone_aio.config.configurable import X", "Configurable", "Configurable"),
        (
            "from gemstone_aio.config.configurator import X",
            "CommandLineConfigurator",
            "CommandLineConfigurator",
        ),
        (
            "from gemstone_aio.config.configurator import X",
            "JsonFileConfigurator",
            "JsonFileConfigurator",
        ),
        ("from gemstone_aio.client.remote_service import X", "RemoteService", "RemoteService"),
        ("from gemstone_aio.client.remote_service import X", "AsyncMethodCall", "AsyncMethodCall"),
        (
            "from gemstone_aio.auth.validation_strategies.header_strategy import X",
            "HeaderValidationStrategy",
            "HeaderValidationStrategy",
        ),
        (
            "from gemstone_aio.auth.validation_strategies.basic_cookie_strategy import X",
            "BasicCookieStrategy",
            "BasicCookieStrategy",
        ),
        (
            "from gemstone_aio.auth.base.validation_strategy import X",
            "BaseValidationStrategy",
            "BaseValidationStrategy",
        ),
        ("from gemstone_aio.core.microservice import X", "MicroService", "MicroService"),
        ("from gemstone_aio.core.decorators import X", "public_method", "public_method"),
    ],
)
def test_the_documented_imports_give_the_public_objects(
    statement: str, name: str, expected: str
) -> None:
    """``from <old path> import <name>`` works and gives the top-level object."""
    namespace: dict[str, object] = {}
    exec(statement.replace("X", name), namespace)  # the very statement old code has
    assert namespace[name] is getattr(gemstone, expected)


def test_old_discovery_path_gives_the_http_registry_strategy() -> None:
    """gemstone 0.10's ``discovery.default`` holds the HTTP registry strategy."""
    module = importlib.import_module("gemstone_aio.discovery.default")
    from gemstone_aio.discovery import HttpRegistryStrategy

    assert module.DefaultDiscoveryStrategy is HttpRegistryStrategy


def test_an_old_path_as_attribute_after_import() -> None:
    """``import gemstone_aio.event.transport`` then attribute access, as old code does."""
    module = importlib.import_module("gemstone_aio.event.transport")
    event = importlib.import_module("gemstone_aio.event")
    assert event.transport is module


def test_old_paths_are_not_public_attributes_until_imported() -> None:
    """The old paths do not add names to the packages' surface by themselves."""
    fresh = importlib.import_module("gemstone_aio.config")
    assert "configurable" not in fresh.__all__


@pytest.mark.parametrize(
    ("decorator", "private", "handler"),
    [
        (gemstone.public_method, False, False),
        (gemstone.private_api_method, True, False),
        (gemstone.requires_handler_reference, False, True),
    ],
)
def test_deprecated_decorators_expose_and_warn(decorator, private: bool, handler: bool) -> None:
    """The 0.9 decorators still expose the method, with a DeprecationWarning."""

    def method(self, x: int) -> int:
        return x

    with pytest.warns(DeprecationWarning, match="deprecated"):
        decorator(method)
    spec = gemstone.protocol.get_method_spec(method)
    assert spec is not None
    assert spec.private is private
    assert spec.requires_handler_reference is handler


def test_async_method_changes_nothing_and_warns() -> None:
    """``@async_method`` is kept for old code: the function's own kind decides."""

    async def method(self) -> None:
        return None

    with pytest.warns(DeprecationWarning, match="async def"):
        assert gemstone.async_method(method) is method
    assert inspect.iscoroutinefunction(method)
