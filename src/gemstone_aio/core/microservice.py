"""The :class:`MicroService` base class: a service is a plain class with exposed methods."""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ..config.configurable import Configurable
from ..config.configurator import BaseConfigurator, CommandLineConfigurator
from ..errors import ServiceConfigurationError
from .collection import collect_event_handlers, collect_exposed
from .concurrency import DEFAULT_MAX_PARALLEL_BLOCKING_TASKS
from .decorators import MethodSpec, get_method_spec
from .module import Module

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["MicroService"]

# Class attributes holding sequences: each instance gets its own list copy, so no
# mutable state is shared between instances or subclasses.
_PER_INSTANCE_LISTS = (
    "static_dirs",
    "extra_handlers",
    "modules",
    "cors_origins",
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
            endpoint when not set.
        max_parallel_blocking_tasks: Threads running plain ``def`` methods at once.
        max_pending_blocking_tasks: Blocking calls that may wait for a thread; past that a
            call gets "Server overloaded" (-32002) at once. ``None``: no bound.
        static_dirs: ``(url_prefix, directory)`` pairs served as static files.
        extra_handlers: ``(path, handler)`` pairs: a :class:`GemstoneCustomHandler`
            subclass or any aiohttp handler.
        template_dir: The directory of Jinja2 templates (needs the ``templates`` extra).
        modules: :class:`Module` instances whose exposed methods this service serves.
        debug: Internal errors carry the exception class and text (never in production).
        max_request_body_size: Largest accepted body in bytes (1 MiB).
        max_batch_length: Most requests in one batch (1000).
        batch_concurrency: Most elements of one batch running at once (16).
        method_timeout: Seconds before any call is abandoned (``None``: never).
        shutdown_grace_period: Seconds in-flight calls get to finish on shutdown (10).
        cors_origins: Origins whose browsers may call the endpoint (none: CORS off).
        periodic_tasks: ``(callable, seconds)`` pairs run every ``seconds`` (see
            ``docs/lifecycle.md``); sync callables run in the thread pool.
        service_registry_urls: URLs of service registries (a comma-separated list when
            configured).
        skip_configuration: Do not run the configurators when serving.
        configurables: The service's own :class:`Configurable` settings, added to the
            defaults ``port``, ``host``, ``accessible_at``, ``endpoint`` and
            ``service_registry_urls``.
        configurators: Where configuration comes from, applied in order, a later one
            winning (default: the command line only).
    """

    name: ClassVar[str | None] = None
    version: str = "0.1.0"
    host: str = "127.0.0.1"
    port: int = 8000
    endpoint: str = "/api"
    accessible_at: str | None = None
    max_parallel_blocking_tasks: int = DEFAULT_MAX_PARALLEL_BLOCKING_TASKS
    max_pending_blocking_tasks: int | None = 1024
    static_dirs: Sequence[tuple[str, str]] = ()
    extra_handlers: Sequence[tuple[str, Any]] = ()
    template_dir: str | None = None
    modules: Sequence[Module] = ()
    debug: bool = False
    max_request_body_size: int = 1024 * 1024
    max_batch_length: int = 1000
    batch_concurrency: int = 16
    method_timeout: float | None = None
    shutdown_grace_period: float = 10.0
    cors_origins: Sequence[str] = ()
    periodic_tasks: Sequence[tuple[Callable[..., Any], float]] = ()
    service_registry_urls: Sequence[str] = ()
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
        # A module listed on the class would otherwise be shared by every instance (the
        # last one to start owning it): each service gets its own copy.
        self.modules = [copy.copy(module) for module in self.modules]
        for module in self.modules:
            module.set_microservice(self)
        self._explicit_accessible_at = cls.accessible_at is not None
        self._stop_requested: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.logger = self.get_logger()
        self.refresh_accessible_at()

    # -- identity and URLs -------------------------------------------------------------

    def refresh_accessible_at(self) -> None:
        """Derive ``accessible_at`` from host, port and endpoint, unless it was set explicitly."""
        if not self._explicit_accessible_at:
            host = self.host
            if host in ("0.0.0.0", "", "::"):
                host = "127.0.0.1"
            elif ":" in host:
                host = f"[{host}]"
            self.accessible_at = f"http://{host}:{self.port}{self.endpoint}"

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
        from ..config.apply import configure_service

        configure_service(self, argv)

    def get_configurables(self) -> list[Configurable]:
        """Return the default configurables followed by the service's own."""
        from ..config.apply import effective_configurables

        return effective_configurables(self)

    def get_current_configuration(self) -> dict[str, Any]:
        """Return the service's name and the current value of each configurable.

        Secrets are masked: configurables made with ``secret=True`` or whose name holds
        ``password``, ``secret``, ``token``, ``credential`` or ``api_key``, and passwords
        inside URLs.
        """
        from ..config.apply import current_configuration

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

    # -- lifecycle ---------------------------------------------------------------------

    def on_service_start(self) -> Any:
        """Hook run once the service is configured and before it serves (may be async)."""
        return None

    def on_service_stop(self) -> Any:
        """Hook run on shutdown, after in-flight calls drained (may be async)."""
        return None

    def authenticate_request(self, request: web.Request) -> Any:
        """Decide whether the caller of a private method is admitted (may be async).

        Return a truthy identity (any object; methods can read it from their handler) to
        admit the caller, or a falsy value to deny. The default admits nobody: private
        methods fail closed until the service says how callers authenticate.
        """
        return None

    def make_app(self) -> web.Application:
        """Build the aiohttp application serving this service (used by tests too)."""
        from .app import make_app

        return make_app(self)

    async def serve(
        self,
        *,
        handle_signals: bool = True,
        ready: asyncio.Event | None = None,
        argv: Sequence[str] | None = None,
        configure: bool = True,
    ) -> None:
        """Serve until :meth:`stop` is called or SIGINT/SIGTERM arrives, then shut down cleanly.

        Args:
            handle_signals: Install SIGINT/SIGTERM handlers (only possible in the main thread).
            ready: Set once the service listens (``port`` then holds the real port).
            argv: Command-line arguments for the configuration (``sys.argv[1:]`` if ``None``).
            configure: Run the configuration first (unless ``skip_configuration``).
        """
        from .serving import serve

        await serve(
            self, handle_signals=handle_signals, ready=ready, argv=argv, configure=configure
        )

    def start(self, argv: Sequence[str] | None = None) -> None:
        """Serve, blocking until Ctrl-C or SIGTERM (the gemstone 0.10 entry point).

        Args:
            argv: Command-line arguments for the configuration (``sys.argv[1:]`` if ``None``).
        """
        from .serving import run

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
