"""The protocol layer: JSON-RPC 2.0 parsing and serialising, params binding, the router.

Nothing here imports aiohttp's server or the service class: the router takes bytes and a
:class:`CallContext` and returns bytes, so it runs in a unit test without a server.
Users rarely import from here; it is documented for embedding the router elsewhere and
for reading the current call's context (:func:`current_context`).
"""

from ._blocking import DEFAULT_MAX_PARALLEL_BLOCKING_TASKS, BlockingRunner
from ._collection import collect_emitted_events, collect_event_handlers, collect_exposed
from ._context import (
    TIMEOUT_HEADER,
    CallContext,
    current_call,
    current_context,
    deadline_of,
    time_left,
)
from ._decorators import (
    EmittedEvent,
    EventHandlerSpec,
    MethodSpec,
    emits,
    event_handler,
    exposed_method,
    get_emitted_events,
    get_event_spec,
    get_method_spec,
)
from ._jsonrpc import Id, Invalid, Params, ParsedBody, Request, parse
from ._params import MAX_REPORTED_ERRORS, ParamsBinder, binder_for
from ._router import BlockingRun, CallObserver, CallWrapper, MethodEntry, Router

__all__ = [
    "DEFAULT_MAX_PARALLEL_BLOCKING_TASKS",
    "MAX_REPORTED_ERRORS",
    "TIMEOUT_HEADER",
    "BlockingRun",
    "BlockingRunner",
    "CallContext",
    "CallObserver",
    "CallWrapper",
    "EmittedEvent",
    "EventHandlerSpec",
    "Id",
    "Invalid",
    "MethodEntry",
    "MethodSpec",
    "Params",
    "ParamsBinder",
    "ParsedBody",
    "Request",
    "Router",
    "binder_for",
    "collect_emitted_events",
    "collect_event_handlers",
    "collect_exposed",
    "current_call",
    "current_context",
    "deadline_of",
    "emits",
    "event_handler",
    "exposed_method",
    "get_emitted_events",
    "get_event_spec",
    "get_method_spec",
    "parse",
    "time_left",
]
