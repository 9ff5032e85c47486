"""The heartbeat: every registry hears ``ping(name, url)`` at start and every interval.

Each strategy gets its own task, so a registry that is down or slow never delays the
pings to the others. Pings are plain coroutines on the event loop (no thread, no
blocking I/O), so a saturated thread pool or busy handlers do not delay them. Pings
keep a fixed cadence (``start + k * interval``) instead of sleeping ``interval`` after
each one, so they do not drift. A failed ping is logged (a warning on the first failure,
then quietly) and retried soon: after 0.5 s, then 1 s, then every 2 s or so (never
later than the interval, with jitter so that many instances do not retry in step), so
an instance is back in a registry within about two seconds of the registry's return.
A strategy that sees its backend restarted empty (see
:meth:`BaseDiscoveryStrategy.on_backend_restart`) makes the heartbeat ping it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence

from ..observability._metrics import MetricsHooks
from ._base import BaseDiscoveryStrategy

__all__ = ["Heartbeat", "registry_label"]

_FIRST_RETRY = 0.5  # seconds before the first retry of a failed ping
_MAX_RETRY = 2.0  # seconds between retries of a failing ping, at most
_MIN_PING_TIMEOUT = 1.0  # a ping may always take this long, even with a tiny interval


def registry_label(strategy: BaseDiscoveryStrategy) -> str:
    """How metrics and readiness name a strategy: its registry URL, else its repr."""
    url = getattr(strategy, "url", None)
    return url if isinstance(url, str) else repr(strategy)


class Heartbeat:
    """Pings every strategy independently until stopped.

    Args:
        strategies: Where to ping.
        name: The service's name.
        url_of: Returns the URL to announce (read at each ping, so a port chosen at bind
            time is seen).
        interval: Seconds between two pings to the same strategy.
        logger: Where failures are logged.
    """

    def __init__(
        self,
        strategies: Sequence[BaseDiscoveryStrategy],
        name: str,
        url_of: Callable[[], str],
        interval: float,
        logger: logging.Logger,
    ) -> None:
        self.strategies = list(strategies)
        self.name = name
        self.url_of = url_of
        self.interval = interval
        self.logger = logger
        self.announced: dict[BaseDiscoveryStrategy, str] = {}
        """The strategies a ping reached, with the URL announced (to unregister it later)."""
        self._tasks: list[asyncio.Task[None]] = []
        self.metrics: MetricsHooks = MetricsHooks()
        """Told of each ping's outcome (the service's ``metrics``, set when it starts)."""
        self.reached: dict[BaseDiscoveryStrategy, bool] = {}
        """Whether the last ping to each strategy succeeded (absent: not pinged yet)."""

    def start(self, serving: asyncio.Event | None = None) -> None:
        """Start one ping task per strategy; they wait for ``serving`` to be set first."""
        if self._tasks:
            return
        for strategy in self.strategies:
            self._tasks.append(
                asyncio.create_task(
                    self._run(strategy, serving), name=f"gemstone-heartbeat-{strategy!r}"
                )
            )

    @property
    def running(self) -> bool:
        """Whether the ping tasks run."""
        return bool(self._tasks)

    async def stop(self) -> None:
        """Cancel the ping tasks and wait until they are gone."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def unregister(self, timeout: float) -> None:
        """Tell each strategy a ping reached to forget this instance (at most ``timeout`` s)."""
        announced, self.announced = self.announced, {}
        if not announced:
            return

        async def one(strategy: BaseDiscoveryStrategy, url: str) -> None:
            try:
                async with asyncio.timeout(timeout):
                    await strategy.unregister(self.name, url)
            except Exception as exc:  # the entry then expires on its own
                self.logger.info("could not unregister %s from %r: %s", url, strategy, exc)
            else:
                self.logger.debug("unregistered %s from %r", url, strategy)

        await asyncio.gather(*(one(strategy, url) for strategy, url in announced.items()))

    async def _run(self, strategy: BaseDiscoveryStrategy, serving: asyncio.Event | None) -> None:
        if serving is not None:
            await serving.wait()
        loop = asyncio.get_running_loop()
        ping_timeout = max(self.interval, _MIN_PING_TIMEOUT)
        failures = 0
        next_at = loop.time()
        wake = asyncio.Event()
        forget = strategy.on_backend_restart(wake.set)
        try:
            while True:
                delay = next_at - loop.time()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await wake.wait()
                if wake.is_set():
                    wake.clear()
                    self.logger.info("%r restarted: registering again", strategy)
                    next_at = loop.time()
                failures, next_at = await self._ping(strategy, failures, next_at, ping_timeout)
        finally:
            forget()

    async def _ping(
        self, strategy: BaseDiscoveryStrategy, failures: int, next_at: float, ping_timeout: float
    ) -> tuple[int, float]:
        """Ping once; return the failures in a row and when to ping next."""
        loop = asyncio.get_running_loop()
        url = self.url_of()
        try:
            async with asyncio.timeout(ping_timeout):
                await strategy.ping(self.name, url)
        except Exception as exc:
            self.reached[strategy] = False
            self.metrics.registry_ping_failed(registry_label(strategy))
            failures += 1
            log = self.logger.warning if failures == 1 else self.logger.debug
            log("ping to %r failed (%d in a row), retrying: %s", strategy, failures, exc)
            retry = min(self.interval, _MAX_RETRY, _FIRST_RETRY * 2 ** min(failures - 1, 4))
            return failures, loop.time() + retry * random.uniform(0.75, 1.0)
        self.announced[strategy] = url
        self.reached[strategy] = True
        self.metrics.registry_ping_succeeded(registry_label(strategy))
        if failures:
            self.logger.info("ping to %r works again after %d failures", strategy, failures)
            failures = 0
            next_at = loop.time()
        # A ping slower than the interval: ping again at once, then keep the cadence.
        return failures, max(next_at + self.interval, loop.time())
