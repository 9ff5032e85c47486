"""Everything kept for code written against gemstone 0.9/0.10 and earlier gemstone-aio.

One place for the old API:

- the deprecated decorators (``public_method``, ``private_api_method``,
  ``requires_handler_reference``, ``async_method``): they still work, and warn;
- the old module paths (``gemstone_aio.event.transport``,
  ``gemstone_aio.config.configurable``, ``gemstone_aio.core.app``, ...): an import hook
  serves each as a module holding the names it had, taken from where they live now.
  Importing one does not warn: the 0.10 paths are part of the documented API.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

from .protocol._decorators import METHOD_ATTR, exposed_method, get_method_spec

__all__ = [
    "LEGACY_MODULES",
    "async_method",
    "install_legacy_paths",
    "private_api_method",
    "public_method",
    "requires_handler_reference",
]

F = TypeVar("F", bound=Callable[..., Any])


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"@{old} is deprecated; use {new} instead", DeprecationWarning, stacklevel=3)


def public_method(func: F) -> F:
    """Deprecated since gemstone 0.9: use ``@exposed_method()``."""
    _deprecated("public_method", "@exposed_method()")
    if get_method_spec(func) is not None:
        # Already exposed by @requires_handler_reference below it: keep its flags.
        return func
    return exposed_method()(func)


def private_api_method(func: F) -> F:
    """Deprecated since gemstone 0.9: use ``@exposed_method(private=True)``."""
    _deprecated("private_api_method", "@exposed_method(private=True)")
    spec = get_method_spec(func)
    if spec is None:
        return exposed_method(private=True)(func)
    setattr(func, METHOD_ATTR, dataclasses.replace(spec, private=True))
    return func


def requires_handler_reference(func: F) -> F:
    """Deprecated since gemstone 0.9: use ``@exposed_method(requires_handler_reference=True)``.

    Works above or below ``@public_method``/``@private_api_method``.
    """
    _deprecated("requires_handler_reference", "@exposed_method(requires_handler_reference=True)")
    spec = get_method_spec(func)
    if spec is None:
        # Applied before the exposing decorator: remember the flag for it.
        return exposed_method(requires_handler_reference=True)(func)
    setattr(func, METHOD_ATTR, dataclasses.replace(spec, requires_handler_reference=True))
    return func


def async_method(func: F) -> F:
    """Deprecated since gemstone 0.9: write ``async def`` instead.

    Kept so old code imports and runs; it changes nothing about the method.
    """
    _deprecated("async_method", "'async def'")
    return func


LEGACY_MODULES: Final[dict[str, tuple[str, ...]]] = {
    # gemstone 0.10's documented paths
    "gemstone_aio.event.transport": ("gemstone_aio.event",),
    "gemstone_aio.config.configurable": ("gemstone_aio.config._configurable",),
    "gemstone_aio.config.configurator": ("gemstone_aio.config._configurator",),
    "gemstone_aio.client.remote_service": (
        "gemstone_aio.client._remote_service",
        "gemstone_aio.client._blocking",
    ),
    "gemstone_aio.client.helpers": ("gemstone_aio.client._helpers",),
    "gemstone_aio.discovery.default": ("gemstone_aio.discovery._http_registry",),
    # gemstone 0.9's validation strategy paths
    "gemstone_aio.auth.base": ("gemstone_aio.auth._strategies",),
    "gemstone_aio.auth.base.validation_strategy": ("gemstone_aio.auth._strategies",),
    "gemstone_aio.auth.validation_strategies": ("gemstone_aio.auth._strategies",),
    "gemstone_aio.auth.validation_strategies.header_strategy": ("gemstone_aio.auth._strategies",),
    "gemstone_aio.auth.validation_strategies.basic_cookie_strategy": (
        "gemstone_aio.auth._strategies",
    ),
    # gemstone-aio's first layout (core/ held the protocol and the server together)
    "gemstone_aio.core": (),
    "gemstone_aio.core.jsonrpc": ("gemstone_aio.protocol._jsonrpc",),
    "gemstone_aio.core.params": ("gemstone_aio.protocol._params",),
    "gemstone_aio.core.router": ("gemstone_aio.protocol._router", "gemstone_aio.protocol._context"),
    "gemstone_aio.core.concurrency": ("gemstone_aio.protocol._blocking",),
    "gemstone_aio.core.decorators": ("gemstone_aio.protocol._decorators", "gemstone_aio._compat"),
    "gemstone_aio.core.microservice": ("gemstone_aio.server._microservice",),
    "gemstone_aio.core.module": ("gemstone_aio.server._module",),
    "gemstone_aio.core.app": ("gemstone_aio.server._app",),
    "gemstone_aio.core.serving": ("gemstone_aio.server._serving",),
    "gemstone_aio.core.handlers": ("gemstone_aio.server._handlers",),
    "gemstone_aio.core.periodic": ("gemstone_aio.server._periodic",),
    "gemstone_aio.core.templates": ("gemstone_aio.server._templates",),
    "gemstone_aio.openrpc": ("gemstone_aio.selfdescription._openrpc",),
}
"""Old module path → the modules whose public names it holds now."""

_PACKAGES: Final = frozenset(
    name for name in LEGACY_MODULES if any(other.startswith(name + ".") for other in LEGACY_MODULES)
)


class _LegacyLoader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = types.ModuleType(
            spec.name, f"Compatibility path: the names of {spec.name}, from where they live now."
        )
        exported: list[str] = []
        for source in LEGACY_MODULES[spec.name]:
            target = importlib.import_module(source)
            names: Sequence[str] = getattr(target, "__all__", ())
            for name in names:
                if name not in ("LEGACY_MODULES", "install_legacy_paths"):
                    setattr(module, name, getattr(target, name))
                    exported.append(name)
        module.__all__ = sorted(set(exported))  # type: ignore[attr-defined]
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        return None


class _LegacyFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in LEGACY_MODULES:
            return None
        return importlib.machinery.ModuleSpec(fullname, _LOADER, is_package=fullname in _PACKAGES)


_LOADER: Final = _LegacyLoader()
_FINDER: Final = _LegacyFinder()


def install_legacy_paths() -> None:
    """Make the old module paths importable (done once, when ``gemstone_aio`` is imported)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.append(_FINDER)
