"""``RemoteService``: the asyncio client of a JSON-RPC 2.0 service over HTTP."""

from __future__ import annotations

import asyncio
import enum
import itertools
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import aiohttp

from ..core import jsonrpc
from ..errors import CalledServiceError
from .errors import BadResponseError, CallTimeoutError, HttpStatusError, ServiceUnavailableError

__all__ = ["DEFAULT_TIMEOUT", "RemoteService"]

DEFAULT_TIMEOUT = 30.0
"""Seconds a call waits for its reply unless told otherwise."""

_ids = itertools.count(1)


class _Unset(enum.Enum):
    UNSET = enum.auto()


UNSET = _Unset.UNSET


class _MethodProxy:
    """``svc.methods.name(...)``: attribute access builds dotted method names."""

    __slots__ = ("_client", "_name", "_notify")

    def __init__(self, client: RemoteService, name: str, notify: bool) -> None:
        self._client = client
        self._name = name
        self._notify = notify

    def __getattr__(self, part: str) -> _MethodProxy:
        if part.startswith("__"):
            raise AttributeError(part)
        name = f"{self._name}.{part}" if self._name else part
        return _MethodProxy(self._client, name, self._notify)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self._name:
            raise TypeError("name a method: svc.methods.<name>(...)")
        if self._notify:
            return self._client.notify(self._name, *args, **kwargs)
        return self._client.call(self._name, *args, **kwargs)


class RemoteService:
    """A client of one JSON-RPC service, reached at ``url``.

    Use it as an async context manager (it owns one pooled aiohttp session, or borrows
    the one you pass)::

        async with RemoteService("http://127.0.0.1:8000/api") as svc:
            await svc.call("say_hello", "world")
            await svc.methods.say_hello(name="world")

    Args:
        url: The service's JSON-RPC endpoint.
        timeout: Seconds to wait for each reply (per call override: :meth:`request`).
        headers: Headers sent with every request.
        token: An API token for private methods, sent in ``token_header``.
        token_header: The header carrying the token (``X-Api-Token``).
        token_template: A format string such as ``"Bearer {}"`` for the header value.
        cookies: Cookies sent with every request (e.g. a cookie token).
        session: An aiohttp session to borrow; it is not closed by :meth:`close`.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        token: str | None = None,
        token_header: str = "X-Api-Token",
        token_template: str | None = None,
        cookies: Mapping[str, str] | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.headers: dict[str, str] = {"Content-Type": "application/json"}
        self.headers.update(headers or {})
        if token is not None:
            self.headers[token_header] = token_template.format(token) if token_template else token
        self.cookies = dict(cookies or {})
        self._session = session
        self._owns_session = session is None

    # -- session -----------------------------------------------------------------------

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            if not self._owns_session:
                raise RuntimeError(f"the borrowed session of RemoteService({self.url!r}) is closed")
            self._session = aiohttp.ClientSession(cookies=self.cookies or None)
        return self._session

    async def close(self) -> None:
        """Close the session if this client created it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> RemoteService:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"RemoteService({self.url!r})"

    # -- calls -------------------------------------------------------------------------

    @property
    def methods(self) -> Any:
        """Call methods as attributes: ``await svc.methods.math.add(1, 2)``."""
        return _MethodProxy(self, "", notify=False)

    @property
    def notifications(self) -> Any:
        """Send notifications as attributes: ``await svc.notifications.log("hi")``."""
        return _MethodProxy(self, "", notify=True)

    async def call(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call ``method`` with params by position or by name and return its result.

        Raises:
            CalledServiceError: The service answered with an error object (a subclass
                per code, e.g. ``MethodNotFoundError``).
            GemstoneTransportError: No valid answer came (subclasses name the cause).
        """
        return await self.request(method, _params(args, kwargs))

    async def notify(self, method: str, /, *args: Any, **kwargs: Any) -> None:
        """Send a notification: the service runs ``method`` and answers nothing."""
        await self.request(method, _params(args, kwargs), notification=True)

    async def request(
        self,
        method: str,
        params: list[Any] | dict[str, Any] | None = None,
        *,
        timeout: float | _Unset | None = UNSET,
        notification: bool = False,
    ) -> Any:
        """Send one request with explicit params and options.

        Args:
            method: The method name.
            params: Params by position (list) or by name (dict), or ``None``.
            timeout: Seconds to wait for this call (default: the client's timeout).
            notification: Send as a notification and return ``None``.
        """
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        request_id = None
        if not notification:
            request_id = next(_ids)
            message["id"] = request_id
        reply = await self.post(jsonrpc.dumps(message), timeout=timeout)
        if notification:
            return None
        if not isinstance(reply, dict):
            raise BadResponseError(f"{self.url} answered a single call with {type(reply).__name__}")
        return self.unwrap(reply)

    def unwrap(self, reply: dict[str, Any]) -> Any:
        """Return a response object's result, or raise its error.

        Raises:
            CalledServiceError: ``reply`` is an error response.
            BadResponseError: ``reply`` is not a JSON-RPC 2.0 response.
        """
        if reply.get("jsonrpc") != "2.0" or ("result" in reply) == ("error" in reply):
            raise BadResponseError(f"{self.url} answered with a non-JSON-RPC 2.0 response")
        if "result" in reply:
            return reply["result"]
        error = reply["error"]
        if (
            not isinstance(error, dict)
            or not isinstance(error.get("code"), int)
            or not isinstance(error.get("message"), str)
        ):
            raise BadResponseError(f"{self.url} answered with a malformed error object")
        raise CalledServiceError.for_error(
            error["code"], error["message"], error.get("data"), url=self.url
        )

    async def post(self, body: bytes, *, timeout: float | _Unset | None = UNSET) -> Any:
        """POST a raw JSON-RPC body and return the decoded reply (``None`` for no body).

        Raises:
            GemstoneTransportError: The request failed or the reply is not JSON.
        """
        seconds = self.timeout if isinstance(timeout, _Unset) else timeout
        session = self._get_session()
        try:
            async with asyncio.timeout(seconds):
                async with session.post(self.url, data=body, headers=self.headers) as response:
                    payload = await response.read()
                    status = response.status
        except TimeoutError:
            raise CallTimeoutError(f"{self.url} did not answer within {seconds} s") from None
        except aiohttp.ClientConnectionError as exc:
            raise ServiceUnavailableError(f"cannot reach {self.url}: {exc}") from None
        except aiohttp.ClientError as exc:
            raise ServiceUnavailableError(f"request to {self.url} failed: {exc}") from None
        if status == 204 or not payload:
            if status >= 400:
                raise HttpStatusError(f"{self.url} answered HTTP {status}", status=status)
            return None
        try:
            decoded = jsonrpc.loads(payload)
        except ValueError:
            if status >= 400:
                raise HttpStatusError(f"{self.url} answered HTTP {status}", status=status) from None
            raise BadResponseError(f"{self.url} answered with a body that is not JSON") from None
        return decoded


def _params(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any] | dict[str, Any] | None:
    if args and kwargs:
        raise TypeError("JSON-RPC params go either by position or by name, not both")
    if kwargs:
        return kwargs
    if args:
        return list(args)
    return None
