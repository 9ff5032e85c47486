"""The :class:`MicroService` base class: a service is a plain class with exposed methods."""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ..auth._strategies import BaseValidationStrategy, HeaderValidationStrategy
from ..auth._tokens import AcceptedTokens, find_token
from ..cluster import BaseLeaseStore, OncePerCluster
from ..config._configurable import Configurable
from ..config._configurator import BaseConfigurator, CommandLineConfigurator
from ..errors import ServiceConfigurationError
from ..observability._metrics import MetricsHooks
from ..protocol import DEFAULT_MAX_PARALLEL_BLOCKING_TASKS
from ..protocol._collection import collect_event_handlers, collect_exposed
from ..protocol._decorators import EmittedEvent, MethodSpec, get_method_spec
from ._access import authenticate_with_tokens, check_access_setup
from ._events import emit
from ._module import Module

if TYPE_CHECKING:
    from aiohttp import web

    from ..discovery import BaseDiscoveryStrategy, CallPolicy, DiscoveredService
    from ..event import BaseEventTransport, PublishResult
    from ._discovery import Discovery
    from ._events import EventRuntime

__all__ = ["MicroService"]

# Class attributes holding sequences: each instance gets its own list copy, so no
# mutable state is shared between instances or subclasses.
_PER_INSTANCE_LISTS = (
    "static_dirs",
    "extra_handlers",
    "modules",
    "cors_origins",
    "validation_strategies",
    "periodic_tasks",
    "service_registry_urls",
    "configurables",
    "configurators",
)


class MicroService:
    """Base class of a service: subclass it, set ``name`` and expose methods.

    Example::

        class HelloWorld(MicroService):
            name = "hello_world_service"

            @exposed_method()
            def say_hello(self, name: str) -> str:
                return f"hello {name}"

        HelloWorld().start()

    Class attributes (their values are defaults that configuration may override):
        name: The service's name (required).
        version: The version of the service's API, published as ``info.version`` by
            ``rpc.discover`` (``"0.1.0"``).
        host: The address to listen on (``127.0.0.1``).
        port: The TCP port (``8000``; ``0`` picks a free one).
        endpoint: The path of the JSON-RPC endpoint (``/api``).
        accessible_at: The URL others reach this service at; derived from host, port and
            endpoint when not set (``https://`` with ``ssl_certfile``).
        ssl_certfile: Serve HTTPS with this certificate chain (a PEM file, leaf first; it
            may hold the key too). ``None`` (the default): plain HTTP. The ``ssl_*``
            settings are named as uvicorn names them; see ``docs/deployment.md`` (TLS).
        ssl_keyfile: The certificate's private key (PEM). A key file other users can read
            is refused at start-up. SIGHUP loads the certificate and key again.
        ssl_keyfile_password: The password of an encrypted ``ssl_keyfile``.
        ssl_ca_certs: The CA bundle client certificates are verified against (mutual TLS);
            only these CAs are trusted for them, never the system store.
        ssl_cert_reqs: Whether callers must present a certificate: ``"none"``,
            ``"optional"`` or ``"required"`` (uvicorn's 0, 1, 2 too). ``None`` (the
            default): ``"required"`` with ``ssl_ca_certs``, else ``"none"``.
        ssl_allowed_clients: Certificate names (common name, or a DNS, URI or e-mail
            subject alternative name) whose holders are admitted to private methods, as
            tokens are; their identity is a :class:`~gemstone_aio.tls.CertificateIdentity`.
            Needs client certificates verified (``ssl_ca_certs``).
        client_ssl_ca_certs: The CA bundle the registries and services this one calls
            (heartbeat, :meth:`get_service`) are verified against; ``None``: the system
            store.
        client_ssl_certfile: The client certificate presented to them (mutual TLS).
        client_ssl_keyfile: Its private key (refused if other users can read it).
        max_parallel_blocking_tasks: Threads running plain ``def`` methods at once (the
            size of the default executor, see :meth:`make_executor`).
        max_pending_blocking_tasks: Blocking calls that may wait for a thread; past that a
            call gets "Server overloaded" (-32002) at once. ``None``: no bound.
        worker_processes: Processes ``start()`` runs on the port (1). Above 1, ``start()``
            supervises that many workers sharing the port (``SO_REUSEPORT``); worker 0
            alone runs the heartbeat and the periodic tasks (see ``docs/deployment.md``).
        use_uvloop: Run ``start()`` on uvloop's event loop: ``None`` (the default) when
            the ``uvloop`` extra is installed, ``True`` always (an error without it),
            ``False`` never.
        static_dirs: ``(url_prefix, directory)`` pairs served as static files.
        extra_handlers: ``(path, handler)`` pairs: a :class:`GemstoneCustomHandler`
            subclass or any aiohttp handler.
        template_dir: The directory of Jinja2 templates (needs the ``templates`` extra).
        modules: :class:`Module` instances whose exposed methods this service serves.
        debug: Internal errors carry the exception class and text (never in production).
        max_request_body_size: Largest accepted body in bytes (1 MiB).
        max_batch_length: Most requests in one batch (1000).
        max_json_depth: Deepest nesting of JSON arrays and objects in a body (128; the
            parser refuses more than 200 whatever this says).
        batch_concurrency: Most elements of one batch running at once (16).
        method_timeout: Seconds before any call is abandoned (``None``: never).
        shutdown_grace_period: Seconds in-flight calls get to finish on shutdown (10); a
            call still running then is answered -32005, and the process exits at most
            ``SHUTDOWN_MARGIN`` seconds later whatever its methods do (see
            ``docs/lifecycle.md``).
        keepalive_timeout: Seconds a connection may stay open without a complete request
            (15): idle keep-alive connections, and clients whose headers trickle in.
        body_read_timeout: Seconds a request body may take to arrive once its headers
            did (30); a slower one is answered HTTP 408.
        max_connections: Connections open at once (1000, lowered to fit the open-file
            limit); past it new connections are closed at once.
        stuck_call_threshold: Seconds after which a running blocking call counts as
            stuck (300): when every worker is stuck, ``/health`` answers 503 so that a
            supervisor restarts the process. ``None``: never.
        health_path: Path of the liveness endpoint (``/health``; ``None``: none).
        ready_path: Path of the readiness endpoint (``/ready``; ``None``: none).
        ready_check_timeout: Seconds one readiness check may take before it fails (5).
        ready_required_checks: Names of reported-only readiness checks that fail
            ``/ready`` too, e.g. ``("registry", "events: *")`` (a trailing ``*`` matches
            a prefix). By default ``/ready`` fails only for ``started`` and the
            service's own checks; see ``docs/observability.md``.
        metrics_path: Path of the Prometheus endpoint (``/metrics``; ``None``: none).
        metrics_require_authentication: ``/metrics`` answers only callers that
            :meth:`authenticate_request` admits (HTTP 403 for others).
        metrics_show_private_methods: ``/metrics`` and ``statistics`` name private
            methods to every requester; by default only to requesters the access check
            admitted, others see ``(private)``.
        use_metrics: Collect Prometheus metrics: ``None`` (default) when prometheus-client
            (the ``metrics`` extra) is installed, ``True`` requires it, ``False`` never.
        use_statistics: Add gemstone 0.10's ``statistics`` JSON-RPC method.
        use_tracing: Open OpenTelemetry spans (needs the ``tracing`` extra).
        tracer_provider: The OpenTelemetry tracer provider (``None``: the global one).
        request_id_header: The request-id header read and answered (``X-Request-Id``;
            ``None``: no request ids).
        log_json: ``start()`` writes JSON log lines (when logging is not set up yet).
        event_transports: Transports events are published on and consumed from (see
            :mod:`gemstone_aio.event.transport`); empty means the in-memory transport.
            Each instance works with its own copies of the listed transports.
        max_pending_publications: Publications that may be under way at once (10,000),
            waiting for the broker's confirm; past it an ``emit_event`` that is awaited
            waits for room (at most the publish timeout) and one that is not is dropped,
            counted and logged. ``None``: no bound. See ``docs/events.md``.
        emitted_events: The events the service emits, declared with their body types
            (:class:`~gemstone_aio.EmittedEvent`) for its self-description
            (``{endpoint}/asyncapi.json``); ``@emits`` on a method declares them too.
        cors_origins: Origins whose browsers may call the endpoint (none: CORS off).
        validation_strategies: Where callers' API tokens are looked for, in order
            (``X-Api-Token`` header); see ``docs/access-control.md``.
        api_tokens: Tokens that admit callers to private methods, compared in constant
            time; a mapping gives each token the identity methods see. Empty: none.
        periodic_tasks: ``(callable, seconds)`` pairs run every ``seconds`` (see
            ``docs/lifecycle.md``); sync callables run in the thread pool. A callable
            wrapped in :func:`~gemstone_aio.cluster.once_per_cluster` runs once per period
            across all instances.
        cluster_lease_store: Where the instances' leases live, for once-per-cluster
            periodic tasks (a :class:`~gemstone_aio.cluster.RedisLeaseStore`; none by
            default). Each instance works with its own copy.
        service_registry_urls: JSON-RPC endpoints of registries to ping and to query in
            :meth:`get_service` (a comma-separated list when configured; none by default).
        service_registry_ping_interval: Seconds between two pings to a registry (30).
        service_registry_token: Sent as ``X-Api-Token`` to registries that protect
            ``ping``/``unregister``.
        discovery_strategies: More places to announce to and look up in
            (:class:`~gemstone_aio.discovery.BaseDiscoveryStrategy` instances, e.g.
            :class:`~gemstone_aio.discovery.RedisDiscoveryStrategy`); asked before the
            registry URLs.
        service_locate_cache_ttl: Seconds :meth:`get_service` trusts a lookup (5).
        call_policy: How the clients of :meth:`get_service` balance calls, eject
            failing instances and retry (:class:`~gemstone_aio.discovery.CallPolicy`);
            ``None``: its defaults. See ``docs/resilience.md``.
        unregister_propagation_delay: Seconds a stopping instance keeps serving after
            it unregistered, so that callers' cached lookups drop it before its socket
            closes. ``None`` (the default): ``service_locate_cache_ttl`` when the service
            registers anywhere, else 0. Counted within ``shutdown_grace_period``.
        skip_configuration: Do not run the configurators when serving.
        configurables: The service's own :class:`Configurable` settings, added to the
            defaults ``port``, ``host``, ``accessible_at``, ``endpoint``,
            ``service_registry_urls`` and the ``ssl_*`` and ``client_ssl_*`` settings.
        configurators: Where configuration comes from, applied in order, a later one
            winning (default: the command line only).
    """

    name: ClassVar[str | None] = None
    version: str = "0.1.0"
    host: str = "127.0.0.1"
    port: int = 8000
    endpoint: str = "/api"
    accessible_at: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_keyfile_password: str | None = None
    ssl_ca_certs: str | None = None
    ssl_cert_reqs: Any = None
    ssl_allowed_clients: Sequence[str] = ()
    client_ssl_ca_certs: str | None = None
    client_ssl_certfile: str | None = None
    client_ssl_keyfile: str | None = None
    max_parallel_blocking_tasks: int = DEFAULT_MAX_PARALLEL_BLOCKING_TASKS
    max_pending_blocking_tasks: int | None = 1024
    use_uvloop: bool | None = None
    worker_processes: int = 1
    static_dirs: Sequence[tuple[str, str]] = ()
    extra_handlers: Sequence[tuple[str, Any]] = ()
    template_dir: str | None = None
    modules: Sequence[Module] = ()
    debug: bool = False
    max_request_body_size: int = 1024 * 1024
    max_batch_length: int = 1000
    max_json_depth: int = 128
    batch_concurrency: int = 16
    method_timeout: float | None = None
    shutdown_grace_period: float = 10.0
    keepalive_timeout: float = 15.0
    body_read_timeout: float = 30.0
    max_connections: int = 1000
    stuck_call_threshold: float | None = 300.0
    health_path: str | None = "/health"
    ready_path: str | None = "/ready"
    ready_check_timeout: float = 5.0
    ready_required_checks: Sequence[str] = ()
    metrics_path: str | None = "/metrics"
    metrics_require_authentication: bool = False
    metrics_show_private_methods: bool = False
    use_metrics: bool | None = None
    use_statistics: bool = False
    use_tracing: bool = False
    tracer_provider: Any = None
    request_id_header: str | None = "X-Request-Id"
    log_json: bool = False
    event_transports: Sequence[BaseEventTransport] = ()
    max_pending_publications: int | None = 10_000
    emitted_events: Sequence[EmittedEvent] = ()
    cors_origins: Sequence[str] = ()
    validation_strategies: Sequence[BaseValidationStrategy] = (HeaderValidationStrategy(),)
    api_tokens: AcceptedTokens = ()
    periodic_tasks: Sequence[tuple[Callable[..., Any] | OncePerCluster, float]] = ()
    cluster_lease_store: BaseLeaseStore | None = None
    service_registry_urls: Sequence[str] = ()
    unregister_propagation_delay: float | None = None
    service_registry_ping_interval: float = 30
    service_registry_token: str | None = None
    discovery_strategies: Sequence[BaseDiscoveryStrategy] = ()
    service_locate_cache_ttl: float = 5.0
    call_policy: CallPolicy | None = None
    skip_configuration: bool = False
    configurables: Sequence[Configurable] = ()
    configurators: Sequence[BaseConfigurator] = (CommandLineConfigurator(),)

    __gemstone_exposed__: ClassVar[dict[str, str]] = {}
    __gemstone_events__: ClassVar[dict[str, list[str]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__gemstone_exposed__ = collect_exposed(cls)
        cls.__gemstone_events__ = collect_event_handlers(cls)

    def __init__(self) -> None:
        cls = type(self)
        if not cls.name or not isinstance(cls.name, str):
            raise ServiceConfigurationError(
                f"{cls.__qualname__} has no name: set the class attribute 'name'"
            )
        workers = self.max_parallel_blocking_tasks
        if not isinstance(workers, int) or isinstance(workers, bool) or workers <= 0:
            raise ServiceConfigurationError(
                f"{cls.__qualname__}.max_parallel_blocking_tasks must be a positive "
                f"integer, got {workers!r}"
            )
        for attr in _PER_INSTANCE_LISTS:
            setattr(self, attr, list(getattr(cls, attr)))
        # Transports hold connections: each instance gets its own unconnected copies.
        self.event_transports = [t.clone() for t in cls.event_transports]
        store = cls.cluster_lease_store
        self.cluster_lease_store = store.clone() if store is not None else None
        self._event_runtime: EventRuntime | None = None
        # A module listed on the class would otherwise be shared by every instance (the
        # last one to start owning it): each service gets its own copy.
        self.modules = [copy.copy(module) for module in self.modules]
        for module in self.modules:
            module.set_microservice(self)
        self._explicit_accessible_at = cls.accessible_at is not None
        self._stop_requested: asyncio.Event | None = None
        self._worker_index: int | None = None  # set in a supervisor's worker processes
        self._loop: asyncio.AbstractEventLoop | None = None
        self._discovery: Discovery | None = None
        self.logger = self.get_logger()
        # Set by make_app from the observability settings (no-op hooks, no tracer until then).
        self.metrics: MetricsHooks = MetricsHooks()
        self.tracer: Any = None
        self.refresh_accessible_at()
        check_access_setup(self)

    # -- identity and URLs -------------------------------------------------------------

    def refresh_accessible_at(self) -> None:
        """Derive ``accessible_at`` from host, port and endpoint, unless it was set explicitly."""
        if not self._explicit_accessible_at:
            host = self.host
            if host in ("0.0.0.0", "", "::"):
                host = "127.0.0.1"
            elif ":" in host:
                host = f"[{host}]"
            scheme = "https" if self.ssl_certfile else "http"
            self.accessible_at = f"{scheme}://{host}:{self.port}{self.endpoint}"

    def get_logger(self) -> logging.Logger:
        """Return the logger of the service (override to use another)."""
        return logging.getLogger(f"gemstone_aio.service.{self.name}")

    # -- configuration -----------------------------------------------------------------

    def load_configuration(self, argv: Sequence[str] | None = None) -> None:
        """Run the configurators (in order, a later one wins) and set the values found.

        ``serve()`` does this unless ``skip_configuration`` is true; call it yourself to
        configure without serving. (The name avoids ``configure``, which services often
        expose as a method of their own.)

        Args:
            argv: Arguments for the command-line configurator instead of ``sys.argv[1:]``.

        Raises:
            ServiceConfigurationError: A value is invalid or an option unknown; the
                message names the configurable and the value.
            SystemExit: ``--help`` was given (after printing the options).
        """
        from ._configuration import configure_service

        configure_service(self, argv)

    def get_configurables(self) -> list[Configurable]:
        """Return the default configurables followed by the service's own."""
        from ._configuration import effective_configurables

        return effective_configurables(self)

    def get_current_configuration(self) -> dict[str, Any]:
        """Return the service's name and the current value of each configurable.

        Secrets are masked: configurables made with ``secret=True`` or whose name holds
        ``password``, ``secret``, ``token``, ``credential`` or ``api_key``, and passwords
        inside URLs.
        """
        from ._configuration import current_configuration

        return current_configuration(self)

    def start_thread(
        self,
        target: Callable[..., Any],
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        daemon: bool = True,
    ) -> threading.Thread:
        """Run ``target(*args, **kwargs)`` in a new (daemon) thread and return the thread."""
        thread = threading.Thread(
            target=target,
            args=tuple(args),
            kwargs=dict(kwargs or {}),
            name=name or f"{self.name}-{getattr(target, '__name__', 'thread')}",
            daemon=daemon,
        )
        thread.start()
        return thread

    # -- methods -----------------------------------------------------------------------

    def iter_exposed(self) -> list[tuple[MethodSpec, Any, Callable[..., Any]]]:
        """Return ``(spec, owner, bound_method)`` for the service's and its modules' methods.

        Raises:
            ServiceConfigurationError: Two of them use the same JSON-RPC name.
        """
        found: dict[str, tuple[MethodSpec, Any, Callable[..., Any]]] = {}
        owners: list[Any] = [self, *self.modules]
        for owner in owners:
            if isinstance(owner, Module):
                owner.set_microservice(self)
            for rpc_name, attr in type(owner).__gemstone_exposed__.items():
                if rpc_name in found:
                    first = found[rpc_name][1]
                    raise ServiceConfigurationError(
                        f"method name {rpc_name!r} is exposed by both "
                        f"{type(first).__qualname__} and {type(owner).__qualname__}"
                    )
                func = getattr(owner, attr)
                spec = get_method_spec(func)
                if spec is not None:
                    found[rpc_name] = (spec, owner, func)
        return list(found.values())

    def make_executor(self) -> concurrent.futures.Executor:
        """Return the executor that runs the service's plain ``def`` methods.

        Called once per application; the service shuts it down when it stops. The
        default is a :class:`~concurrent.futures.ThreadPoolExecutor` of
        ``max_parallel_blocking_tasks`` threads. Override it to run CPU-bound methods
        in a :class:`~concurrent.futures.ProcessPoolExecutor` (their functions, params
        and results must pickle: see ``docs/methods.md``), and set
        ``max_parallel_blocking_tasks`` to its number of workers.
        """
        return concurrent.futures.ThreadPoolExecutor(
            self.max_parallel_blocking_tasks, thread_name_prefix=f"gemstone-{self.name}"
        )

    # -- events ------------------------------------------------------------------------

    def emit_event(
        self, event_name: str, event_body: Any, *, broadcast: bool = True
    ) -> PublishResult:
        """Publish an event on every transport of the service.

        Works from ``async`` methods, blocking methods (threads), periodic tasks and
        ``on_service_start``. The event is published whether or not the result is
        awaited; ``await`` it (or call ``.result()`` from a thread) to wait until the
        broker confirmed it. While ``max_pending_publications`` are under way (the
        broker is down or slow), an awaited event waits for room and one whose result
        is discarded is dropped, counted and logged (see ``docs/events.md``).

        Args:
            event_name: The event name.
            event_body: Any JSON-serialisable value.
            broadcast: ``True``: every subscribing instance handles it. ``False``:
                exactly one subscribing instance does, at least once.

        Raises:
            EventBodyError: The body is not JSON-serialisable (nothing is published).
            EventPublishError: The service is not running.
        """
        return emit(self, event_name, event_body, broadcast=broadcast)

    # -- lifecycle ---------------------------------------------------------------------

    def on_service_start(self) -> Any:
        """Hook run once the service is configured and before it serves (may be async)."""
        return None

    def on_service_stop(self) -> Any:
        """Hook run on shutdown, after in-flight calls drained (may be async)."""
        return None

    def authenticate_request(self, request: web.Request) -> Any:
        """Decide whether the caller of a private method is admitted (may be async).

        Override it to decide from the whole request: return a truthy identity (any
        object; methods read it as ``handler.identity``) to admit the caller, or a falsy
        value to deny. It runs at most once per HTTP request, however many private
        methods a batch calls.

        The default applies the token rules: the first token that
        ``validation_strategies`` find is judged by :meth:`api_token_is_valid` if
        overridden, else looked up in ``api_tokens``. With neither, nobody is admitted:
        private methods fail closed.
        """
        return authenticate_with_tokens(self, request)

    def api_token_is_valid(self, token: str) -> Any:
        """Return True when ``token`` admits its caller (may be async).

        Deprecated since gemstone 0.10: overriding it still works but warns when the
        service is created; override :meth:`authenticate_request` or set ``api_tokens``.
        The default looks the token up in ``api_tokens`` in constant time.
        """
        return find_token(token, self.api_tokens)[0]

    # -- discovery ---------------------------------------------------------------------

    @property
    def discovery(self) -> Discovery:
        """The heartbeat and lookup machinery, built from the current attributes.

        A served service closes it on shutdown. Using :meth:`get_service` from a service
        that is not served (a script, say), close it yourself: ``await svc.discovery.aclose()``.
        """
        if self._discovery is None or self._discovery.closed:
            from ._discovery import Discovery  # imports this module

            self._discovery = Discovery(self)
        return self._discovery

    async def get_service(self, pattern: str) -> DiscoveredService:
        """Return a client of the live instances of a service whose name matches ``pattern``.

        ``pattern`` is a glob: ``*`` matches any run of characters, ``?`` one character,
        everything else itself. Lookups are cached briefly; each call through the client
        goes to the instance with fewer calls in flight of two candidates, failing
        instances are ejected for a while, and a call is sent again to another instance
        when that is safe (see :class:`~gemstone_aio.discovery.DiscoveredService` and
        ``docs/resilience.md``).

        Raises:
            ServiceConfigurationError: No registry or discovery strategy is configured.
            ServiceNotFoundError: No live instance matches ``pattern``.
            RegistryUnavailableError: No registry answered and nothing is cached.
        """
        return await self.discovery.get_service(pattern)

    def make_app(self) -> web.Application:
        """Build the aiohttp application serving this service (used by tests too)."""
        from ._app import make_app

        return make_app(self)

    async def serve(
        self,
        *,
        handle_signals: bool = True,
        ready: asyncio.Event | None = None,
        argv: Sequence[str] | None = None,
        configure: bool = True,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        """Serve until :meth:`stop` is called or SIGINT/SIGTERM arrives, then shut down cleanly.

        Args:
            handle_signals: Install SIGINT/SIGTERM handlers (only possible in the main thread).
            ready: Set once the service listens (``port`` then holds the real port).
            argv: Command-line arguments for the configuration (``sys.argv[1:]`` if ``None``).
            configure: Run the configuration first (unless ``skip_configuration``).
            on_stop: Called as soon as a stop is requested (``start()`` arms a watchdog).
        """
        from ._serving import serve

        await serve(
            self,
            handle_signals=handle_signals,
            ready=ready,
            argv=argv,
            configure=configure,
            on_stop=on_stop,
        )

    def start(self, argv: Sequence[str] | None = None) -> None:
        """Serve, blocking until Ctrl-C or SIGTERM (the gemstone 0.10 entry point).

        Args:
            argv: Command-line arguments for the configuration (``sys.argv[1:]`` if ``None``).
        """
        from ._serving import run

        run(self, argv)

    def stop(self) -> None:
        """Ask a running :meth:`serve` to shut down (safe from any thread)."""
        loop, event = self._loop, self._stop_requested
        if loop is None or event is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            loop.call_soon_threadsafe(event.set)
