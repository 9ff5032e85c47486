"""Discovery through a registry service spoken to over JSON-RPC (the gemstone protocol)."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from ..client._errors import MethodNotFoundError
from ..client._remote_service import RemoteService
from ._base import BaseDiscoveryStrategy, Lookup
from ._glob import check_pattern

__all__ = ["DefaultDiscoveryStrategy", "HttpDiscoveryStrategy", "HttpRegistryStrategy"]


class HttpRegistryStrategy(BaseDiscoveryStrategy):
    """Ping and query a registry: any JSON-RPC service with ``ping`` and ``locate_service``.

    It calls ``ping(name=..., url=...)``, ``locate_service(name=<pattern>)`` and, when the
    registry has them, ``lookup(name=<pattern>)`` (which also tells whether a restarted
    registry is still warming up) and ``unregister(name=..., url=...)``, with params by
    name as gemstone 0.10 did, so :mod:`gemstone_aio.registry` and older gemstone
    registries both work.

    Args:
        url: The registry's JSON-RPC endpoint, e.g. ``http://127.0.0.1:8500/api``.
        token: Sent in ``X-Api-Token`` when the registry protects ``ping``/``unregister``.
        timeout: Seconds each registry call may take.
        ssl_context: The TLS context of an ``https://`` registry (see
            :func:`gemstone_aio.tls.client_context`: a CA bundle, a client certificate);
            ``None``: verified against the system store.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"a registry URL must start with http:// or https://, got {url!r}")
        self.url = url
        self.token = token
        self.timeout = timeout
        self.ssl_context = ssl_context
        self._client: RemoteService | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._has_lookup = True  # until the registry says it has no ``lookup`` method
        self._epoch: object = None  # the id of the registry's run, from ``lookup``

    def _remote(self) -> RemoteService:
        # A session belongs to one event loop: a strategy kept from an earlier loop (a
        # class attribute, say) starts afresh instead of failing forever.
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = RemoteService(
                self.url, timeout=self.timeout, token=self.token, ssl_context=self.ssl_context
            )
            self._loop = loop
        return self._client

    async def ping(self, name: str, url: str) -> None:
        """Call the registry's ``ping(name, url)``."""
        await self._remote().call("ping", name=name, url=url)

    async def unregister(self, name: str, url: str) -> None:
        """Call the registry's ``unregister(name, url)``; a registry without it is fine."""
        try:
            await self._remote().call("unregister", name=name, url=url)
        except MethodNotFoundError:
            return  # an older registry: the entry expires on its own

    async def locate(self, pattern: str) -> list[str]:
        """Call the registry's ``locate_service(name=pattern)``."""
        check_pattern(pattern)
        result: Any = await self._remote().call("locate_service", name=pattern)
        return _urls(result)

    async def lookup(self, pattern: str) -> Lookup:
        """Call the registry's ``lookup(name=pattern)``, or ``locate_service`` if it has none."""
        check_pattern(pattern)
        if self._has_lookup:
            try:
                result: Any = await self._remote().call("lookup", name=pattern)
            except MethodNotFoundError:
                self._has_lookup = False  # an older registry
            else:
                if isinstance(result, dict):
                    self._saw_epoch(result.get("epoch"))
                    return Lookup(_urls(result.get("urls")), result.get("complete") is not False)
                return Lookup(_urls(result))
        return Lookup(await self.locate(pattern))

    def _saw_epoch(self, epoch: object) -> None:
        previous, self._epoch = self._epoch, epoch
        if previous is not None and epoch is not None and epoch != previous:
            self.backend_restarted()  # this process's heartbeat re-registers at once

    async def aclose(self) -> None:
        """Close the HTTP session."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    def __repr__(self) -> str:
        return f"HttpRegistryStrategy({self.url!r})"


def _urls(result: Any) -> list[str]:
    if not isinstance(result, list):
        return []
    return list(dict.fromkeys(url for url in result if isinstance(url, str)))


HttpDiscoveryStrategy = HttpRegistryStrategy
"""The gemstone 0.11 name of :class:`HttpRegistryStrategy`."""
DefaultDiscoveryStrategy = HttpRegistryStrategy
"""The gemstone 0.10 name of :class:`HttpRegistryStrategy`."""
