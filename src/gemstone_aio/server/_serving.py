"""Running a service: bind, serve, and shut down cleanly on a signal or ``stop()``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from aiohttp import web

from ..errors import ServiceConfigurationError
from ..observability._logs import configure_logging
from ._app import CONNECTIONS_KEY, IN_FLIGHT_KEY, SERVING_KEY, STOPPING_KEY
from ._configuration import configure_service
from ._listener import listen
from ._microservice import MicroService
from ._tls import client_ssl_context, reload_ssl_context, reloads_tls, server_ssl_context
from ._workers import WORKER_PORT_ENV, supervise, worker_index

__all__ = ["SHUTDOWN_MARGIN", "app_factory", "loop_factory", "run", "serve"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


SHUTDOWN_MARGIN: Final = 5.0
"""Seconds past ``shutdown_grace_period`` after which ``start()`` ends the process, whatever
its methods, hooks or threads still do (one log line says what was left)."""

_CUT_ANSWER_TIMEOUT: Final = 1.0  # for the -32005 answers of the calls cut at the grace's end
_CLOSE_TIMEOUT: Final = 1.0  # aiohttp's wait for other handlers once the calls were cut


async def serve(
    service: MicroService,
    *,
    handle_signals: bool = True,
    ready: asyncio.Event | None = None,
    argv: Sequence[str] | None = None,
    configure: bool = True,
    on_stop: Callable[[], None] | None = None,
) -> None:
    """Serve ``service`` until it is stopped, then drain and release everything.

    ``ready`` (if given) is set once the socket listens and ``service.port`` is the real
    port; ``on_stop`` (if given) is called as soon as a stop is requested.

    Start-up order: configuration (unless ``configure`` is false or the service has
    ``skip_configuration``); the TLS contexts (``ssl_*``, ``client_ssl_*``: a bad file
    stops start-up here); the application; its cleanup contexts in order (executor,
    ``on_service_start``, ..., periodic tasks); then the socket listens. With TLS,
    SIGHUP loads the certificate and key again (see ``docs/deployment.md``).

    Shutdown order, within ``shutdown_grace_period``: the
    :data:`~gemstone_aio.server.STOPPING_KEY` callbacks; stop accepting connections; let
    in-flight calls finish; at the end of the grace, answer the calls still running
    ``-32005``; then leave the cleanup contexts in reverse order (periodic tasks, ...,
    ``on_service_stop``, the executor). See ``docs/lifecycle.md``.
    """
    if configure and not service.skip_configuration:
        configure_service(service, argv)
    ssl_context = server_ssl_context(service)
    client_ssl_context(service)  # checked now rather than at the first heartbeat
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    service._loop, service._stop_requested = loop, stop
    app = service.make_app()
    runner = web.AppRunner(
        app,
        handle_signals=False,
        shutdown_timeout=_CLOSE_TIMEOUT,
        access_log=None,
    )
    installed: list[signal.Signals] = []
    listener: asyncio.Server | None = None
    try:
        await runner.setup()
        server = runner.server
        assert server is not None  # set up just above
        guard = app[CONNECTIONS_KEY]
        guard.attach(server)
        listener = await listen(
            guard,
            service.host,
            service.port,
            reuse_port=service._worker_index is not None,
            ssl_context=ssl_context,
            handshake_timeout=service.keepalive_timeout,
        )
        if service.port == 0:
            service.port = int(listener.sockets[0].getsockname()[1])
            service.refresh_accessible_at()
        if handle_signals and threading.current_thread() is threading.main_thread():
            for sig in _SIGNALS:
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
            if reloads_tls(service):  # certificate rotation
                loop.add_signal_handler(signal.SIGHUP, reload_ssl_context, service, ssl_context)
                installed.append(signal.SIGHUP)
        app[SERVING_KEY].set()
        if ready is not None:
            ready.set()
        service.logger.info("%s serving at %s", service.name, service.accessible_at)
        for key, value in service.get_current_configuration().items():
            service.logger.debug("configuration %s=%r", key, value)
        await stop.wait()
        if on_stop is not None:
            on_stop()
        deadline = loop.time() + service.shutdown_grace_period
        service.logger.info("%s shutting down", service.name)
        await _run_stopping_callbacks(app, service, deadline)
        await _propagate_unregistration(service, deadline)
        listener.close()  # no new connections; open ones finish their current request
        server.pre_shutdown()
        calls = app[IN_FLIGHT_KEY]
        if not await calls.drain(deadline - loop.time()):
            cut = await calls.cut(_CUT_ANSWER_TIMEOUT)
            service.logger.warning(
                "shutdown: %d call(s) still running after the grace period of %s s were "
                "answered -32005",
                cut,
                service.shutdown_grace_period,
            )
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        if listener is not None:
            listener.close()
        await runner.cleanup()
        service._loop = service._stop_requested = None


async def _propagate_unregistration(service: MicroService, deadline: float) -> None:
    # Unregistered, but callers' cached lookups may still send calls here for a while:
    # keep answering them until their caches have dropped this instance.
    delay = service.unregister_propagation_delay
    if delay is None:
        registers = bool(service.service_registry_urls or service.discovery_strategies)
        delay = service.service_locate_cache_ttl if registers else 0.0
    delay = min(delay, max(deadline - asyncio.get_running_loop().time(), 0.0))
    if delay > 0:
        service.logger.info(
            "%s unregistered; serving %.1f s more while callers drop it", service.name, delay
        )
        await asyncio.sleep(delay)


async def _run_stopping_callbacks(
    app: web.Application, service: MicroService, deadline: float
) -> None:
    # Unregistering from registries and the like, within the grace period.
    try:
        async with asyncio.timeout_at(deadline):
            for callback in app[STOPPING_KEY]:
                try:
                    await callback(app)
                except Exception:
                    service.logger.exception("shutdown callback %r failed", callback)
    except TimeoutError:
        service.logger.warning("shutdown callbacks did not finish within the grace period")


def app_factory(
    service: MicroService, *, configure: bool = True
) -> Callable[[], Awaitable[web.Application]]:
    """An application factory for a server other than ``start()`` (gunicorn, say).

    ``gunicorn 'module:factory' --worker-class aiohttp.GunicornWebWorker`` with
    ``factory = app_factory(MyService())``: the factory configures the service (from its
    configurators, without a command line: gunicorn owns that), builds its application,
    and marks it served once the server runs, so the heartbeat registers it. Set ``port``
    and ``accessible_at`` (environment or JSON file) to match the bind address.
    """

    async def factory() -> web.Application:
        if configure and not service.skip_configuration:
            configure_service(service, [])
        app = service.make_app()

        async def mark_served(app: web.Application) -> None:
            app[SERVING_KEY].set()

        app.on_startup.append(mark_served)
        return app

    return factory


def loop_factory(use_uvloop: bool | None) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop factory for ``use_uvloop`` (``None``: asyncio's default loop).

    ``None`` picks uvloop when it is installed (the ``uvloop`` extra); ``True`` requires it.

    Raises:
        ServiceConfigurationError: ``use_uvloop`` is true and uvloop is not installed.
    """
    if use_uvloop is False:
        return None
    try:
        import uvloop
    except ImportError:
        if use_uvloop:
            raise ServiceConfigurationError(
                "use_uvloop = True needs uvloop: pip install 'gemstone-aio[uvloop]'"
            ) from None
        return None
    return uvloop.new_event_loop


def run(service: MicroService, argv: Sequence[str] | None = None) -> None:
    """Serve ``service`` in a new event loop (uvloop's, see ``use_uvloop``) until SIGINT or SIGTERM.

    A configuration or start-up error ends the process with status 2, a port that cannot
    be listened on with status 3, each with a one-line message on stderr (no traceback).
    With ``worker_processes`` above 1 this process supervises that many worker processes (see
    :mod:`gemstone_aio.server._workers`).
    """
    if not logging.getLogger().handlers:
        configure_logging(logging.INFO, json_lines=service.log_json)
    index = worker_index()
    watchdog = _Watchdog(service)
    try:
        if not service.skip_configuration:
            configure_service(service, argv)
        _check_workers(service)
        if service.worker_processes > 1 and index is None:
            # One line here rather than from every worker, restarted again and again.
            server_ssl_context(service)
            client_ssl_context(service)
        if index is not None:  # one of a supervisor's workers: the shared port
            service._worker_index = index
            service.port = int(os.environ.get(WORKER_PORT_ENV, service.port))
            service.refresh_accessible_at()
        elif service.worker_processes > 1:
            raise SystemExit(supervise(service, service.logger))
        with (
            contextlib.suppress(KeyboardInterrupt),
            asyncio.Runner(loop_factory=loop_factory(service.use_uvloop)) as runner,
        ):
            runner.run(service.serve(on_stop=watchdog.start, configure=False))
    except ServiceConfigurationError as exc:
        print(f"{service.name}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as exc:
        print(
            f"error: {service.name} cannot listen on {service.host}:{service.port}: "
            f"{os.strerror(exc.errno) if exc.errno else exc}",
            file=sys.stderr,
        )
        raise SystemExit(3) from None
    finally:
        watchdog.cancel()
    _leave_stuck_threads(service)


def _check_workers(service: MicroService) -> None:
    workers = service.worker_processes
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ServiceConfigurationError(
            f"{service.name}: worker_processes must be a positive integer, got {workers!r}"
        )


class _Watchdog:
    """Ends the process if shutdown overruns the grace period by more than SHUTDOWN_MARGIN.

    A thread timer, so that it fires even if the event loop itself is blocked.
    """

    def __init__(self, service: MicroService) -> None:
        self._service = service
        self._timer: threading.Timer | None = None

    def start(self) -> None:
        limit = self._service.shutdown_grace_period + SHUTDOWN_MARGIN
        self._timer = threading.Timer(limit, self._fire, args=(limit,))
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _fire(self, limit: float) -> None:
        self._service.logger.error(
            "shutdown did not finish within %s s (grace period + %s s): ending the process",
            limit,
            SHUTDOWN_MARGIN,
        )
        logging.shutdown()
        os._exit(1)


def _leave_stuck_threads(service: MicroService) -> None:
    # Python waits for every executor thread at exit: one stuck in a method forever would
    # keep the process alive, serving nobody. Idle threads end within moments; stuck ones
    # are counted, and the process ends without them.
    prefix = f"gemstone-{service.name}"
    deadline = time.monotonic() + 1.0
    stuck = 0
    for thread in threading.enumerate():
        if thread.name.startswith(prefix) and thread is not threading.current_thread():
            thread.join(max(deadline - time.monotonic(), 0.0))
            stuck += thread.is_alive()
    if stuck:
        service.logger.warning(
            "exiting without waiting for %d blocking call(s) that never returned", stuck
        )
        logging.shutdown()
        os._exit(0)
