"""The test kit: serve services in a test, capture their events, wait until one is handled.

It ships a pytest plugin (active once gemstone-aio is installed) with the fixtures
``gemstone_services`` (a :class:`ServiceKit`), ``gemstone_events`` (an
:class:`EventCapture`), ``gemstone_event_bus`` (each test's own in-memory bus) and
``gemstone_amqp_url`` (run the same tests against RabbitMQ); see ``docs/testing.md``.

Without pytest: :func:`serving` runs one service on a free port while a block runs, and
:class:`EventCapture` with :class:`CapturingTransport` record any transport's traffic.
"""

from __future__ import annotations

from ._events import (
    CapturingTransport,
    EventCapture,
    EventNotHandledError,
    HandledEvent,
    PublishedEvent,
)
from ._kit import ServiceKit
from ._serving import serving

__all__ = [
    "CapturingTransport",
    "EventCapture",
    "EventNotHandledError",
    "HandledEvent",
    "PublishedEvent",
    "ServiceKit",
    "serving",
]
