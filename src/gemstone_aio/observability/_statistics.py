"""The ``statistics`` method of gemstone 0.10 (``use_statistics = True``).

The framework adds a public JSON-RPC method ``statistics`` to the service. It returns::

    {
        "total_runtime": 12.5,              # seconds since the application started
        "method_calls_count": 42,           # calls of the service's methods
        "method_calls": {
            "say_hello": {
                "total_calls": 40,
                "average_resp_time": 0.0004,  # seconds
                "success_calls": 39,
                "failed_calls": 1,
            },
            ...
        },
    }

Every call of an existing method counts, whatever its outcome (invalid params too,
which gemstone 0.10 forgot); calls of missing methods do not, so callers cannot grow
the table with made-up names.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final

from ..errors import ServiceConfigurationError
from ..protocol._decorators import MethodSpec
from ..protocol._router import MethodEntry, Router

__all__ = ["STATISTICS_METHOD", "CallStatistics", "add_statistics_method"]

STATISTICS_METHOD: Final = "statistics"
"""The JSON-RPC name of the statistics method."""


class _MethodStats:
    __slots__ = ("failed", "ok", "total_time")

    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0
        self.total_time = 0.0


class CallStatistics:
    """Counts calls per method; a router observer (it runs on the event loop only).

    Args:
        methods: The service's method table (a live mapping).
    """

    def __init__(self, methods: Mapping[str, Any]) -> None:
        self._methods = methods
        self._per_method: dict[str, _MethodStats] = {}
        self.started = time.monotonic()

    def __call__(self, method: str, duration: float, code: int | None) -> None:
        """Record one finished call."""
        stats = self._per_method.get(method)
        if stats is None:
            if method not in self._methods:
                return
            stats = self._per_method[method] = _MethodStats()
        if code is None:
            stats.ok += 1
        else:
            stats.failed += 1
        stats.total_time += duration

    def restart(self) -> None:
        """Start counting the runtime from now (the application calls it on startup)."""
        self.started = time.monotonic()

    def as_json(self) -> dict[str, Any]:
        """Return the statistics in gemstone 0.10's shape."""
        calls: dict[str, dict[str, Any]] = {}
        total = 0
        for method, stats in sorted(self._per_method.items()):
            count = stats.ok + stats.failed
            total += count
            calls[method] = {
                "total_calls": count,
                "average_resp_time": stats.total_time / count if count else 0.0,
                "success_calls": stats.ok,
                "failed_calls": stats.failed,
            }
        return {
            "total_runtime": time.monotonic() - self.started,
            "method_calls_count": total,
            "method_calls": calls,
        }

    async def statistics(self) -> dict[str, Any]:
        """Return call statistics of this service (the ``statistics`` JSON-RPC method)."""
        return self.as_json()


def add_statistics_method(router: Router, owner: Any) -> CallStatistics:
    """Add the public ``statistics`` method to ``router`` and start counting calls.

    Args:
        router: The service's router.
        owner: The service (the method's owner in the table).

    Raises:
        ServiceConfigurationError: The service already exposes a method named ``statistics``.
    """
    if STATISTICS_METHOD in router.methods:
        raise ServiceConfigurationError(
            f"use_statistics = True adds the method {STATISTICS_METHOD!r}, but "
            f"{type(owner).__qualname__} already exposes one with that name"
        )
    stats = CallStatistics(router.methods)
    spec = MethodSpec(name=STATISTICS_METHOD)
    entry = MethodEntry.create(spec, stats.statistics, owner)
    router.methods[STATISTICS_METHOD] = entry
    router.observers.append(stats)
    return stats
