"""Service discovery: the heartbeat, ``get_service`` and the discovery strategies.

A service with ``service_registry_urls`` (or ``discovery_strategies``) pings every
registry with ``ping(name, accessible_at)`` once it listens and every
``service_registry_ping_interval`` seconds, unregisters on a graceful shutdown, and
finds other services with ``await self.get_service("orders.*")``.

Strategies: :class:`HttpRegistryStrategy` (any JSON-RPC registry, such as
:mod:`gemstone_aio.registry`), :class:`RedisDiscoveryStrategy` (the ``redis`` extra)
and :class:`EtcdDiscoveryStrategy` (the ``etcd`` extra). Write your own by subclassing
:class:`BaseDiscoveryStrategy`.
"""

from __future__ import annotations

from ._base import BaseDiscoveryStrategy, Lookup, RegistryUnavailableError, ServiceNotFoundError
from ._etcd import EtcdDiscoveryStrategy
from ._glob import MAX_PATTERN_LENGTH, glob_matches
from ._heartbeat import Heartbeat
from ._http_registry import DefaultDiscoveryStrategy, HttpDiscoveryStrategy, HttpRegistryStrategy
from ._locator import DiscoveredService, ServiceLocator
from ._redis import RedisDiscoveryStrategy

__all__ = [
    "MAX_PATTERN_LENGTH",
    "BaseDiscoveryStrategy",
    "DefaultDiscoveryStrategy",
    "DiscoveredService",
    "EtcdDiscoveryStrategy",
    "Heartbeat",
    "HttpDiscoveryStrategy",
    "HttpRegistryStrategy",
    "Lookup",
    "RedisDiscoveryStrategy",
    "RegistryUnavailableError",
    "ServiceLocator",
    "ServiceNotFoundError",
    "glob_matches",
]
