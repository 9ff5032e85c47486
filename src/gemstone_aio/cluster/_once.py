"""Marking a periodic task to run once per period across all instances of a service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["OncePerCluster", "once_per_cluster"]


class OncePerCluster:
    """A periodic callable that one instance of the service runs per period.

    Attributes:
        func: The callable.
    """

    __slots__ = ("func",)

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func

    def __repr__(self) -> str:
        return f"once_per_cluster({self.func!r})"


def once_per_cluster(func: Callable[..., Any]) -> OncePerCluster:
    """Mark ``func`` for ``periodic_tasks`` to run once per period across the instances.

    Example: ``periodic_tasks = [(once_per_cluster(send_report), 3600)]``. The service
    needs a ``cluster_lease_store`` (e.g. :class:`RedisLeaseStore`): the instances take
    turns holding a lease, its holder runs the task, and when the holder dies another
    instance takes the lease over and runs the next period's run on time.
    """
    return OncePerCluster(func)
