"""How the clients of ``get_service`` balance, eject failing instances and retry.

:class:`CallPolicy` holds the settings (a service's ``call_policy``); :class:`Peer` is
what a caller knows of one instance (calls in flight, consecutive failures, ejection);
:class:`RetryBudget` bounds the retries of requests that may have reached a service.
The rules themselves live in :class:`~gemstone_aio.discovery.ServiceLocator` and
:class:`~gemstone_aio.discovery.DiscoveredService`; ``docs/resilience.md`` explains them.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Final

from ..errors import ServiceConfigurationError

__all__ = ["PEER_OUTCOMES", "RETRY_REASONS", "CallPolicy", "Peer", "RetryBudget"]

PEER_OUTCOMES: Final = frozenset(
    {"ok", "connect_failed", "failed", "timeout", "overloaded", "shutting_down", "cancelled"}
)
"""How one attempt of a call to an instance ended (the ``outcome`` of the peer metrics).

- ``ok``: the instance answered (a JSON-RPC error other than the two below included);
- ``connect_failed``: no connection could be opened (refused, unreachable, or not within
  ``connect_timeout``): the request was not sent;
- ``failed``: the connection broke after the request was sent, or the answer was not a
  JSON-RPC answer (an HTTP error status, a body that is not JSON or is too large);
- ``timeout``: the call's time limit ran out;
- ``overloaded``, ``shutting_down``: the instance answered ``-32002`` or ``-32005``;
- ``cancelled``: the caller gave up (its task was cancelled); says nothing of the instance.
"""

RETRY_REASONS: Final = frozenset({"connect_failed", "failed", "overloaded", "shutting_down"})
"""Why a call was sent again to another instance (the outcome of the failed attempt)."""


@dataclass(frozen=True, slots=True)
class CallPolicy:
    """Balancing, outlier ejection and retries of the clients ``get_service`` returns.

    Set it on a service (``call_policy = CallPolicy(failure_threshold=5)``); the defaults
    suit instances on one network.

    Attributes:
        failure_threshold: Consecutive failed attempts (transport errors, time-outs,
            ``-32002``, ``-32005``) after which an instance is ejected. An instance that
            refuses a connection is ejected at once.
        base_ejection: Seconds of the first ejection; each next one, while the instance
            keeps failing, lasts twice as long.
        max_ejection: The longest an ejection lasts, in seconds.
        probe_timeout: Seconds the probe of an ejected instance (an HTTP ``GET`` of its
            endpoint; any HTTP answer brings it back) and the TCP check of an instance
            not seen alive lately may take.
        connect_timeout: Seconds to open a connection before the call goes to another
            instance (nothing was sent, so any call may).
        max_attempts: Attempts per call, the first included, each on another instance.
        retry_ratio: Retries of requests that may have reached a service (idempotent
            calls) are at most this fraction of the calls...
        retry_reserve: ...plus this many (the budget starts full, so a quiet caller can
            retry too). ``retry_ratio=0, retry_reserve=0``: never retry a sent request.
        idempotency_ttl: Seconds the idempotent methods a service published (learnt from
            its ``rpc.discover``) are trusted before they are asked again.
    """

    failure_threshold: int = 3
    base_ejection: float = 1.0
    max_ejection: float = 30.0
    probe_timeout: float = 1.0
    connect_timeout: float = 2.0
    max_attempts: int = 3
    retry_ratio: float = 0.1
    retry_reserve: float = 10.0
    idempotency_ttl: float = 60.0

    def __post_init__(self) -> None:
        for name in ("failure_threshold", "max_attempts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ServiceConfigurationError(
                    f"CallPolicy.{name} must be an integer >= 1, got {value!r}"
                )
        for name in ("base_ejection", "max_ejection", "probe_timeout", "connect_timeout"):
            _check_number(name, getattr(self, name), positive=True)
        for name in ("retry_ratio", "retry_reserve", "idempotency_ttl"):
            _check_number(name, getattr(self, name), positive=False)
        if self.max_ejection < self.base_ejection:
            raise ServiceConfigurationError(
                f"CallPolicy.max_ejection ({self.max_ejection!r}) is shorter than "
                f"base_ejection ({self.base_ejection!r})"
            )

    def ejection_time(self, ejections: int) -> float:
        """Seconds the ``ejections``-th consecutive ejection of an instance lasts."""
        return min(self.base_ejection * 2.0 ** min(max(ejections - 1, 0), 32), self.max_ejection)


def _check_number(name: str, value: object, *, positive: bool) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (positive and value == 0)
    ):
        kind = "a positive number" if positive else "a number >= 0"
        raise ServiceConfigurationError(f"CallPolicy.{name} must be {kind}, got {value!r}")


class Peer:
    """What a caller knows of one instance, by URL.

    Attributes:
        url: The instance's endpoint.
        in_flight: Attempts under way to it (the balancer prefers fewer).
        failures: Consecutive failed attempts since its last success.
        ejections: Consecutive ejections (the next one lasts longer); reset by a success.
        ejected_until: Loop time its ejection ends; 0 when it takes calls. An instance
            whose ejection ended stays out until its probe answers (half-open).
        probation: Its probe answered: the next failure ejects it again at once.
        alive_until: Loop time until which it counts as seen alive (no TCP check).
    """

    __slots__ = (
        "alive_until",
        "ejected_until",
        "ejections",
        "failures",
        "in_flight",
        "probation",
        "probing",
        "url",
    )

    def __init__(self, url: str) -> None:
        self.url = url
        self.in_flight = 0
        self.failures = 0
        self.ejections = 0
        self.ejected_until = 0.0
        self.probation = False
        self.alive_until = 0.0
        self.probing: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        state = f"ejected until {self.ejected_until:.3f}" if self.ejected_until else "available"
        return f"Peer({self.url!r}, {state}, in flight {self.in_flight})"


class RetryBudget:
    """Retries of sent requests: at most ``ratio`` of the calls, plus ``reserve``.

    Every call deposits ``ratio`` of a token, every retry takes one whole token; the
    budget starts with ``reserve`` tokens and never holds more than ``max(reserve, 1)``.
    Over any stretch of time, retries <= reserve + ratio x calls.
    """

    __slots__ = ("ratio", "reserve", "tokens")

    def __init__(self, ratio: float, reserve: float) -> None:
        self.ratio = ratio
        self.reserve = reserve
        self.tokens = reserve

    def deposit(self) -> None:
        """Note one call."""
        self.tokens = min(max(self.reserve, 1.0), self.tokens + self.ratio)

    def withdraw(self) -> bool:
        """Take one retry from the budget; ``False`` when it is spent."""
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
