"""The discovery-strategy interface and the errors of discovery."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import GemstoneError, GemstoneTransportError

__all__ = ["BaseDiscoveryStrategy", "Lookup", "RegistryUnavailableError", "ServiceNotFoundError"]


@dataclass(frozen=True, slots=True)
class Lookup:
    """A strategy's answer to a lookup.

    Attributes:
        urls: The URLs of the live instances found, each once.
        complete: ``False`` when the backend may not know every live instance yet (a
            registry that just started): callers then keep the instances they knew too.
    """

    urls: list[str] = field(default_factory=list)
    complete: bool = True


class ServiceNotFoundError(GemstoneError, LookupError):
    """No live instance of a service matches the pattern asked for.

    Attributes:
        pattern: The glob that matched nothing alive.
    """

    def __init__(self, pattern: str, detail: str = "") -> None:
        self.pattern = pattern
        message = f"no live service matches {pattern!r}"
        super().__init__(f"{message}: {detail}" if detail else message)


class RegistryUnavailableError(GemstoneTransportError):
    """No registry or discovery backend answered a lookup."""


class BaseDiscoveryStrategy(abc.ABC):
    """Where services announce themselves and look each other up.

    A strategy is told ``ping(name, url)`` by every running instance at start and every
    ``service_registry_ping_interval`` seconds, ``unregister(name, url)`` on a graceful
    shutdown, and ``locate(pattern)`` by :meth:`MicroService.get_service`. Instances that
    stop pinging must stop being located after the backend's expiry time.

    A strategy may be shared by several services (a class attribute in
    ``discovery_strategies``): each service :meth:`acquire` s it while it runs and
    :meth:`release` s it at shutdown; the last release calls :meth:`aclose`. Resources
    such as connections are created lazily on first use, so a released strategy works
    again when next used.
    """

    _users: int = 0
    _restart_listeners: list[Callable[[], None]] | None = None

    def on_backend_restart(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` when the backend is seen to have restarted empty.

        The heartbeat listens, so that an instance pings (re-registers) at once instead
        of at its next interval. Returns a function that removes the listener.
        """
        if self._restart_listeners is None:
            self._restart_listeners = []
        listeners = self._restart_listeners
        listeners.append(listener)
        return lambda: listeners.remove(listener) if listener in listeners else None

    def backend_restarted(self) -> None:
        """Tell the listeners that the backend restarted (strategies call this)."""
        for listener in list(self._restart_listeners or ()):
            listener()

    @abc.abstractmethod
    async def ping(self, name: str, url: str) -> None:
        """Announce that an instance of ``name`` is alive at ``url``."""

    @abc.abstractmethod
    async def unregister(self, name: str, url: str) -> None:
        """Forget the instance of ``name`` at ``url`` (it is shutting down)."""

    @abc.abstractmethod
    async def locate(self, pattern: str) -> list[str]:
        """Return the URLs of the live instances whose name matches the glob ``pattern``.

        Only ``*`` and ``?`` are wildcards; an empty list means none matches.
        """

    async def lookup(self, pattern: str) -> Lookup:
        """Return the live instances matching ``pattern`` and whether the answer is complete.

        The default calls :meth:`locate` and calls its answer complete; a backend that
        can tell it is still filling up (a restarted registry) says so.
        """
        return Lookup(await self.locate(pattern))

    async def aclose(self) -> None:  # noqa: B027 (a no-op by default, not abstract)
        """Release connections (they are opened again if the strategy is used again)."""

    def acquire(self) -> None:
        """Note one more service using this strategy."""
        self._users += 1

    async def release(self) -> None:
        """Note one service less; the last one out closes the strategy."""
        self._users = max(0, self._users - 1)
        if self._users == 0:
            await self.aclose()
