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
``gemstone_pool_stuck``                   gauge      blocking calls running longer than
                                                     ``stuck_call_threshold``
``gemstone_connections_open``             gauge      HTTP connections open
``gemstone_connections_refused_total``    counter    connections closed at once because
                                                     ``max_connections`` were open
``gemstone_events_published_total``       counter    ``event``
``gemstone_events_publish_failed_total``  counter    ``event``
``gemstone_events_publish_dropped_total``  counter   ``event``: fire-and-forget events dropped
                                                     past ``max_pending_publications``
``gemstone_events_handled_total``         counter    ``event``, ``outcome`` (ok, failed, retried,
                                                     dead_lettered)
``gemstone_event_handler_duration_seconds``  histogram  ``event``
``gemstone_registry_pings_total``         counter    ``registry``, ``outcome`` (ok, failed)
``gemstone_periodic_runs_total``          counter    ``task``, ``outcome`` (ok, failed)
``gemstone_peer_calls_total``             counter    ``peer`` (an instance this service called,
                                                     by URL), ``outcome`` (ok, connect_failed,
                                                     failed, timeout, overloaded,
                                                     shutting_down, cancelled): per attempt
``gemstone_peer_call_duration_seconds``   histogram  ``peer``
``gemstone_peer_calls_in_flight``         gauge      ``peer``: attempts under way
``gemstone_peer_ejected``                 gauge      ``peer``: 1 while it is ejected
``gemstone_peer_ejections_total``         counter    ``peer``
``gemstone_call_retries_total``           counter    ``service`` (the ``get_service`` pattern),
                                                     ``reason`` (the failed attempt's outcome)
``gemstone_call_retries_denied_total``    counter    ``service``: retries the budget refused
``gemstone_service_info``                 info       ``name``, ``version``
========================================  =========  ==========================================

Calls of methods the service does not have are counted under the method ``(unknown)``,
so callers cannot grow the registry with made-up names. Calls of private methods are
reported under the method ``(private)`` (one series for all of them, summed) unless the
scrape may learn their names: the service set ``metrics_show_private_methods``, or
``/metrics`` requires authentication and the scraper passed it.

The per-call figures sit on the hot path of every request, so they are kept in plain
numbers updated on the event loop (no lock, one bucket search) and turned into metric
families only when ``/metrics`` is scraped (:class:`CallCollector`, and
:class:`PeerCollector` for the calls this service makes); the rarer hooks use
prometheus-client's thread-safe metrics, so they may be called from any thread. The
``peer`` label names instances, never methods, so private methods stay unnamed; the
series of an instance the caller stops tracking are dropped.
"""

from __future__ import annotations

import contextlib
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .._version import __version__
from ._metrics import PRIVATE_METHOD, MetricsHooks, _check_outcome, is_private

__all__ = [
    "PRIVATE_METHOD",
    "UNKNOWN_METHOD",
    "CallCollector",
    "PeerCollector",
    "PrometheusMetrics",
]

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


_go_float: Callable[[float], str] = floatToGoString  # how prometheus-client writes "le"


class _MethodCalls:
    __slots__ = ("buckets", "codes", "total_time")

    def __init__(self, bucket_count: int) -> None:
        self.codes: dict[int | None, int] = {}
        self.buckets = [0] * bucket_count
        self.total_time = 0.0

    def add(self, other: _MethodCalls) -> None:
        for code, count in other.codes.items():
            self.codes[code] = self.codes.get(code, 0) + count
        for index, count in enumerate(other.buckets):
            self.buckets[index] += count
        self.total_time += other.total_time


class CallCollector(Collector):
    """Calls by method and code, and their latency histogram, in plain numbers.

    :meth:`observe` must be called on one thread (the event loop's: the router's
    observers run there), and so must the scrape that calls :meth:`collect`.

    Calls are recorded under the method's own name; :meth:`collect` reports private
    methods under :data:`PRIVATE_METHOD`, summed, unless ``show_private`` is true or the
    scrape runs inside :meth:`showing_private`.

    Args:
        methods: The service's method table (a live mapping).
        buckets: Upper bounds of the latency histogram, in seconds, ascending.
        show_private: Report private methods under their names to every scrape.
    """

    def __init__(
        self,
        methods: Mapping[str, Any],
        buckets: tuple[float, ...],
        *,
        show_private: bool = False,
    ) -> None:
        self._methods = methods
        self._bounds = buckets
        self._per_method: dict[str, _MethodCalls] = {}
        self.show_private = show_private
        self._scrape_shows_private = False

    def observe(self, method: str, duration: float, code: int | None) -> None:
        """Record one finished call."""
        calls = self._per_method.get(method)
        if calls is None:
            if method not in self._methods:
                method = UNKNOWN_METHOD
            calls = self._per_method.get(method)
            if calls is None:
                calls = self._per_method[method] = _MethodCalls(len(self._bounds) + 1)
        codes = calls.codes
        codes[code] = codes.get(code, 0) + 1
        calls.buckets[bisect_left(self._bounds, duration)] += 1
        calls.total_time += duration

    def _families(self) -> tuple[CounterMetricFamily, HistogramMetricFamily]:
        return (
            CounterMetricFamily(
                "gemstone_calls", "JSON-RPC calls answered.", labels=["method", "code"]
            ),
            HistogramMetricFamily(
                "gemstone_call_duration_seconds",
                "Time spent in JSON-RPC calls.",
                labels=["method"],
            ),
        )

    def describe(self) -> Iterator[Metric]:
        """Name the metric families (for the registry's duplicate check)."""
        yield from self._families()

    @contextlib.contextmanager
    def showing_private(self, show: bool = True) -> Iterator[None]:
        """Within the block, :meth:`collect` names private methods when ``show`` is true.

        For one scrape by a requester that may learn the names (no ``await`` inside: the
        scrape runs on the event loop in one go).
        """
        self._scrape_shows_private = show
        try:
            yield
        finally:
            self._scrape_shows_private = False

    def _reported(self) -> dict[str, _MethodCalls]:
        if self.show_private or self._scrape_shows_private:
            return self._per_method
        reported: dict[str, _MethodCalls] = {}
        hidden: _MethodCalls | None = None
        for method, stats in self._per_method.items():
            if is_private(self._methods.get(method)):
                if hidden is None:
                    hidden = reported[PRIVATE_METHOD] = _MethodCalls(len(stats.buckets))
                hidden.add(stats)
            else:
                reported[method] = stats
        return reported

    def collect(self) -> Iterator[Metric]:
        """Build the metric families from the numbers recorded so far."""
        calls, latency = self._families()
        labels = [*(_go_float(bound) for bound in self._bounds), "+Inf"]
        for method, stats in sorted(self._reported().items()):
            for code, count in sorted(stats.codes.items(), key=lambda item: item[0] or 0):
                calls.add_metric([method, "ok" if code is None else str(code)], count)
            cumulative = 0
            buckets: list[tuple[str, float]] = []
            for label, count in zip(labels, stats.buckets, strict=True):
                cumulative += count
                buckets.append((label, cumulative))
            latency.add_metric([method], buckets, stats.total_time)
        yield calls
        yield latency


class _PeerCalls:
    __slots__ = ("buckets", "ejections", "outcomes", "total_time")

    def __init__(self, bucket_count: int) -> None:
        self.outcomes: dict[str, int] = {}
        self.buckets = [0] * bucket_count
        self.total_time = 0.0
        self.ejections = 0


class PeerCollector(Collector):
    """The attempts of this service's calls to other instances, by instance, in plain numbers.

    Like :class:`CallCollector`: updated and collected on the event loop only. The
    in-flight and ejected gauges are read at collection time from the source given to
    :meth:`watch` (the service's locator).

    Args:
        buckets: Upper bounds of the latency histogram, in seconds, ascending.
    """

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self._bounds = buckets
        self._peers: dict[str, _PeerCalls] = {}
        self._read: Callable[[], Iterable[tuple[str, int, bool]]] | None = None

    def _calls(self, peer: str) -> _PeerCalls:
        calls = self._peers.get(peer)
        if calls is None:
            calls = self._peers[peer] = _PeerCalls(len(self._bounds) + 1)
        return calls

    def observe(self, peer: str, outcome: str, duration: float) -> None:
        """Record one attempt to ``peer``."""
        calls = self._calls(peer)
        outcomes = calls.outcomes
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        calls.buckets[bisect_left(self._bounds, duration)] += 1
        calls.total_time += duration

    def ejected(self, peer: str) -> None:
        """Count an ejection of ``peer``."""
        self._calls(peer).ejections += 1

    def forget(self, peer: str) -> None:
        """Drop the series of ``peer``."""
        self._peers.pop(peer, None)

    def watch(self, read: Callable[[], Iterable[tuple[str, int, bool]]]) -> None:
        """Read ``(peer, in flight, ejected)`` rows from ``read`` at each collection."""
        self._read = read

    def _families(
        self,
    ) -> tuple[
        CounterMetricFamily,
        HistogramMetricFamily,
        CounterMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
    ]:
        return (
            CounterMetricFamily(
                "gemstone_peer_calls",
                "Attempts of calls to the instances this service calls, by outcome.",
                labels=["peer", "outcome"],
            ),
            HistogramMetricFamily(
                "gemstone_peer_call_duration_seconds",
                "Time the attempts to each instance took.",
                labels=["peer"],
            ),
            CounterMetricFamily(
                "gemstone_peer_ejections",
                "Times each instance was ejected from balancing.",
                labels=["peer"],
            ),
            GaugeMetricFamily(
                "gemstone_peer_calls_in_flight",
                "Attempts under way to each instance.",
                labels=["peer"],
            ),
            GaugeMetricFamily(
                "gemstone_peer_ejected",
                "1 while the instance is ejected from balancing.",
                labels=["peer"],
            ),
        )

    def describe(self) -> Iterator[Metric]:
        """Name the metric families (for the registry's duplicate check)."""
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        """Build the metric families from the numbers recorded so far."""
        calls, latency, ejections, in_flight, ejected = self._families()
        labels = [*(_go_float(bound) for bound in self._bounds), "+Inf"]
        for peer, stats in sorted(self._peers.items()):
            for outcome, count in sorted(stats.outcomes.items()):
                calls.add_metric([peer, outcome], count)
            cumulative = 0
            buckets: list[tuple[str, float]] = []
            for label, count in zip(labels, stats.buckets, strict=True):
                cumulative += count
                buckets.append((label, cumulative))
            latency.add_metric([peer], buckets, stats.total_time)
            ejections.add_metric([peer], stats.ejections)
        for peer, count, out in sorted(self._read() if self._read is not None else ()):
            in_flight.add_metric([peer], count)
            ejected.add_metric([peer], 1 if out else 0)
        yield from (calls, latency, ejections, in_flight, ejected)


_REFUSED_HELP: Final = "Connections closed at once because max_connections were open."


class _CounterOf(Collector):
    """A counter whose value another object keeps (read at scrape time)."""

    def __init__(self, name: str, documentation: str, read: Callable[[], int]) -> None:
        self._name = name
        self._documentation = documentation
        self._read = read

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._documentation)
        family.add_metric([], self._read())
        yield family


class PrometheusMetrics(MetricsHooks):
    """The metrics hooks of a service, recorded in its own Prometheus registry.

    Args:
        service_name: Reported in ``gemstone_service_info``.
        methods: The service's method table (a live mapping: names added later count).
        pool_stats: ``(queued, running, workers)`` getters of the blocking pool, read at
            scrape time only.
        stuck: Getter of the blocking calls running for too long.
        connections: ``(open, refused)`` getters of the HTTP connections.
        show_private: Name private methods in every scrape (the service's
            ``metrics_show_private_methods``); otherwise only in :meth:`render` calls
            that ask for it.
    """

    enabled = True

    def __init__(
        self,
        service_name: str,
        methods: Mapping[str, Any],
        pool_stats: tuple[Callable[[], int], Callable[[], int], Callable[[], int]] | None = None,
        *,
        show_private: bool = False,
        stuck: Callable[[], int] | None = None,
        connections: tuple[Callable[[], int], Callable[[], int]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.in_flight = 0
        reg = self.registry
        self.calls = CallCollector(methods, LATENCY_BUCKETS, show_private=show_private)
        reg.register(self.calls)
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
        if stuck is not None:
            Gauge(
                "gemstone_pool_stuck",
                "Blocking calls running longer than stuck_call_threshold.",
                registry=reg,
            ).set_function(stuck)
        if connections is not None:
            opened, refused = connections
            Gauge("gemstone_connections_open", "HTTP connections open.", registry=reg).set_function(
                opened
            )
            reg.register(_CounterOf("gemstone_connections_refused", _REFUSED_HELP, refused))
        self._published = Counter(
            "gemstone_events_published", "Events published.", ["event"], registry=reg
        )
        self._publish_failed = Counter(
            "gemstone_events_publish_failed",
            "Events that could not be published.",
            ["event"],
            registry=reg,
        )
        self._publish_dropped = Counter(
            "gemstone_events_publish_dropped",
            "Fire-and-forget events dropped: max_pending_publications were under way.",
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
        self.peers = PeerCollector(LATENCY_BUCKETS)
        reg.register(self.peers)
        self._retries = Counter(
            "gemstone_call_retries",
            "Calls sent again to another instance, by the failed attempt's outcome.",
            ["service", "reason"],
            registry=reg,
        )
        self._retries_denied = Counter(
            "gemstone_call_retries_denied",
            "Retries not made: the retry budget was spent.",
            ["service"],
            registry=reg,
        )
        Info("gemstone_service", "The service.", registry=reg).info(
            {"name": service_name, "version": __version__}
        )

    # -- calls -----------------------------------------------------------------------

    def observe_call(self, method: str, duration: float, code: int | None) -> None:
        """Count one finished call and its duration (see :meth:`CallCollector.observe`)."""
        self.calls.observe(method, duration, code)

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

    def event_publish_dropped(self, event: str) -> None:
        """Count a fire-and-forget event dropped for want of room."""
        self._publish_dropped.labels(event).inc()

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

    # -- the instances this service calls ----------------------------------------------

    def peer_call(self, peer: str, outcome: str, duration: float) -> None:
        """Count one attempt to ``peer`` (see :meth:`PeerCollector.observe`)."""
        self.peers.observe(peer, outcome, duration)

    def peer_ejected(self, peer: str, seconds: float) -> None:
        """Count an ejection of ``peer``."""
        self.peers.ejected(peer)

    def peer_forgotten(self, peer: str) -> None:
        """Drop the series of ``peer``."""
        self.peers.forget(peer)

    def call_retried(self, service: str, reason: str) -> None:
        """Count a call sent again to another instance."""
        self._retries.labels(service, reason).inc()

    def retry_denied(self, service: str) -> None:
        """Count a retry the budget refused."""
        self._retries_denied.labels(service).inc()

    def watch_peers(self, read: Callable[[], Iterable[tuple[str, int, bool]]]) -> None:
        """Read the in-flight and ejected gauges from ``read`` at each scrape."""
        self.peers.watch(read)

    # -- exposition ------------------------------------------------------------------

    def render(self, accept: str | None = None, *, show_private: bool = False) -> tuple[bytes, str]:
        """Return the exposition and its content type, in the format ``accept`` asks for.

        Prometheus' text format unless the scraper asks for OpenMetrics. Private methods
        are named only with ``show_private`` (the scraper passed the service's access
        check) or when the service shows them to everyone; else they are reported
        under :data:`PRIVATE_METHOD`.
        """
        encoder, content_type = choose_encoder(accept or "")
        with self.calls.showing_private(show_private):
            return encoder(self.registry), content_type
