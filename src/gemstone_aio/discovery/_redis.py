"""Discovery through Redis: every instance keeps a key alive; lookups ``SCAN`` for keys.

Any number of hosts share one view without a registry process. Each live instance
owns one key, ``<namespace>:<name>#<sha1(url)>``, whose value is
``{"name": ..., "url": ...}`` in JSON and which expires ``ttl`` seconds after the last
ping. Lookups iterate with ``SCAN MATCH`` (never ``KEYS``, which blocks Redis) and then
check each name exactly against the glob.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import TYPE_CHECKING, Any

from ._base import BaseDiscoveryStrategy
from ._glob import glob_matches, redis_match_pattern

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisDiscoveryStrategy"]

_MGET_CHUNK = 500


def _require_redis() -> Any:
    try:
        import redis.asyncio
    except ImportError as exc:
        raise ImportError(
            "RedisDiscoveryStrategy needs the 'redis' package: pip install 'gemstone-aio[redis]'"
        ) from exc
    return redis.asyncio


class RedisDiscoveryStrategy(BaseDiscoveryStrategy):
    """Heartbeat into and look services up in Redis (needs the ``redis`` extra).

    Args:
        redis_url: A redis-py URL, e.g. ``redis://127.0.0.1:6379/0``.
        ttl: Seconds an instance stays listed after its last ping; keep it a few ping
            intervals long (the default suits the 30 s default interval).
        namespace: The prefix of the keys, so environments can share one Redis.
        timeout: Seconds a Redis command may take.
        scan_count: The ``COUNT`` hint of each ``SCAN`` step.
        time_to_live: The gemstone 0.10 name of ``ttl`` (wins when given).

    Raises:
        ImportError: The ``redis`` package is not installed.
        ValueError: ``ttl`` is not positive.
    """

    def __init__(
        self,
        redis_url: str = "redis://127.0.0.1:6379/0",
        *,
        ttl: float = 90.0,
        namespace: str = "gemstone:discovery",
        timeout: float = 5.0,
        scan_count: int = 500,
        time_to_live: float | None = None,
    ) -> None:
        self._redis_module = _require_redis()
        if time_to_live is not None:
            ttl = time_to_live
        if not ttl > 0:
            raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
        self.redis_url = redis_url
        self.ttl = ttl
        self.namespace = namespace
        self.timeout = timeout
        self.scan_count = scan_count
        self._redis: Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> Redis:
        # Connections belong to one event loop: start afresh in another one.
        loop = asyncio.get_running_loop()
        if self._redis is None or self._loop is not loop:
            self._loop = loop
            self._redis = self._redis_module.from_url(
                self.redis_url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
            )
        return self._redis

    def _key(self, name: str, url: str) -> str:
        digest = hashlib.sha1(url.encode("utf-8"), usedforsecurity=False).hexdigest()
        return f"{self.namespace}:{name}#{digest}"

    async def ping(self, name: str, url: str) -> None:
        """``SET`` the instance's key with an expiry of ``ttl``."""
        value = json.dumps({"name": name, "url": url})
        await self._client().set(self._key(name, url), value, px=max(1, int(self.ttl * 1000)))

    async def unregister(self, name: str, url: str) -> None:
        """``DEL`` the instance's key."""
        await self._client().delete(self._key(name, url))

    async def locate(self, pattern: str) -> list[str]:
        """``SCAN`` for candidate keys, read them, and keep the names matching ``pattern``."""
        redis = self._client()
        prefix = redis_match_pattern(self.namespace)
        match = f"{prefix}:{redis_match_pattern(pattern)}#*"
        keys = [key async for key in redis.scan_iter(match=match, count=self.scan_count)]
        urls: list[str] = []
        for start in range(0, len(keys), _MGET_CHUNK):
            for raw in await redis.mget(keys[start : start + _MGET_CHUNK]):
                entry = _decode(raw)
                if entry is None or not glob_matches(pattern, entry[0]):
                    continue
                if entry[1] not in urls:
                    urls.append(entry[1])
        return urls

    async def aclose(self) -> None:
        """Close the connection pool."""
        redis, self._redis = self._redis, None
        if redis is not None:
            await redis.aclose()

    def __repr__(self) -> str:
        return f"RedisDiscoveryStrategy({self.redis_url!r}, namespace={self.namespace!r})"


def _decode(raw: bytes | str | None) -> tuple[str, str] | None:
    """Return ``(name, url)`` from a key's value, or ``None`` for an expired or foreign one."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    name, url = value.get("name"), value.get("url")
    if isinstance(name, str) and isinstance(url, str):
        return name, url
    return None
