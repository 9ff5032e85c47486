"""Leases shared by the instances of a service: who runs a once-per-cluster task.

A lease is a key that one owner holds for a time-to-live and renews while it lives; when
the owner dies, the key expires and another instance takes it. The store also keeps when
a task last ran, on the store's clock (so the instances' clocks need not agree).
"""

from __future__ import annotations

import abc
import importlib
from typing import TYPE_CHECKING, Any, Final

from ..errors import ServiceConfigurationError
from ..tls import redis_tls_options

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["BaseLeaseStore", "RedisLeaseStore"]

# Take the lease if it is free, renew it if we hold it: one round trip, atomically.
_ACQUIRE_OR_RENEW: Final = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
end
if not holder then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
end
return 0
"""

_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class BaseLeaseStore(abc.ABC):
    """Where the leases of once-per-cluster tasks live. Subclass it for another store."""

    @abc.abstractmethod
    async def acquire(self, key: str, owner: str, ttl: float) -> bool:
        """Take the lease ``key`` for ``owner`` for ``ttl`` seconds, or renew it if held.

        Returns:
            True when ``owner`` holds the lease now.
        """

    @abc.abstractmethod
    async def release(self, key: str, owner: str) -> None:
        """Give the lease up if ``owner`` holds it (on shutdown: another takes over at once)."""

    @abc.abstractmethod
    async def now(self) -> float:
        """The store's clock, in seconds."""

    @abc.abstractmethod
    async def last_run(self, key: str) -> float | None:
        """When the task of ``key`` last started (the store's clock), or ``None``."""

    @abc.abstractmethod
    async def mark_run(self, key: str, when: float, keep: float) -> None:
        """Record that the task of ``key`` started at ``when``; forget it after ``keep`` s."""

    async def aclose(self) -> None:  # noqa: B027 - optional for stores without resources
        """Close the store's connections."""

    def clone(self) -> BaseLeaseStore:
        """An unconnected copy for another service instance (the default: ``self``)."""
        return self


def _redis_module() -> Any:
    try:
        return importlib.import_module("redis.asyncio")
    except ImportError:
        raise ServiceConfigurationError(
            "RedisLeaseStore needs the redis extra: pip install 'gemstone-aio[redis]'"
        ) from None


class RedisLeaseStore(BaseLeaseStore):
    """Leases in Redis: ``SET NX PX`` to take one, a script to renew or release atomically.

    Args:
        url: The Redis URL (``redis://host:6379/0``; ``rediss://`` for TLS).
        prefix: Prefix of the keys (``gemstone.lease.``).
        ssl_ca_certs: With ``rediss://``: the CA bundle the server is verified against
            (default: the system store).
        ssl_certfile: With ``rediss://``: a client certificate to present.
        ssl_keyfile: Its private key (refused if other users can read the file).
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "gemstone.lease.",
        ssl_ca_certs: str | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.ssl_ca_certs, self.ssl_certfile, self.ssl_keyfile = (
            ssl_ca_certs,
            ssl_certfile,
            ssl_keyfile,
        )
        self._tls = redis_tls_options(url, ssl_ca_certs, ssl_certfile, ssl_keyfile)
        self._client: Redis | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.prefix!r})"  # the URL may hold a password

    def clone(self) -> RedisLeaseStore:
        """An unconnected copy with the same settings."""
        return RedisLeaseStore(
            self.url,
            prefix=self.prefix,
            ssl_ca_certs=self.ssl_ca_certs,
            ssl_certfile=self.ssl_certfile,
            ssl_keyfile=self.ssl_keyfile,
        )

    def _redis(self) -> Redis:
        if self._client is None:
            self._client = _redis_module().Redis.from_url(self.url, socket_timeout=5, **self._tls)
        return self._client

    async def acquire(self, key: str, owner: str, ttl: float) -> bool:
        """Take or renew the lease (one atomic script)."""
        held = await self._redis().eval(
            _ACQUIRE_OR_RENEW, 1, self.prefix + key, owner, max(int(ttl * 1000), 1)
        )
        return bool(held)

    async def release(self, key: str, owner: str) -> None:
        """Delete the lease if ``owner`` holds it."""
        await self._redis().eval(_RELEASE, 1, self.prefix + key, owner)

    async def now(self) -> float:
        """Redis's ``TIME``."""
        seconds, micros = await self._redis().time()
        return float(seconds) + micros / 1e6

    async def last_run(self, key: str) -> float | None:
        """Read ``<prefix><key>.last``."""
        value = await self._redis().get(self.prefix + key + ".last")
        return None if value is None else float(value)

    async def mark_run(self, key: str, when: float, keep: float) -> None:
        """Write ``<prefix><key>.last``, expiring after ``keep`` seconds."""
        await self._redis().set(
            self.prefix + key + ".last", repr(when), px=max(int(keep * 1000), 1)
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
