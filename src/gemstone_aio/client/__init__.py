"""The client: :class:`RemoteService` and its errors (module path ``gemstone_aio.client``)."""

from ._batch import Batch
from ._blocking import AsyncMethodCall
from ._errors import (
    AccessDeniedError,
    BadResponseError,
    CallTimeoutError,
    HttpStatusError,
    InternalServerError,
    InvalidParamsError,
    MethodNotFoundError,
    ServiceUnavailableError,
)
from ._helpers import as_completed, first_completed, make_callbacks
from ._remote_service import DEFAULT_TIMEOUT, RemoteService

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
