"""Discovery through Redis: a sorted set of instances per name, with Redis's own clock.

Any number of hosts share one view without a registry process. For a namespace ``ns``:

- ``ns:n:<name>`` is a sorted set of the URLs of ``name``'s instances, each scored with
  the time (in Redis's clock, milliseconds) it expires: ``ttl`` after its last ping;
- ``ns:names`` is a sorted set of the names, scored with their latest expiry;
- ``ns:u:<sha1(url)>`` holds the name a URL is registered under (one entry per URL: a
  URL pinging under another name moves to it), expiring ``ttl`` after its last ping.

A ping is one script: it records the instance, drops the expired instances of that
name (``ZREMRANGEBYSCORE``: only those, never a scan) and makes the name's set expire
with its last instance. A lookup of a name is one ``ZRANGEBYSCORE`` of that name's set
(``O(log n + instances)``); a glob reads the live names first, then the matching names'
sets in one pipeline. Expired entries are never returned: the scores are compared with
Redis's ``TIME`` inside the scripts, so the hosts' clocks need not agree.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import yarl

from ..tls import redis_tls_options
from ._base import BaseDiscoveryStrategy
from ._glob import check_pattern, compile_glob, has_wildcards, literal_prefix
from ._urls import check_instance_url, is_loopback_host, parse_networks

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisDiscoveryStrategy"]

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: the name's set, the names set, the URL's key. ARGV: name, url, ttl (ms), prefix
# of the names' sets (to take the URL out of another name's set when it moves).
_PING = (
    _NOW
    + """
local ttl = tonumber(ARGV[3])
local expires = now + ttl
local previous = redis.call('GET', KEYS[3])
if previous and previous ~= ARGV[1] then
    redis.call('ZREM', ARGV[4] .. previous, ARGV[2])
end
redis.call('SET', KEYS[3], ARGV[1], 'PX', ttl)
local added = redis.call('ZADD', KEYS[1], expires, ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('PTTL', KEYS[1]) < ttl then
    redis.call('PEXPIRE', KEYS[1], ttl)
end
redis.call('ZADD', KEYS[2], 'GT', expires, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('PTTL', KEYS[2]) < ttl then
    redis.call('PEXPIRE', KEYS[2], ttl)
end
return added
"""
)

# KEYS: the name's set, the URL's key. ARGV: name, url.
_UNREGISTER = """
local removed = redis.call('ZREM', KEYS[1], ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[1] then
    redis.call('DEL', KEYS[2])
end
return removed
"""

# KEYS: a sorted set scored with expiry times. Returns its live members.
_LIVE = (
    _NOW
    + """
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
"""
)


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
        redis_url: A redis-py URL, e.g. ``redis://:password@10.0.0.5:6379/0``;
            ``rediss://`` for TLS (the server is verified against the system store or
            ``ssl_ca_certs``, its host name checked).
        ttl: Seconds an instance stays listed after its last ping; keep it a few ping
            intervals long (the default suits the 30 s default interval).
        namespace: The prefix of the keys, so environments can share one Redis.
        timeout: Seconds a Redis command may take.
        scan_count: Unused since lookups no longer scan (kept for compatibility).
        time_to_live: The gemstone 0.10 name of ``ttl`` (wins when given).
        allowed_networks: When not empty, an announced URL's host must be an IP address
            inside one of these networks (CIDR strings).
        insecure: Allow a Redis on another host without a password in the URL (anyone
            who reaches that Redis could then register or remove instances).
        ssl_ca_certs: With ``rediss://``: the CA bundle (PEM) the server is verified
            against, instead of the system store (redis-py's ``ssl_ca_certs``).
        ssl_certfile: With ``rediss://``: a client certificate (Redis's
            ``tls-auth-clients``); it counts as the credentials a remote Redis needs.
        ssl_keyfile: Its private key (refused if other users can read the file).

    Raises:
        ImportError: The ``redis`` package is not installed.
        ValueError: ``ttl`` is not positive, a network is not valid, the URL names a
            Redis on another host without a password or client certificate (and
            ``insecure`` is not set), or a TLS file is unfit (the message names it).
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
        allowed_networks: str | Sequence[str] = (),
        insecure: bool = False,
        ssl_ca_certs: str | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> None:
        self._redis_module = _require_redis()
        if time_to_live is not None:
            ttl = time_to_live
        if not ttl > 0:
            raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
        self._tls = redis_tls_options(redis_url, ssl_ca_certs, ssl_certfile, ssl_keyfile)
        _check_redis_url(redis_url, insecure or bool(ssl_certfile))
        self.redis_url = redis_url
        self.ttl = ttl
        self.namespace = namespace
        self.timeout = timeout
        self.scan_count = scan_count
        self.allowed_networks = parse_networks(allowed_networks)
        self._redis: Redis | None = None
        self._scripts: dict[str, Any] = {}
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
                **self._tls,
            )
            self._scripts = {
                "ping": self._redis.register_script(_PING),
                "unregister": self._redis.register_script(_UNREGISTER),
                "live": self._redis.register_script(_LIVE),
            }
        return self._redis

    def _name_key(self, name: str) -> str:
        return f"{self.namespace}:n:{name}"

    def _url_key(self, url: str) -> str:
        digest = hashlib.sha1(url.encode("utf-8"), usedforsecurity=False).hexdigest()
        return f"{self.namespace}:u:{digest}"

    async def ping(self, name: str, url: str) -> None:
        """Record the instance (one script: see the module documentation)."""
        check_instance_url(url, self.allowed_networks)
        self._client()
        keys = [self._name_key(name), f"{self.namespace}:names", self._url_key(url)]
        ttl_ms = max(1, int(self.ttl * 1000))
        await self._scripts["ping"](keys, [name, url, ttl_ms, f"{self.namespace}:n:"])

    async def unregister(self, name: str, url: str) -> None:
        """Remove the instance from its name's set."""
        self._client()
        await self._scripts["unregister"]([self._name_key(name), self._url_key(url)], [name, url])

    async def locate(self, pattern: str) -> list[str]:
        """Read the live instances of the name, or of each live name matching the glob."""
        check_pattern(pattern)
        redis = self._client()
        live = self._scripts["live"]
        if not has_wildcards(pattern):
            return _decoded(await live([self._name_key(pattern)]))
        glob, prefix = compile_glob(pattern), literal_prefix(pattern)
        names = [
            name
            for name in _decoded(await live([f"{self.namespace}:names"]))
            if name.startswith(prefix) and glob.matches(name)
        ]
        if not names:
            return []
        async with redis.pipeline(transaction=False) as pipe:
            for name in names:
                await live([self._name_key(name)], client=pipe)
            answers = await pipe.execute()
        return list(dict.fromkeys(url for answer in answers for url in _decoded(answer)))

    async def aclose(self) -> None:
        """Close the connection pool."""
        redis, self._redis = self._redis, None
        if redis is not None:
            await redis.aclose()

    def __repr__(self) -> str:
        return f"RedisDiscoveryStrategy({_without_password(self.redis_url)!r}, namespace={self.namespace!r})"


def _without_password(redis_url: str) -> str:
    try:
        parsed = yarl.URL(redis_url)
    except ValueError:
        return redis_url
    return str(parsed.with_password(None)) if parsed.password else redis_url


def _check_redis_url(redis_url: str, insecure: bool) -> None:
    """Refuse a Redis on another host without a password, unless ``insecure``."""
    try:
        parsed = yarl.URL(redis_url)
    except ValueError:
        raise ValueError(f"redis_url must be a redis:// URL, got {redis_url!r}") from None
    if parsed.scheme == "unix" or insecure or parsed.password:
        return
    host = parsed.host or "127.0.0.1"
    if not is_loopback_host(host):
        raise ValueError(
            f"redis_url names a Redis on {host!r} without a password: anyone who reaches it "
            "could register or remove instances; put the password in the URL "
            "(redis://:PASSWORD@host:6379/0) or pass insecure=True"
        )


def _decoded(values: list[bytes | str]) -> list[str]:
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]
