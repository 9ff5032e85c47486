"""Several worker processes on one port: ``worker_processes = N`` (``gemstone run --workers N``).

``start()`` of a service with ``worker_processes > 1`` becomes a supervisor: it starts N copies of
its own command line as child processes, each listening on the same port with
``SO_REUSEPORT`` (the kernel spreads connections over them), replaces a worker that
dies, and on SIGTERM/SIGINT passes the signal on and waits for every worker to drain.
SIGHUP is passed on too (a TLS service's workers then reload their certificate).

Worker 0 is the primary: it alone runs the registry heartbeat (the workers share one
URL, so they are one instance to callers) and the periodic tasks. Every worker serves
calls and consumes events.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ._microservice import MicroService

__all__ = ["WORKER_ENV", "WORKER_PORT_ENV", "supervise", "worker_index"]

WORKER_ENV: Final = "GEMSTONE_WORKER"
"""Set in a worker's environment to its index (0 is the primary)."""
WORKER_PORT_ENV: Final = "GEMSTONE_WORKER_PORT"
"""The port the workers share (the supervisor picks a free one when ``port`` is 0)."""

_POLL: Final = 0.2  # seconds between two looks at the workers
_FAST_CRASH: Final = 1.0  # a worker that dies sooner than this after starting is crashing
_MAX_BACKOFF: Final = 30.0


def worker_index() -> int | None:
    """The index of this worker process, or ``None`` when it is not one."""
    value = os.environ.get(WORKER_ENV)
    return int(value) if value is not None and value.isdigit() else None


def _reserve_port(host: str) -> tuple[socket.socket, int]:
    # A bound, not listening, SO_REUSEPORT socket keeps the port ours until the workers
    # listen on it too (it never receives connections itself).
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host or "0.0.0.0", 0))
    return sock, int(sock.getsockname()[1])


class _Worker:
    def __init__(self, index: int, command: list[str], env: dict[str, str]) -> None:
        self.index = index
        self._command = command
        self._env = {**env, WORKER_ENV: str(index)}
        self.process = subprocess.Popen(self._command, env=self._env)
        self.started = time.monotonic()
        self.backoff = 0.0
        self.restart_at: float | None = None

    def respawn(self) -> None:
        self.process = subprocess.Popen(self._command, env=self._env)
        self.started = time.monotonic()
        self.restart_at = None


def supervise(service: MicroService, logger: logging.Logger) -> int:
    """Run ``service.worker_processes`` worker processes until a stop signal; return the exit status.

    The service is configured already (host, port, workers). Each worker runs this
    process's own command line again, with :data:`WORKER_ENV` set.
    """
    count = service.worker_processes
    reserved: socket.socket | None = None
    port = service.port
    if port == 0:
        reserved, port = _reserve_port(service.host)
    env = {**os.environ, WORKER_PORT_ENV: str(port)}
    command = [sys.executable, *sys.orig_argv[1:]]
    stopping: list[int] = []

    def stop(signum: int, frame: object) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    workers: list[_Worker] = []

    def pass_on(signum: int, frame: object) -> None:
        for worker in workers:
            if worker.restart_at is None and worker.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(signum)

    if service.ssl_certfile or service.client_ssl_certfile:  # workers reload TLS files
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, pass_on)
    workers += [_Worker(index, command, env) for index in range(count)]
    logger.info("%s: supervising %d workers on port %d", service.name, count, port)
    try:
        while not stopping:
            time.sleep(_POLL)
            for worker in workers:
                _watch(worker, service, logger)
        return _drain(workers, service, logger)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if reserved is not None:
            reserved.close()


def _watch(worker: _Worker, service: MicroService, logger: logging.Logger) -> None:
    # Replace a worker that died, backing off while it keeps dying at once.
    now = time.monotonic()
    if worker.restart_at is not None:
        if now >= worker.restart_at:
            worker.respawn()
        return
    status = worker.process.poll()
    if status is None:
        return
    crashed_at_once = now - worker.started < _FAST_CRASH
    worker.backoff = min(max(worker.backoff * 2, 0.5), _MAX_BACKOFF) if crashed_at_once else 0.0
    worker.restart_at = now + worker.backoff
    logger.warning(
        "%s: worker %d (pid %d) exited with status %s; restarting it%s",
        service.name,
        worker.index,
        worker.process.pid,
        status,
        f" in {worker.backoff:g} s" if worker.backoff else "",
    )


def _drain(workers: list[_Worker], service: MicroService, logger: logging.Logger) -> int:
    # Pass the stop on; every worker drains within its grace period, or is killed.
    from ._serving import SHUTDOWN_MARGIN

    for worker in workers:
        if worker.restart_at is None and worker.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + service.shutdown_grace_period + SHUTDOWN_MARGIN
    failed = 0
    for worker in workers:
        if worker.restart_at is not None:
            continue
        try:
            status = worker.process.wait(max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            worker.process.kill()
            status = worker.process.wait()
            logger.error("%s: worker %d did not stop in time: killed", service.name, worker.index)
        failed += status != 0
    logger.info("%s: %d workers stopped", service.name, len(workers))
    return 1 if failed else 0
