"""The aiohttp application factory: ``make_app(service)``.

The application is composed around the service, never subclassed. Its state lives
under the typed keys below. Each long-lived resource has one cleanup context, entered
in this order and left in reverse:

1. the thread pool (``_pool_ctx``);
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

from ..auth.access import authenticate, log_access_setup
from ..discovery.lifecycle import install_discovery
from ..errors import InvalidRequest, JsonRpcError, RequestTooLarge
from ..event.runtime import EventRuntime
from ..observability.logs import request_id_var, sanitize_request_id
from ..observability.metrics import MetricsHooks
from ..observability.wiring import ENDPOINT_REQUEST_ID_KEY, METRICS_KEY, install_observability
from ..selfdescription import install as install_self_description
from . import jsonrpc
from .concurrency import BlockingPool
from .cors import install_cors
from .handlers import RequestHandler, handler_source_var
from .microservice import MicroService
from .periodic import PeriodicTasks, periodic_tasks_ctx
from .router import MethodEntry, Router

__all__ = [
    "EVENTS_KEY",
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
POOL_KEY = web.AppKey("gemstone_aio.pool", BlockingPool)
"""The thread pool running blocking methods."""
EVENTS_KEY = web.AppKey("gemstone_aio.events", EventRuntime)
"""The service's events machinery (transports, consumers, ``emit_event``)."""
SERVING_KEY = web.AppKey("gemstone_aio.serving", asyncio.Event)
"""Set once the server listens (``serve()``); never set under a test client that does not."""
PERIODIC_KEY = web.AppKey("gemstone_aio.periodic", PeriodicTasks)
"""The service's periodic tasks (with their run statistics)."""
STOPPING_KEY = web.AppKey(
    "gemstone_aio.stopping", list[Callable[[web.Application], Awaitable[None]]]
)
"""Callbacks ``serve()`` awaits first on shutdown, before the server stops accepting."""


async def maybe_await(value: Any) -> Any:
    """Await ``value`` if it is awaitable (for hooks that may be sync or async)."""
    if inspect.isawaitable(value):
        return await value
    return value


class _HttpCallContext:
    """The router's view of one HTTP request: authentication once, the handler object.

    The handler object is built on first use: most calls never ask for it.
    """

    __slots__ = ("_authenticated", "_handler", "_lock", "request", "service")

    def __init__(self, request: web.Request, service: MicroService) -> None:
        self.request = request
        self.service = service
        self._handler: RequestHandler | None = None
        self._authenticated: bool | None = None
        self._lock: asyncio.Lock | None = None  # created on first use: most requests never ask

    @property
    def handler(self) -> RequestHandler:
        handler = self._handler
        if handler is None:
            handler = self._handler = RequestHandler(self.request, self.service)
            handler.authenticator = self.is_authenticated
        return handler

    async def is_authenticated(self) -> bool:
        # One HTTP request authenticates once, however many batch elements ask, even
        # when they ask concurrently: the lock makes the others wait for the first.
        # (Creating it has no await point, so two elements cannot create two locks.)
        if self._authenticated is not None:
            return self._authenticated
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._authenticated is None:
                identity = await authenticate(self.service, self.request)
                self.handler.identity = identity
                self._authenticated = bool(identity)
        return self._authenticated

    def handler_reference(self) -> RequestHandler:
        return self.handler


def _error_body(error: JsonRpcError, status: int) -> web.Response:
    return web.Response(
        body=jsonrpc.dumps(jsonrpc.error_response(None, error)),
        status=status,
        content_type="application/json",
    )


def _too_large(service: MicroService) -> web.Response:
    limit = service.max_request_body_size
    return _error_body(RequestTooLarge(data=f"the body exceeds {limit} bytes"), 413)


def _make_endpoint(
    app: web.Application, service: MicroService, router: Router
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
        try:
            # The exact header most clients send needs no parsing.
            if (
                request.headers.get(hdrs.CONTENT_TYPE) != "application/json"
                and request.content_type.lower() != "application/json"
            ):
                return _error_body(
                    InvalidRequest(
                        data=f"Content-Type must be application/json, got {request.content_type!r}"
                    ),
                    415,
                )
            body = request._read_bytes  # set when something (a middleware) read it already
            if body is None:
                content = request.content
                if content.is_eof():
                    # The whole body is buffered already (the usual small request): take
                    # it in one step. Request.read() would await it chunk by chunk and
                    # copy it, about 4% of a trivial call. Later readers get it from the
                    # request.
                    body = request._read_bytes = content.read_nowait()
                    if len(body) > service.max_request_body_size:
                        return _too_large(service)
                else:
                    try:
                        body = await request.read()
                    except web.HTTPRequestEntityTooLarge:
                        return _too_large(service)
            if id_header:
                request_id = sanitize_request_id(request.headers.get(id_header))
                id_token = request_id_var.set(request_id)
            call = _HttpCallContext(request, service)
            token = handler_source_var.set(call)
            try:
                answer = await router.handle(body, call)
            finally:
                handler_source_var.reset(token)
                if id_header:
                    request_id_var.reset(id_token)
            if answer is None:
                response = web.Response(status=204)
            else:
                response = web.Response(body=answer, content_type="application/json")
            if call._handler is not None:
                call._handler.apply_to(response)
            if id_header:
                response.headers[id_header] = request_id
            return response
        finally:
            if in_flight is not None:
                in_flight.request_finished()

    return endpoint


def build_router(service: MicroService, pool: BlockingPool) -> Router:
    """Build the router of ``service``: its methods and its modules'."""
    entries: dict[str, MethodEntry] = {}
    for spec, owner, func in service.iter_exposed():
        entries[spec.name] = MethodEntry.create(spec, func, owner)
    return Router(
        entries,
        run_blocking=pool.run,
        logger=service.logger,
        debug=service.debug,
        default_timeout=service.method_timeout,
        max_batch_length=service.max_batch_length,
        max_json_depth=service.max_json_depth,
        batch_concurrency=service.batch_concurrency,
    )


def _pool_ctx(pool: BlockingPool) -> Any:
    async def pool_ctx(app: web.Application) -> AsyncIterator[None]:
        yield
        # Running blocking calls finish; the loop stays free while we wait for them.
        await asyncio.get_running_loop().run_in_executor(None, pool.shutdown)

    return pool_ctx


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
    app = web.Application(client_max_size=service.max_request_body_size)
    pool = BlockingPool(
        service.max_parallel_blocking_tasks,
        max_pending=service.max_pending_blocking_tasks,
        name=f"gemstone-{service.name}",
    )
    app[SERVICE_KEY] = service
    app[POOL_KEY] = pool
    app[ROUTER_KEY] = build_router(service, pool)
    log_access_setup(service, [n for n, e in app[ROUTER_KEY].methods.items() if e.spec.private])
    app[SERVING_KEY] = asyncio.Event()
    app.router.add_post(service.endpoint, _make_endpoint(app, service, app[ROUTER_KEY]))
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
        from .templates import setup_templates

        setup_templates(app, service.template_dir)
    periodic = PeriodicTasks.from_service(service)
    app[PERIODIC_KEY] = periodic
    app[STOPPING_KEY] = []
    app.cleanup_ctx.append(_pool_ctx(pool))
    app.cleanup_ctx.append(events.transports_ctx)
    app.cleanup_ctx.append(_lifecycle_ctx)
    install_discovery(app, service, app[SERVING_KEY], app[STOPPING_KEY])
    app.cleanup_ctx.append(periodic_tasks_ctx(periodic, pool, service.logger))
    app.cleanup_ctx.append(events.consumers_ctx)
    install_observability(app, service, app[ROUTER_KEY], pool)
    return app
