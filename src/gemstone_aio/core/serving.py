"""Running a service: bind, serve, and shut down cleanly on a signal or ``stop()``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading

from aiohttp import web

from ..observability.logs import configure_logging
from .app import SERVING_KEY
from .microservice import MicroService

__all__ = ["run", "serve"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def serve(
    service: MicroService, *, handle_signals: bool = True, ready: asyncio.Event | None = None
) -> None:
    """Serve ``service`` until it is stopped, then drain and release everything.

    ``ready`` (if given) is set once the socket listens and ``service.port`` is the real port.

    Shutdown order: stop accepting connections; let in-flight calls finish within
    ``shutdown_grace_period``; then leave the cleanup contexts in reverse order
    (``on_service_stop``, ..., the thread pool).
    """
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
        await stop.wait()
        service.logger.info("%s shutting down", service.name)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await runner.cleanup()
        service._loop = service._stop_requested = None


def run(service: MicroService) -> None:
    """Serve ``service`` in a new event loop, blocking until SIGINT or SIGTERM."""
    if not logging.getLogger().handlers:
        configure_logging(logging.INFO, json_lines=service.log_json)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(service.serve())
