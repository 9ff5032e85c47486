"""The aiohttp application factory: ``make_app(service)``.

The application is composed around the service, never subclassed. Its state lives
under the typed keys below. Each long-lived resource has one cleanup context, entered
in this order and left in reverse:

1. the executor of blocking calls (``_executor_ctx``);
2. the event transports (connected before the hooks, so start-up code can emit;
   closed after pending publications finished);
3. the service's ``on_service_start`` / ``on_service_stop`` hooks (``_lifecycle_ctx``);
4. the registry heartbeat (``install_discovery``; its connections close in
   ``on_cleanup``, after ``on_service_stop``, which may still call ``get_service``);
5. the periodic tasks (:func:`~gemstone_aio.core.periodic.periodic_tasks_ctx`);
6. the event consumers (started after ``on_service_start``; stopped first on shutdown,
   letting in-flight handlers finish).

Callbacks under :data:`STOPPING_KEY` are awaited by ``serve()`` first on shutdown, while
the server still accepts connections (unregistering from a registry belongs there).
See ``docs/lifecycle.md`` for the whole start-up and shutdown order.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import hdrs, web
from multidict import istr

from ..errors import InvalidRequest, JsonRpcError, RequestTooLarge
from ..observability._logs import new_request_id, sanitize_request_id
from ..observability._metrics import MetricsHooks
from ..protocol import (
    TIMEOUT_HEADER,
    BlockingRunner,
    CallContext,
    MethodEntry,
    Router,
    current_call,
    deadline_of,
)
from ..protocol import _jsonrpc as jsonrpc
from ._access import authenticate, log_access_setup
from ._cors import install_cors
from ._discovery import install_discovery
from ._drain import InFlight
from ._events import EventRuntime
from ._handlers import RequestHandler
from ._listener import CONNECTIONS_KEY, ConnectionGuard, effective_max_connections
from ._microservice import MicroService
from ._observability import ENDPOINT_REQUEST_ID_KEY, METRICS_KEY, install_observability
from ._periodic import PeriodicTasks, periodic_tasks_ctx
from ._selfdescription import install as install_self_description

__all__ = [
    "CONNECTIONS_KEY",
    "EVENTS_KEY",
    "IN_FLIGHT_KEY",
    "PERIODIC_KEY",
    "POOL_KEY",
    "ROUTER_KEY",
    "SERVICE_KEY",
    "SERVING_KEY",
    "STOPPING_KEY",
    "build_router",
    "make_app",
]

SERVICE_KEY = web.AppKey("gemstone_aio.service", MicroService)
"""The service the application serves."""
ROUTER_KEY = web.AppKey("gemstone_aio.router", Router)
"""The JSON-RPC router of the endpoint."""
POOL_KEY = web.AppKey("gemstone_aio.pool", BlockingRunner)
"""Runs blocking methods, handlers and tasks in the service's executor."""
EVENTS_KEY = web.AppKey("gemstone_aio.events", EventRuntime)
"""The service's events machinery (transports, consumers, ``emit_event``)."""
SERVING_KEY = web.AppKey("gemstone_aio.serving", asyncio.Event)
"""Set once the server listens (``serve()``); never set under a test client that does not."""
PERIODIC_KEY = web.AppKey("gemstone_aio.periodic", PeriodicTasks)
"""The service's periodic tasks (with their run statistics)."""
IN_FLIGHT_KEY = web.AppKey("gemstone_aio.in_flight", InFlight)
"""The endpoint's calls in flight (drained, then cut, on shutdown)."""
STOPPING_KEY = web.AppKey(
    "gemstone_aio.stopping", list[Callable[[web.Application], Awaitable[None]]]
)
"""Callbacks ``serve()`` awaits first on shutdown, before the server stops accepting."""


async def maybe_await(value: Any) -> Any:
    """Await ``value`` if it is awaitable (for hooks that may be sync or async)."""
    if inspect.isawaitable(value):
        return await value
    return value


async def _authenticate(context: CallContext) -> Any:
    return await authenticate(context.service, context.transport)


def _make_handler(context: CallContext) -> RequestHandler:
    return RequestHandler(context.transport, context.service, context)


def _error_body(error: JsonRpcError, status: int) -> web.Response:
    return web.Response(
        body=jsonrpc.error_answer(None, error),
        status=status,
        content_type="application/json",
    )


def _too_large(service: MicroService) -> web.Response:
    limit = service.max_request_body_size
    return _error_body(RequestTooLarge(data=f"the body exceeds {limit} bytes"), 413)


_TIMEOUT_HEADER = istr(TIMEOUT_HEADER)  # istr: faster lookups


def _body_too_slow(service: MicroService) -> web.Response:
    response = _error_body(
        InvalidRequest(data=f"the body did not arrive within {service.body_read_timeout} s"), 408
    )
    response.force_close()
    return response


def _make_endpoint(
    app: web.Application, service: MicroService, router: Router, calls: InFlight
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    # A closure over what every request needs, rather than lookups in ``request.app``.
    # The request-id header and the metrics are read from the app on the first request:
    # the app is frozen by then, so they cannot change afterwards.
    id_header: str | None = None
    in_flight: MetricsHooks | None = None  # counts requests in flight when metrics are on

    async def endpoint(request: web.Request) -> web.StreamResponse:
        nonlocal id_header, in_flight
        if id_header is None:
            id_header = istr(app.get(ENDPOINT_REQUEST_ID_KEY, ""))  # istr: faster lookups
            hooks = app.get(METRICS_KEY)
            in_flight = hooks if hooks is not None and hooks.enabled else None
        if in_flight is not None:
            in_flight.request_started()
        task = request.task
        calls.enter(task)
        headers = request.headers
        body: bytes | None = None
        try:
            # The exact header most clients send needs no parsing.
            if (
                headers.get(hdrs.CONTENT_TYPE) != "application/json"
                and request.content_type.lower() != "application/json"
            ):
                return _error_body(
                    InvalidRequest(
                        data=f"Content-Type must be application/json, got {request.content_type!r}"
                    ),
                    415,
                )
            try:
                if request.content.is_eof():  # the usual small body: all there already
                    body = await request.read()
                else:
                    async with asyncio.timeout(service.body_read_timeout):
                        body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                return _too_large(service)
            except TimeoutError:
                return _body_too_slow(service)
            request_id = None
            if id_header:
                supplied = headers.get(id_header)
                request_id = new_request_id() if supplied is None else sanitize_request_id(supplied)
            budget = headers.get(_TIMEOUT_HEADER)
            deadline = None
            if budget is not None:
                try:
                    deadline = deadline_of(budget)
                except ValueError as exc:
                    return _error_body(InvalidRequest(data=str(exc)), 400)
            context = CallContext(
                service, request, headers, request_id, _authenticate, _make_handler, deadline
            )
            token = current_call.set(context)
            try:
                answer = await router.handle(body, context)
            finally:
                current_call.reset(token)
            if answer is None:
                response = web.Response(status=204)
            else:
                response = web.Response(body=answer, content_type="application/json")
            handler = context.handler_if_built
            if handler is not None:
                handler.apply_to(response)
            if request_id is not None:
                response.headers[id_header] = request_id
            return response
        except asyncio.CancelledError:
            if not calls.cutting:
                raise
            # Cut at the end of the shutdown grace period: answer -32005 while we can.
            task.uncancel()
            return web.Response(body=calls.answer_for(body), content_type="application/json")
        finally:
            calls.leave(task)
            if in_flight is not None:
                in_flight.request_finished()

    return endpoint


def build_router(service: MicroService, blocking: BlockingRunner) -> Router:
    """Build the router of ``service``: its methods and its modules'."""
    entries: dict[str, MethodEntry] = {}
    for spec, owner, func in service.iter_exposed():
        entries[spec.name] = MethodEntry.create(spec, func, owner)
    return Router(
        entries,
        run_blocking=blocking.run,
        logger=service.logger,
        debug=service.debug,
        default_timeout=service.method_timeout,
        max_batch_length=service.max_batch_length,
        max_json_depth=service.max_json_depth,
        batch_concurrency=service.batch_concurrency,
    )


EXECUTOR_CLOSE_TIMEOUT = 2.0
"""Seconds the shutdown waits for blocking calls still running (after the grace period
cut them off from their callers); threads stuck longer are left behind and counted."""


def _executor_ctx(blocking: BlockingRunner, logger: Any) -> Any:
    async def executor_ctx(app: web.Application) -> AsyncIterator[None]:
        yield
        # Running blocking calls finish; the loop stays free while we wait for them.
        stuck = await blocking.aclose(EXECUTOR_CLOSE_TIMEOUT)
        if stuck:
            logger.warning(
                "shutdown: %d blocking call(s) still running after the grace period; "
                "their threads cannot be stopped and are left behind",
                stuck,
            )

    return executor_ctx


async def _lifecycle_ctx(app: web.Application) -> AsyncIterator[None]:
    service = app[SERVICE_KEY]
    await maybe_await(service.on_service_start())
    yield
    await maybe_await(service.on_service_stop())


def make_app(service: MicroService) -> web.Application:
    """Build the aiohttp application of ``service``.

    It serves POST on the endpoint (other verbs get 405 with ``Allow: POST``), the
    static directories and the extra handlers, and runs the service's resources as
    cleanup contexts.
    """
    app = web.Application(
        client_max_size=service.max_request_body_size,
        handler_args={
            # A caller that hangs up cancels its call (and the calls that call makes).
            "handler_cancellation": True,
            "keepalive_timeout": service.keepalive_timeout,
        },
    )
    pool = BlockingRunner(
        service.make_executor(),
        max_workers=service.max_parallel_blocking_tasks,
        max_waiting=service.max_pending_blocking_tasks,
    )
    app[SERVICE_KEY] = service
    app[POOL_KEY] = pool
    app[ROUTER_KEY] = build_router(service, pool)
    log_access_setup(service, [n for n, e in app[ROUTER_KEY].methods.items() if e.spec.private])
    app[SERVING_KEY] = asyncio.Event()
    app[IN_FLIGHT_KEY] = InFlight()
    app[CONNECTIONS_KEY] = ConnectionGuard(
        effective_max_connections(service.max_connections, service.logger), service.logger
    )
    app.router.add_post(
        service.endpoint, _make_endpoint(app, service, app[ROUTER_KEY], app[IN_FLIGHT_KEY])
    )
    install_cors(app, service.endpoint, service.cors_origins)
    # rpc.discover, get_service_specs, GET {endpoint}/openrpc.json and {endpoint}/docs.
    install_self_description(app, service, app[ROUTER_KEY])
    for prefix, directory in service.static_dirs:
        app.router.add_static(prefix, directory, follow_symlinks=False)
    for path, handler in service.extra_handlers:
        if inspect.isclass(handler) and issubclass(handler, web.View):
            app.router.add_view(path, handler)
        else:
            app.router.add_route("*", path, handler)
    events = EventRuntime(service, pool.run)
    app[EVENTS_KEY] = events
    if service.template_dir is not None:
        from ._templates import setup_templates

        setup_templates(app, service.template_dir)
    periodic = PeriodicTasks.from_service(service)
    app[PERIODIC_KEY] = periodic
    app[STOPPING_KEY] = []
    app.cleanup_ctx.append(_executor_ctx(pool, service.logger))
    app.cleanup_ctx.append(events.transports_ctx)
    app.cleanup_ctx.append(_lifecycle_ctx)
    # A supervisor's secondary workers share the primary's URL: it alone heartbeats
    # (one instance to callers) and runs the periodic tasks.
    primary = service._worker_index in (None, 0)
    install_discovery(app, service, app[SERVING_KEY], app[STOPPING_KEY], heartbeat=primary)
    if primary:
        app.cleanup_ctx.append(periodic_tasks_ctx(periodic, pool, service.logger))
    app.cleanup_ctx.append(events.consumers_ctx)
    install_observability(app, service, app[ROUTER_KEY], pool)
    return app
