"""Liveness and readiness endpoints: ``GET /health`` and ``GET /ready``.

``/health`` answers 200 ``{"status": "ok", "service": name}`` whenever the process
answers HTTP at all (a liveness probe).

``/ready`` answers 200 when the service is ready for traffic, else 503. Ready means:
the application started (every cleanup context entered, ``on_service_start`` done)
and is not shutting down, and every *required* readiness check passes. The body lists
every check, required or not::

    {"status": "ready", "service": "orders",
     "checks": [{"name": "started", "ok": true, "detail": null, "required": true},
                {"name": "database", "ok": true, "detail": null, "required": true},
                {"name": "registry", "ok": false, "detail": "not pinged yet",
                 "required": false}]}

Components register checks on the application (in their cleanup context, say)::

    async def database_check() -> CheckResult:
        return CheckResult("database", pool.healthy, None)

    add_readiness_check(app, database_check)

A check is an async callable returning ``(name, ok, detail)``. Checks run concurrently;
one that raises or takes longer than the service's ``ready_check_timeout`` fails (its
traceback goes to the service's log, never into the body).

A check registered with ``required=False`` (the framework's checks of shared
infrastructure: the registry, the event transports) is reported but fails ``/ready``
only when the service's ``ready_required_checks`` names it: an outage of something every
instance shares would otherwise take every instance out of rotation at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

from aiohttp import web

from ..errors import ServiceConfigurationError

__all__ = [
    "READINESS_KEY",
    "CheckResult",
    "ReadinessCheck",
    "ReadinessState",
    "add_readiness_check",
    "health_handler",
    "ready_handler",
    "required_check_names",
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


def required_check_names(value: str | Sequence[str], owner: str = "service") -> tuple[str, ...]:
    """Validate a ``ready_required_checks`` setting and return its names.

    Args:
        value: Check names; a name ending in ``*`` matches every name that starts with
            what precedes it (``"events: *"``). A string is a comma-separated list (as a
            configurator delivers it).
        owner: Who the setting belongs to, for the error message.

    Raises:
        ServiceConfigurationError: ``value`` is not a string or a sequence of non-empty
            strings.
    """
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if not isinstance(value, Sequence):
        raise ServiceConfigurationError(
            f"{owner}.ready_required_checks must be a list of check names, got {value!r}"
        )
    for name in value:
        if not isinstance(name, str) or not name.strip():
            raise ServiceConfigurationError(
                f"{owner}.ready_required_checks must hold non-empty check names, got {name!r}"
            )
    return tuple(name.strip() for name in value)


def _matches(pattern: str, name: str) -> bool:
    if pattern.endswith("*"):
        return name.startswith(pattern[:-1])
    return name == pattern


class ReadinessState:
    """What ``/ready`` looks at: the started flag and the registered checks.

    Args:
        service_name: Reported in the body.
        logger: Where failing checks are logged.
        timeout: Seconds one check may take.
        required_names: The service's ``ready_required_checks``: optional checks whose
            names match one of these are required too (see :func:`required_check_names`).

    Attributes:
        checks: The required checks, run in order of registration.
        optional: Checks that are reported but fail ``/ready`` only when their name
            matches one of ``required_names``.
        started: The application finished starting and is not shutting down.
    """

    def __init__(
        self,
        service_name: str,
        logger: logging.Logger,
        timeout: float,
        required_names: Sequence[str] = (),
    ) -> None:
        self.checks: list[ReadinessCheck] = []
        self.optional: list[ReadinessCheck] = []
        self.started = False
        self.required_names = tuple(required_names)
        self._service_name = service_name
        self._logger = logger
        self._timeout = timeout
        self._warned: set[str] = set()

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

    async def assess(self) -> tuple[bool, list[tuple[CheckResult, bool]]]:
        """Run every check; return whether the required ones pass, and each result.

        Each result comes with whether it is required: ``started``, the checks in
        :attr:`checks`, and the optional ones whose name matches ``required_names``. A
        required name that no check reported counts as a failing required check of
        that name (a typo, or a part that is not configured, never passes silently).
        """
        required_results, optional_results = await asyncio.gather(
            asyncio.gather(*(self._run(check) for check in self.checks)),
            asyncio.gather(*(self._run(check) for check in self.optional)),
        )
        assessed: list[tuple[CheckResult, bool]] = [
            (CheckResult("started", self.started, None if self.started else "not serving"), True),
            *((result, True) for result in required_results),
            *(
                (result, any(_matches(p, result.name) for p in self.required_names))
                for result in optional_results
            ),
        ]
        for pattern in self.required_names:
            if not any(_matches(pattern, result.name) for result, _ in assessed):
                if pattern not in self._warned:
                    self._warned.add(pattern)
                    self._logger.warning(
                        "ready_required_checks names %r, but no readiness check reports "
                        "that name: /ready fails until one does",
                        pattern,
                    )
                detail = "named in ready_required_checks, but no check reported it"
                assessed.append((CheckResult(pattern, False, detail), True))
        ready = all(result.ok for result, required in assessed if required)
        return ready, assessed

    async def evaluate(self) -> tuple[bool, list[CheckResult]]:
        """Run every check; return whether the required ones pass, and every result."""
        ready, assessed = await self.assess()
        return ready, [result for result, _ in assessed]

    def body(self, ready: bool, assessed: list[tuple[CheckResult, bool]]) -> dict[str, Any]:
        """Return the JSON body of ``/ready`` from :meth:`assess`'s answer."""
        return {
            "status": "ready" if ready else "not ready",
            "service": self._service_name,
            "checks": [{**result._asdict(), "required": required} for result, required in assessed],
        }


READINESS_KEY = web.AppKey("gemstone_aio.readiness", ReadinessState)
"""The readiness state of the application (its ``checks`` list takes new checks)."""


def add_readiness_check(
    app: web.Application, check: ReadinessCheck, *, required: bool = True
) -> None:
    """Register ``check``; it is reported in the body of ``/ready``.

    Args:
        app: The service's application.
        check: The check.
        required: ``/ready`` fails while the check fails. ``False``: the check is only
            reported, unless the service's ``ready_required_checks`` names it (meant for
            infrastructure every instance shares, whose outage draining cannot help).
    """
    state = app[READINESS_KEY]
    (state.checks if required else state.optional).append(check)


def health_handler(
    service_name: str, failure: Callable[[], str | None] | None = None
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Return the ``GET /health`` (liveness) handler.

    Args:
        service_name: Reported in the body.
        failure: Says why the process cannot recover by itself (every blocking worker
            stuck, say) or returns ``None``; the probe then answers 503, so that a
            supervisor restarts the process.
    """
    body = {"status": "ok", "service": service_name}

    async def health(request: web.Request) -> web.Response:
        detail = failure() if failure is not None else None
        if detail is None:
            return web.json_response(body, headers={"Cache-Control": "no-store"})
        return web.json_response(
            {"status": "failing", "service": service_name, "detail": detail},
            status=503,
            headers={"Cache-Control": "no-store"},
        )

    return health


async def ready_handler(request: web.Request) -> web.Response:
    """Answer ``GET /ready``: 200 when ready, else 503, with the checks' results."""
    state = request.app[READINESS_KEY]
    ready, assessed = await state.assess()
    return web.json_response(
        state.body(ready, assessed),
        status=200 if ready else 503,
        headers={"Cache-Control": "no-store"},
    )
