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

Private methods are listed under their names only to callers that pass the service's
access check (or to everyone when the service sets ``metrics_show_private_methods``);
other callers see them summed under ``"(private)"``, as ``/metrics`` reports them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final

from ..errors import ServiceConfigurationError
from ..protocol._context import CallContext
from ..protocol._decorators import MethodSpec
from ..protocol._router import MethodEntry, Router
from ._metrics import PRIVATE_METHOD, is_private

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
        show_private: Name private methods to every caller (the service's
            ``metrics_show_private_methods``).
    """

    def __init__(self, methods: Mapping[str, Any], *, show_private: bool = False) -> None:
        self._methods = methods
        self._per_method: dict[str, _MethodStats] = {}
        self.started = time.monotonic()
        self.show_private = show_private

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

    def _has_private(self) -> bool:
        return any(is_private(self._methods.get(method)) for method in self._per_method)

    def _reported(self, show_private: bool) -> dict[str, _MethodStats]:
        if show_private:
            return self._per_method
        reported: dict[str, _MethodStats] = {}
        for method, stats in self._per_method.items():
            if is_private(self._methods.get(method)):
                hidden = reported.setdefault(PRIVATE_METHOD, _MethodStats())
                hidden.ok += stats.ok
                hidden.failed += stats.failed
                hidden.total_time += stats.total_time
            else:
                reported[method] = stats
        return reported

    def as_json(self, *, show_private: bool | None = None) -> dict[str, Any]:
        """Return the statistics in gemstone 0.10's shape.

        Args:
            show_private: Name private methods; ``None``: only when the service shows
                them to everyone. Otherwise they are summed under ``"(private)"``.
        """
        if show_private is None:
            show_private = self.show_private
        calls: dict[str, dict[str, Any]] = {}
        total = 0
        for method, stats in sorted(self._reported(show_private).items()):
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

    async def statistics(self, context: CallContext) -> dict[str, Any]:
        """Return call statistics of this service (the ``statistics`` JSON-RPC method).

        Private methods are named only when the caller is authenticated (the access
        check runs only when a private method has been called).
        """
        show = self.show_private or (self._has_private() and await context.is_authenticated())
        return self.as_json(show_private=show)


def add_statistics_method(
    router: Router, owner: Any, *, show_private: bool = False
) -> CallStatistics:
    """Add the public ``statistics`` method to ``router`` and start counting calls.

    Args:
        router: The service's router.
        owner: The service (the method's owner in the table).
        show_private: Name private methods to every caller.

    Raises:
        ServiceConfigurationError: The service already exposes a method named ``statistics``.
    """
    if STATISTICS_METHOD in router.methods:
        raise ServiceConfigurationError(
            f"use_statistics = True adds the method {STATISTICS_METHOD!r}, but "
            f"{type(owner).__qualname__} already exposes one with that name"
        )
    stats = CallStatistics(router.methods, show_private=show_private)
    spec = MethodSpec(name=STATISTICS_METHOD, receives_call_context=True)
    entry = MethodEntry.create(spec, stats.statistics, owner)
    router.methods[STATISTICS_METHOD] = entry
    router.observers.append(stats)
    return stats
