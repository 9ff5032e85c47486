"""A service's discovery: its strategies, heartbeat and locator, and their lifecycle.

``make_app`` calls :func:`install_discovery`, which adds:

- a cleanup context that starts the heartbeat (its tasks wait until the socket
  listens, then ping) and, at the end, stops it;
- an ``on_cleanup`` callback closing the connections once every cleanup context is
  left (so ``on_service_stop`` may still use ``get_service``);
- a stopping callback: ``serve()`` awaits it first on a graceful shutdown, while the
  socket still accepts calls, so the instance unregisters before it stops accepting and
  drains, and callers are not sent to it meanwhile;
- the same in ``on_shutdown``, for applications run some other way (it does nothing if
  the stopping callback already ran).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from ..discovery._base import BaseDiscoveryStrategy
from ..discovery._heartbeat import Heartbeat
from ..discovery._http_registry import HttpRegistryStrategy
from ..discovery._locator import ServiceLocator
from ..discovery._policy import CallPolicy
from ..errors import ServiceConfigurationError
from ..observability._health import READINESS_KEY, CheckResult
from ._tls import client_ssl_context

if TYPE_CHECKING:
    from aiohttp import web

    from ..discovery._balanced import DiscoveredService
    from ._microservice import MicroService

__all__ = ["Discovery", "install_discovery"]

UNREGISTER_TIMEOUT = 2.0
"""Seconds a graceful shutdown waits for the registries to confirm the unregistration."""


def _registry_urls(value: str | Sequence[str]) -> list[str]:
    if isinstance(value, str):  # "http://a/api,http://b/api" from a configurator
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(url) for url in value]


def _positive(service: MicroService, attr: str) -> float:
    value = getattr(service, attr)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ServiceConfigurationError(
            f"{type(service).__qualname__}.{attr} must be a positive number of seconds, "
            f"got {value!r}"
        )
    return float(value)


class Discovery:
    """Everything discovery-related of one service instance (built from its attributes).

    The strategies are the service's ``discovery_strategies`` followed by one
    :class:`HttpRegistryStrategy` per URL in ``service_registry_urls``. HTTPS registries
    and services are called with the ``client_ssl_*`` settings' TLS context.
    """

    def __init__(self, service: MicroService) -> None:
        interval = _positive(service, "service_registry_ping_interval")
        cache_ttl = _positive(service, "service_locate_cache_ttl")
        token = service.service_registry_token
        tls = client_ssl_context(service)
        self.ssl_context = tls
        """The TLS context of calls to registries and services (``None``: the default)."""
        self.service = service
        self.strategies: list[BaseDiscoveryStrategy] = [
            *service.discovery_strategies,
            *(
                HttpRegistryStrategy(url, token=token, ssl_context=tls)
                for url in _registry_urls(service.service_registry_urls)
            ),
        ]
        for strategy in self.strategies:
            if not isinstance(strategy, BaseDiscoveryStrategy):
                raise ServiceConfigurationError(
                    f"discovery_strategies must hold BaseDiscoveryStrategy instances, "
                    f"got {strategy!r}"
                )
        for strategy in self.strategies:
            strategy.acquire()
        self.heartbeat = Heartbeat(
            self.strategies,
            str(service.name),
            lambda: str(service.accessible_at),
            interval,
            service.logger,
        )
        policy = service.call_policy
        if policy is not None and not isinstance(policy, CallPolicy):
            raise ServiceConfigurationError(
                f"{type(service).__qualname__}.call_policy must be a CallPolicy or None, "
                f"got {policy!r}"
            )
        self.locator = ServiceLocator(
            self.strategies,
            cache_ttl=cache_ttl,
            policy=policy,
            logger=service.logger,
            ssl_context=tls,
        )
        self.closed = False

    async def get_service(self, pattern: str) -> DiscoveredService:
        """Return a client of the live instances matching ``pattern`` (see ``MicroService``)."""
        if not self.strategies:
            raise ServiceConfigurationError(
                f"{self.service.name} cannot locate {pattern!r}: no registry is configured "
                "(set service_registry_urls or discovery_strategies)"
            )
        return await self.locator.get_service(pattern)

    async def unregister(self, timeout: float = UNREGISTER_TIMEOUT) -> None:
        """Stop pinging, then tell every registry a ping reached that this instance left."""
        await self.heartbeat.stop()
        await self.heartbeat.unregister(timeout)

    async def aclose(self) -> None:
        """Stop pinging and release the connections, without unregistering.

        The registries then drop this instance when its entries expire, as if the
        process had died; use :meth:`unregister` first to leave at once.
        """
        if self.closed:
            return
        self.closed = True
        await self.heartbeat.stop()
        self.heartbeat.announced.clear()  # nothing left to unregister
        await self.locator.aclose()
        for strategy in self.strategies:
            await strategy.release()

    async def __aenter__(self) -> Discovery:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _registry_check(discovery: Discovery) -> Callable[[], Awaitable[CheckResult]]:
    async def registry_reached() -> CheckResult:
        reached = discovery.heartbeat.reached
        if any(reached.values()):
            return CheckResult("registry", True, "reached")
        if not reached:
            return CheckResult("registry", False, "not pinged yet")
        return CheckResult("registry", False, "no registry answered the last ping")

    return registry_reached


def install_discovery(
    app: web.Application,
    service: MicroService,
    serving: asyncio.Event,
    stopping: list[Callable[[web.Application], Awaitable[None]]] | None = None,
    *,
    heartbeat: bool = True,
) -> None:
    """Add the heartbeat's cleanup context and the unregister-before-drain hooks to ``app``.

    Only closing the lookups' connections is added for a secondary worker process: the
    primary worker registers and unregisters the shared URL.

    Args:
        app: The service's application.
        service: The service.
        serving: Set once the socket listens; the first pings wait for it.
        stopping: Callbacks awaited first on a graceful shutdown (``STOPPING_KEY``).
        heartbeat: Register, ping and unregister (false for a secondary worker).
    """
    running: list[Discovery] = []

    async def discovery_ctx(app: web.Application) -> AsyncIterator[None]:
        discovery = service.discovery
        running.append(discovery)
        discovery.heartbeat.metrics = service.metrics
        readiness = app.get(READINESS_KEY)
        if readiness is not None and discovery.strategies:
            # Reported, not required unless ready_required_checks names it: a registry
            # outage would otherwise take every instance out of rotation at once.
            readiness.optional.append(_registry_check(discovery))
        discovery.heartbeat.start(serving)
        try:
            yield
        finally:
            await discovery.heartbeat.stop()

    async def report_calls(app: web.Application) -> None:
        # The clients of get_service report each attempt, ejection and retry.
        locator = service.discovery.locator
        locator.metrics = service.metrics
        service.metrics.watch_peers(locator.peers)

    async def close_discovery(app: web.Application) -> None:
        running.clear()
        discovery = service._discovery  # the current one, even if made during shutdown
        if discovery is not None:
            await discovery.aclose()

    async def unregister_on_shutdown(app: web.Application) -> None:
        for discovery in running:
            await discovery.unregister()

    app.on_startup.append(report_calls)
    app.on_cleanup.append(close_discovery)
    if not heartbeat:
        return
    app.cleanup_ctx.append(discovery_ctx)
    if stopping is not None:
        stopping.append(unregister_on_shutdown)
    app.on_shutdown.append(unregister_on_shutdown)
