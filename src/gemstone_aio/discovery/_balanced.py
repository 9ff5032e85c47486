"""The client ``get_service`` returns: each call balanced over a pattern's instances.

A call goes to one instance; when that attempt fails, the call may go to another:

- **any call** when no connection could be opened (refused, unreachable, or not within
  ``connect_timeout``): nothing was sent, so nothing can run twice;
- **an idempotent call** after a failure that leaves it unknown whether it ran (the
  connection broke after the request was sent) or an answer ``-32002`` (overloaded) or
  ``-32005`` (shutting down), within the retry budget;
- never after a time-out (the call's budget is spent), an HTTP error status, a reply
  that is not JSON-RPC, or any other JSON-RPC error.

Every attempt goes to an instance the call has not tried, within the call's one
deadline (each attempt sends what is left of it), at most ``max_attempts`` in all. A
method is idempotent when the caller says so (``request(..., idempotent=True)``) or the
service declares it (``exposed_method(idempotent=True)``, published as ``x-idempotent``
in ``rpc.discover`` and learnt the first time it matters).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Literal

import aiohttp

from ..client._remote_service import (
    UNSET,
    RemoteService,
    _read_bounded,
    _Unset,
    decode_reply,
    single_result,
    transport_error,
)
from ..client._wire import make_message, next_id
from ..errors import GemstoneTransportError
from ..protocol import _jsonrpc as jsonrpc
from ._base import ServiceNotFoundError

if TYPE_CHECKING:
    from ._locator import ServiceLocator
    from ._policy import Peer

__all__ = ["DiscoveredService"]

_Repeat = Literal["always", "idempotent", "never"]
_ANSWER_OUTCOMES: Final[dict[int | None, str]] = {-32002: "overloaded", -32005: "shutting_down"}


class DiscoveredService(RemoteService):
    """A client of the instances matching a pattern, handed out by ``get_service``.

    Each call is balanced (see :class:`~gemstone_aio.discovery.ServiceLocator`): the
    first goes to the instance ``get_service`` picked, the next ones to whichever of two
    candidates has fewer calls in flight, skipping ejected instances. A failed attempt
    is tried again on another instance when that is safe (see ``docs/resilience.md``):
    any call whose connection could not be opened, an idempotent call after a broken
    connection, ``-32002`` or ``-32005``. Closing it is harmless: the locator owns the
    connection pool. Used from a thread without an event loop (blocking calls), it calls
    the instance of its ``url`` only, as a :class:`RemoteService` would: the balancing
    state belongs to the service's event loop.

    Attributes:
        pattern: The glob given to ``get_service``.
        url: The instance of the latest attempt (before any call, the one picked).
    """

    def __init__(
        self,
        pattern: str,
        locator: ServiceLocator,
        url: str,
        entry: object = None,
        **options: Any,
    ) -> None:
        super().__init__(url, session=locator.session(), **options)
        self._ssl = locator.ssl_context  # for the blocking use's own session
        self.pattern = pattern
        self._locator = locator
        self._first: str | None = url
        self._entry = entry

    def __repr__(self) -> str:
        return f"DiscoveredService({self.pattern!r}, last at {self.url!r})"

    def _get_session(self) -> aiohttp.ClientSession:
        runner = self._runner
        if runner is not None and runner.is_current():
            return runner.session()
        return self._locator.session()

    def _blocking(self) -> bool:
        runner = self._runner
        return runner is not None and runner.is_current()

    async def request(
        self,
        method: str,
        params: list[Any] | dict[str, Any] | None = None,
        *,
        timeout: float | _Unset | None = UNSET,
        notification: bool = False,
        idempotent: bool | None = None,
    ) -> Any:
        """Send one request (see :meth:`RemoteService.request`) to one of the instances.

        Args:
            method: The method name.
            params: Params by position (list) or by name (dict), or ``None``.
            timeout: Seconds for the call, retries included (default: the client's).
            notification: Send as a notification and return ``None``.
            idempotent: Whether the call may run twice: ``None`` (the default) asks the
                service (``x-idempotent`` in its ``rpc.discover``) when it matters.
        """
        if self._blocking():
            return await super().request(method, params, timeout=timeout, notification=notification)
        request_id = None if notification else next_id()
        body = jsonrpc.dumps(make_message(method, params, request_id))
        url, reply = await self._attempts(
            body, timeout, method, method, idempotent, single=not notification
        )
        if notification:
            return None
        return single_result(url, reply, request_id)

    async def _post(self, body: bytes, timeout: float | _Unset | None, label: str) -> Any:
        if self._blocking():
            return await super()._post(body, timeout, label)
        # A batch (post()): sent again only when it was not sent at all.
        return (await self._attempts(body, timeout, label, None, False, single=False))[1]

    async def _exchange(
        self, url: str, body: bytes, seconds: float | None, headers: Mapping[str, str]
    ) -> tuple[int, bytes]:
        timeout = _attempt_timeout(seconds, self._locator.policy.connect_timeout)
        async with self._get_session().post(
            url, data=body, headers=headers, timeout=timeout
        ) as response:
            return response.status, await _read_bounded(response, self.max_response_size)

    async def _attempts(
        self,
        body: bytes,
        timeout: float | _Unset | None,
        label: str,
        method: str | None,
        idempotent: bool | None,
        *,
        single: bool,
    ) -> tuple[str, Any]:
        """Send ``body`` until an instance answers or no retry is allowed.

        ``method`` names the call (``None``: a batch), ``single`` asks to look at the
        reply's error code. Returns the URL that answered and its decoded reply (an
        ``-32002``/``-32005`` answer too, when it is not retried).
        """
        locator = self._locator
        policy = locator.policy
        loop = asyncio.get_running_loop()
        seconds, inherited = self._budget(timeout)
        deadline = None if seconds is None else loop.time() + seconds
        budget = locator.retry_budget(self.pattern)
        budget.deposit()
        tried: set[str] = set()
        peer = self._take_first() or await locator.pick(self.pattern, tried)
        if peer is None:
            raise ServiceNotFoundError(self.pattern, "no instance is registered")
        last: tuple[str, Any]  # the last failed attempt's URL and error (or answer)
        for attempt in range(policy.max_attempts):
            tried.add(peer.url)
            self.url = peer.url
            if deadline is not None and loop.time() >= deadline:
                outcome, result, repeat = "timeout", None, "never"  # (aiohttp: 0 is no limit)
            else:
                outcome, result, repeat = await self._attempt(peer, body, label, single, deadline)
            if outcome == "ok":
                return peer.url, result
            if outcome == "timeout":
                result = transport_error(peer.url, TimeoutError(), seconds, inherited)
            last = peer.url, result
            if repeat == "never" or attempt + 1 >= policy.max_attempts:
                break
            if deadline is not None and loop.time() >= deadline:
                break
            if repeat == "idempotent" and not await self._may_repeat(
                method, idempotent, deadline, tried
            ):
                break
            next_peer = await locator.pick(self.pattern, tried)
            if next_peer is None:
                break  # no other instance to try
            if repeat == "idempotent" and not budget.withdraw():
                locator.metrics.retry_denied(self.pattern)
                break
            locator.metrics.call_retried(self.pattern, outcome)
            peer = next_peer
        url, result = last
        if isinstance(result, GemstoneTransportError):
            raise result
        return url, result

    async def _attempt(
        self, peer: Peer, body: bytes, label: str, single: bool, deadline: float | None
    ) -> tuple[str, Any, _Repeat]:
        """One attempt: its outcome, the reply or the error, and whether it may be repeated."""
        locator = self._locator
        loop = asyncio.get_running_loop()
        began = loop.time()
        left = None if deadline is None else max(deadline - began, 0.001)
        url = peer.url
        outcome = "cancelled"
        locator.started(peer)
        try:
            try:
                status, payload = await self._send(url, body, left, label)
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                if deadline is not None and loop.time() >= deadline:
                    outcome = "timeout"  # the call's own time ran out while connecting
                    return outcome, None, "never"
                outcome = "connect_failed"
                note = "; the request was not sent"
                return outcome, transport_error(url, exc, left, False, note), "always"
            except TimeoutError:
                outcome = "timeout"
                return outcome, None, "never"
            except aiohttp.ClientError as exc:
                outcome = "failed"
                note = "; the request may have been run"
                return outcome, transport_error(url, exc, left, False, note), "idempotent"
            except GemstoneTransportError as exc:  # a reply larger than allowed
                outcome = "failed"
                return outcome, exc, "never"
            try:
                reply = decode_reply(url, status, payload)
            except GemstoneTransportError as exc:
                outcome = "failed"
                return outcome, exc, "never"
            outcome = _ANSWER_OUTCOMES.get(_error_code(reply), "ok") if single else "ok"
            return outcome, reply, "never" if outcome == "ok" else "idempotent"
        finally:
            locator.finished(peer, outcome, loop.time() - began)

    def _take_first(self) -> Peer | None:
        """The instance ``get_service`` picked, for the first call, if it still fits."""
        url, self._first = self._first, None
        if url is None or not self._locator.current(self.pattern, self._entry):
            return None
        peer = self._locator.peer(url)
        return peer if peer is not None and self._locator.available(peer) else None

    async def _may_repeat(
        self, method: str | None, idempotent: bool | None, deadline: float | None, tried: set[str]
    ) -> bool:
        if idempotent is not None:
            return idempotent
        if method is None:
            return False
        wait = None if deadline is None else deadline - asyncio.get_running_loop().time()
        known = await self._locator.idempotent_methods(self.pattern, self, wait, frozenset(tried))
        return method in known


def _error_code(reply: Any) -> int | None:
    if isinstance(reply, dict):
        error = reply.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            if isinstance(code, int):
                return code
    return None


@functools.lru_cache(maxsize=64)
def _attempt_timeout(seconds: float | None, connect: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=seconds, sock_connect=connect)
