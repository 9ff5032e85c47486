"""The reference service registry: a small :class:`MicroService` services heartbeat into.

Run it with ``python -m gemstone_aio.registry --host 127.0.0.1 --port 5000`` and point
services at it with ``service_registry_urls = ["http://127.0.0.1:5000/api"]``.

Methods (the gemstone registry protocol, plus two of ours):

- ``ping(name, url)``: the instance of ``name`` at ``url`` is alive (one entry per URL;
  a URL that pings under a new name moves to it).
- ``locate_service(name)``: the URLs of live instances whose name matches the glob
  ``name`` (``*`` and ``?`` are the only wildcards; ``_``, ``%`` and ``[`` are literal).
- ``unregister(name, url)``: forget that instance (sent on graceful shutdown).
- ``list_services()``: every live instance, as ``{name: [url, ...]}``.

An instance expires ``expire_after`` seconds after its last ping (90 s: three of the
default 30 s ping intervals). With ``token`` set, ``ping`` and ``unregister`` need it
in the ``X-Api-Token`` header, so nobody else can register or remove instances;
lookups stay open. The table lives in memory: a restarted registry fills up again
within one ping interval.
"""

from __future__ import annotations

import argparse
import hmac
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import yarl

from .discovery._glob import compile_glob
from .errors import InvalidParams, ServerOverloaded, ServiceConfigurationError
from .protocol._decorators import exposed_method
from .server._microservice import MicroService

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["DEFAULT_EXPIRE_AFTER", "ServiceRegistry", "main"]

DEFAULT_EXPIRE_AFTER = 90.0
"""Seconds without a ping after which an instance is no longer located."""

_MAX_NAME = 256
_MAX_URL = 2048


@dataclass(slots=True)
class _Instance:
    name: str
    last_seen: float


def _shown(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:80] + "...")


def _check_name(name: str) -> None:
    if not name or len(name) > _MAX_NAME or not name.isprintable():
        raise InvalidParams(
            f"name must be 1 to {_MAX_NAME} printable characters, got {_shown(name)}"
        )


def _check_url(url: str) -> None:
    try:
        parsed = yarl.URL(url)
    except ValueError:
        parsed = None
    if (
        parsed is None
        or len(url) > _MAX_URL
        or parsed.scheme not in ("http", "https")
        or not parsed.host
    ):
        raise InvalidParams(f"url must be an absolute http(s) URL, got {_shown(url)}")


class ServiceRegistry(MicroService):
    """An in-memory registry with expiry (see the module documentation).

    Attributes:
        expire_after: Seconds without a ping before an instance is forgotten.
        token: When set, ``ping`` and ``unregister`` require it in ``X-Api-Token``.
        max_instances: The most instances listed at once; more pings of new URLs get
            "Server overloaded" (-32002), so a flood cannot exhaust memory.
    """

    name = "gemstone.registry"
    port = 5000
    expire_after: float = DEFAULT_EXPIRE_AFTER
    token: str | None = None
    max_instances: int = 10_000

    def __init__(self) -> None:
        super().__init__()
        self._instances: dict[str, _Instance] = {}
        self._next_purge = 0.0

    def on_service_start(self) -> None:
        """Check the settings before serving."""
        expire = self.expire_after
        if isinstance(expire, bool) or not isinstance(expire, int | float) or expire <= 0:
            raise ServiceConfigurationError(
                f"expire_after must be a positive number of seconds, got {expire!r}"
            )

    def authenticate_request(self, request: web.Request) -> object:
        """Admit ``ping``/``unregister`` callers: anyone, or those sending ``token``."""
        if self.token is None:
            return "anyone"
        supplied = request.headers.get("X-Api-Token", "")
        return hmac.compare_digest(supplied.encode(), self.token.encode())

    # -- the table ---------------------------------------------------------------------

    def _live(self) -> list[tuple[str, str]]:
        """Return ``(name, url)`` of the live instances, oldest registration first."""
        oldest = time.monotonic() - self.expire_after
        return [(i.name, url) for url, i in self._instances.items() if i.last_seen >= oldest]

    def _purge(self, now: float) -> None:
        if now < self._next_purge:
            return
        self._next_purge = now + self.expire_after / 2
        oldest = now - self.expire_after
        for url in [url for url, i in self._instances.items() if i.last_seen < oldest]:
            del self._instances[url]

    # -- the protocol ------------------------------------------------------------------

    @exposed_method(private=True)
    async def ping(self, name: str, url: str) -> bool:
        """Record that the instance of ``name`` at ``url`` is alive; returns ``true``."""
        _check_name(name)
        _check_url(url)
        now = time.monotonic()
        self._purge(now)
        instance = self._instances.get(url)
        if instance is not None:
            instance.name, instance.last_seen = name, now
            return True
        if len(self._instances) >= self.max_instances:
            self._next_purge = 0.0
            self._purge(now)
            if len(self._instances) >= self.max_instances:
                raise ServerOverloaded(f"the registry holds {self.max_instances} instances")
        self._instances[url] = _Instance(name, now)
        return True

    @exposed_method()
    async def locate_service(self, name: str) -> list[str]:
        """Return the URLs of live instances whose name matches the glob ``name``."""
        pattern = compile_glob(name)
        return [url for found, url in self._live() if pattern.fullmatch(found)]

    @exposed_method(private=True)
    async def unregister(self, name: str, url: str) -> bool:
        """Forget the instance of ``name`` at ``url``; returns whether it was listed."""
        instance = self._instances.get(url)
        if instance is None or instance.name != name:
            return False
        del self._instances[url]
        return True

    @exposed_method()
    async def list_services(self) -> dict[str, list[str]]:
        """Return every live instance as ``{name: [url, ...]}``, names sorted."""
        services: dict[str, list[str]] = {}
        for name, url in self._live():
            services.setdefault(name, []).append(url)
        return dict(sorted(services.items()))


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> None:
    """Run the registry from the command line (``python -m gemstone_aio.registry``)."""
    parser = argparse.ArgumentParser(
        prog="python -m gemstone_aio.registry", description="Run the gemstone service registry."
    )
    parser.add_argument("--host", default=ServiceRegistry.host, help="address to listen on")
    parser.add_argument("--port", type=int, default=ServiceRegistry.port, help="TCP port")
    parser.add_argument(
        "--expire-after",
        type=_positive_float,
        default=DEFAULT_EXPIRE_AFTER,
        help="seconds without a ping before an instance is forgotten",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("GEMSTONE_REGISTRY_TOKEN"),
        help="require this X-Api-Token for ping/unregister (default: $GEMSTONE_REGISTRY_TOKEN)",
    )
    args = parser.parse_args(argv)
    registry = ServiceRegistry()
    registry.skip_configuration = True  # the flags above are its whole configuration
    registry.host, registry.port = args.host, args.port
    registry.expire_after = args.expire_after
    registry.token = args.token or None
    registry.refresh_accessible_at()
    registry.start()


if __name__ == "__main__":
    main()
