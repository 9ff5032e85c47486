"""Self-description: the OpenRPC document of a service's methods.

Every service answers ``rpc.discover`` with this document and serves it at
``{endpoint}/openrpc.json``, beside a page at ``{endpoint}/docs`` (see
``docs/self-description.md``). The names here build the document for other uses.
"""

from ._openrpc import (
    DISCOVER_METHOD,
    META_SCHEMA_URL,
    OPENRPC_VERSION,
    DescribedService,
    build_document,
    check_examples,
    service_specs,
)

__all__ = [
    "DISCOVER_METHOD",
    "META_SCHEMA_URL",
    "OPENRPC_VERSION",
    "DescribedService",
    "build_document",
    "check_examples",
    "service_specs",
]
