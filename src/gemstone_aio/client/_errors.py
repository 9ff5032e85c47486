"""Errors raised by the client.

A peer's JSON-RPC error object raises :class:`~gemstone_aio.errors.CalledServiceError`,
or the subclass registered for its code. A failure to get an answer at all raises a
:class:`~gemstone_aio.errors.GemstoneTransportError` subclass naming the URL.
"""

from __future__ import annotations

from ..errors import CalledServiceError, GemstoneTransportError

__all__ = [
    "AccessDeniedError",
    "BadResponseError",
    "CallTimeoutError",
    "HttpStatusError",
    "InternalServerError",
    "InvalidParamsError",
    "MethodNotFoundError",
    "ResponseTooLargeError",
    "ServiceUnavailableError",
]


class MethodNotFoundError(CalledServiceError):
    """The service has no method of that name (-32601)."""

    code_class = -32601


class InvalidParamsError(CalledServiceError):
    """The service rejected the params (-32602); ``data`` lists the errors."""

    code_class = -32602


class InternalServerError(CalledServiceError):
    """The method failed on the service (-32603)."""

    code_class = -32603


class AccessDeniedError(CalledServiceError):
    """The method is private and the credentials were missing or wrong (-32001)."""

    code_class = -32001


class ServiceUnavailableError(GemstoneTransportError):
    """The service could not be reached (connection refused, DNS, reset before a reply)."""


class CallTimeoutError(GemstoneTransportError, TimeoutError):
    """No reply came within the timeout."""


class BadResponseError(GemstoneTransportError):
    """The reply is not JSON, or not a JSON-RPC 2.0 response."""


class ResponseTooLargeError(BadResponseError):
    """The reply body is larger than the client's ``max_response_size``."""


class HttpStatusError(GemstoneTransportError):
    """The service answered with an HTTP error status and no JSON-RPC error object."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status
