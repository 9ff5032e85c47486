"""The error tree of gemstone-aio.

Every exception the framework raises derives from :class:`GemstoneError`::

    GemstoneError
    ├─ ServiceConfigurationError        misuse found while building or configuring a service
    ├─ JsonRpcError                     server side: becomes a JSON-RPC error object (code on the class)
    │  ├─ ParseError          -32700    ├─ InvalidRequest      -32600
    │  ├─ MethodNotFound      -32601    ├─ InvalidParams       -32602
    │  ├─ InternalError       -32603    ├─ AccessDenied        -32001
    │  ├─ ServerOverloaded    -32002    ├─ MethodTimeout       -32003
    │  ├─ RequestTooLarge     -32004    └─ ServiceShuttingDown -32005
    ├─ CalledServiceError               client side: a peer answered with a JSON-RPC error object
    │  └─ one subclass per known code (MethodNotFoundError, InvalidParamsError, ...)
    ├─ GemstoneTransportError           the network failed (client, registry, events)
    │  └─ EventPublishError             an event could not be published (not confirmed in time)
    └─ EventBodyError                   an event body is not JSON-serialisable (also a TypeError)

A method may raise any :class:`JsonRpcError` subclass (or a subclass of its own with a
``code`` in the server range -32000..-32099) to answer with that error object.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AccessDenied",
    "CalledServiceError",
    "EventBodyError",
    "EventPublishError",
    "GemstoneError",
    "GemstoneTransportError",
    "InternalError",
    "InvalidParams",
    "InvalidRequest",
    "JsonRpcError",
    "MethodNotFound",
    "MethodTimeout",
    "ParseError",
    "RequestTooLarge",
    "ServerOverloaded",
    "ServiceConfigurationError",
    "ServiceShuttingDown",
]


class GemstoneError(Exception):
    """The root of every exception raised by gemstone-aio."""


class ServiceConfigurationError(GemstoneError, ValueError):
    """A service is defined or configured wrongly; the message names the offending value."""


class JsonRpcError(GemstoneError):
    """An error that is answered to the caller as a JSON-RPC 2.0 error object.

    Subclasses set ``code`` and ``default_message``, and may set ``data_model``: the type
    (a pydantic model, a dataclass, any annotation) their ``data`` member follows, which
    the self-description (``rpc.discover``) publishes as a JSON Schema. Instances carry
    the ``message`` and the optional ``data`` member that are sent to the caller, so
    never put secrets or exception text into them.
    """

    code: ClassVar[int] = -32603
    default_message: ClassVar[str] = "Internal error"
    data_model: ClassVar[Any] = None

    def __init__(self, message: str | None = None, data: Any = None) -> None:
        self.message = message if message is not None else self.default_message
        self.data = data
        super().__init__(self.message)

    def to_error_object(self) -> dict[str, Any]:
        """Return the JSON-RPC error object (``code``, ``message`` and, if set, ``data``)."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


class ParseError(JsonRpcError):
    """The body is not valid JSON (-32700)."""

    code = -32700
    default_message = "Parse error"


class InvalidRequest(JsonRpcError):
    """The JSON is not a valid JSON-RPC 2.0 request object (-32600)."""

    code = -32600
    default_message = "Invalid Request"


class MethodNotFound(JsonRpcError):
    """No exposed method has the requested name (-32601)."""

    code = -32601
    default_message = "Method not found"


class InvalidParams(JsonRpcError):
    """The params do not fit the method's signature (-32602); ``data`` lists the errors."""

    code = -32602
    default_message = "Invalid params"


class InternalError(JsonRpcError):
    """The method failed; no exception text reaches the caller unless the service is in debug."""

    code = -32603
    default_message = "Internal error"


class AccessDenied(JsonRpcError):
    """A private method was called without valid credentials (-32001)."""

    code = -32001
    default_message = "Access denied"


class ServerOverloaded(JsonRpcError):
    """The bound on queued blocking work is reached; retry later (-32002)."""

    code = -32002
    default_message = "Server overloaded"


class MethodTimeout(JsonRpcError):
    """The method ran longer than its timeout and was abandoned (-32003)."""

    code = -32003
    default_message = "Method timed out"


class RequestTooLarge(JsonRpcError):
    """The body, the batch or the JSON nesting exceeds a configured limit (-32004)."""

    code = -32004
    default_message = "Request too large"


class ServiceShuttingDown(JsonRpcError):
    """The service is draining before it stops and takes no new calls (-32005)."""

    code = -32005
    default_message = "Service shutting down"


class CalledServiceError(GemstoneError):
    """A remote service answered a call with a JSON-RPC error object.

    ``CalledServiceError.for_error(...)`` picks the subclass registered for the code, so
    callers may catch, for example, :class:`gemstone_aio.client.MethodNotFoundError`.
    """

    code_class: ClassVar[int | None] = None
    _by_code: ClassVar[dict[int, type[CalledServiceError]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.code_class is not None:
            CalledServiceError._by_code[cls.code_class] = cls

    def __init__(
        self, code: int, message: str, data: Any = None, *, url: str | None = None
    ) -> None:
        self.code = code
        self.message = message
        self.data = data
        self.url = url
        where = f" from {url}" if url else ""
        super().__init__(f"JSON-RPC error {code}{where}: {message}")

    @classmethod
    def for_error(
        cls, code: int, message: str, data: Any = None, *, url: str | None = None
    ) -> CalledServiceError:
        """Build the most specific registered subclass for ``code``."""
        klass = cls._by_code.get(code, CalledServiceError)
        return klass(code, message, data, url=url)


class GemstoneTransportError(GemstoneError):
    """A network operation failed (connection, timeout, malformed reply)."""


class EventPublishError(GemstoneTransportError):
    """An event was not confirmed by a transport within its publish timeout."""


class EventBodyError(GemstoneError, TypeError):
    """An event body cannot be encoded as JSON; raised before anything is published."""
