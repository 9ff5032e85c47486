"""Running a service: bind, serve, and shut down cleanly on a signal or ``stop()``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from aiohttp import web

from ..errors import ServiceConfigurationError
from ..observability._logs import configure_logging
from ._app import SERVING_KEY, STOPPING_KEY
from ._configuration import configure_service
from ._microservice import MicroService

__all__ = ["loop_factory", "run", "serve"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def serve(
    service: MicroService,
    *,
    handle_signals: bool = True,
    ready: asyncio.Event | None = None,
    argv: Sequence[str] | None = None,
    configure: bool = True,
) -> None:
    """Serve ``service`` until it is stopped, then drain and release everything.

    ``ready`` (if given) is set once the socket listens and ``service.port`` is the real port.

    Start-up order: configuration (unless ``configure`` is false or the service has
    ``skip_configuration``); the application; its cleanup contexts in order (thread pool,
    ``on_service_start``, ..., periodic tasks); then the socket listens.

    Shutdown order: the :data:`~gemstone_aio.server.STOPPING_KEY` callbacks; stop
    accepting connections; let in-flight calls finish within ``shutdown_grace_period``;
    then leave the cleanup contexts in reverse order (periodic tasks, ...,
    ``on_service_stop``, the thread pool). See ``docs/lifecycle.md``.
    """
    if configure and not service.skip_configuration:
        configure_service(service, argv)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    service._loop, service._stop_requested = loop, stop
    app = service.make_app()
    runner = web.AppRunner(
        app, handle_signals=False, shutdown_timeout=service.shutdown_grace_period, access_log=None
    )
    installed: list[signal.Signals] = []
    try:
        await runner.setup()
        site = web.TCPSite(runner, service.host, service.port)
        await site.start()
        if service.port == 0:
            service.port = int(runner.addresses[0][1])
            service.refresh_accessible_at()
        if handle_signals and threading.current_thread() is threading.main_thread():
            for sig in _SIGNALS:
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
        app[SERVING_KEY].set()
        if ready is not None:
            ready.set()
        service.logger.info("%s serving at %s", service.name, service.accessible_at)
        for key, value in service.get_current_configuration().items():
            service.logger.debug("configuration %s=%r", key, value)
        await stop.wait()
        service.logger.info("%s shutting down", service.name)
        for callback in app[STOPPING_KEY]:
            try:
                await callback(app)
            except Exception:
                service.logger.exception("shutdown callback %r failed", callback)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await runner.cleanup()
        service._loop = service._stop_requested = None


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

    A configuration or start-up error ends the process with status 2 and a one-line
    message on stderr (no traceback).
    """
    if not logging.getLogger().handlers:
        configure_logging(logging.INFO, json_lines=service.log_json)
    try:
        with (
            contextlib.suppress(KeyboardInterrupt),
            asyncio.Runner(loop_factory=loop_factory(service.use_uvloop)) as runner,
        ):
            runner.run(service.serve(argv=argv))
    except ServiceConfigurationError as exc:
        print(f"{service.name}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
