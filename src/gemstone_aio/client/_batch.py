"""JSON-RPC batches: many calls and notifications in one HTTP request."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..errors import GemstoneError, GemstoneTransportError
from ..protocol import _jsonrpc as jsonrpc
from ._errors import BadResponseError
from ._wire import make_message, make_params, next_id

if TYPE_CHECKING:
    from ._remote_service import RemoteService, _Unset

__all__ = ["Batch"]


class Batch:
    """Collects calls and notifications, then sends them as one JSON-RPC batch.

    Made by :meth:`RemoteService.batch`::

        async with svc.batch() as batch:
            total = batch.call("sum", 1, 2, 3)
            batch.notify("log", "summing")
        print(await total)     # or total.result(): the batch has been answered

    Each :meth:`call` returns an :class:`asyncio.Future` that resolves to that call's
    result or raises its error (a :class:`~gemstone_aio.errors.CalledServiceError`
    subclass). Leaving the block sends the batch and waits for the reply; an exception
    inside the block sends nothing and cancels the futures. A failure of the whole
    request (connection refused, timeout, a bad reply) is set on every future and raised
    when the block is left.
    """

    def __init__(self, client: RemoteService, *, timeout: float | _Unset | None) -> None:
        self._client = client
        self._timeout = timeout
        self._messages: list[dict[str, Any]] = []
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._sent = False

    def __len__(self) -> int:
        return len(self._messages)

    def call(self, method: str, /, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        """Add a call; return the future of its result."""
        self._check_open()
        request_id = next_id()
        message = make_message(method, make_params(args, kwargs), request_id)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._messages.append(message)
        self._pending[request_id] = future
        return future

    def notify(self, method: str, /, *args: Any, **kwargs: Any) -> None:
        """Add a notification (no reply, no future)."""
        self._check_open()
        self._messages.append(make_message(method, make_params(args, kwargs), None))

    def _check_open(self) -> None:
        if self._sent:
            raise RuntimeError("this batch has been sent; start a new one with svc.batch()")

    async def send(self) -> None:
        """Send the batch (once) and resolve every call's future.

        Raises:
            GemstoneTransportError: The request failed or the reply is not a valid
                batch response; every pending future holds the same error.
        """
        self._check_open()
        self._sent = True
        if not self._messages:
            return
        try:
            reply = await self._client.post(jsonrpc.dumps(self._messages), timeout=self._timeout)
            self._resolve(reply)
        except GemstoneTransportError as exc:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(exc)
                    future.exception()  # raised from send(); do not also log it as unretrieved
            raise
        except BaseException:
            self._cancel()
            raise

    def _resolve(self, reply: Any) -> None:
        url = self._client.url
        if not self._pending:
            return
        if isinstance(reply, dict):
            # The whole batch was refused (e.g. too large): one error for every call.
            try:
                self._client.unwrap(reply)
            except GemstoneError as exc:
                error: GemstoneError = exc
            else:
                error = BadResponseError(f"{url} answered a batch with a single result")
            if isinstance(error, GemstoneTransportError):
                raise error
            for future in self._pending.values():
                future.set_exception(error)
            return
        if not isinstance(reply, list):
            raise BadResponseError(f"{url} answered a batch with {type(reply).__name__}")
        for entry in reply:
            if not isinstance(entry, dict):
                raise BadResponseError(f"{url} answered a batch with a non-object entry")
            waiting = self._pending.get(entry.get("id"))  # type: ignore[arg-type]
            if waiting is None or waiting.done():
                continue
            try:
                waiting.set_result(self._client.unwrap(entry))
            except GemstoneError as exc:
                waiting.set_exception(exc)
        for request_id, future in self._pending.items():
            if not future.done():
                future.set_exception(
                    BadResponseError(f"{url} sent no response for the batch entry id {request_id}")
                )

    def _cancel(self) -> None:
        for future in self._pending.values():
            future.cancel()

    async def __aenter__(self) -> Batch:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self._sent = True
            self._cancel()
            return
        await self.send()
