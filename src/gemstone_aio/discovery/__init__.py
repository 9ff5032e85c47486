"""Service discovery: the heartbeat, ``get_service`` and the discovery strategies.

A service with ``service_registry_urls`` (or ``discovery_strategies``) pings every
registry with ``ping(name, accessible_at)`` once it listens and every
``service_registry_ping_interval`` seconds, unregisters on a graceful shutdown, and
finds other services with ``await self.get_service("orders.*")``.

Strategies: :class:`HttpRegistryStrategy` (any JSON-RPC registry, such as
:mod:`gemstone_aio.registry`) and :class:`RedisDiscoveryStrategy` (the ``redis``
extra). Write your own by subclassing :class:`BaseDiscoveryStrategy`.
"""

from __future__ import annotations

from .base import BaseDiscoveryStrategy, RegistryUnavailableError, ServiceNotFoundError
from .glob import glob_matches
from .heartbeat import Heartbeat
from .http_registry import DefaultDiscoveryStrategy, HttpDiscoveryStrategy, HttpRegistryStrategy
from .lifecycle import Discovery, install_discovery
from .locator import DiscoveredService, ServiceLocator
from .redis_strategy import RedisDiscoveryStrategy

__all__ = [
    "BaseDiscoveryStrategy",
    "DefaultDiscoveryStrategy",
    "DiscoveredService",
    "Discovery",
    "Heartbeat",
    "HttpDiscoveryStrategy",
    "HttpRegistryStrategy",
    "RedisDiscoveryStrategy",
    "RegistryUnavailableError",
    "ServiceLocator",
    "ServiceNotFoundError",
    "glob_matches",
    "install_discovery",
]
