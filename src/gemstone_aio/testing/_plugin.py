"""The pytest plugin of gemstone-aio (registered by the ``pytest11`` entry point).

Installed with the package, it is active in every pytest run of that environment
(disable it with ``-p no:gemstone_aio``). It adds:

- an autouse fixture giving each test an in-memory event bus of its own, so events left
  over by one test never reach the next;
- ``gemstone_events``: the :class:`~gemstone_aio.testing.EventCapture` of the test;
- ``gemstone_services``: a :class:`~gemstone_aio.testing.ServiceKit` serving services
  for the test, with a registry;
- ``gemstone_amqp_url``: ``None`` (in-memory events) unless ``--gemstone-amqp-url`` or
  ``$GEMSTONE_TEST_AMQP_URL`` names a RabbitMQ broker to run the same tests against.

The async fixture needs pytest-asyncio (pytest-aiohttp installs it).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from ..event._memory import InMemoryEventBus, set_default_bus
from ._events import EventCapture
from ._kit import ServiceKit

__all__ = [
    "gemstone_amqp_url",
    "gemstone_event_bus",
    "gemstone_events",
    "gemstone_services",
    "pytest_addoption",
]

AMQP_URL_ENV = "GEMSTONE_TEST_AMQP_URL"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--gemstone-amqp-url``."""
    group = parser.getgroup("gemstone_aio", "gemstone-aio test kit")
    group.addoption(
        "--gemstone-amqp-url",
        dest="gemstone_amqp_url",
        default=None,
        metavar="URL",
        help="Carry the events of services served by the gemstone_services fixture over "
        f"this RabbitMQ broker instead of in memory (default: ${AMQP_URL_ENV}).",
    )


@pytest.fixture(autouse=True)
def gemstone_event_bus() -> Iterator[InMemoryEventBus]:
    """The in-memory event bus of this test, the default of every new in-memory transport.

    Each test gets a fresh one (the process-wide bus is put back afterwards), so a
    one-of-N event nobody took in one test is not delivered in the next.
    """
    bus = InMemoryEventBus()
    previous = set_default_bus(bus)
    try:
        yield bus
    finally:
        set_default_bus(previous)


@pytest.fixture
def gemstone_amqp_url(request: pytest.FixtureRequest) -> str | None:
    """The RabbitMQ URL the test's services use, or ``None`` for in-memory events.

    From ``--gemstone-amqp-url`` or ``$GEMSTONE_TEST_AMQP_URL``. Override this fixture
    (in a ``conftest.py``, or parametrized) to choose per test.
    """
    chosen = request.config.getoption("gemstone_amqp_url") or os.environ.get(AMQP_URL_ENV)
    return chosen or None


@pytest.fixture
def gemstone_events() -> EventCapture:
    """What the services of this test published and handled, with waiters."""
    return EventCapture()


async def _services(
    gemstone_events: EventCapture,
    gemstone_event_bus: InMemoryEventBus,
    gemstone_amqp_url: str | None,
) -> AsyncIterator[ServiceKit]:
    kit = ServiceKit(gemstone_events, gemstone_event_bus, gemstone_amqp_url)
    try:
        yield kit
    finally:
        await kit.aclose()


_DOC = """Serves services for this test: ``await gemstone_services.serve(A(), B())``.

    Services are stopped when the test ends; events go through the test's bus (or the
    broker of ``gemstone_amqp_url``) and are recorded in ``gemstone_events``.
    """


def _async_fixture() -> Any:
    try:
        import pytest_asyncio
    except ImportError:  # the kit's other fixtures still work
        return None
    return pytest_asyncio.fixture


if (_fixture := _async_fixture()) is not None:
    _services.__doc__ = _DOC
    gemstone_services = _fixture(_services, name="gemstone_services")
else:

    @pytest.fixture(name="gemstone_services")
    def gemstone_services() -> ServiceKit:
        """Serves services for this test (needs pytest-asyncio: install pytest-aiohttp)."""
        pytest.fail(
            "the gemstone_services fixture needs pytest-asyncio: "
            "python -m pip install pytest-aiohttp",
            pytrace=False,
        )
