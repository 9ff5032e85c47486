"""The client: :class:`RemoteService` and its errors (module path ``gemstone_aio.client``)."""

from .batch import Batch
from .blocking import AsyncMethodCall
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
from .helpers import as_completed, first_completed, make_callbacks
from .remote_service import DEFAULT_TIMEOUT, RemoteService

__all__ = [
    "DEFAULT_TIMEOUT",
    "AccessDeniedError",
    "AsyncMethodCall",
    "BadResponseError",
    "Batch",
    "CallTimeoutError",
    "HttpStatusError",
    "InternalServerError",
    "InvalidParamsError",
    "MethodNotFoundError",
    "RemoteService",
    "ServiceUnavailableError",
    "as_completed",
    "first_completed",
    "make_callbacks",
]
