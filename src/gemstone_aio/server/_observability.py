"""Putting observability into a service's application (called by ``make_app``)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from multidict import istr

from ..errors import ServiceConfigurationError
from ..observability._health import (
    READINESS_KEY,
    ReadinessState,
    health_handler,
    ready_handler,
    required_check_names,
)
from ..observability._logs import RequestIdFilter, sanitize_request_id
from ..observability._metrics import MetricsHooks, metrics_enabled
from ..observability._statistics import add_statistics_method
from ..observability._tracing import make_tracer, tracing_enabled
from ._access import authenticate, nothing_admits
from ._listener import CONNECTIONS_KEY

if TYPE_CHECKING:
    from ..protocol import BlockingRunner
    from ..protocol._router import Router
    from ._microservice import MicroService

__all__ = ["ENDPOINT_REQUEST_ID_KEY", "METRICS_KEY", "install_observability"]

METRICS_KEY = web.AppKey("gemstone_aio.metrics", MetricsHooks)
"""The metrics hooks of the application (the same object as ``service.metrics``)."""

ENDPOINT_REQUEST_ID_KEY = web.AppKey("gemstone_aio.endpoint_request_id", str)
"""The request-id header the JSON-RPC endpoint handles itself ("": no request ids). Any
aiohttp middleware costs every request its fast path (about a tenth of the throughput of
a trivial call, measured with ``bench/rpc_throughput.py``), so the endpoint stamps its
own calls and a response hook labels the rest."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _attach_request_id_filter(logger: logging.Logger) -> None:
    if not any(isinstance(existing, RequestIdFilter) for existing in logger.filters):
        logger.addFilter(RequestIdFilter())


def _label_response(name: str) -> Any:
    header = istr(name)  # case-insensitive lookups are cheaper with an istr

    async def label(request: web.Request, response: web.StreamResponse) -> None:
        # The endpoint set its own; every other answer (probes, 404, 405, ...) gets one here.
        if header not in response.headers:
            response.headers[header] = sanitize_request_id(request.headers.get(header))

    return label


def _stuck_workers(service: MicroService, pool: BlockingRunner) -> Callable[[], str | None]:
    # Liveness: a process whose every blocking worker is stuck cannot recover by itself.
    def failure() -> str | None:
        threshold = service.stuck_call_threshold
        if threshold is None:
            return None
        stuck = pool.stuck(threshold)
        if stuck < pool.max_workers:
            return None
        return (
            f"all {pool.max_workers} blocking workers have been running the same calls for "
            f"more than {threshold} s (stuck_call_threshold)"
        )

    return failure


def _metrics_handler(metrics: Any, service: MicroService) -> Handler:
    if not service.metrics_require_authentication:

        async def serve_metrics(request: web.Request) -> web.Response:
            body, content_type = metrics.render(request.headers.get("Accept"))
            return web.Response(body=body, headers={"Content-Type": content_type})

        return serve_metrics

    async def serve_metrics_to_admitted(request: web.Request) -> web.Response:
        # The endpoint's own access check (fails closed if it raises); a refused scrape
        # learns nothing, not even which metrics exist. An admitted scraper may learn the
        # private methods' names, as rpc.discover tells an authenticated caller.
        if not await authenticate(service, request):
            raise web.HTTPForbidden(headers={"Cache-Control": "no-store"})
        body, content_type = metrics.render(request.headers.get("Accept"), show_private=True)
        return web.Response(
            body=body, headers={"Content-Type": content_type, "Cache-Control": "no-store"}
        )

    return serve_metrics_to_admitted


def _check_metrics_access(service: MicroService) -> None:
    if service.metrics_require_authentication and service.metrics_path and nothing_admits(service):
        raise ServiceConfigurationError(
            f"{type(service).__qualname__}.metrics_require_authentication is true, but nothing "
            "admits callers, so every scrape would be refused: set api_tokens or override "
            "authenticate_request(request) (see docs/access-control.md)"
        )


def install_observability(
    app: web.Application, service: MicroService, router: Router, pool: BlockingRunner
) -> None:
    """Add health, readiness, metrics, statistics, request ids and tracing to ``app``.

    What is added follows the service's attributes (``health_path``, ``ready_path``,
    ``ready_check_timeout``, ``ready_required_checks``, ``metrics_path``,
    ``use_metrics``, ``metrics_require_authentication``, ``metrics_show_private_methods``,
    ``use_statistics``, ``use_tracing``, ``tracer_provider``, ``request_id_header``).
    It sets ``service.metrics`` and ``service.tracer``.

    Raises:
        ServiceConfigurationError: An optional extra that the settings need is missing,
            ``use_statistics`` clashes with a method named ``statistics``,
            ``ready_required_checks`` is not a list of names, or ``/metrics`` requires
            authentication that nothing can pass.
    """
    _attach_request_id_filter(service.logger)

    readiness = ReadinessState(
        service.name or "",
        service.logger,
        service.ready_check_timeout,
        required_check_names(service.ready_required_checks, type(service).__qualname__),
    )
    app[READINESS_KEY] = readiness

    async def mark_started(app: web.Application) -> None:
        readiness.started = True

    async def mark_stopping(app: web.Application) -> None:
        readiness.started = False

    # on_startup handlers run after every cleanup context has been entered.
    app.on_startup.append(mark_started)
    app.on_shutdown.append(mark_stopping)
    if service.health_path:
        app.router.add_get(
            service.health_path, health_handler(service.name or "", _stuck_workers(service, pool))
        )
    if service.ready_path:
        app.router.add_get(service.ready_path, ready_handler)

    if service.use_statistics:
        stats = add_statistics_method(
            router, service, show_private=bool(service.metrics_show_private_methods)
        )

        async def restart_clock(app: web.Application) -> None:
            stats.restart()

        app.on_startup.append(restart_clock)

    metrics: MetricsHooks = MetricsHooks()
    if metrics_enabled(service.use_metrics):
        from ..observability._prometheus import PrometheusMetrics

        guard = app[CONNECTIONS_KEY]
        prometheus = PrometheusMetrics(
            service.name or "",
            router.methods,
            (
                lambda: pool.waiting,
                lambda: pool.running,
                lambda: pool.max_workers,
            ),
            stuck=lambda: pool.stuck(service.stuck_call_threshold or float("inf")),
            connections=(lambda: guard.open, lambda: guard.refused),
            show_private=bool(service.metrics_show_private_methods),
        )
        router.observers.append(prometheus.calls.observe)
        if service.metrics_path:
            _check_metrics_access(service)
            app.router.add_get(service.metrics_path, _metrics_handler(prometheus, service))
        metrics = prometheus
    app[METRICS_KEY] = metrics
    service.metrics = metrics

    tracer = None
    if tracing_enabled(service.use_tracing):
        from ..observability._otel import ServerSpans

        tracer = make_tracer(service.tracer_provider)
        router.call_wrappers.append(ServerSpans(tracer, service.name or "", router.methods))
    service.tracer = tracer

    # No middleware: any aiohttp middleware costs every request its fast path. The
    # endpoint stamps its own answers with the request id (and counts itself in flight
    # when metrics are on); a response hook labels every other answer.
    app[ENDPOINT_REQUEST_ID_KEY] = service.request_id_header or ""
    if service.request_id_header:
        app.on_response_prepare.append(_label_response(service.request_id_header))
