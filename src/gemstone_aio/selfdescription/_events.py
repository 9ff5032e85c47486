"""The events of a service: which it emits, which it handles, and their body types.

Built from what the service already says, nothing twice:

- **declared** emitted events: the service's (and its modules') ``emitted_events`` and
  the ``@emits`` decorations of their methods, with the body type and delivery mode;
- **handled** events: the ``@event_handler`` methods, whose parameter annotation is the
  type the body is validated against;
- **undeclared** emitted events: calls ``....emit_event("name", ...)`` with a literal
  name found in the source of the service's and its modules' classes, so gemstone 0.10
  code shows what it emits (untyped). The literal ``broadcast=`` argument gives the
  delivery mode; a computed one means either.

Events whose name is computed at run time cannot be found; declare them.
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
import textwrap
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ServiceConfigurationError
from ..protocol._collection import collect_emitted_events
from ..protocol._decorators import EmittedEvent

__all__ = ["EventCatalogue", "EventInfo", "HandlerInfo", "declared_events"]

_UNSAFE = re.compile(r"[^\w.\-]")


@dataclass(frozen=True, slots=True)
class HandlerInfo:
    """One ``@event_handler`` of the service or of a module."""

    label: str
    body: Any
    doc: str | None


@dataclass(slots=True)
class EventInfo:
    """What the service says about one event.

    Attributes:
        name: The event name.
        key: ``name`` made safe for AsyncAPI component names (``[A-Za-z0-9_.-]``).
        body: The body type: the declared one, else the first annotated handler's;
            ``None``: untyped.
        from_declaration: ``body`` comes from a declaration (it is what the service
            sends) rather than from a handler (what it accepts).
        description: What the event means.
        modes: The delivery modes it is emitted with (``True``: broadcast, ``False``:
            one-of-N); empty when the service only handles it.
        emitted_by: The JSON-RPC methods that emit it.
        handlers: Its handlers in this service.
    """

    name: str
    key: str
    body: Any = None
    from_declaration: bool = False
    description: str | None = None
    modes: set[bool] = field(default_factory=set)
    emitted_by: list[str] = field(default_factory=list)
    handlers: list[HandlerInfo] = field(default_factory=list)

    @property
    def typed(self) -> bool:
        """The body has a type (declared, or from a handler's annotation)."""
        return self.body is not None


@dataclass(frozen=True, slots=True)
class _Declared:
    body: Any
    modes: frozenset[bool]
    description: str | None


def _owner_classes(owners: Sequence[object]) -> list[type]:
    return [type(owner) for owner in owners]


def _declarations(owners: Sequence[object]) -> Iterable[tuple[EmittedEvent, str | None]]:
    """Every declaration with the JSON-RPC name of the method carrying it (if exposed)."""
    for owner in owners:
        listed = getattr(owner, "emitted_events", ()) or ()
        for item in listed:
            if not isinstance(item, EmittedEvent):
                raise ServiceConfigurationError(
                    f"{type(owner).__qualname__}.emitted_events holds {item!r}: "
                    "list EmittedEvent(name, body, broadcast=...) objects"
                )
            yield item, None
        rpc_names = _rpc_names(type(owner))
        for attr, events in collect_emitted_events(type(owner)).items():
            for event in events:
                yield event, rpc_names.get(attr)


def _rpc_names(cls: type) -> dict[str, str]:
    exposed: dict[str, str] = getattr(cls, "__gemstone_exposed__", {})
    return {attr: rpc_name for rpc_name, attr in exposed.items()}


def declared_events(owners: Sequence[object]) -> dict[str, _Declared]:
    """Merge the declarations of a service and its modules, by event name.

    Raises:
        ServiceConfigurationError: An ``emitted_events`` item is not an
            :class:`EmittedEvent`, or one event is declared with two body types.
    """
    found: dict[str, _Declared] = {}
    for event, _ in _declarations(owners):
        known = found.get(event.name)
        if known is None:
            found[event.name] = _Declared(
                event.body, frozenset({event.broadcast}), event.description
            )
            continue
        body = known.body if event.body is None else event.body
        if known.body is not None and event.body is not None and known.body != event.body:
            raise ServiceConfigurationError(
                f"event {event.name!r} is declared with two body types: "
                f"{known.body!r} and {event.body!r}"
            )
        found[event.name] = _Declared(
            body, known.modes | {event.broadcast}, known.description or event.description
        )
    return found


@dataclass(frozen=True, slots=True)
class _FoundEmit:
    event: str
    broadcast: bool | None  # None: computed at run time
    function: str


@functools.lru_cache(maxsize=256)
def _scan_class(cls: type) -> tuple[_FoundEmit, ...]:
    """The ``emit_event("literal", ...)`` calls in the source of ``cls`` itself."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return ()  # no source at hand (built dynamically, frozen, a REPL): nothing found
    found: list[_FoundEmit] = []
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found.extend(_emits_in(node))
    return tuple(found)


def _emits_in(function: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterable[_FoundEmit]:
    for node in ast.walk(function):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "emit_event"
        ):
            continue
        keywords = {kw.arg: kw.value for kw in node.keywords if kw.arg is not None}
        name_node = node.args[0] if node.args else keywords.get("event_name")
        if not (isinstance(name_node, ast.Constant) and isinstance(name_node.value, str)):
            continue
        mode_node = keywords.get("broadcast")
        broadcast: bool | None
        if mode_node is None:
            broadcast = True
        elif isinstance(mode_node, ast.Constant) and isinstance(mode_node.value, bool):
            broadcast = mode_node.value
        else:
            broadcast = None
        if name_node.value:
            yield _FoundEmit(name_node.value, broadcast, function.name)


def _scanned(owners: Sequence[object]) -> Iterable[tuple[_FoundEmit, str | None]]:
    for owner in owners:
        rpc_names = _rpc_names(type(owner))
        for klass in type(owner).__mro__:
            if klass is object or klass.__module__.split(".")[0] == "gemstone_aio":
                continue
            for emit in _scan_class(klass):
                yield emit, rpc_names.get(emit.function)


def _first_param_type(func: Any) -> Any:
    """The annotation of a handler's body parameter (``None``: unannotated or ``Any``)."""
    try:
        params = [
            p
            for p in inspect.signature(func).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        hints = typing.get_type_hints(getattr(func, "__func__", func), include_extras=True)
    except Exception:
        return None  # the service refuses to start on such a handler anyway
    if not params:
        return None
    annotation = hints.get(params[0].name)
    return None if annotation in (None, Any, object) else annotation


def _own_doc(obj: Any) -> str | None:
    # The type's own docstring: pydantic models and TypedDicts inherit none worth showing.
    doc = vars(obj).get("__doc__") if isinstance(obj, type) else None
    return inspect.cleandoc(doc) if isinstance(doc, str) and doc.strip() else None


class EventCatalogue:
    """Every event a service emits or handles, by name (sorted).

    Args:
        owners: The service and its modules.
    """

    def __init__(self, owners: Sequence[object]) -> None:
        self.events: dict[str, EventInfo] = {}
        declared = declared_events(owners)
        for name, decl in declared.items():
            info = self._info(name)
            info.body = decl.body
            info.from_declaration = decl.body is not None
            info.modes |= decl.modes
            info.description = decl.description or _own_doc(decl.body)
        for event, rpc_name in _declarations(owners):
            self._emitted_by(event.name, rpc_name)
        for found, rpc_name in _scanned(owners):
            info = self._info(found.event)
            info.modes |= {True, False} if found.broadcast is None else {found.broadcast}
            self._emitted_by(found.event, rpc_name)
        for owner in owners:
            handled: dict[str, list[str]] = getattr(type(owner), "__gemstone_events__", {})
            for name, attrs in handled.items():
                for attr in attrs:
                    func = getattr(owner, attr)
                    body = _first_param_type(func)
                    label = f"{type(owner).__qualname__}.{attr}"
                    self._info(name).handlers.append(HandlerInfo(label, body, inspect.getdoc(func)))
        for info in self.events.values():
            if info.body is None:
                info.body = next((h.body for h in info.handlers if h.body is not None), None)
                if info.description is None:
                    info.description = _own_doc(info.body)
        self.events = dict(sorted(self.events.items()))
        self._assign_keys()

    def _info(self, name: str) -> EventInfo:
        info = self.events.get(name)
        if info is None:
            info = self.events[name] = EventInfo(name, name)
        return info

    def _emitted_by(self, name: str, rpc_name: str | None) -> None:
        info = self._info(name)
        if rpc_name is not None and rpc_name not in info.emitted_by:
            info.emitted_by.append(rpc_name)

    def _assign_keys(self) -> None:
        taken: set[str] = set()
        for info in self.events.values():
            key = _UNSAFE.sub("_", info.name)
            candidate, index = key, 2
            while candidate in taken:
                candidate, index = f"{key}_{index}", index + 1
            taken.add(candidate)
            info.key = candidate

    def __bool__(self) -> bool:
        return bool(self.events)

    def emitted_by_method(self) -> dict[str, list[str]]:
        """Map each JSON-RPC method name to the events it emits (for OpenRPC's ``x-emits``)."""
        found: dict[str, list[str]] = {}
        for info in self.events.values():
            for method in info.emitted_by:
                found.setdefault(method, []).append(info.name)
        return found
