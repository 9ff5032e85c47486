"""Finding exposed methods and event handlers on a class, once, when the class is created."""

from __future__ import annotations

from typing import Any

from ..errors import ServiceConfigurationError
from ._decorators import EmittedEvent, get_emitted_events, get_event_spec, get_method_spec

__all__ = ["collect_emitted_events", "collect_event_handlers", "collect_exposed"]


def _attribute_names(cls: type) -> list[str]:
    seen: dict[str, None] = {}
    for klass in reversed(cls.__mro__):
        for name in vars(klass):
            seen.setdefault(name, None)
    return list(seen)


def collect_exposed(cls: type) -> dict[str, str]:
    """Map each JSON-RPC name exposed by ``cls`` (inherited ones included) to its attribute.

    Raises:
        ServiceConfigurationError: Two attributes expose the same JSON-RPC name.
    """
    found: dict[str, str] = {}
    for attr in _attribute_names(cls):
        spec = get_method_spec(_static_lookup(cls, attr))
        if spec is None:
            continue
        other = found.get(spec.name)
        if other is not None:
            raise ServiceConfigurationError(
                f"{cls.__qualname__}: methods {other!r} and {attr!r} are both exposed "
                f"as {spec.name!r}"
            )
        found[spec.name] = attr
    return found


def collect_event_handlers(cls: type) -> dict[str, list[str]]:
    """Map each event name handled by ``cls`` to the attributes handling it."""
    found: dict[str, list[str]] = {}
    for attr in _attribute_names(cls):
        spec = get_event_spec(_static_lookup(cls, attr))
        if spec is not None:
            found.setdefault(spec.event_name, []).append(attr)
    return found


def collect_emitted_events(cls: type) -> dict[str, tuple[EmittedEvent, ...]]:
    """Map each attribute of ``cls`` decorated with ``@emits`` to the events it declares."""
    found: dict[str, tuple[EmittedEvent, ...]] = {}
    for attr in _attribute_names(cls):
        events = get_emitted_events(_static_lookup(cls, attr))
        if events:
            found[attr] = events
    return found


def _static_lookup(cls: type, attr: str) -> Any:
    # Look through the MRO without triggering descriptors (properties stay unevaluated).
    for klass in cls.__mro__:
        if attr in vars(klass):
            value = vars(klass)[attr]
            return value.__func__ if isinstance(value, staticmethod) else value
    return None
