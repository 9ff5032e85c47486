"""The contract every event transport fulfils, and the message format they share.

A transport moves encoded events between services. It does not run handlers itself:
it hands each received message to a callback as a :class:`Delivery`, and the service's
dispatcher decodes, validates, runs the handlers (retrying with backoff) and then calls
:meth:`Delivery.ack` or :meth:`Delivery.dead_letter`. So retries, validation and
dead-lettering behave the same on every transport.
"""

from __future__ import annotations

import copy
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ..errors import EventBodyError, ServiceConfigurationError

__all__ = [
    "HEADER_ATTEMPTS",
    "HEADER_BROADCAST",
    "HEADER_ERROR",
    "HEADER_EVENT",
    "HEADER_SERVICE",
    "BaseEventTransport",
    "Delivery",
    "DeliveryCallback",
    "OutgoingEvent",
    "Subscription",
    "encode_body",
]

HEADER_EVENT: Final = "x-gemstone-event"
"""Message header carrying the event name."""
HEADER_SERVICE: Final = "x-gemstone-service"
"""Message header carrying the name of the emitting service."""
HEADER_BROADCAST: Final = "x-gemstone-broadcast"
"""Message header: ``True`` for broadcast events, ``False`` for one-of-N events."""
HEADER_ERROR: Final = "x-gemstone-error"
"""Header of a dead-lettered message: why it was dead-lettered."""
HEADER_ATTEMPTS: Final = "x-gemstone-attempts"
"""Header of a dead-lettered message: how many times its handlers ran."""


# One encoder for every event: json.dumps() with options builds a new one per call.
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def encode_body(event_name: str, body: Any) -> bytes:
    """Encode an event body as compact UTF-8 JSON.

    Raises:
        EventBodyError: ``body`` is not JSON-serialisable (the message names the event).
    """
    try:
        text = _ENCODER.encode(body)
    except (TypeError, ValueError, RecursionError) as exc:
        raise EventBodyError(
            f"the body of event {event_name!r} is not JSON-serialisable: {exc}"
        ) from exc
    return text.encode("utf-8")


@dataclass(frozen=True, slots=True)
class OutgoingEvent:
    """One event to publish.

    Attributes:
        name: The event name.
        body: The body, already encoded as UTF-8 JSON.
        broadcast: Every subscribing instance gets it (``True``) or exactly one does.
        service: The name of the emitting service.
        headers: The message headers (event name, emitting service, broadcast flag).
    """

    name: str
    body: bytes
    broadcast: bool
    service: str
    headers: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, name: str, body: Any, *, broadcast: bool, service: str) -> OutgoingEvent:
        """Encode ``body`` and build the event with its standard headers."""
        headers = {HEADER_EVENT: name, HEADER_SERVICE: service, HEADER_BROADCAST: broadcast}
        return cls(name, encode_body(name, body), broadcast, service, headers)


class Delivery(ABC):
    """One received message, handed by a transport to its subscription's callback.

    The callback settles it exactly once: :meth:`ack` after the handlers succeeded,
    :meth:`dead_letter` when they gave up or the message is undecodable or invalid.
    A delivery left unsettled (the service stopped mid-handling) is redelivered later
    when the transport can (RabbitMQ, and the in-memory one-of-N queue).
    """

    event_name: str
    body: bytes
    headers: Mapping[str, Any]
    broadcast: bool
    previous_deliveries: int = 0
    """How many times the broker delivered this message before and got it back unsettled
    (a handler's process died, its connection dropped, or it was requeued), as the
    broker counts it; 0 when the transport cannot tell. The dispatcher counts these as
    attempts, so a message that kills its consumer is dead-lettered after
    ``max_attempts`` deliveries even across restarts."""

    @abstractmethod
    async def ack(self) -> None:
        """The message was handled: remove it for good."""

    @abstractmethod
    async def dead_letter(self, reason: str, attempts: int) -> None:
        """Move the message to the dead-letter queue of its event, with the reason."""

    @abstractmethod
    async def requeue(self) -> None:
        """Give the message back unhandled, for another delivery later."""


DeliveryCallback = Callable[[Delivery], Awaitable[None]]
"""What a transport calls for each received message."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """A service's interest in one event.

    Attributes:
        event_name: The event.
        callback: Called for each message; it settles the delivery itself.
        concurrency: At most this many messages of this event are handled at once
            (RabbitMQ uses it as the consumer's prefetch count).
    """

    event_name: str
    callback: DeliveryCallback
    concurrency: int


class BaseEventTransport(ABC):
    """Base class of event transports: subclass it to carry events over another broker.

    A service calls, in this order: :meth:`connect` (before ``on_service_start``, so
    start-up hooks can emit), :meth:`publish` any number of times, :meth:`start_consuming`
    (after ``on_service_start``), then on shutdown :meth:`stop_consuming` (no new
    messages; in-flight ones finish) and :meth:`close`.

    Delivery semantics every transport must give (the contract tests check them):

    - ``broadcast=True``: each subscribing instance running when the event is published
      gets it once.
    - ``broadcast=False``: exactly one subscribing instance gets it; the message waits
      durably until some instance acknowledges it, even when published before any
      subscriber started, and is redelivered if the handling instance stops before
      acknowledging.

    Args:
        max_attempts: How many times handlers run for one message before it is
            dead-lettered (1 means no retry).
        retry_delay: Seconds before the first retry; doubled for each further one.
        max_retry_delay: Upper bound of the delay between two attempts.
    """

    def __init__(
        self, *, max_attempts: int = 5, retry_delay: float = 0.1, max_retry_delay: float = 5.0
    ) -> None:
        if not isinstance(max_attempts, int) or isinstance(max_attempts, bool) or max_attempts < 1:
            raise ServiceConfigurationError(
                f"max_attempts must be an integer >= 1, got {max_attempts!r}"
            )
        for label, value in (("retry_delay", retry_delay), ("max_retry_delay", max_retry_delay)):
            if not isinstance(value, int | float) or value < 0 or not math.isfinite(value):
                raise ServiceConfigurationError(f"{label} must be >= 0, got {value!r}")
        self.max_attempts = max_attempts
        self.retry_delay = float(retry_delay)
        self.max_retry_delay = float(max_retry_delay)
        self.service_name: str | None = None

    def retry_backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.max_retry_delay, self.retry_delay * 2 ** (attempt - 1)))

    def clone(self) -> BaseEventTransport:
        """Return an unconnected copy with the same settings.

        A transport object declared on a service class is a template: each service
        instance works with its own clone, so instances never share connections. The
        default shallow-copies the object and calls :meth:`reset`.
        """
        twin = copy.copy(self)
        twin.reset()
        return twin

    def reset(self) -> None:
        """Forget all runtime state (connections, subscriptions); used by :meth:`clone`."""
        self.service_name = None

    def readiness(self) -> tuple[bool, str | None]:
        """Whether the transport can carry events now, with a short public note.

        ``GET /ready`` fails while this answers false. The default is always ready;
        transports talking to a broker answer whether they are connected to it.
        """
        return True, None

    @abstractmethod
    async def connect(self, service_name: str) -> None:
        """Open the transport for ``service_name``.

        Must not wait for an unreachable broker forever: connect in the background,
        retrying with backoff, and let :meth:`publish` wait for the connection.
        """

    @abstractmethod
    async def publish(self, event: OutgoingEvent) -> None:
        """Publish ``event``; return once the broker has confirmed it.

        Raises:
            EventPublishError: The event could not be confirmed in time.
        """

    @abstractmethod
    async def start_consuming(self, subscriptions: Sequence[Subscription]) -> None:
        """Start delivering messages of the subscribed events to their callbacks."""

    @abstractmethod
    async def stop_consuming(self, grace_period: float) -> None:
        """Take no new messages; wait up to ``grace_period`` s for callbacks running."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections; the transport is not used afterwards."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
