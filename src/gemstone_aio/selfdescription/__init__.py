"""Self-description: the OpenRPC document of a service's methods, the AsyncAPI one of its events.

Every service answers ``rpc.discover`` with the OpenRPC document and serves it at
``{endpoint}/openrpc.json``, its events' AsyncAPI 3.0 document at
``{endpoint}/asyncapi.json``, and a page showing both at ``{endpoint}/docs`` (see
``docs/self-description.md``). The names here build the documents for other uses.
"""

from ._asyncapi import ASYNCAPI_VERSION, build_asyncapi_document
from ._events import EventCatalogue, EventInfo, HandlerInfo
from ._openrpc import (
    DISCOVER_METHOD,
    META_SCHEMA_URL,
    OPENRPC_VERSION,
    DescribedService,
    asyncapi_url,
    build_document,
    check_examples,
    service_specs,
)

__all__ = [
    "ASYNCAPI_VERSION",
    "DISCOVER_METHOD",
    "META_SCHEMA_URL",
    "OPENRPC_VERSION",
    "DescribedService",
    "EventCatalogue",
    "EventInfo",
    "HandlerInfo",
    "asyncapi_url",
    "build_asyncapi_document",
    "build_document",
    "check_examples",
    "service_specs",
]
