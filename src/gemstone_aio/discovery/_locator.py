"""``get_service``: from a glob to a client of the live instances it names.

Policy, per service instance (nothing is shared between services):

- **Lookup.** The strategies are asked in order; the first non-empty answer wins. A
  strategy that fails is skipped (logged); if none answers at all, the last list known
  for the pattern is used, or :class:`RegistryUnavailableError` is raised. An answer
  the backend calls incomplete (a registry that just restarted, whose instances have
  not all pinged again) does not replace the last known list: it is added to it, so the
  first instances back do not take all the calls and nothing known is lost.
- **Cache.** The URLs found for a pattern are kept ``cache_ttl`` seconds (5 s by
  default) from when the lookup was sent, so a busy caller does not ask the registry at
  every call, yet sees new and departed instances within seconds (and never after an
  unregistered instance's propagation delay ends). One lookup per pattern is in flight
  at a time: concurrent callers whose cache expired wait for the same answer.
- **Balancing.** Each call takes two candidates, the next instance in round-robin order
  (from a random starting point) and a random other, and goes to the one with fewer
  calls in flight (ties go to the round-robin one, so an idle caller takes the
  instances in turn, and a busy one steers around an instance that stopped answering).
- **Outlier ejection.** Consecutive failures eject an instance (a refused connection at
  once) for a time that doubles while it keeps failing; when it ends, an HTTP probe
  (any answer) brings it back on probation, and its next failure ejects it again. When
  every instance is ejected, the one whose ejection ends first is used.
- **Liveness.** Before ``get_service`` hands out an instance not seen alive in the last
  ``cache_ttl`` seconds (a successful call counts), a TCP connection to it is tried.

What the returned client retries is in :class:`DiscoveredService`; the settings are a
:class:`CallPolicy`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Iterator, Sequence
from typing import Any, Final

import aiohttp
import yarl

from ..client._remote_service import RemoteService, decode_reply, single_result
from ..client._wire import make_message, next_id
from ..observability._metrics import MetricsHooks
from ..protocol import _jsonrpc as jsonrpc
from ._balanced import DiscoveredService
from ._base import BaseDiscoveryStrategy, Lookup, RegistryUnavailableError, ServiceNotFoundError
from ._policy import CallPolicy, Peer, RetryBudget

__all__ = ["DiscoveredService", "ServiceLocator"]

_MAX_TRACKED = 1024  # expired bookkeeping is purged once a table grows past this
DISCOVER_TIMEOUT: Final = 2.0
"""Seconds the ``rpc.discover`` that tells a service's idempotent methods may take."""
_NOTHING: Final[frozenset[str]] = frozenset()


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
        policy: Balancing, ejection and retries (:class:`CallPolicy`; its defaults).
        lookup_timeout: Seconds one strategy may take to answer a lookup.
        logger: Where failures are logged.
        ssl_context: The TLS context of the connections to ``https://`` instances
            (``None``: verified against the system store).

    Attributes:
        metrics: Told of every attempt, ejection and retry (the service's metrics hooks).
        lookups: How many lookups this locator sent to its strategies (one per refresh).
    """

    def __init__(
        self,
        strategies: Sequence[BaseDiscoveryStrategy],
        *,
        cache_ttl: float = 5.0,
        policy: CallPolicy | None = None,
        lookup_timeout: float = 5.0,
        logger: logging.Logger | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.strategies = list(strategies)
        self.ssl_context = ssl_context
        self.cache_ttl = cache_ttl
        self.policy = policy or CallPolicy()
        self.lookup_timeout = lookup_timeout
        self.logger = logger or logging.getLogger("gemstone_aio.discovery")
        self.metrics = MetricsHooks()
        self.lookups = 0
        self._entries: dict[str, _Entry] = {}
        self._peers: dict[str, Peer] = {}
        self._purge_peers_at = _MAX_TRACKED
        self._budgets: dict[str, RetryBudget] = {}
        self._idempotent: dict[str, tuple[frozenset[str], float]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._inflight: dict[str, asyncio.Task[_Entry]] = {}
        self._asking: dict[str, asyncio.Task[frozenset[str]]] = {}

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    # -- public ------------------------------------------------------------------------

    async def get_service(self, pattern: str) -> DiscoveredService:
        """Return a client of the live instances whose name matches ``pattern``.

        An instance is picked now (the client's ``url``, where its first call goes);
        later calls are balanced afresh, and retries go to other instances.

        Raises:
            ServiceNotFoundError: No live instance matches.
            RegistryUnavailableError: No strategy answered and nothing is cached.
        """
        entry, refreshed = await self._entry(pattern)
        listed = len(entry.urls)
        peer = await self._hand_out(entry)
        if peer is None and not refreshed:
            entry = await self._refresh(pattern)
            listed += len(entry.urls)
            peer = await self._hand_out(entry)
        if peer is None:
            reason = "no instance accepts connections" if listed else "no instance is registered"
            raise ServiceNotFoundError(pattern, reason)
        return DiscoveredService(pattern, self, peer.url, entry)

    def mark_dead(self, url: str) -> None:
        """Eject ``url`` as if it had refused a connection."""
        peer = self._peer(url)
        if not peer.ejected_until:
            self._eject(peer, "it does not accept connections")

    def mark_alive(self, url: str) -> None:
        """Note that ``url`` answered just now."""
        self._succeeded(self._peer(url))

    def peers(self) -> Iterator[tuple[str, int, bool]]:
        """``(url, calls in flight, ejected)`` of every instance this locator tracks."""
        for url, peer in list(self._peers.items()):
            yield url, peer.in_flight, bool(peer.ejected_until)

    def peer(self, url: str) -> Peer | None:
        """What this locator knows of the instance at ``url`` (``None``: nothing yet)."""
        return self._peers.get(url)

    def session(self) -> aiohttp.ClientSession:
        """The connection pool every handed-out client shares (opened on first use)."""
        if self._session is None or self._session.closed:
            tls = self.ssl_context
            connector = aiohttp.TCPConnector(ssl=tls) if tls is not None else None
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def aclose(self) -> None:
        """Close the connection pool the handed-out clients share."""
        tasks = [*self._inflight.values(), *self._asking.values()]
        tasks += [peer.probing for peer in self._peers.values() if peer.probing is not None]
        self._inflight, self._asking = {}, {}
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        self._entries.clear()
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # -- what clients report -----------------------------------------------------------

    def started(self, peer: Peer) -> None:
        """An attempt to ``peer`` begins."""
        peer.in_flight += 1

    def finished(self, peer: Peer, outcome: str, duration: float) -> None:
        """An attempt to ``peer`` ended with ``outcome`` (one of ``PEER_OUTCOMES``)."""
        peer.in_flight -= 1
        self.metrics.peer_call(peer.url, outcome, duration)
        if outcome == "ok":
            self._succeeded(peer)
        elif outcome == "connect_failed":
            if not peer.ejected_until:
                self._eject(peer, "it does not accept connections")
        elif outcome != "cancelled" and not peer.ejected_until:
            peer.failures += 1
            if peer.probation or peer.failures >= self.policy.failure_threshold:
                self._eject(peer, f"{peer.failures} failed call(s) in a row, the last {outcome}")

    def retry_budget(self, pattern: str) -> RetryBudget:
        """The retry budget of the calls made through ``get_service(pattern)``."""
        budget = self._budgets.get(pattern)
        if budget is None:
            if len(self._budgets) >= _MAX_TRACKED:
                self._budgets.clear()
            policy = self.policy
            budget = self._budgets[pattern] = RetryBudget(policy.retry_ratio, policy.retry_reserve)
        return budget

    async def pick(self, pattern: str, tried: set[str]) -> Peer | None:
        """The instance the next attempt of a call goes to, none of ``tried``."""
        entry, _ = await self._entry(pattern)
        return self._choose(entry, tried)

    def current(self, pattern: str, entry: object) -> bool:
        """Whether ``entry`` (handed out with a client) is still the pattern's fresh list."""
        return (
            self._entries.get(pattern) is entry
            and isinstance(entry, _Entry)
            and (entry.expires > self._now())
        )

    def available(self, peer: Peer) -> bool:
        """Whether ``peer`` takes calls; starts its probe when its ejection has ended."""
        until = peer.ejected_until
        if not until:
            return True
        if until <= self._now() and peer.probing is None:
            peer.probing = asyncio.create_task(self._probe(peer))
        return False

    async def idempotent_methods(
        self,
        pattern: str,
        client: RemoteService,
        wait: float | None,
        avoid: frozenset[str] = frozenset(),
    ) -> frozenset[str]:
        """The methods the service behind ``pattern`` declares idempotent.

        Learnt from its ``rpc.discover`` (``x-idempotent``) on first need, asked of an
        instance not in ``avoid`` with ``client``'s headers, and kept
        ``policy.idempotency_ttl`` seconds (after a failed ask, ``cache_ttl``). Waits at
        most ``wait`` seconds; none are known then.
        """
        known = self._idempotent.get(pattern)
        if known is not None and known[1] > self._now():
            return known[0]
        task = self._asking.get(pattern)
        if task is None:
            task = asyncio.create_task(self._ask_idempotent(pattern, client, avoid))
            self._asking[pattern] = task
            task.add_done_callback(lambda done: self._asked(pattern, done))
        try:
            async with asyncio.timeout(wait):
                return await asyncio.shield(task)
        except TimeoutError:
            return _NOTHING

    # -- internals: instances ----------------------------------------------------------

    def _peer(self, url: str) -> Peer:
        peer = self._peers.get(url)
        if peer is None:
            if len(self._peers) >= self._purge_peers_at:
                self._purge_peers()
            peer = self._peers[url] = Peer(url)
        return peer

    def _purge_peers(self) -> None:
        listed = {url for entry in self._entries.values() for url in entry.urls}
        for url, peer in list(self._peers.items()):
            if url not in listed and not peer.in_flight and peer.probing is None:
                del self._peers[url]
                self.metrics.peer_forgotten(url)
        self._purge_peers_at = max(_MAX_TRACKED, 2 * len(self._peers))

    def _succeeded(self, peer: Peer) -> None:
        if peer.ejected_until:  # a late answer: it is alive after all
            peer.ejected_until = 0.0
            self.metrics.peer_restored(peer.url)
        peer.failures = peer.ejections = 0
        peer.probation = False
        peer.alive_until = self._now() + self.cache_ttl

    def _eject(self, peer: Peer, why: str) -> None:
        peer.ejections += 1
        seconds = self.policy.ejection_time(peer.ejections)
        peer.ejected_until = self._now() + seconds
        peer.failures = 0
        peer.probation = False
        peer.alive_until = 0.0
        self.metrics.peer_ejected(peer.url, seconds)
        self.logger.info("ejected %s for %.1f s: %s", peer.url, seconds, why)

    async def _probe(self, peer: Peer) -> None:
        """Half-open: one HTTP request; any answer brings ``peer`` back on probation."""
        try:
            async with (
                asyncio.timeout(self.policy.probe_timeout),
                self.session().get(peer.url, allow_redirects=False),
            ):
                pass
        except (OSError, aiohttp.ClientError, TimeoutError) as exc:
            peer.probing = None
            self._eject(peer, f"its probe failed ({type(exc).__name__})")
            return
        except BaseException:
            peer.probing = None
            raise
        peer.probing = None
        peer.ejected_until = 0.0
        peer.failures = 0
        peer.probation = True
        peer.alive_until = self._now() + self.cache_ttl
        self.metrics.peer_restored(peer.url)
        self.logger.info("%s answered its probe: back on probation", peer.url)

    def _choose(self, entry: _Entry, tried: set[str]) -> Peer | None:
        """Power of two choices: the round-robin next one and a random other."""
        urls = entry.urls
        count = len(urls)
        first: Peer | None = None
        index = 0
        for _ in range(count):
            index = entry.cursor % count
            entry.cursor += 1
            url = urls[index]
            if url in tried:
                continue
            peer = self._peer(url)
            if self.available(peer):
                first = peer
                break
        if first is None:
            return self._least_ejected(urls, tried)
        if count > 1 and first.in_flight:
            other_index = random.randrange(count - 1)
            other_url = urls[other_index + (other_index >= index)]
            if other_url not in tried:
                other = self._peers.get(other_url)
                if other is None:
                    return self._peer(other_url)  # never called: nothing in flight
                if other.in_flight < first.in_flight and self.available(other):
                    return other
        return first

    def _least_ejected(self, urls: list[str], tried: set[str]) -> Peer | None:
        # Every instance left is ejected: the one coming back first is better than none.
        left = [self._peer(url) for url in urls if url not in tried]
        return min(left, key=lambda peer: peer.ejected_until) if left else None

    async def _hand_out(self, entry: _Entry) -> Peer | None:
        tried: set[str] = set()
        while (peer := self._choose(entry, tried)) is not None:
            tried.add(peer.url)
            if peer.alive_until > self._now() or await self._connects(peer.url):
                if not peer.ejected_until:
                    peer.alive_until = self._now() + self.cache_ttl
                return peer
            if not peer.ejected_until:
                self._eject(peer, "it does not accept connections")
        return None

    async def _connects(self, url: str) -> bool:
        parsed = yarl.URL(url)
        if parsed.host is None or parsed.port is None:
            return False
        try:
            async with asyncio.timeout(self.policy.probe_timeout):
                _, writer = await asyncio.open_connection(parsed.host, parsed.port)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    # -- internals: idempotency --------------------------------------------------------

    async def _ask_idempotent(
        self, pattern: str, client: RemoteService, avoid: frozenset[str]
    ) -> frozenset[str]:
        now = self._now()
        try:
            entry, _ = await self._entry(pattern)
            peer = self._choose(entry, set(avoid))
            if peer is None:
                raise ServiceNotFoundError(pattern)
            request_id = next_id()
            body = jsonrpc.dumps(make_message("rpc.discover", None, request_id))
            async with asyncio.timeout(DISCOVER_TIMEOUT):
                status, payload = await client._send(
                    peer.url, body, DISCOVER_TIMEOUT, "rpc.discover"
                )
            document = single_result(peer.url, decode_reply(peer.url, status, payload), request_id)
            found = frozenset(_idempotent_in(document))
        except Exception as exc:
            self.logger.info("could not learn the idempotent methods of %r: %s", pattern, exc)
            self._idempotent[pattern] = (_NOTHING, now + self.cache_ttl)
            return _NOTHING
        if len(self._idempotent) >= _MAX_TRACKED:
            self._idempotent.clear()
        self._idempotent[pattern] = (found, now + self.policy.idempotency_ttl)
        return found

    def _asked(self, pattern: str, task: asyncio.Task[frozenset[str]]) -> None:
        if self._asking.get(pattern) is task:
            del self._asking[pattern]
        if not task.cancelled():
            task.exception()

    # -- internals: lookups ------------------------------------------------------------

    async def _entry(self, pattern: str) -> tuple[_Entry, bool]:
        entry = self._entries.get(pattern)
        if entry is None or entry.expires <= self._now():
            return await self._refresh(pattern), True
        return entry, False

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
        # Trusted from when it was asked: an instance that unregisters after the
        # registry answered is dropped before its propagation delay ends.
        asked = self._now()
        try:
            found = await self._lookup(pattern)
        except RegistryUnavailableError:
            if known is None or not known.urls:
                raise
            self.logger.warning("using the last known instances of %r", pattern)
            found = Lookup(list(known.urls), complete=False)
        urls = found.urls
        if not found.complete and known is not None and known.urls:
            # Keep what we knew until a complete answer has it (dead ones are ejected
            # when they refuse a connection), and spread calls over all of them.
            urls = list(dict.fromkeys([*known.urls, *urls]))
        entry = _Entry(list(urls), asked + self.cache_ttl)
        if known is not None and not found.complete:
            entry.cursor = known.cursor
        now = self._now()
        if len(self._entries) >= _MAX_TRACKED:
            for key in [k for k, e in self._entries.items() if e.expires <= now]:
                del self._entries[key]
        self._entries[pattern] = entry
        return entry


def _idempotent_in(document: Any) -> Iterator[str]:
    methods = document.get("methods") if isinstance(document, dict) else None
    for method in methods if isinstance(methods, list) else ():
        if isinstance(method, dict) and method.get("x-idempotent") is True:
            name = method.get("name")
            if isinstance(name, str):
                yield name
