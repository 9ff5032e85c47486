"""Request ids and log formatting.

Every HTTP request a service answers gets a request id: the caller's ``X-Request-Id``
header when it holds a sane value, else a new random one. The id is sent back in the
same response header and is the value of :func:`current_request_id` while the request
is served (also inside blocking methods running in the pool, which copy the context).

:class:`RequestIdFilter` puts it on log records as ``record.request_id`` (``"-"`` outside
a request). The framework attaches one to the service's logger; attach one to your own
handlers to stamp records of every logger::

    handler.addFilter(RequestIdFilter())

:class:`JsonFormatter` writes one JSON object per line; :func:`configure_logging` sets up
the root logger with either format (``MicroService.start()`` calls it when logging is
not configured yet, with JSON when the service's ``log_json`` is true).
"""

from __future__ import annotations

import datetime
import itertools
import json
import logging
import os
import random
import re
from collections.abc import Iterator
from typing import Any, Final

from ..protocol import current_call

__all__ = [
    "JsonFormatter",
    "RequestIdFilter",
    "configure_logging",
    "current_request_id",
    "new_request_id",
    "sanitize_request_id",
]


_SANE_ID: Final = re.compile(r"^[A-Za-z0-9._:/+=@-]{1,128}$")

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
"""The text log format :func:`configure_logging` uses."""

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRS: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "request_id",
}


def current_request_id() -> str | None:
    """Return the id of the request being served, or ``None`` outside a request."""
    context = current_call.get(None)
    return None if context is None else context.request_id


def new_request_id() -> str:
    """Return a fresh request id: 32 hex digits, 16 random ones and a 16-digit counter.

    Ids only need to be unique, not secret. The random part is drawn once per process
    (again in forked children) and the counter makes every id of the process distinct,
    which costs less per request than drawing 128 random bits.
    """
    return _id_prefix + hex(next(_id_counter))[2:]


def _new_id_sequence() -> None:
    global _id_prefix, _id_counter
    _id_prefix = f"{random.getrandbits(64):016x}"
    # Counting from 2**60 on, hex() always gives 16 digits (for 2**63 ids at least).
    _id_counter = itertools.count(2**60 + random.getrandbits(59))


_id_prefix: str
_id_counter: Iterator[int]
_new_id_sequence()
os.register_at_fork(after_in_child=_new_id_sequence)


def sanitize_request_id(value: str | None) -> str:
    """Return ``value`` when it is usable as a request id, else a new id.

    A usable id has 1 to 128 characters among letters, digits and ``._:/+=@-``, so a
    caller cannot inject line breaks or huge values into logs and headers.
    """
    if value is not None and _SANE_ID.match(value):
        return value
    return new_request_id()


class RequestIdFilter(logging.Filter):
    """Sets ``record.request_id`` to the current request id (``"-"`` outside a request).

    It never drops a record. Attach it to a logger (stamps that logger's own records)
    or to a handler (stamps every record the handler emits).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Stamp ``record`` and keep it."""
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """Formats each record as one line of JSON.

    Keys: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, ``request_id``
    (when known), every field passed with ``extra=`` (the per-call line carries
    ``rpc_method``, ``duration_ms`` and ``outcome``), and ``exception`` (the formatted
    traceback) when the record has one. Values JSON cannot hold are written with
    ``repr``.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Return the JSON line of ``record``."""
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id is not None and request_id != "-":
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=repr, ensure_ascii=False)


def configure_logging(level: int | str = logging.INFO, *, json_lines: bool = False) -> None:
    """Send log records to standard error, text or JSON, with request ids.

    It replaces the root logger's handlers, so call it once at program start (not in
    libraries or tests).

    Args:
        level: The root logger's level.
        json_lines: One JSON object per line (:class:`JsonFormatter`) instead of text.
    """
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
