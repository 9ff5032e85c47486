"""The base classes of the typed clients that ``gemstone client`` writes.

A generated client is a subclass with one typed method per method of the service; each
method hands its params to :meth:`TypedClient._call` and reads the result with
:meth:`TypedClient._result`. Both go through :class:`RemoteService`, so a typed client
behaves exactly like the untyped one (timeouts, tokens, errors, tracing) and only adds
types: params are turned into JSON by pydantic (models, enums, dates...) and results
are validated into the declared types.
"""

from __future__ import annotations

import functools
from types import TracebackType
from typing import Any, ClassVar, Final, Self

import pydantic
import pydantic_core

from ._remote_service import RemoteService

__all__ = ["OMITTED", "BlockingTypedClient", "TypedClient"]


class _Omitted:
    """The type of :data:`OMITTED`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "OMITTED"


OMITTED: Final[Any] = _Omitted()
"""The default of a param whose default the signature cannot spell (a list, a model):
left out of the call, so the service applies its own default."""


@functools.cache
def _adapter(kind: Any) -> pydantic.TypeAdapter[Any]:
    return pydantic.TypeAdapter(kind)


def _wire(params: dict[str, Any] | list[Any]) -> Any:
    if isinstance(params, dict):
        params = {name: value for name, value in params.items() if value is not OMITTED}
    return pydantic_core.to_jsonable_python(params, by_alias=True)


class _Base:
    default_url: ClassVar[str] = "http://127.0.0.1:8000/api"
    """The service's URL when the client is made without one (the URL it was generated from)."""

    def __init__(self, remote: RemoteService | str | None = None) -> None:
        self._owns_remote = not isinstance(remote, RemoteService)
        self.remote: Final = (
            remote
            if isinstance(remote, RemoteService)
            else RemoteService(remote or self.default_url)
        )

    @staticmethod
    def _result(kind: Any, value: Any) -> Any:
        """Validate a call's result into the declared type ``kind`` (cached adapters)."""
        return _adapter(kind).validate_python(value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.remote.url!r})"


class TypedClient(_Base):
    """Base class of the async typed clients written by ``gemstone client``.

    Use it as an async context manager, or call :meth:`aclose` when done::

        async with OrdersClient("http://127.0.0.1:8000/api") as orders:
            order = await orders.place_order(item="apple")

    Args:
        remote: The :class:`RemoteService` to call through (its timeout, token and
            session apply; it is not closed by :meth:`aclose`), or the service's URL
            (default: :attr:`default_url`).
    """

    async def _call(self, method: str, params: dict[str, Any] | list[Any]) -> Any:
        """Call ``method`` with params (``OMITTED`` ones left out) and return the raw result."""
        return await self.remote.request(method, _wire(params))

    async def aclose(self) -> None:
        """Close the client's own :class:`RemoteService` (not one that was passed in)."""
        if self._owns_remote:
            await self.remote.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class BlockingTypedClient(_Base):
    """Base class of the blocking typed clients written by ``gemstone client``.

    For scripts and threads that run no event loop (the calls run on the
    :class:`RemoteService`'s private loop)::

        with OrdersBlockingClient("http://127.0.0.1:8000/api") as orders:
            order = orders.place_order(item="apple")

    Args:
        remote: The :class:`RemoteService` to call through (not closed by
            :meth:`close`), or the service's URL (default: :attr:`default_url`).
    """

    def _call(self, method: str, params: dict[str, Any] | list[Any]) -> Any:
        """Call ``method`` with params (``OMITTED`` ones left out) and return the raw result.

        Raises:
            RuntimeError: Called in a thread that runs an event loop (use the async client).
        """
        return self.remote.call_method_async(method, _wire(params)).wait()

    def close(self) -> None:
        """Close the client's own :class:`RemoteService` (not one that was passed in)."""
        if self._owns_remote:
            self.remote.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
