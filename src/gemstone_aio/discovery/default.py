"""The gemstone 0.10 module path of the HTTP registry strategy."""

from __future__ import annotations

from .http_registry import DefaultDiscoveryStrategy, HttpDiscoveryStrategy, HttpRegistryStrategy

__all__ = ["DefaultDiscoveryStrategy", "HttpDiscoveryStrategy", "HttpRegistryStrategy"]
