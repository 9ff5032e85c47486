"""Decorators that mark service methods.

They only record metadata on the function (under ``__gemstone_method__``,
``__gemstone_event__`` or ``__gemstone_emits__``) and return the very same function, so
decorated methods stay plain methods that unit tests can call directly.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar, overload

from ..errors import ServiceConfigurationError

__all__ = [
    "EmittedEvent",
    "EventHandlerSpec",
    "MethodSpec",
    "emits",
    "event_handler",
    "exposed_method",
    "get_emitted_events",
    "get_event_spec",
    "get_method_spec",
]

F = TypeVar("F", bound=Callable[..., Any])

METHOD_ATTR: Final = "__gemstone_method__"
EVENT_ATTR: Final = "__gemstone_event__"
EMITS_ATTR: Final = "__gemstone_emits__"
_NAME_RE: Final = re.compile(r"^[a-zA-Z][a-zA-Z0-9_.]*$")


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """What ``@exposed_method`` recorded about a method.

    Attributes:
        name: The JSON-RPC method name.
        private: Only authenticated callers may call it.
        requires_handler_reference: The method gets the request handler object as its
            first argument.
        timeout: Seconds after which the call is abandoned (``None``: the service default).
        max_concurrency: At most this many calls run at once (``None``: no own bound).
        errors: Error classes the method documents that it may raise.
        examples: Example calls for the self-description document.
        deprecated: The method is marked deprecated in the self-description.
        cancellable: The framework may cancel a running call when its caller hangs up or
            a time limit expires (the default). ``False``: the call always runs to its end
            (the caller still gets -32003 at the deadline); for methods whose side effects
            must not be cut halfway.
        idempotent: Running the call twice has the same effect as running it once, so a
            caller may send it again to another instance after a failure that leaves it
            unknown whether it ran (published as ``x-idempotent`` in ``rpc.discover``).
        extra: Keyword arguments the decorator did not know (kept, ignored, for old code).
        receives_call_context: Framework-only (``exposed_method`` never sets it): the
            method gets the router's ``CallContext`` as its first argument, so built-in
            methods such as ``rpc.discover`` can ask whether the caller is authenticated.
    """

    name: str
    private: bool = False
    requires_handler_reference: bool = False
    timeout: float | None = None
    max_concurrency: int | None = None
    errors: tuple[type[Exception], ...] = ()
    examples: tuple[Mapping[str, Any], ...] = ()
    deprecated: bool = False
    cancellable: bool = True
    idempotent: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)
    receives_call_context: bool = False


@dataclass(frozen=True, slots=True)
class EventHandlerSpec:
    """What ``@event_handler`` recorded: the event name the method handles."""

    event_name: str


@dataclass(frozen=True, slots=True)
class EmittedEvent:
    """An event a service emits, declared so that its self-description shows it typed.

    List it in the service's ``emitted_events`` or use :func:`emits` on the method that
    emits it. Declaring changes nothing at run time: ``emit_event`` works the same for
    declared and undeclared events.

    Attributes:
        name: The event name.
        body: The type of the body (a pydantic model, a ``TypedDict``, ``list[int]``...),
            whose JSON Schema the description gives; ``None``: untyped (any JSON value).
        broadcast: How the service emits it: ``True`` (every subscribing instance
            handles it) or ``False`` (exactly one does), as ``emit_event(broadcast=...)``.
        description: What the event means (default: the body type's docstring).
    """

    name: str
    body: Any = None
    broadcast: bool = True
    description: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ServiceConfigurationError(f"Invalid event name: {self.name!r}")
        if not isinstance(self.broadcast, bool):
            raise ServiceConfigurationError(
                f"event {self.name!r}: broadcast must be True or False, got {self.broadcast!r}"
            )


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ServiceConfigurationError(
            f"Invalid method name: {name!r} (must match {_NAME_RE.pattern})"
        )
    if name == "rpc" or name.startswith("rpc."):
        raise ServiceConfigurationError(
            f"Invalid method name: {name!r} (names starting with 'rpc.' are reserved)"
        )
    return name


@overload
def exposed_method(name: F, /) -> F: ...


@overload
def exposed_method(
    name: str | None = None,
    *,
    private: bool = False,
    requires_handler_reference: bool = False,
    timeout: float | None = None,
    max_concurrency: int | None = None,
    errors: tuple[type[Exception], ...] | list[type[Exception]] = (),
    examples: tuple[Mapping[str, Any], ...] | list[Mapping[str, Any]] = (),
    deprecated: bool = False,
    cancellable: bool = True,
    idempotent: bool = False,
    **kwargs: Any,
) -> Callable[[F], F]: ...


def exposed_method(
    name: str | F | None = None,
    *,
    private: bool = False,
    requires_handler_reference: bool = False,
    timeout: float | None = None,
    max_concurrency: int | None = None,
    errors: tuple[type[Exception], ...] | list[type[Exception]] = (),
    examples: tuple[Mapping[str, Any], ...] | list[Mapping[str, Any]] = (),
    deprecated: bool = False,
    cancellable: bool = True,
    idempotent: bool = False,
    **kwargs: Any,
) -> Callable[[F], F] | F:
    """Expose a method of a service or module over JSON-RPC.

    ``async def`` methods are awaited on the event loop; plain ``def`` methods run in
    the service's thread pool (``max_parallel_blocking_tasks`` workers).

    Args:
        name: The JSON-RPC name (default: the function's name). It must match
            ``^[a-zA-Z][a-zA-Z0-9_.]*$``; dotted names such as ``math.add`` are fine;
            ``rpc.*`` is reserved for the framework.
        private: Only callers that authenticate may call the method.
        requires_handler_reference: Pass the handler object (request, identity,
            response headers and cookies) as the first argument after ``self``.
        timeout: Per-method timeout in seconds, overriding the service's.
        max_concurrency: At most this many calls of the method run at once.
        errors: Error classes the method may raise (listed by ``rpc.discover``).
        examples: Example calls (listed by ``rpc.discover``).
        deprecated: Mark the method deprecated in the self-description.
        cancellable: ``False`` lets a call run to its end when its caller hangs up or its
            deadline passes (see ``docs/resilience.md``).
        idempotent: Calling the method twice does what calling it once does: callers of
            ``get_service`` clients may then retry it on another instance after a
            connection failure, ``-32002`` or ``-32005`` (see ``docs/resilience.md``).
        **kwargs: ``is_coroutine`` is accepted for gemstone 0.10 code, ignored, and
            warns; other unknown keywords are kept and ignored, as gemstone did.

    Raises:
        ServiceConfigurationError: The name is invalid or reserved.
    """
    if callable(name):  # used bare: @exposed_method
        return exposed_method()(name)
    if "is_coroutine" in kwargs:
        warnings.warn(
            "exposed_method(is_coroutine=...) is ignored: 'async def' methods are awaited "
            "and plain 'def' methods run in the thread pool",
            DeprecationWarning,
            stacklevel=2,
        )
        kwargs = {k: v for k, v in kwargs.items() if k != "is_coroutine"}
    if timeout is not None and timeout <= 0:
        raise ServiceConfigurationError(f"timeout must be positive, got {timeout!r}")
    if max_concurrency is not None and max_concurrency <= 0:
        raise ServiceConfigurationError(
            f"max_concurrency must be positive, got {max_concurrency!r}"
        )
    if name is not None:
        _check_name(name)

    def decorate(func: F) -> F:
        spec = MethodSpec(
            name=_check_name(name or func.__name__),
            private=private,
            requires_handler_reference=requires_handler_reference,
            timeout=timeout,
            max_concurrency=max_concurrency,
            errors=tuple(errors),
            examples=tuple(examples),
            deprecated=deprecated,
            cancellable=cancellable,
            idempotent=idempotent,
            extra=dict(kwargs),
        )
        # A staticmethod (for process-pool executors) carries it on its function.
        setattr(getattr(func, "__func__", func), METHOD_ATTR, spec)
        return func

    return decorate


def event_handler(event_name: str) -> Callable[[F], F]:
    """Mark a service or module method as the handler of the event ``event_name``.

    The method receives the event body; when its parameter is annotated, the body is
    validated against the annotation before the handler runs.
    """
    if not isinstance(event_name, str) or not event_name:
        raise ServiceConfigurationError(f"Invalid event name: {event_name!r}")

    def decorate(func: F) -> F:
        setattr(func, EVENT_ATTR, EventHandlerSpec(event_name))
        return func

    return decorate


def emits(
    name: str, body: Any = None, *, broadcast: bool = True, description: str | None = None
) -> Callable[[F], F]:
    """Declare that the decorated method emits the event ``name`` (stackable).

    Example::

        @exposed_method()
        @emits("order.placed", OrderPlaced, broadcast=False)
        async def place_order(self, item: str) -> int: ...

    Args:
        name: The event name.
        body: The type of the body (``None``: untyped).
        broadcast: How the method emits it (as ``emit_event(broadcast=...)``).
        description: What the event means (default: the body type's docstring).

    Raises:
        ServiceConfigurationError: The name is empty or ``broadcast`` is not a bool.
    """
    event = EmittedEvent(name, body, broadcast, description)

    def decorate(func: F) -> F:
        target = getattr(func, "__func__", func)
        # Decorators apply bottom-up: prepend, so the list reads in source order.
        setattr(target, EMITS_ATTR, (event, *get_emitted_events(target)))
        return func

    return decorate


def get_emitted_events(obj: Any) -> tuple[EmittedEvent, ...]:
    """Return the events a method declares with :func:`emits` (none: an empty tuple)."""
    found = getattr(obj, EMITS_ATTR, ())
    return found if isinstance(found, tuple) else ()


def get_method_spec(obj: Any) -> MethodSpec | None:
    """Return the :class:`MethodSpec` of an exposed method (bound or not), else ``None``."""
    spec = getattr(obj, METHOD_ATTR, None)
    return spec if isinstance(spec, MethodSpec) else None


def get_event_spec(obj: Any) -> EventHandlerSpec | None:
    """Return the :class:`EventHandlerSpec` of an event handler, else ``None``."""
    spec = getattr(obj, EVENT_ATTR, None)
    return spec if isinstance(spec, EventHandlerSpec) else None
