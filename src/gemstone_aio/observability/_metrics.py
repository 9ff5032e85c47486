"""Metrics hooks: what the framework's parts report, whether or not metrics are on.

Every service has ``service.metrics``, an object with the methods below. Without
metrics it is a :class:`MetricsHooks`, whose methods do nothing, so event transports,
the registry heartbeat and user code call them unconditionally::

    service.metrics.event_published("user.created")
    service.metrics.event_handled("user.created", "ok", duration=0.012)
    service.metrics.registry_ping_failed("http://registry:8000/api")

The clients of ``get_service`` report every attempt to the instance it went to
(``peer_call``), ejections and retries, so a service's metrics show how each instance
it calls behaves.

With metrics on (``use_metrics``, the ``metrics`` extra) it is a
:class:`~gemstone_aio.observability.prometheus.PrometheusMetrics` that counts them in
the service's own Prometheus registry.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable
from typing import Any, Final

from ..errors import ServiceConfigurationError

__all__ = [
    "EVENT_OUTCOMES",
    "PRIVATE_METHOD",
    "MetricsHooks",
    "is_private",
    "metrics_available",
    "metrics_enabled",
]

PRIVATE_METHOD: Final = "(private)"
"""The one name under which ``/metrics`` and ``statistics`` report every private method
to a requester that may not learn their names."""


def is_private(entry: Any) -> bool:
    """Tell whether a method-table entry (a ``MethodEntry``) is a private method."""
    return getattr(getattr(entry, "spec", None), "private", False) is True


EVENT_OUTCOMES: Final = frozenset({"ok", "failed", "retried", "dead_lettered"})
"""The outcomes :meth:`MetricsHooks.event_handled` accepts.

- ``ok``: the handler succeeded (the message was acknowledged).
- ``failed``: the handler raised and the message is dropped (for transports that drop
  failed messages; the built-in ones dead-letter them instead).
- ``retried``: the handler raised and the message will be delivered again.
- ``dead_lettered``: the handler raised for the last allowed time; the message went to
  the dead-letter queue.
"""


def _check_outcome(outcome: str) -> None:
    if outcome not in EVENT_OUTCOMES:
        raise ValueError(
            f"unknown event outcome {outcome!r}; expected one of {sorted(EVENT_OUTCOMES)}"
        )


class MetricsHooks:
    """The metrics hooks of a service; this base class records nothing.

    Attributes:
        enabled: True when the hooks record (a Prometheus registry is behind them).
    """

    enabled: bool = False

    def observe_call(self, method: str, duration: float, code: int | None) -> None:
        """Record a finished JSON-RPC call (the router calls this)."""

    def request_started(self) -> None:
        """An HTTP request to the JSON-RPC endpoint started (the framework calls this)."""

    def request_finished(self) -> None:
        """An HTTP request to the JSON-RPC endpoint finished (the framework calls this)."""

    def event_published(self, event: str) -> None:
        """An event was published (the broker confirmed it, when it confirms)."""

    def event_publish_failed(self, event: str) -> None:
        """Publishing an event failed (the broker refused it or was unreachable)."""

    def event_publish_dropped(self, event: str) -> None:
        """A fire-and-forget event was dropped: ``max_pending_publications`` were under way."""

    def event_handled(self, event: str, outcome: str = "ok", duration: float | None = None) -> None:
        """An event handler finished.

        Args:
            event: The event name.
            outcome: One of :data:`EVENT_OUTCOMES`.
            duration: Seconds the handler ran, when known.

        Raises:
            ValueError: ``outcome`` is not one of :data:`EVENT_OUTCOMES`.
        """
        _check_outcome(outcome)

    def event_failed(self, event: str, duration: float | None = None) -> None:
        """Shorthand for ``event_handled(event, "failed", duration)``."""
        self.event_handled(event, "failed", duration)

    def event_retried(self, event: str, duration: float | None = None) -> None:
        """Shorthand for ``event_handled(event, "retried", duration)``."""
        self.event_handled(event, "retried", duration)

    def event_dead_lettered(self, event: str, duration: float | None = None) -> None:
        """Shorthand for ``event_handled(event, "dead_lettered", duration)``."""
        self.event_handled(event, "dead_lettered", duration)

    def registry_ping_failed(self, registry: str) -> None:
        """A heartbeat to the registry at ``registry`` (its URL) failed."""

    def registry_ping_succeeded(self, registry: str) -> None:
        """A heartbeat to the registry at ``registry`` (its URL) succeeded."""

    def periodic_task_run(self, task: str, duration: float, ok: bool) -> None:
        """A periodic task ran once (``ok`` false: it raised)."""

    # -- the instances this service calls (the clients of get_service) ------------------

    def peer_call(self, peer: str, outcome: str, duration: float) -> None:
        """One attempt of a call to the instance at ``peer`` (its URL) ended.

        Args:
            peer: The instance's URL.
            outcome: One of :data:`gemstone_aio.discovery.PEER_OUTCOMES`.
            duration: Seconds the attempt took.
        """

    def peer_ejected(self, peer: str, seconds: float) -> None:
        """The instance at ``peer`` was ejected from balancing for ``seconds``."""

    def peer_restored(self, peer: str) -> None:
        """An ejected instance answered (its probe, or a late call) and takes calls again."""

    def peer_forgotten(self, peer: str) -> None:
        """The instance at ``peer`` is no longer tracked; its figures may be dropped."""

    def call_retried(self, service: str, reason: str) -> None:
        """A call made through ``get_service(service)`` went to another instance.

        Args:
            service: The pattern given to ``get_service``.
            reason: How the attempt before failed, one of
                :data:`gemstone_aio.discovery.RETRY_REASONS`.
        """

    def retry_denied(self, service: str) -> None:
        """A call through ``get_service(service)`` was not retried: the budget was spent."""

    def watch_peers(self, read: Callable[[], Iterable[tuple[str, int, bool]]]) -> None:
        """Read ``(peer, calls in flight, ejected)`` from ``read`` whenever metrics are read.

        The service's locator registers itself here (its state is only read at scrape
        time, so calls pay nothing for these gauges).
        """


def metrics_available() -> bool:
    """Return True when prometheus-client (the ``metrics`` extra) is installed."""
    return importlib.util.find_spec("prometheus_client") is not None


def metrics_enabled(use_metrics: bool | None) -> bool:
    """Resolve a service's ``use_metrics`` setting.

    ``None`` (the default) means on when prometheus-client is installed; ``True``
    demands it; ``False`` turns metrics off.

    Raises:
        ServiceConfigurationError: ``use_metrics`` is true and prometheus-client is
            missing, or the value is not a bool or None.
    """
    if use_metrics is None:
        return metrics_available()
    if not isinstance(use_metrics, bool):
        raise ServiceConfigurationError(
            f"use_metrics must be True, False or None, got {use_metrics!r}"
        )
    if use_metrics and not metrics_available():
        raise ServiceConfigurationError(
            "use_metrics = True needs prometheus-client: "
            "install the 'metrics' extra (pip install 'gemstone-aio[metrics]')"
        )
    return use_metrics
