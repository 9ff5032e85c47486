"""Service discovery: the heartbeat, ``get_service`` and the discovery strategies.

A service with ``service_registry_urls`` (or ``discovery_strategies``) pings every
registry with ``ping(name, accessible_at)`` once it listens and every
``service_registry_ping_interval`` seconds, unregisters on a graceful shutdown, and
finds other services with ``await self.get_service("orders.*")``.

The clients ``get_service`` returns balance each call over the live instances, eject
failing ones and retry what is safe to retry (:class:`DiscoveredService`,
:class:`CallPolicy`; see ``docs/resilience.md``).

Strategies: :class:`HttpRegistryStrategy` (any JSON-RPC registry, such as
:mod:`gemstone_aio.registry`), :class:`RedisDiscoveryStrategy` (the ``redis`` extra)
and :class:`EtcdDiscoveryStrategy` (the ``etcd`` extra). Write your own by subclassing
:class:`BaseDiscoveryStrategy`.
"""

from __future__ import annotations

from ._balanced import DiscoveredService
from ._base import BaseDiscoveryStrategy, Lookup, RegistryUnavailableError, ServiceNotFoundError
from ._etcd import EtcdDiscoveryStrategy
from ._glob import MAX_PATTERN_LENGTH, glob_matches
from ._heartbeat import Heartbeat
from ._http_registry import DefaultDiscoveryStrategy, HttpDiscoveryStrategy, HttpRegistryStrategy
from ._locator import ServiceLocator
from ._policy import PEER_OUTCOMES, RETRY_REASONS, CallPolicy
from ._redis import RedisDiscoveryStrategy

__all__ = [
    "MAX_PATTERN_LENGTH",
    "PEER_OUTCOMES",
    "RETRY_REASONS",
    "BaseDiscoveryStrategy",
    "CallPolicy",
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
