"""``get_service``: from a glob to a client of one live instance.

Policy, per service instance (nothing is shared between services):

- **Lookup.** The strategies are asked in order; the first non-empty answer wins. A
  strategy that fails is skipped (logged); if none answers at all, the last list known
  for the pattern is used, or :class:`RegistryUnavailableError` is raised. An answer
  the backend calls incomplete (a registry that just restarted, whose instances have
  not all pinged again) does not replace the last known list: it is added to it, so the
  first instances back do not take all the calls and nothing known is lost.
- **Cache.** The URLs found for a pattern are kept ``cache_ttl`` seconds (5 s by
  default), so a busy caller does not ask the registry at every call, yet sees new and
  departed instances within seconds. One lookup per pattern is in flight at a time:
  concurrent callers whose cache expired wait for the same answer (single-flight).
- **Balancing.** Round-robin over the cached URLs, from a random starting point (so
  many callers do not all start with the same instance).
- **Liveness.** Before an instance is handed out, a TCP connection to it is tried,
  unless it was seen alive in the last ``cache_ttl`` seconds (a successful call counts).
  An instance that refuses the connection, or whose call fails to connect, is dropped
  from every cached list and set aside for ``quarantine`` seconds; the next instance is
  tried. Set-aside instances are only tried again if nothing else is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from typing import Any

import aiohttp
import yarl

from ..client._errors import ServiceUnavailableError
from ..client._remote_service import RemoteService
from ._base import BaseDiscoveryStrategy, Lookup, RegistryUnavailableError, ServiceNotFoundError

__all__ = ["DiscoveredService", "ServiceLocator"]

_MAX_TRACKED = 1024  # expired bookkeeping is purged once a table grows past this


class DiscoveredService(RemoteService):
    """A :class:`RemoteService` handed out by ``get_service``.

    It tells its locator how calls went: a call that cannot connect drops the instance
    (and still raises :class:`ServiceUnavailableError`; it is not retried, since the
    caller knows whether the call is safe to repeat), and one that gets an answer
    confirms it alive. Closing it is harmless: the locator owns the connection pool.
    """

    def __init__(self, url: str, locator: ServiceLocator, **options: Any) -> None:
        super().__init__(url, **options)
        self._locator = locator

    async def request(self, *args: Any, **kwargs: Any) -> Any:
        """Send one request (see :meth:`RemoteService.request`), reporting reachability."""
        try:
            result = await super().request(*args, **kwargs)
        except ServiceUnavailableError:
            self._locator.mark_dead(self.url)
            raise
        self._locator.mark_alive(self.url)
        return result


class _Entry:
    __slots__ = ("cursor", "expires", "urls")

    def __init__(self, urls: list[str], expires: float) -> None:
        self.urls = urls
        self.expires = expires
        self.cursor = random.randrange(len(urls)) if urls else 0


class ServiceLocator:
    """Finds live instances for glob patterns and hands out clients (see the module doc).

    Args:
        strategies: Asked in order.
        cache_ttl: Seconds a pattern's URLs (and an instance's liveness) are trusted.
        quarantine: Seconds an instance that failed to connect is set aside.
        probe_timeout: Seconds a liveness check may take.
        lookup_timeout: Seconds one strategy may take to answer a lookup.
        logger: Where failures are logged.
    """

    def __init__(
        self,
        strategies: Sequence[BaseDiscoveryStrategy],
        *,
        cache_ttl: float = 5.0,
        quarantine: float = 30.0,
        probe_timeout: float = 1.0,
        lookup_timeout: float = 5.0,
        logger: logging.Logger | None = None,
    ) -> None:
        self.strategies = list(strategies)
        self.cache_ttl = cache_ttl
        self.quarantine = quarantine
        self.probe_timeout = probe_timeout
        self.lookup_timeout = lookup_timeout
        self.logger = logger or logging.getLogger("gemstone_aio.discovery")
        self._entries: dict[str, _Entry] = {}
        self._alive_until: dict[str, float] = {}
        self._dead_until: dict[str, float] = {}
        self._clients: dict[str, DiscoveredService] = {}
        self._session: aiohttp.ClientSession | None = None
        self._inflight: dict[str, asyncio.Task[_Entry]] = {}
        self.lookups = 0
        """How many lookups this locator sent to its strategies (one per refresh)."""

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    # -- public ------------------------------------------------------------------------

    async def get_service(self, pattern: str) -> RemoteService:
        """Return a client of a live instance whose name matches ``pattern``.

        Raises:
            ServiceNotFoundError: No live instance matches.
            RegistryUnavailableError: No strategy answered and nothing is cached.
        """
        entry = self._entries.get(pattern)
        refreshed = False
        if entry is None or entry.expires <= self._now():
            entry = await self._refresh(pattern)
            refreshed = True
        listed = len(entry.urls)
        url = await self._pick(entry)
        if url is None and not refreshed:
            entry = await self._refresh(pattern)
            listed += len(entry.urls)
            url = await self._pick(entry)
        if url is None:
            reason = "no instance accepts connections" if listed else "no instance is registered"
            raise ServiceNotFoundError(pattern, reason)
        return self._client(url)

    def mark_dead(self, url: str) -> None:
        """Drop ``url`` from every cached list and set it aside."""
        now = self._now()
        self._alive_until.pop(url, None)
        self._dead_until[url] = now + self.quarantine
        for entry in self._entries.values():
            if url in entry.urls:
                entry.urls.remove(url)
        _purge(self._dead_until, now)
        self.logger.info("dropped %s: it does not accept connections", url)

    def mark_alive(self, url: str) -> None:
        """Note that ``url`` answered just now."""
        now = self._now()
        self._alive_until[url] = now + self.cache_ttl
        self._dead_until.pop(url, None)
        _purge(self._alive_until, now)

    async def aclose(self) -> None:
        """Close the connection pool the handed-out clients share."""
        inflight, self._inflight = list(self._inflight.values()), {}
        for task in inflight:
            task.cancel()
        for task in inflight:
            with contextlib.suppress(BaseException):
                await task
        self._entries.clear()
        self._clients.clear()
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # -- internals ---------------------------------------------------------------------

    async def _lookup(self, pattern: str) -> Lookup:
        failures: list[str] = []
        answered = False
        complete = True
        self.lookups += 1
        for strategy in self.strategies:
            try:
                async with asyncio.timeout(self.lookup_timeout):
                    found = await strategy.lookup(pattern)
            except Exception as exc:
                self.logger.warning("lookup of %r in %r failed: %s", pattern, strategy, exc)
                failures.append(f"{strategy!r}: {str(exc) or type(exc).__name__}")
                continue
            answered = True
            if found.urls:
                return found
            complete = complete and found.complete
        if not answered:
            raise RegistryUnavailableError(
                f"no registry answered the lookup of {pattern!r}: {'; '.join(failures)}"
            )
        return Lookup([], complete)

    async def _refresh(self, pattern: str) -> _Entry:
        """Look ``pattern`` up once for every caller waiting for it (single-flight)."""
        task = self._inflight.get(pattern)
        if task is None:
            task = asyncio.create_task(self._fresh_entry(pattern))
            self._inflight[pattern] = task
            task.add_done_callback(lambda done: self._refreshed(pattern, done))
        # A caller that gives up does not cancel the lookup the others wait for.
        return await asyncio.shield(task)

    def _refreshed(self, pattern: str, task: asyncio.Task[_Entry]) -> None:
        if self._inflight.get(pattern) is task:
            del self._inflight[pattern]
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every waiter gave up

    async def _fresh_entry(self, pattern: str) -> _Entry:
        known = self._entries.get(pattern)
        try:
            found = await self._lookup(pattern)
        except RegistryUnavailableError:
            if known is None or not known.urls:
                raise
            self.logger.warning("using the last known instances of %r", pattern)
            found = Lookup(list(known.urls), complete=False)
        urls = found.urls
        if not found.complete and known is not None and known.urls:
            # Keep what we knew until a complete answer has it (dead ones are dropped
            # when they refuse a connection), and spread calls over all of them.
            urls = list(dict.fromkeys([*known.urls, *urls]))
        now = self._now()
        dead = self._dead_until
        live = [url for url in urls if dead.get(url, 0.0) <= now] if dead else list(urls)
        # Instances set aside are tried again only when nothing else is left.
        entry = _Entry(live or urls, now + self.cache_ttl)
        if known is not None and not found.complete:
            entry.cursor = known.cursor
        if len(self._entries) >= _MAX_TRACKED:
            for key in [k for k, e in self._entries.items() if e.expires <= now]:
                del self._entries[key]
        self._entries[pattern] = entry
        return entry

    async def _pick(self, entry: _Entry) -> str | None:
        while entry.urls:
            url = entry.urls[entry.cursor % len(entry.urls)]
            entry.cursor += 1
            if self._alive_until.get(url, 0.0) > self._now() or await self._probe(url):
                self._alive_until[url] = self._now() + self.cache_ttl
                return url
            self.mark_dead(url)
        return None

    async def _probe(self, url: str) -> bool:
        parsed = yarl.URL(url)
        if parsed.host is None or parsed.port is None:
            return False
        try:
            async with asyncio.timeout(self.probe_timeout):
                _, writer = await asyncio.open_connection(parsed.host, parsed.port)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    def _client(self, url: str) -> DiscoveredService:
        client = self._clients.get(url)
        if client is None:
            if self._session is None or self._session.closed:
                self._session = aiohttp.ClientSession()
                self._clients.clear()  # they borrowed the old session
            if len(self._clients) >= _MAX_TRACKED:
                self._clients.clear()
            client = self._clients[url] = DiscoveredService(url, self, session=self._session)
        return client


def _purge(table: dict[str, float], now: float) -> None:
    if len(table) > _MAX_TRACKED:
        for key in [k for k, until in table.items() if until <= now]:
            del table[key]
