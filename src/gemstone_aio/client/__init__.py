"""The client: :class:`RemoteService` and its errors (module path ``gemstone_aio.client``)."""

from .errors import (
    AccessDeniedError,
    BadResponseError,
    CallTimeoutError,
    HttpStatusError,
    InternalServerError,
    InvalidParamsError,
    MethodNotFoundError,
    ServiceUnavailableError,
)
from .remote_service import DEFAULT_TIMEOUT, RemoteService

__all__ = [
    "DEFAULT_TIMEOUT",
    "AccessDeniedError",
    "BadResponseError",
    "CallTimeoutError",
    "HttpStatusError",
    "InternalServerError",
    "InvalidParamsError",
    "MethodNotFoundError",
    "RemoteService",
    "ServiceUnavailableError",
]
