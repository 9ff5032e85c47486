"""The per-call context: what a call knows about its caller, behind one context variable.

The server builds one :class:`CallContext` per HTTP request and makes it current for
everything that request runs: the router, each batch element (a task of its own, which
inherits it), blocking methods in the executor (which run in a copy of the context),
and any code they call. Nothing below the server layer looks the service or the HTTP
request up anywhere else.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from ..errors import GemstoneError

__all__ = [
    "TIMEOUT_HEADER",
    "CallContext",
    "current_call",
    "current_context",
    "deadline_of",
    "time_left",
]

TIMEOUT_HEADER: Final = "Gemstone-Timeout"
"""The HTTP header carrying the caller's remaining budget in seconds (a decimal number,
relative, so the clocks of caller and callee need not agree)."""

MAX_BUDGET: Final = 86_400.0
"""The largest budget a caller may send (a day); larger values are refused."""

_NO_HEADERS: Final[Mapping[str, str]] = {}


class CallContext:
    """What the calls of one request share: caller, credentials, handler object, ids.

    Args:
        service: The object serving the call (the server layer puts its service here).
        transport: The transport's own request object (the aiohttp request), if any.
        headers: The request headers (case-insensitive when the transport's are).
        request_id: The request id stamped on log lines and answers (``None``: none).
        authenticate: Runs the service's access check for this context and returns
            the caller's identity (falsy: anonymous). Called at most once, on first need.
        make_handler: Builds the object ``requires_handler_reference`` methods receive,
            on first use.
        deadline: When the caller's budget ends, on the :func:`time.monotonic` clock
            (``None``: the caller set none). Calls made while serving this one send what
            is left of it (``Gemstone-Timeout``).
    """

    __slots__ = (
        "_authenticate",
        "_handler",
        "_identity",
        "_lock",
        "_make_handler",
        "deadline",
        "headers",
        "request_id",
        "service",
        "transport",
    )

    def __init__(
        self,
        service: Any = None,
        transport: Any = None,
        headers: Mapping[str, str] = _NO_HEADERS,
        request_id: str | None = None,
        authenticate: Callable[[CallContext], Awaitable[Any]] | None = None,
        make_handler: Callable[[CallContext], Any] | None = None,
        deadline: float | None = None,
    ) -> None:
        self.service = service
        self.transport = transport
        self.headers = headers
        self.request_id = request_id
        self._authenticate = authenticate
        self._make_handler = make_handler
        self.deadline = deadline
        self._handler: Any = None
        self._identity: Any = _UNKNOWN
        self._lock: asyncio.Lock | None = None  # created on first use: most calls never ask

    async def identity(self) -> Any:
        """Return the caller's identity, running the access check on first need.

        One request authenticates once, however many batch elements ask, even when they
        ask concurrently: the others wait for the first.
        """
        if self._identity is not _UNKNOWN:
            return self._identity
        if self._authenticate is None:
            self._identity = None
            return None
        if self._lock is None:  # no await between the check and the creation
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._identity is _UNKNOWN:
                self._identity = await self._authenticate(self)
        return self._identity

    @property
    def known_identity(self) -> Any:
        """The identity if the access check already ran, else ``None`` (never runs it)."""
        return None if self._identity is _UNKNOWN else self._identity

    async def is_authenticated(self) -> bool:
        """Return True when the caller may call private methods."""
        return bool(await self.identity())

    @property
    def handler(self) -> Any:
        """The object given to ``requires_handler_reference`` methods (built on first use).

        Raises:
            GemstoneError: The transport gives no handler object.
        """
        handler = self._handler
        if handler is None:
            if self._make_handler is None:
                raise GemstoneError("this call has no handler object (not an HTTP request)")
            handler = self._handler = self._make_handler(self)
        return handler

    def time_left(self) -> float | None:
        """Seconds left of the caller's budget (never below 0), or ``None`` without one."""
        deadline = self.deadline
        return None if deadline is None else max(deadline - time.monotonic(), 0.0)

    @property
    def handler_if_built(self) -> Any:
        """The handler object if something built it, else ``None``."""
        return self._handler


_UNKNOWN: Final = object()

current_call: contextvars.ContextVar[CallContext] = contextvars.ContextVar(
    "gemstone_aio_current_call"
)
"""The context of the call being served (set by the server for each request)."""


def current_context() -> CallContext:
    """Return the context of the JSON-RPC call being served.

    Raises:
        GemstoneError: Called outside a JSON-RPC call.
    """
    try:
        return current_call.get()
    except LookupError:
        raise GemstoneError("called outside a JSON-RPC call") from None


def time_left() -> float | None:
    """Seconds left of the current call's deadline, or ``None`` (no deadline, or no call).

    Works in ``async`` and blocking (``def``) methods alike. A blocking method cannot be
    interrupted when its deadline passes: it can check this and stop early.
    """
    context = current_call.get(None)
    return None if context is None else context.time_left()


def deadline_of(budget: str) -> float:
    """The deadline (:func:`time.monotonic` clock) of a ``Gemstone-Timeout`` header value.

    Raises:
        ValueError: ``budget`` is not a finite number of seconds between 0 and a day.
    """
    try:
        seconds = float(budget)
    except ValueError:
        seconds = float("nan")
    if not 0.0 <= seconds <= MAX_BUDGET:  # NaN fails this too
        raise ValueError(
            f"{TIMEOUT_HEADER} must be a number of seconds from 0 to {MAX_BUDGET:g}, "
            f"got {budget[:32]!r}"
        )
    return time.monotonic() + seconds
