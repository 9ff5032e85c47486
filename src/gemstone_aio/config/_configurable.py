"""A :class:`Configurable` names one setting of a service and converts its raw values.

Templates are plain callables ``raw -> value``. A raw value is a string when it comes
from the command line or the environment, and any JSON value when it comes from a JSON
file, so the templates below accept both. A template signals a bad value by raising
``ValueError`` or ``TypeError``; :meth:`Configurable.convert` turns that into a
:class:`~gemstone_aio.errors.ServiceConfigurationError` naming the configurable and the
value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import ServiceConfigurationError

__all__ = [
    "SECRET_NAME_PARTS",
    "Configurable",
    "as_bool",
    "as_endpoint",
    "as_float",
    "as_int",
    "as_port",
    "comma_list",
]

Template = Callable[[Any], Any]

SECRET_NAME_PARTS = ("password", "passwd", "secret", "token", "credential", "api_key", "apikey")
"""A configurable whose name contains one of these (any letter case) is a secret unless
it says ``secret=False``: :meth:`MicroService.get_current_configuration` masks its value."""

_TRUE = frozenset({"1", "true", "yes", "on", "y", "t"})
_FALSE = frozenset({"0", "false", "no", "off", "n", "f", ""})


def as_int(raw: Any) -> int:
    """Convert ``raw`` to an ``int`` (``"8001"`` and ``8001``; not ``True`` nor ``1.5``)."""
    if isinstance(raw, bool):
        raise TypeError("a boolean is not an integer")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        if raw.is_integer():
            return int(raw)
        raise ValueError("not a whole number")
    try:
        return int(str(raw).strip(), 10)
    except ValueError:
        raise ValueError("not an integer") from None


def as_float(raw: Any) -> float:
    """Convert ``raw`` to a ``float`` (``"2.5"``, ``2``, ``2.5``)."""
    if isinstance(raw, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(raw, int | float):
        return float(raw)
    try:
        return float(str(raw).strip())
    except ValueError:
        raise ValueError("not a number") from None


def as_bool(raw: Any) -> bool:
    """Convert ``raw`` to a ``bool``.

    Accepts JSON booleans and, in any letter case, ``1/0``, ``true/false``, ``yes/no``,
    ``on/off``, ``y/n``, ``t/f`` (the empty string is false).
    """
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("not a boolean (use true/false, yes/no, on/off or 1/0)")


def comma_list(raw: Any) -> list[str]:
    """Split ``"a, b,c"`` into ``["a", "b", "c"]`` (a JSON list is taken item by item).

    Blank items are dropped, so the empty string gives an empty list.
    """
    items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def as_port(raw: Any) -> int:
    """Convert ``raw`` to a TCP port in 0..65535; ``0`` or ``"random"`` picks a free port."""
    if isinstance(raw, str) and raw.strip().lower() == "random":
        return 0
    port = as_int(raw)
    if not 0 <= port <= 65535:
        raise ValueError("a port is between 0 and 65535")
    return port


def as_endpoint(raw: Any) -> str:
    """Check that ``raw`` is a URL path starting with ``/``."""
    text = str(raw).strip()
    if not text.startswith("/"):
        raise ValueError("an endpoint is a path starting with '/'")
    return text


class Configurable:
    """One setting of a service, filled in by the configurators.

    After configuration the converted value is set as the attribute ``name`` of the
    service instance (before ``on_service_start`` runs).

    Args:
        name: The setting, also the attribute of the service and the option name
            (``--name``), the JSON key and (upper-cased, prefixed) the environment variable.
        template: Converts a raw value (a string from the command line or environment, a
            JSON value from a file) to the value used; raising ``ValueError`` or
            ``TypeError`` rejects it. ``None`` keeps the raw value.
        secret: Mask the value in :meth:`MicroService.get_current_configuration`.
            ``None`` (the default) decides from the name (see :data:`SECRET_NAME_PARTS`).
        help: The text ``--help`` shows beside the option.
    """

    def __init__(
        self,
        name: str,
        *,
        template: Template | None = None,
        secret: bool | None = None,
        help: str | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.isidentifier():
            raise ServiceConfigurationError(
                f"a configurable name must be a Python identifier, got {name!r}"
            )
        if template is not None and not callable(template):
            raise ServiceConfigurationError(
                f"the template of configurable {name!r} must be callable, got {template!r}"
            )
        self.name = name
        self.template = template
        self.help = help
        if secret is None:
            lowered = name.lower()
            secret = any(part in lowered for part in SECRET_NAME_PARTS)
        self.secret = secret
        self.value: Any = None

    def convert(self, raw: Any) -> Any:
        """Return ``template(raw)`` (or ``raw`` without a template).

        Raises:
            ServiceConfigurationError: The template rejected the value; the message names
                the configurable and the value (the value is masked for secrets).
        """
        if self.template is None:
            return raw
        try:
            return self.template(raw)
        except (ValueError, TypeError) as exc:
            shown = "<secret>" if self.secret else repr(raw)
            raise ServiceConfigurationError(
                f"invalid value {shown} for configurable {self.name!r}: {exc}"
            ) from None

    # gemstone 0.10 API ------------------------------------------------------------------

    def set_value(self, value: Any) -> None:
        """Store a raw value (the gemstone 0.10 API)."""
        self.value = value

    def get_final_value(self) -> Any:
        """Return the stored raw value converted by the template (the gemstone 0.10 API)."""
        return self.convert(self.value)

    def __repr__(self) -> str:
        return f"<Configurable name={self.name}>"
