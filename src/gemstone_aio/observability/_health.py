"""Liveness and readiness endpoints: ``GET /health`` and ``GET /ready``.

``/health`` answers 200 ``{"status": "ok", "service": name}`` whenever the process
answers HTTP at all (a liveness probe).

``/ready`` answers 200 when the service is ready for traffic, else 503. Ready means:
the application started (every cleanup context entered, ``on_service_start`` done)
and is not shutting down, and every registered readiness check passes. The body lists
each check::

    {"status": "ready", "service": "orders",
     "checks": [{"name": "started", "ok": true, "detail": null},
                {"name": "rabbitmq", "ok": true, "detail": "connected"}]}

Components register checks on the application (in their cleanup context, say)::

    async def broker_check() -> CheckResult:
        return CheckResult("rabbitmq", connection.connected, None)

    add_readiness_check(app, broker_check)

A check is an async callable returning ``(name, ok, detail)``. Checks run concurrently;
one that raises or takes longer than the service's ``ready_check_timeout`` fails (its
traceback goes to the service's log, never into the body).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from aiohttp import web

__all__ = [
    "READINESS_KEY",
    "CheckResult",
    "ReadinessCheck",
    "ReadinessState",
    "add_readiness_check",
    "health_handler",
    "ready_handler",
]


class CheckResult(NamedTuple):
    """The answer of one readiness check.

    Attributes:
        name: What was checked (``"rabbitmq"``, ``"registry"``, ...).
        ok: True when that part is ready.
        detail: A short human-readable note (no secrets: it is served publicly).
    """

    name: str
    ok: bool
    detail: str | None = None


ReadinessCheck = Callable[[], Awaitable[tuple[str, bool, str | None]]]
"""An async callable answering ``(name, ok, detail)``; :class:`CheckResult` fits."""


class ReadinessState:
    """What ``/ready`` looks at: the started flag and the registered checks.

    Attributes:
        checks: The registered checks, run in order of registration.
        started: The application finished starting and is not shutting down.
    """

    def __init__(self, service_name: str, logger: logging.Logger, timeout: float) -> None:
        self.checks: list[ReadinessCheck] = []
        self.started = False
        self._service_name = service_name
        self._logger = logger
        self._timeout = timeout

    async def _run(self, check: ReadinessCheck) -> CheckResult:
        label = getattr(check, "__qualname__", repr(check))
        try:
            async with asyncio.timeout(self._timeout):
                name, ok, detail = await check()
        except TimeoutError:
            self._logger.warning("readiness check %s timed out after %s s", label, self._timeout)
            return CheckResult(label, False, f"timed out after {self._timeout} s")
        except Exception as exc:
            self._logger.exception("readiness check %s raised", label)
            return CheckResult(label, False, f"check raised {type(exc).__name__}")
        return CheckResult(str(name), bool(ok), None if detail is None else str(detail))

    async def evaluate(self) -> tuple[bool, list[CheckResult]]:
        """Run every check; return whether all pass (the service started) and the results."""
        results = [
            CheckResult("started", self.started, None if self.started else "not serving"),
            *await asyncio.gather(*(self._run(check) for check in self.checks)),
        ]
        return all(result.ok for result in results), results

    def body(self, ready: bool, results: list[CheckResult]) -> dict[str, Any]:
        """Return the JSON body of ``/ready``."""
        return {
            "status": "ready" if ready else "not ready",
            "service": self._service_name,
            "checks": [result._asdict() for result in results],
        }


READINESS_KEY = web.AppKey("gemstone_aio.readiness", ReadinessState)
"""The readiness state of the application (its ``checks`` list takes new checks)."""


def add_readiness_check(app: web.Application, check: ReadinessCheck) -> None:
    """Register ``check`` so that ``/ready`` fails while it fails."""
    app[READINESS_KEY].checks.append(check)


def health_handler(service_name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Return the ``GET /health`` handler."""
    body = {"status": "ok", "service": service_name}

    async def health(request: web.Request) -> web.Response:
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    return health


async def ready_handler(request: web.Request) -> web.Response:
    """Answer ``GET /ready``: 200 when ready, else 503, with the checks' results."""
    state = request.app[READINESS_KEY]
    ready, results = await state.evaluate()
    return web.json_response(
        state.body(ready, results),
        status=200 if ready else 503,
        headers={"Cache-Control": "no-store"},
    )
