"""The client: :class:`RemoteService`, its errors, and typed clients.

``gemstone client URL`` writes a typed client module for a service
(:func:`generate_client`); its classes derive from :class:`TypedClient` and
:class:`BlockingTypedClient`.
"""

from ._batch import Batch
from ._blocking import AsyncMethodCall
from ._codegen import generate_client
from ._errors import (
    AccessDeniedError,
    BadResponseError,
    CallTimeoutError,
    HttpStatusError,
    InternalServerError,
    InvalidParamsError,
    MethodNotFoundError,
    ResponseTooLargeError,
    ServiceUnavailableError,
)
from ._helpers import as_completed, first_completed, make_callbacks
from ._remote_service import DEFAULT_MAX_RESPONSE_SIZE, DEFAULT_TIMEOUT, RemoteService
from ._typed import OMITTED, BlockingTypedClient, TypedClient

__all__ = [
    "DEFAULT_MAX_RESPONSE_SIZE",
    "DEFAULT_TIMEOUT",
    "OMITTED",
    "AccessDeniedError",
    "AsyncMethodCall",
    "BadResponseError",
    "Batch",
    "BlockingTypedClient",
    "CallTimeoutError",
    "HttpStatusError",
    "InternalServerError",
    "InvalidParamsError",
    "MethodNotFoundError",
    "RemoteService",
    "ResponseTooLargeError",
    "ServiceUnavailableError",
    "TypedClient",
    "as_completed",
    "first_completed",
    "generate_client",
    "make_callbacks",
]
