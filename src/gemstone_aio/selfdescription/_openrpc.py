"""The OpenRPC document of a service: what ``rpc.discover`` returns.

The document follows OpenRPC 1.3.2 (https://spec.open-rpc.org/). It is generated from
what the framework already knows about each method: the pydantic params model built
from the signature (one content descriptor per parameter), the return annotation (the
result schema, through a pydantic ``TypeAdapter``), the decorator's metadata (errors,
examples, ``deprecated``, ``private``) and the Google-style docstring (summary,
description, per-parameter descriptions from ``Args:``, the result's from ``Returns:``).

Schemas shared between methods (pydantic models, enums) are written once under
``components.schemas`` and referenced with ``$ref``. OpenRPC schemas are JSON Schema
draft 7, so the few draft 2020-12 forms pydantic emits (``prefixItems`` for tuples) are
rewritten.

Conventions beyond the specification, all under ``x-`` names the specification allows:

- a ``*args`` parameter is one content descriptor (its item schema) marked
  ``"x-variadic": true``: it may be repeated at the end of the params array;
- a ``**kwargs`` parameter is the method's ``x-additional-params`` member: the schema of
  the values of any further named params;
- a declared error whose class sets ``data_model`` lists the JSON Schema of its
  ``data`` as the error object's ``data`` member (the OpenRPC error object has no other
  place for it);
- a method that emits events lists their names as ``x-emits``, and the document of a
  service with events links their AsyncAPI document as ``x-asyncapi``;
- a method declared ``exposed_method(idempotent=True)`` is marked ``"x-idempotent": true``:
  callers may send it again to another instance when they cannot tell whether it ran.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol

import pydantic
from pydantic.json_schema import JsonSchemaValue

from ..errors import (
    AccessDenied,
    InternalError,
    InvalidParams,
    JsonRpcError,
    MethodTimeout,
    ServiceConfigurationError,
)
from ._docstrings import parse_docstring
from ._events import EventCatalogue
from ._schemas import SchemaSet, adapter_for

if TYPE_CHECKING:
    from ..protocol import MethodEntry

__all__ = [
    "DISCOVER_METHOD",
    "META_SCHEMA_URL",
    "OPENRPC_VERSION",
    "DescribedService",
    "asyncapi_url",
    "build_document",
    "check_examples",
    "service_specs",
]


class DescribedService(Protocol):
    """What a document is built from: the service's identity and its time limit.

    (Its class docstring becomes ``info.description``.)
    """

    @property
    def name(self) -> Any:
        """The service's name (``info.title``)."""

    @property
    def version(self) -> str:
        """The version of its API (``info.version``)."""

    @property
    def accessible_at(self) -> str | None:
        """Its URL (``servers``), if known."""

    @property
    def method_timeout(self) -> float | None:
        """The service-wide time limit of its methods (lists -32003 among their errors)."""


OPENRPC_VERSION: Final = "1.3.2"
"""The version of the OpenRPC specification the documents follow."""
DISCOVER_METHOD: Final = "rpc.discover"
"""The reserved name of the method returning the document."""
META_SCHEMA_URL: Final = "https://meta.open-rpc.org/"
"""The ``$id`` of the OpenRPC meta-schema: the schema of ``rpc.discover``'s result."""

_P = inspect.Parameter
_EXAMPLE_KEYS: Final = frozenset({"name", "summary", "description", "params", "result"})


def _without_auto_title(schema: dict[str, Any], alias: str) -> dict[str, Any]:
    # pydantic titles every field after its alias ("*Numbers"); the content descriptor
    # already carries the name, so only a title the author chose is kept.
    if schema.get("title") == alias.title().replace("_", " "):
        return {key: value for key, value in schema.items() if key != "title"}
    return schema


def _param_structure(entry: MethodEntry) -> str:
    kinds = {slot.kind for slot in entry.binder.slots}
    if _P.VAR_POSITIONAL in kinds:
        return "by-position"
    if _P.KEYWORD_ONLY in kinds or _P.VAR_KEYWORD in kinds:
        return "by-name"
    return "either"


def _params(
    entry: MethodEntry, model_schema: JsonSchemaValue, descriptions: Mapping[str, str]
) -> tuple[str, list[dict[str, Any]], JsonSchemaValue | None]:
    """Return ``(paramStructure, content descriptors, x-additional-params schema)``."""
    structure = _param_structure(entry)
    properties: dict[str, Any] = model_schema.get("properties", {})
    required = set(model_schema.get("required", ()))
    descriptors: list[dict[str, Any]] = []
    extra: JsonSchemaValue | None = None
    positional = (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)
    for slot in entry.binder.slots:
        if slot.kind is _P.VAR_POSITIONAL:
            items = properties.get(f"*{slot.name}", {}).get("items", {})
            descriptor: dict[str, Any] = {
                "name": slot.name,
                "schema": items,
                "required": False,
                "x-variadic": True,
            }
        elif slot.kind is _P.VAR_KEYWORD:
            if structure == "by-name":
                extra = properties.get(f"**{slot.name}", {}).get("additionalProperties", {})
            continue
        elif structure == "by-position" and slot.kind not in positional:
            continue  # keyword-only: cannot be given when params go by position
        else:
            descriptor = {
                "name": slot.name,
                "schema": _without_auto_title(properties.get(slot.name, {}), slot.name),
                "required": slot.name in required,
            }
        text = descriptions.get(slot.name)
        if text:
            descriptor["description"] = text
        descriptors.append(descriptor)
    if structure == "by-name":
        # OpenRPC wants optional params after required ones; by name, order is free.
        descriptors.sort(key=lambda d: not d["required"])
    return structure, descriptors, extra


def _error_classes(entry: MethodEntry, default_timeout: float | None) -> list[type[Exception]]:
    classes: list[type[Exception]] = [InvalidParams]
    if entry.spec.private:
        classes.append(AccessDenied)
    if entry.spec.timeout is not None or default_timeout is not None:
        classes.append(MethodTimeout)
    classes.extend(entry.spec.errors)
    return classes


def _rpc_class(klass: type[Exception]) -> type[JsonRpcError]:
    # Any other exception reaches the caller as an internal error.
    return klass if issubclass(klass, JsonRpcError) else InternalError


def _error_objects(classes: Iterable[type[Exception]], schemas: SchemaSet) -> list[dict[str, Any]]:
    seen: set[int] = set()
    out: list[dict[str, Any]] = []
    for klass in classes:
        rpc_class = _rpc_class(klass)
        if rpc_class.code in seen:
            continue
        seen.add(rpc_class.code)
        error: dict[str, Any] = {"code": rpc_class.code, "message": rpc_class.default_message}
        if rpc_class.data_model is not None:
            error["data"] = schemas.get(("error", rpc_class))
        out.append(error)
    return out


def _example_objects(entry: MethodEntry, index: int, example: Mapping[str, Any]) -> dict[str, Any]:
    params = example.get("params") or []
    values: list[dict[str, Any]] = []
    if isinstance(params, dict):
        values = [{"name": key, "value": value} for key, value in params.items()]
    else:
        names = list(entry.binder.positional_names)
        variadic = next((s.name for s in entry.binder.slots if s.kind is _P.VAR_POSITIONAL), "")
        for position, value in enumerate(params):
            name = names[position] if position < len(names) else variadic
            values.append({"name": name, "value": value})
    pairing: dict[str, Any] = {"name": str(example.get("name") or f"example {index + 1}")}
    for key in ("summary", "description"):
        if example.get(key):
            pairing[key] = str(example[key])
    pairing["params"] = values
    if "result" in example:
        pairing["result"] = {"name": "result", "value": example["result"]}
    return pairing


def check_examples(name: str, entry: MethodEntry) -> None:
    """Check that every declared example of a method fits its signature.

    Raises:
        ServiceConfigurationError: An example has unknown keys, params the method would
            refuse, or a result that does not fit the return annotation.
    """
    for index, example in enumerate(entry.spec.examples):
        where = f"example {index + 1} of method {name!r}"
        if not isinstance(example, Mapping):
            raise ServiceConfigurationError(f"{where} must be a mapping, got {example!r}")
        unknown = sorted(set(example) - _EXAMPLE_KEYS)
        if unknown:
            raise ServiceConfigurationError(
                f"{where} has unknown keys {unknown} (allowed: {sorted(_EXAMPLE_KEYS)})"
            )
        params = example.get("params")
        if params is not None and not isinstance(params, list | dict):
            raise ServiceConfigurationError(f"{where}: params must be a list or a dict")
        try:
            entry.binder.bind(params)
        except JsonRpcError as exc:
            raise ServiceConfigurationError(f"{where} has invalid params: {exc.data}") from None
        annotation = entry.binder.result_annotation
        adapter = None if annotation is _P.empty else adapter_for(annotation)
        if "result" in example and adapter is not None:
            try:
                adapter.validate_python(example["result"])
            except pydantic.ValidationError as exc:
                raise ServiceConfigurationError(
                    f"{where} has a result that does not fit {annotation!r}: {exc}"
                ) from None


def _method_object(
    name: str,
    entry: MethodEntry,
    schemas: SchemaSet,
    default_timeout: float | None,
    emits: Sequence[str] = (),
) -> dict[str, Any]:
    doc = parse_docstring(inspect.getdoc(entry.func))
    structure, params, extra = _params(entry, schemas.get(("params", name)), doc.params)
    method: dict[str, Any] = {"name": name}
    if doc.summary:
        method["summary"] = doc.summary
    if doc.description and doc.description != doc.summary:
        method["description"] = doc.description
    if entry.spec.private:
        method["tags"] = [{"name": "private", "description": "Needs an authenticated caller."}]
    method["paramStructure"] = structure
    method["params"] = params
    if extra is not None:
        method["x-additional-params"] = extra
    if name == DISCOVER_METHOD:
        method["result"] = {"name": "OpenRPC Schema", "schema": {"$ref": META_SCHEMA_URL}}
    else:
        method["result"] = {"name": "result", "schema": schemas.get(("result", name))}
    if doc.returns:
        method["result"]["description"] = doc.returns
    method["errors"] = _error_objects(_error_classes(entry, default_timeout), schemas)
    if entry.spec.examples:
        method["examples"] = [
            _example_objects(entry, i, ex) for i, ex in enumerate(entry.spec.examples)
        ]
    if entry.spec.deprecated:
        method["deprecated"] = True
    if emits:
        method["x-emits"] = list(emits)
    if entry.spec.idempotent:
        method["x-idempotent"] = True
    return method


def asyncapi_url(accessible_at: str) -> str:
    """The URL of the AsyncAPI document of the service at ``accessible_at``."""
    return accessible_at.rstrip("/") + "/asyncapi.json"


def build_document(
    service: DescribedService,
    entries: Mapping[str, MethodEntry],
    *,
    include_private: bool,
    events: EventCatalogue | None = None,
) -> dict[str, Any]:
    """Build the OpenRPC document of ``service``.

    Args:
        service: The service described (``info`` and ``servers`` come from it).
        entries: Its router's methods, built-in ones included.
        include_private: List private methods (only for authenticated callers).
        events: Its events: methods that emit some list them (``x-emits``), and the
            document links the AsyncAPI document (``x-asyncapi``) when there are any.

    Returns:
        The document as JSON-ready data.
    """
    visible = {n: e for n, e in entries.items() if include_private or not e.spec.private}
    schemas = SchemaSet()
    for name, entry in visible.items():
        schemas.add(("params", name), entry.binder.model, mode="validation")
        if name != DISCOVER_METHOD:
            schemas.add(("result", name), entry.binder.result_annotation)
        for klass in map(_rpc_class, _error_classes(entry, service.method_timeout)):
            if klass.data_model is not None:
                schemas.add(("error", klass), klass.data_model)
    schemas.generate()
    info: dict[str, Any] = {"title": str(service.name), "version": str(service.version)}
    class_doc = type(service).__doc__
    if class_doc and class_doc.strip():
        info["description"] = inspect.cleandoc(class_doc)
    document: dict[str, Any] = {"openrpc": OPENRPC_VERSION, "info": info}
    if service.accessible_at:
        document["servers"] = [{"name": str(service.name), "url": service.accessible_at}]
    emitted = events.emitted_by_method() if events else {}
    document["methods"] = [
        _method_object(name, entry, schemas, service.method_timeout, emitted.get(name, ()))
        for name, entry in visible.items()
    ]
    if schemas.components:
        document["components"] = {"schemas": schemas.components}
    if events and service.accessible_at:
        document["x-asyncapi"] = asyncapi_url(service.accessible_at)
    return document


def _doc_of(func: Callable[..., Any]) -> str | None:
    return inspect.getdoc(func)


def service_specs(
    service: Any, entries: Mapping[str, MethodEntry], *, include_private: bool
) -> dict[str, Any]:
    """Describe ``service`` the way gemstone 0.10's ``get_service_specs()`` did.

    Returns:
        ``name``, ``host``, ``port``, ``accessible_at``, ``version``,
        ``max_parallel_blocking_tasks``, ``methods`` (name → docstring, private ones
        only when ``include_private``), ``event_transports`` (class names: their
        string forms may hold credentials) and ``events_handled`` (event name → the
        docstring of its handler).
    """
    methods = {
        name: _doc_of(entry.func)
        for name, entry in entries.items()
        if include_private or not entry.spec.private
    }
    events: dict[str, str | None] = {}
    owners: list[Any] = [service, *service.modules]
    for owner in owners:
        for event, attrs in type(owner).__gemstone_events__.items():
            for attr in attrs:
                doc = _doc_of(getattr(owner, attr))
                if events.get(event) is None:
                    events[event] = doc
    transports = getattr(service, "event_transports", None) or ()
    return {
        "name": service.name,
        "host": service.host,
        "port": service.port,
        "accessible_at": service.accessible_at,
        "version": service.version,
        "max_parallel_blocking_tasks": service.max_parallel_blocking_tasks,
        "methods": methods,
        "event_transports": [type(transport).__name__ for transport in transports],
        "events_handled": events,
    }
