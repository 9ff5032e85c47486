"""Prometheus metrics of one service (needs the ``metrics`` extra: prometheus-client).

Each service gets its own :class:`prometheus_client.CollectorRegistry`, never the
global one, so two services in one process (or two tests) never collide. The metrics:

========================================  =========  ==========================================
name                                      type       labels / meaning
========================================  =========  ==========================================
``gemstone_calls_total``                  counter    ``method``, ``code`` (``ok`` or the JSON-RPC
                                                     error code, e.g. ``-32602``)
``gemstone_call_duration_seconds``        histogram  ``method``
``gemstone_requests_in_flight``           gauge      HTTP requests to the endpoint being answered
``gemstone_pool_queued``                  gauge      blocking calls waiting for a thread
``gemstone_pool_running``                 gauge      blocking calls running in the pool
``gemstone_pool_workers``                 gauge      threads of the pool
``gemstone_events_published_total``       counter    ``event``
``gemstone_events_publish_failed_total``  counter    ``event``
``gemstone_events_handled_total``         counter    ``event``, ``outcome`` (ok, failed, retried,
                                                     dead_lettered)
``gemstone_event_handler_duration_seconds``  histogram  ``event``
``gemstone_registry_pings_total``         counter    ``registry``, ``outcome`` (ok, failed)
``gemstone_periodic_runs_total``          counter    ``task``, ``outcome`` (ok, failed)
``gemstone_service_info``                 info       ``name``, ``version``
========================================  =========  ==========================================

Calls of methods the service does not have are counted under the method ``(unknown)``,
so callers cannot grow the registry with made-up names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import choose_encoder

from .._version import __version__
from .metrics import MetricsHooks, _check_outcome

__all__ = ["UNKNOWN_METHOD", "PrometheusMetrics"]

UNKNOWN_METHOD: Final = "(unknown)"
"""The ``method`` label of calls to names the service does not expose."""

LATENCY_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class PrometheusMetrics(MetricsHooks):
    """The metrics hooks of a service, recorded in its own Prometheus registry.

    Args:
        service_name: Reported in ``gemstone_service_info``.
        methods: The service's method table (a live mapping: names added later count).
        pool_stats: ``(queued, running, workers)`` getters of the blocking pool, read at
            scrape time only.
    """

    enabled = True

    def __init__(
        self,
        service_name: str,
        methods: Mapping[str, Any],
        pool_stats: tuple[Callable[[], int], Callable[[], int], Callable[[], int]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._methods = methods
        self.in_flight = 0
        reg = self.registry
        self._calls = Counter(
            "gemstone_calls", "JSON-RPC calls answered.", ["method", "code"], registry=reg
        )
        self._latency = Histogram(
            "gemstone_call_duration_seconds",
            "Time spent in JSON-RPC calls.",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        Gauge(
            "gemstone_requests_in_flight",
            "HTTP requests to the JSON-RPC endpoint being answered.",
            registry=reg,
        ).set_function(lambda: self.in_flight)
        if pool_stats is not None:
            queued, running, workers = pool_stats
            Gauge(
                "gemstone_pool_queued", "Blocking calls waiting for a thread.", registry=reg
            ).set_function(queued)
            Gauge(
                "gemstone_pool_running", "Blocking calls running in the pool.", registry=reg
            ).set_function(running)
            Gauge(
                "gemstone_pool_workers", "Threads of the blocking pool.", registry=reg
            ).set_function(workers)
        self._published = Counter(
            "gemstone_events_published", "Events published.", ["event"], registry=reg
        )
        self._publish_failed = Counter(
            "gemstone_events_publish_failed",
            "Events that could not be published.",
            ["event"],
            registry=reg,
        )
        self._handled = Counter(
            "gemstone_events_handled",
            "Event deliveries handled, by outcome.",
            ["event", "outcome"],
            registry=reg,
        )
        self._handler_latency = Histogram(
            "gemstone_event_handler_duration_seconds",
            "Time spent in event handlers.",
            ["event"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self._pings = Counter(
            "gemstone_registry_pings",
            "Heartbeats sent to service registries, by outcome.",
            ["registry", "outcome"],
            registry=reg,
        )
        self._periodic = Counter(
            "gemstone_periodic_runs",
            "Runs of periodic tasks, by outcome.",
            ["task", "outcome"],
            registry=reg,
        )
        Info("gemstone_service", "The service.", registry=reg).info(
            {"name": service_name, "version": __version__}
        )
        # Label children are looked up once per (method, code), not once per call.
        self._call_children: dict[tuple[str, int | None], tuple[Any, Any]] = {}

    # -- calls (hot path) ------------------------------------------------------------

    def observe_call(self, method: str, duration: float, code: int | None) -> None:
        """Count one finished call and its duration."""
        children = self._call_children.get((method, code))
        if children is None:
            children = self._children_for(method, code)
        children[0].inc()
        children[1].observe(duration)

    def _children_for(self, method: str, code: int | None) -> tuple[Any, Any]:
        label = method if method in self._methods else UNKNOWN_METHOD
        children = (
            self._calls.labels(label, "ok" if code is None else str(code)),
            self._latency.labels(label),
        )
        if label is method:
            self._call_children[(method, code)] = children
        return children

    def request_started(self) -> None:
        """Count an HTTP request to the endpoint as in flight."""
        self.in_flight += 1

    def request_finished(self) -> None:
        """Count an HTTP request to the endpoint as finished."""
        self.in_flight -= 1

    # -- events, registry, periodic tasks ----------------------------------------------

    def event_published(self, event: str) -> None:
        """Count a published event."""
        self._published.labels(event).inc()

    def event_publish_failed(self, event: str) -> None:
        """Count an event that could not be published."""
        self._publish_failed.labels(event).inc()

    def event_handled(self, event: str, outcome: str = "ok", duration: float | None = None) -> None:
        """Count a handled delivery by outcome (see :data:`~.metrics.EVENT_OUTCOMES`)."""
        _check_outcome(outcome)
        self._handled.labels(event, outcome).inc()
        if duration is not None:
            self._handler_latency.labels(event).observe(duration)

    def registry_ping_failed(self, registry: str) -> None:
        """Count a failed heartbeat."""
        self._pings.labels(registry, "failed").inc()

    def registry_ping_succeeded(self, registry: str) -> None:
        """Count a successful heartbeat."""
        self._pings.labels(registry, "ok").inc()

    def periodic_task_run(self, task: str, duration: float, ok: bool) -> None:
        """Count a run of a periodic task."""
        self._periodic.labels(task, "ok" if ok else "failed").inc()

    # -- exposition ------------------------------------------------------------------

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """Return the exposition and its content type, in the format ``accept`` asks for.

        Prometheus' text format unless the scraper asks for OpenMetrics.
        """
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
