"""Periodic tasks: ``periodic_tasks = [(callable, seconds), ...]`` on a service.

Each task is one asyncio task looping: wait ``seconds``, run the callable, repeat. The
first run happens one interval after start-up. Runs of one task never overlap: when a run
takes longer than the interval, the ticks it overran are skipped and the next run starts
at the next tick. ``async def`` callables run on the event loop; plain callables
(``functools.partial`` of either kind included) run in the service's thread pool. An
exception is logged with the service's logger and the task goes on.

On shutdown the tasks are cancelled: an ``async`` run in progress receives
``CancelledError``; a plain run already in a thread finishes before the pool closes.

A function defined in the service's class body may be listed directly; it is bound to
the service instance (``periodic_tasks = [(tick, 5)]`` after ``def tick(self): ...``).

A task wrapped in :func:`~gemstone_aio.cluster.once_per_cluster` runs once per period
across every instance of the service: the instances compete for a lease in the service's
``cluster_lease_store``; its holder runs the task when a period has passed since the last
run (recorded in the store), renewing the lease while it lives. When the holder dies its
lease expires within three quarters of a period and another instance runs the next run on
time. Without a reachable store the task does not run (one log line per outage).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from ..cluster import BaseLeaseStore, OncePerCluster
from ..errors import ServiceConfigurationError
from ..observability._metrics import MetricsHooks
from ..observability._tracing import start_span
from ..protocol import BlockingRunner

if TYPE_CHECKING:
    from aiohttp import web

    from ._microservice import MicroService

__all__ = ["PeriodicTask", "PeriodicTasks", "periodic_tasks_ctx"]


def _describe(func: Any) -> str:
    if isinstance(func, functools.partial):
        return f"partial({_describe(func.func)})"
    return str(getattr(func, "__qualname__", None) or repr(func))


def _is_async(func: Any) -> bool:
    while isinstance(func, functools.partial):
        func = func.func
    if inspect.iscoroutinefunction(func):
        return True
    call = getattr(func, "__call__", None)  # noqa: B004 - an object with an async __call__
    return call is not None and inspect.iscoroutinefunction(call)


class PeriodicTask:
    """One periodic callable and its statistics.

    Attributes:
        func: The callable.
        interval: Seconds between the starts of two runs.
        runs: Runs started.
        failures: Runs that raised.
        skipped: Ticks skipped because a run overran.
    """

    def __init__(
        self, func: Callable[[], Any], interval: float, *, once_per_cluster: bool = False
    ) -> None:
        self.func = func
        self.interval = interval
        self.once_per_cluster = once_per_cluster
        self.name = _describe(func)
        self.is_async = _is_async(func)
        self.runs = 0
        self.failures = 0
        self.skipped = 0
        self.running = False

    async def _call(self, pool: BlockingRunner) -> None:
        if self.is_async:
            await self.func()
        else:
            result = await pool.run(self.func)
            if inspect.isawaitable(result):
                await result

    async def run_once(
        self,
        pool: BlockingRunner,
        logger: logging.Logger,
        metrics: MetricsHooks | None = None,
        tracer: Any = None,
    ) -> None:
        """Run the callable once; log an exception instead of raising it.

        ``metrics`` hears the run's duration and outcome; with a ``tracer`` the run is
        an INTERNAL span named ``periodic <task>`` (a trace of its own).
        """
        self.runs += 1
        self.running = True
        started = time.perf_counter()
        ok = False
        try:
            if tracer is None:
                await self._call(pool)
            else:
                with start_span(
                    tracer,
                    f"periodic {self.name}",
                    kind="internal",
                    attributes={"gemstone.periodic.task": self.name},
                ):
                    await self._call(pool)
            ok = True
        except asyncio.CancelledError:
            raise
        except Exception:
            self.failures += 1
            logger.exception("periodic task %s failed (it keeps running)", self.name)
        finally:
            self.running = False
        if metrics is not None:
            metrics.periodic_task_run(self.name, time.perf_counter() - started, ok)

    async def loop(
        self,
        pool: BlockingRunner,
        logger: logging.Logger,
        metrics: MetricsHooks | None = None,
        tracer: Any = None,
    ) -> None:
        """Run forever at ``interval`` (until cancelled)."""
        clock = asyncio.get_running_loop()
        next_at = clock.time() + self.interval
        while True:
            await asyncio.sleep(max(0.0, next_at - clock.time()))
            await self.run_once(pool, logger, metrics, tracer)
            next_at += self.interval
            now = clock.time()
            if next_at <= now:
                missed = math.floor((now - next_at) / self.interval) + 1
                self.skipped += missed
                next_at += missed * self.interval

    async def loop_once_per_cluster(
        self,
        lease: _Lease,
        pool: BlockingRunner,
        logger: logging.Logger,
        metrics: MetricsHooks | None = None,
        tracer: Any = None,
    ) -> None:
        """Run at ``interval`` across the cluster: only while holding the lease (until cancelled)."""
        poll = min(self.interval / 4, _MAX_POLL)
        store_down = False
        try:
            while True:
                wait = poll
                try:
                    if await lease.hold(poll * 3):
                        now = await lease.store.now()
                        last = await lease.store.last_run(lease.key)
                        if last is None or now >= last + self.interval:
                            await lease.store.mark_run(lease.key, now, keep=self.interval * 10)
                            async with lease.kept(poll):
                                await self.run_once(pool, logger, metrics, tracer)
                        else:
                            wait = min(poll, last + self.interval - now)
                    if store_down:
                        store_down = False
                        logger.info("periodic task %s: the lease store is back", self.name)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if not store_down:
                        store_down = True
                        logger.warning(
                            "periodic task %s: the lease store is unavailable (%s); the task "
                            "does not run until it is back",
                            self.name,
                            exc,
                        )
                await asyncio.sleep(max(wait, 0.0))
        finally:
            await lease.release()


_MAX_POLL = 5.0  # seconds between two looks at a once-per-cluster task's lease


class _Lease:
    """One instance's claim on the lease of one once-per-cluster task."""

    def __init__(self, store: BaseLeaseStore, key: str, owner: str) -> None:
        self.store = store
        self.key = key
        self.owner = owner
        self._ttl = 0.0

    async def hold(self, ttl: float) -> bool:
        """Take or renew the lease for ``ttl`` seconds; True when this instance holds it."""
        self._ttl = ttl
        return await self.store.acquire(self.key, self.owner, ttl)

    @contextlib.asynccontextmanager
    async def kept(self, every: float) -> AsyncIterator[None]:
        """Keep renewing the lease while the block runs (a run may outlast the lease)."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(every)
                with contextlib.suppress(Exception):
                    await self.store.acquire(self.key, self.owner, self._ttl)

        renewing = asyncio.create_task(renew())
        try:
            yield
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing

    async def release(self) -> None:
        """Give the lease up (on shutdown), so that another instance takes over at once."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await asyncio.shield(self.store.release(self.key, self.owner))


class PeriodicTasks:
    """The periodic tasks of one running application."""

    def __init__(
        self,
        tasks: list[PeriodicTask],
        service: MicroService | None = None,
        lease_store: BaseLeaseStore | None = None,
    ) -> None:
        self.tasks = tasks
        self.service = service
        self.lease_store = lease_store
        self._owner = f"{service.name if service else 'service'}:{uuid.uuid4().hex}"
        self._running: list[asyncio.Task[None]] = []

    @classmethod
    def from_service(cls, service: MicroService) -> PeriodicTasks:
        """Check and bind ``service.periodic_tasks``.

        Raises:
            ServiceConfigurationError: An entry is not ``(callable, positive seconds)``.
        """
        own_functions = {
            id(value) for klass in type(service).__mro__ for value in vars(klass).values()
        }
        tasks = []
        for entry in service.periodic_tasks:
            if not isinstance(entry, tuple | list) or len(entry) != 2:
                raise ServiceConfigurationError(
                    f"{service.name}: a periodic task is (callable, seconds), got {entry!r}"
                )
            func, seconds = entry
            once = isinstance(func, OncePerCluster)
            if isinstance(func, OncePerCluster):
                func = func.func
            if not callable(func):
                raise ServiceConfigurationError(
                    f"{service.name}: periodic task {func!r} is not callable"
                )
            if (
                isinstance(seconds, bool)
                or not isinstance(seconds, int | float)
                or not math.isfinite(seconds)
                or seconds <= 0
            ):
                raise ServiceConfigurationError(
                    f"{service.name}: the interval of periodic task {_describe(func)} must be "
                    f"a positive number of seconds, got {seconds!r}"
                )
            if inspect.isfunction(func) and id(func) in own_functions:
                func = func.__get__(service)
            tasks.append(PeriodicTask(func, float(seconds), once_per_cluster=once))
        store = service.cluster_lease_store
        needing = [task.name for task in tasks if task.once_per_cluster]
        if needing and store is None:
            raise ServiceConfigurationError(
                f"{service.name}: periodic task {needing[0]} runs once per cluster, which needs "
                "a lease store shared by the instances: set cluster_lease_store (for example "
                "RedisLeaseStore(url))"
            )
        return cls(tasks, service, store if needing else None)

    def start(self, pool: BlockingRunner, logger: logging.Logger) -> None:
        """Start one asyncio task per periodic task (reporting to the service's metrics)."""
        service = self.service
        metrics = service.metrics if service is not None else None
        tracer = service.tracer if service is not None else None
        for task in self.tasks:
            if task.once_per_cluster and self.lease_store is not None:
                name = service.name if service is not None else "service"
                lease = _Lease(self.lease_store, f"periodic.{name}.{task.name}", self._owner)
                work = task.loop_once_per_cluster(lease, pool, logger, metrics, tracer)
            else:
                work = task.loop(pool, logger, metrics, tracer)
            self._running.append(asyncio.create_task(work, name=f"periodic:{task.name}"))

    async def stop(self) -> None:
        """Cancel the tasks and wait until they have ended."""
        running, self._running = self._running, []
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.lease_store is not None:
            await self.lease_store.aclose()


def periodic_tasks_ctx(
    tasks: PeriodicTasks, pool: BlockingRunner, logger: logging.Logger
) -> Callable[[web.Application], AsyncIterator[None]]:
    """Return the cleanup context running ``tasks`` while the application lives."""

    async def periodic_ctx(app: web.Application) -> AsyncIterator[None]:
        tasks.start(pool, logger)
        try:
            yield
        finally:
            await tasks.stop()

    return periodic_ctx
