"""``RemoteService``: the asyncio client of a JSON-RPC 2.0 service over HTTP."""

from __future__ import annotations

import asyncio
import enum
import functools
import itertools
import ssl
import weakref
from collections.abc import Awaitable, Generator, Mapping
from types import TracebackType
from typing import Any

import aiohttp

from ..errors import CalledServiceError, GemstoneTransportError
from ..observability._logs import current_request_id
from ..observability._tracing import current_tracer, start_span
from ..protocol import TIMEOUT_HEADER, time_left
from ..protocol import _jsonrpc as jsonrpc
from ..tls import client_context
from ._batch import Batch
from ._blocking import AsyncMethodCall, LoopRunner, in_running_loop
from ._errors import (
    BadResponseError,
    CallTimeoutError,
    HttpStatusError,
    ResponseTooLargeError,
    ServiceUnavailableError,
)
from ._wire import make_message, make_params, next_id

__all__ = ["DEFAULT_TIMEOUT", "RemoteService"]

DEFAULT_TIMEOUT = 30.0
"""Seconds a call waits for its reply unless told otherwise."""

DEFAULT_MAX_RESPONSE_SIZE = 32 * 1024 * 1024
"""The largest reply body a client accepts unless told otherwise (32 MiB)."""

REQUEST_ID_HEADER = "X-Request-Id"
"""The header carrying the request id of the call being served to the called service."""


class _Unset(enum.Enum):
    UNSET = enum.auto()


UNSET = _Unset.UNSET


class _MethodProxy:
    """``svc.methods.name(...)``: attribute access builds dotted method names.

    In a thread that runs an event loop a call returns an awaitable; elsewhere it
    blocks and returns the result, or with ``__async=True`` returns an
    :class:`AsyncMethodCall` at once.
    """

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
        run_async = bool(kwargs.pop("__async", False))
        params = make_params(args, kwargs)
        if in_running_loop():
            if run_async:
                raise RuntimeError(
                    f"__async=True (calling {self._name!r}) is for blocking scripts; in a "
                    "running event loop use the async client: asyncio.create_task("
                    f"svc.methods.{self._name}(...)) or asyncio.gather(...)"
                )
            return self._client.request(self._name, params, notification=self._notify)
        future = self._client._runner_for_blocking().submit(
            self._client.request(self._name, params, notification=self._notify)
        )
        if run_async:
            return AsyncMethodCall(self._name, future)
        return future.result()


class _Done:
    """An awaitable that has nothing left to do (``close()`` outside an event loop)."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield


class RemoteService:
    """A client of one JSON-RPC service, reached at ``url``.

    Async use (an async context manager owning one pooled aiohttp session, or
    borrowing the one you pass)::

        async with RemoteService("http://127.0.0.1:8000/api") as svc:
            await svc.call("say_hello", "world")
            await svc.methods.say_hello(name="world")

    Blocking use, from a script or a thread that runs no event loop (the calls run on a
    private event loop in a background thread, one per client)::

        with RemoteService("http://127.0.0.1:8000/api") as client:
            client.methods.say_hello("world")
            call = client.methods.say_hello("world", __async=True)
            call.wait()

    Args:
        url: The service's JSON-RPC endpoint.
        timeout: Seconds to wait for each reply, retries included (per call override:
            :meth:`request`); ``None`` waits forever.
        headers: Headers sent with every request.
        token: An API token for private methods, sent in ``token_header``.
        token_header: The header carrying the token (``X-Api-Token``).
        token_template: A format string such as ``"Bearer {}"`` for the header value.
        cookies: Cookies sent with every request (e.g. a cookie token).
        session: An aiohttp session to borrow for async use; it is not closed by
            :meth:`close`. Blocking use always runs on a session of its own.
        retries: How many times to retry a request whose connection was refused (the
            service surely did not see it); ``0`` (the default) never retries. Other
            failures are never retried: the service may have run the call.
        retry_backoff: Seconds before the first retry; each next wait doubles.
        max_response_size: The largest reply body accepted, in bytes (32 MiB); a larger
            one fails the call with :class:`~gemstone_aio.client.ResponseTooLargeError`
            instead of exhausting this process's memory. ``None``: no bound.
        ssl_ca_certs: For ``https://``: the CA bundle (PEM) the service's certificate is
            verified against, instead of the system store.
        ssl_certfile: A client certificate to present (mutual TLS); it may hold the key.
        ssl_keyfile: Its private key (refused if other users can read the file).
        ssl_verify: ``False`` accepts any server certificate (anyone on the network path
            can then read and change the calls); a warning is logged once per process.
            Verification is never turned off otherwise.
        ssl_context: An :class:`ssl.SSLContext` of your own instead of the four above.

    Deadlines travel: every request carries ``Gemstone-Timeout``, the seconds the callee
    has to answer: the call's timeout, or what is left of the budget of the call being
    served when that is smaller (a service calling another while it answers its own
    caller passes the caller's deadline on). See ``docs/resilience.md``.
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
        retries: int = 0,
        retry_backoff: float = 0.1,
        max_response_size: int | None = DEFAULT_MAX_RESPONSE_SIZE,
        ssl_ca_certs: str | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        ssl_verify: bool = True,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if retries < 0 or retry_backoff < 0:
            raise ValueError(
                f"retries and retry_backoff must be >= 0, got {retries!r} and {retry_backoff!r}"
            )
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.max_response_size = max_response_size
        self.headers: dict[str, str] = {"Content-Type": "application/json"}
        self.headers.update(headers or {})
        if token is not None:
            self.headers[token_header] = token_template.format(token) if token_template else token
        self.cookies = dict(cookies or {})
        self._ssl = _tls_context(
            ssl_context, ssl_ca_certs, ssl_certfile, ssl_keyfile, ssl_verify, session
        )
        self._session = session
        self._owns_session = session is None
        self._runner: LoopRunner | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    # -- sessions ----------------------------------------------------------------------

    def _new_session(self) -> aiohttp.ClientSession:
        return _make_session(self.cookies or None, self._ssl)

    def _get_session(self) -> aiohttp.ClientSession:
        runner = self._runner
        if runner is not None and runner.is_current():
            return runner.session()
        if self._session is None or self._session.closed:
            if not self._owns_session:
                raise RuntimeError(f"the borrowed session of RemoteService({self.url!r}) is closed")
            self._session = self._new_session()
        return self._session

    def _runner_for_blocking(self) -> LoopRunner:
        if self._runner is None:
            make = functools.partial(_make_session, self.cookies or None, self._ssl)
            self._runner = LoopRunner(make, label=f"gemstone-client {self.url}")
            # Closes the loop thread at garbage collection or interpreter exit; holds no
            # reference to this client.
            self._finalizer = weakref.finalize(self, self._runner.close)
        return self._runner

    def close(self) -> Awaitable[None]:
        """Release the session this client created and its background loop, if any.

        In a running event loop, ``await svc.close()``; in a script, ``client.close()``
        closes at once (the returned awaitable is then already done).
        """
        if in_running_loop():
            return self._aclose()
        self._close_runner()
        if self._owns_session and self._session is not None and not self._session.closed:
            raise RuntimeError(
                f"RemoteService({self.url!r}) has an open async session: await svc.close() "
                "in its event loop"
            )
        return _Done()

    def _close_runner(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # runs LoopRunner.close once
            self._finalizer = None
            self._runner = None

    async def _aclose(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await asyncio.to_thread(self._close_runner)

    async def __aenter__(self) -> RemoteService:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __enter__(self) -> RemoteService:
        if in_running_loop():
            raise RuntimeError("in a running event loop use 'async with RemoteService(...)'")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

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
        return await self.request(method, make_params(args, kwargs))

    async def notify(self, method: str, /, *args: Any, **kwargs: Any) -> None:
        """Send a notification: the service runs ``method`` and answers nothing."""
        await self.request(method, make_params(args, kwargs), notification=True)

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
        request_id = None if notification else next_id()
        message = make_message(method, params, request_id)
        reply = await self._post(jsonrpc.dumps(message), timeout, method)
        if notification:
            return None
        return single_result(self.url, reply, request_id)

    def call_method_async(
        self,
        method: str,
        params: list[Any] | tuple[Any, ...] | Mapping[str, Any] | None = None,
        *,
        timeout: float | _Unset | None = UNSET,
    ) -> AsyncMethodCall:
        """Start a call in the background and return it at once (blocking code only).

        gemstone 0.10's form of ``client.methods.name(..., __async=True)``::

            calls = [client.call_method_async("do_stuff", (x,)) for x in range(25)]
            for call in gemstone.as_completed(*calls):
                print("just finished with result ", call.result())

        The call runs on the client's private event loop, like every blocking call: no
        thread pool, and as many calls at once as the client's connection pool allows.
        In async code use ``asyncio.create_task(svc.request(method, params))`` instead.

        Args:
            method: The method name.
            params: Params by position (a list or tuple) or by name (a dict), or ``None``.
            timeout: Seconds to wait for the reply (default: the client's timeout).

        Raises:
            TypeError: ``method`` is not a string or ``params`` is none of the above.
            RuntimeError: Called in a thread that runs an event loop.
        """
        if not isinstance(method, str):
            raise TypeError(f"call_method_async() takes a method name, got {method!r}")
        wire_params: list[Any] | dict[str, Any] | None
        if params is None:
            wire_params = None
        elif isinstance(params, Mapping):
            wire_params = dict(params)
        elif isinstance(params, list | tuple):
            wire_params = list(params)
        else:
            raise TypeError(
                f"params of {method!r} must be a list, a tuple, a dict or None, got {params!r}"
            )
        if in_running_loop():
            raise RuntimeError(
                f"call_method_async({method!r}) is for blocking scripts; in a running event "
                f"loop use the async client: asyncio.create_task(svc.request({method!r}, "
                "params)) or asyncio.gather(...)"
            )
        future = self._runner_for_blocking().submit(
            self.request(method, wire_params, timeout=timeout)
        )
        return AsyncMethodCall(method, future)

    def batch(self, *, timeout: float | _Unset | None = UNSET) -> Batch:
        """Start a batch: calls and notifications sent together in one HTTP request.

        Example::

            async with svc.batch() as batch:
                hello = batch.call("say_hello", "world")
                batch.notify("log", "said hello")
            print(hello.result())

        Args:
            timeout: Seconds to wait for the batch's reply (default: the client's timeout).
        """
        return Batch(self, timeout=timeout)

    async def _send(
        self, url: str, body: bytes, seconds: float | None, label: str
    ) -> tuple[int, bytes]:
        """POST ``body`` to ``url`` once, with ``seconds`` as the callee's budget.

        Raises what aiohttp raises, or :class:`TimeoutError`; :func:`transport_error`
        turns those into the client's errors.
        """
        headers = self.headers
        request_id = current_request_id()
        tracer = current_tracer()
        if seconds is None and request_id is None and tracer is None:
            return await self._exchange(url, body, seconds, headers)
        headers = dict(headers)
        if seconds is not None:
            # The callee's budget: what this call may still take (see request()).
            # Rounded down: the callee must never get more time than there is.
            headers[TIMEOUT_HEADER] = f"{int(seconds * 1000) / 1000:.3f}"
        if request_id is not None and not any(
            name.lower() == "x-request-id" for name in self.headers
        ):
            # Called while serving a request: the called service logs the same id.
            headers[REQUEST_ID_HEADER] = request_id
        if tracer is None:
            return await self._exchange(url, body, seconds, headers)
        # A CLIENT span, child of the current call's span; its W3C context travels in
        # the request headers, so the called service's span continues this trace.
        with start_span(
            tracer,
            label,
            kind="client",
            carrier_out=headers,
            attributes={"rpc.system": "jsonrpc", "rpc.method": label, "url.full": url},
        ):
            return await self._exchange(url, body, seconds, headers)

    async def _exchange(
        self, url: str, body: bytes, seconds: float | None, headers: Mapping[str, str]
    ) -> tuple[int, bytes]:
        session = self._get_session()
        if self.retries:
            # One deadline over every attempt and the waits between them.
            async with asyncio.timeout(seconds):
                return await _send_with_retries(self, url, session, body, headers)
        # The hot path: aiohttp's own deadline, no second timer.
        async with session.post(
            url, data=body, headers=headers, timeout=_client_timeout(seconds)
        ) as response:
            return response.status, await _read_bounded(response, self.max_response_size)

    def unwrap(self, reply: dict[str, Any]) -> Any:
        """Return a response object's result, or raise its error.

        Raises:
            CalledServiceError: ``reply`` is an error response.
            BadResponseError: ``reply`` is not a JSON-RPC 2.0 response.
        """
        return _unwrap(self.url, reply)

    async def post(self, body: bytes, *, timeout: float | _Unset | None = UNSET) -> Any:
        """POST a raw JSON-RPC body and return the decoded reply (``None`` for no body).

        Raises:
            GemstoneTransportError: The request failed or the reply is not JSON.
        """
        return await self._post(body, timeout, "batch")

    def _budget(self, timeout: float | _Unset | None) -> tuple[float | None, bool]:
        """The seconds a call may take, and whether they are the served call's budget.

        That is the call's timeout (or the client's), or what is left of the budget of
        the call being served when that is smaller.
        """
        seconds = self.timeout if isinstance(timeout, _Unset) else timeout
        left = time_left()  # the budget of the call being served, if any
        if left is not None and (seconds is None or left < seconds):
            return left, True
        return seconds, False

    async def _post(self, body: bytes, timeout: float | _Unset | None, label: str) -> Any:
        seconds, inherited = self._budget(timeout)
        try:
            status, payload = await self._send(self.url, body, seconds, label)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise transport_error(self.url, exc, seconds, inherited) from None
        return decode_reply(self.url, status, payload)


def transport_error(
    url: str, exc: BaseException, seconds: float | None, inherited: bool, note: str = ""
) -> GemstoneTransportError:
    """The client's error for ``exc``, raised by one POST to ``url``.

    A time limit that expired (aiohttp's own included) is a :class:`CallTimeoutError`;
    any other aiohttp error a :class:`ServiceUnavailableError`. ``note`` ends the message.
    """
    if isinstance(exc, TimeoutError):
        reason = " (the caller's deadline)" if inherited else ""
        return CallTimeoutError(f"{url} did not answer within {seconds or 0:g} s{reason}{note}")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return ServiceUnavailableError(
            f"cannot reach {url}: its TLS certificate was not accepted "
            f"({exc.certificate_error}); give the CA bundle that signed it (ssl_ca_certs){note}"
        )
    if isinstance(exc, aiohttp.ClientConnectionError):
        return ServiceUnavailableError(f"cannot reach {url}: {exc}{note}")
    return ServiceUnavailableError(f"request to {url} failed: {exc}{note}")


def decode_reply(url: str, status: int, payload: bytes) -> Any:
    """Decode the body ``url`` answered with HTTP ``status`` (``None`` when there is none).

    Raises:
        HttpStatusError: An HTTP error status without a JSON body.
        BadResponseError: A body that is not JSON.
    """
    if status == 204 or not payload:
        if status >= 400:
            raise HttpStatusError(f"{url} answered HTTP {status}", status=status)
        return None
    try:
        return jsonrpc.loads(payload)
    except ValueError:
        if status >= 400:
            raise HttpStatusError(f"{url} answered HTTP {status}", status=status) from None
        raise BadResponseError(f"{url} answered with a body that is not JSON") from None


def single_result(url: str, reply: Any, request_id: int | None) -> Any:
    """The result of the call ``request_id``, which ``url`` answered with ``reply``.

    Raises:
        CalledServiceError: The reply is an error response.
        BadResponseError: The reply is not the JSON-RPC 2.0 response to that call.
    """
    if not isinstance(reply, dict):
        raise BadResponseError(f"{url} answered a single call with {type(reply).__name__}")
    reply_id = reply.get("id")
    # An error about the request as a whole (e.g. a parse error) may carry id null.
    if reply_id != request_id and not (reply_id is None and "error" in reply):
        raise BadResponseError(
            f"{url} answered id {reply_id!r} to the request with id {request_id}"
        )
    return _unwrap(url, reply)


def _unwrap(url: str, reply: dict[str, Any]) -> Any:
    if reply.get("jsonrpc") != "2.0" or ("result" in reply) == ("error" in reply):
        raise BadResponseError(f"{url} answered with a non-JSON-RPC 2.0 response")
    if "result" in reply:
        return reply["result"]
    error = reply["error"]
    if (
        not isinstance(error, dict)
        or not isinstance(error.get("code"), int)
        or not isinstance(error.get("message"), str)
    ):
        raise BadResponseError(f"{url} answered with a malformed error object")
    raise CalledServiceError.for_error(error["code"], error["message"], error.get("data"), url=url)


def _tls_context(
    context: ssl.SSLContext | None,
    ca_certs: str | None,
    certfile: str | None,
    keyfile: str | None,
    verify: bool,
    session: aiohttp.ClientSession | None,
) -> ssl.SSLContext | None:
    """The TLS context of a client's own sessions (``None``: aiohttp's, the system store)."""
    given = ca_certs or certfile or keyfile or not verify
    if context is not None and given:
        raise ValueError("give ssl_context or the ssl_* file settings and ssl_verify, not both")
    if session is not None and (context is not None or given):
        raise ValueError(
            "a borrowed session keeps its own TLS settings: give them to its connector "
            "(aiohttp.TCPConnector(ssl=gemstone_aio.tls.client_context(...))) instead"
        )
    if context is not None or not given:
        return context
    return client_context(ca_certs, certfile, keyfile, verify=verify)


def _make_session(
    cookies: Mapping[str, str] | None, tls: ssl.SSLContext | None
) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(ssl=tls) if tls is not None else None
    return aiohttp.ClientSession(cookies=cookies, connector=connector)


_NO_TIMEOUT = aiohttp.ClientTimeout(total=None)
_CHUNK = 64 * 1024


async def _read_bounded(response: aiohttp.ClientResponse, limit: int | None) -> bytes:
    """Read a reply body of at most ``limit`` bytes.

    Raises:
        ResponseTooLargeError: The body is (or announces itself as) larger.
    """
    length = response.content_length
    if limit is None or (length is not None and length <= limit):
        return await response.read()  # aiohttp reads exactly the announced length
    if length is not None:
        raise ResponseTooLargeError(
            f"{response.url} announced a reply of {length} bytes; max_response_size is {limit}"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise ResponseTooLargeError(
                f"{response.url} sent a reply larger than max_response_size ({limit} bytes)"
            )
        chunks.append(chunk)
    return b"".join(chunks)


@functools.lru_cache(maxsize=64)
def _client_timeout(seconds: float | None) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=seconds)


async def _send_with_retries(
    client: RemoteService,
    url: str,
    session: aiohttp.ClientSession,
    body: bytes,
    headers: Mapping[str, str],
) -> tuple[int, bytes]:
    delay = client.retry_backoff
    for attempt in itertools.count():
        try:
            async with session.post(
                url, data=body, headers=headers, timeout=_NO_TIMEOUT
            ) as response:
                return response.status, await _read_bounded(response, client.max_response_size)
        except aiohttp.ClientConnectorError as exc:
            refused = isinstance(exc.os_error, ConnectionRefusedError)
            if not refused or attempt >= client.retries:
                raise
        await asyncio.sleep(delay)
        delay *= 2
    raise AssertionError("unreachable")  # pragma: no cover
