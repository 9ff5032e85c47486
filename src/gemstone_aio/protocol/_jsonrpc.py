"""The JSON-RPC 2.0 wire format: parsing bodies and building responses.

This module has no aiohttp import and no event loop: it turns bytes into request
objects and response dictionaries into bytes, following
https://www.jsonrpc.org/specification.

The JSON library is pydantic-core's (``from_json``/``to_json``), chosen by measurement
(``bench/json_libs.py``): it is as fast as orjson on request-sized documents, keeps
integers of any size exact (orjson rejects ids beyond 64 bits), refuses pathological
nesting instead of overflowing the stack, and serialises pydantic models, dataclasses,
datetimes, UUIDs, decimals and sets without a custom encoder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import pydantic_core

from ..errors import (
    InvalidRequest,
    JsonRpcError,
    ParseError,
    RequestTooLarge,
)

__all__ = [
    "MAX_ERROR_ANSWER_BYTES",
    "Id",
    "Invalid",
    "Params",
    "ParsedBody",
    "Request",
    "check_depth",
    "depth_to_check",
    "dumps",
    "error_answer",
    "error_response",
    "has_non_finite",
    "loads",
    "nesting_exceeds",
    "nests_deeper",
    "parse",
    "parse_value",
    "success_answer",
    "success_response",
    "too_deep",
    "walk_above",
]

Id: TypeAlias = str | int | float | None
"""A request id: a string, a number or null (bools, arrays and objects are invalid)."""

Params: TypeAlias = list[Any] | dict[str, Any]
"""Structured params: by position (an array) or by name (an object)."""

_NO_ID: Final = object()


@dataclass(slots=True)
class Request:
    """One valid request or notification (treat it as read-only).

    Not a frozen dataclass: a frozen one's ``__init__`` costs four times as much, and
    one is built per call.

    Attributes:
        method: The method name.
        params: The params, ``None`` when the member was omitted.
        id: The id to echo; meaningless for a notification.
        is_notification: True when the request had no ``id`` member at all
            (``"id": null`` is a request, not a notification).
    """

    method: str
    params: Params | None
    id: Id
    is_notification: bool


@dataclass(frozen=True, slots=True)
class Invalid:
    """A batch element (or a single body) that is not a valid request.

    Attributes:
        error: The error to answer with.
        id: The id to echo: the element's id when it could be read, else ``None``.
    """

    error: JsonRpcError
    id: Id = None


ParsedBody: TypeAlias = Request | Invalid | list[Request | Invalid]
"""What :func:`parse` returns: one request, one invalid entry, or a batch of them."""


def loads(body: bytes | str) -> Any:
    """Decode JSON; ``NaN`` and ``Infinity`` are refused as they are not JSON.

    Raises:
        ValueError: The text is not valid JSON or nests too deeply.
    """
    return pydantic_core.from_json(body, allow_inf_nan=False)


def dumps(value: Any) -> bytes:
    """Encode ``value`` as compact UTF-8 JSON.

    Raises:
        pydantic_core.PydanticSerializationError: ``value`` holds something that has no
            JSON form.
    """
    return pydantic_core.to_json(value)


def _valid_id(value: Any) -> bool:
    # bool is an int subclass but true/false are not valid ids.
    return value is None or (isinstance(value, str | int | float) and not isinstance(value, bool))


PLAIN_ID_TYPES: Final = frozenset({str, int})
"""The usual id classes, exactly (a bool is an int subclass but not a valid id)."""


def parse_object(obj: Any) -> Request | Invalid:
    """Validate one decoded request object (a batch element or a whole body).

    A non-finite id (``1e400`` decodes to infinity) is an invalid request: no answer may
    ever carry ``Infinity`` or ``NaN``. (Non-finite params are refused when they are
    bound: :class:`~gemstone_aio.protocol.ParamsBinder`.)
    """
    if obj.__class__ is not dict and not isinstance(obj, dict):
        return Invalid(InvalidRequest(data="a request must be a JSON object"))
    raw_id = obj.get("id", _NO_ID)
    has_id = raw_id is not _NO_ID
    # The usual ids (a str or an int straight from JSON) skip the general check.
    id_ok = raw_id.__class__ in PLAIN_ID_TYPES or (has_id and _valid_id(raw_id))
    echo_id: Id = raw_id if id_ok else None
    if obj.get("jsonrpc") != "2.0":
        return Invalid(InvalidRequest(data='"jsonrpc" must be exactly "2.0"'), echo_id)
    method = obj.get("method")
    if (method.__class__ is not str and not isinstance(method, str)) or not method:
        return Invalid(InvalidRequest(data='"method" must be a non-empty string'), echo_id)
    if has_id and not id_ok:
        return Invalid(InvalidRequest(data='"id" must be a string, a number or null'))
    params = obj.get("params")
    # (Exact-class checks first: they are what JSON gives, and cheaper than isinstance.)
    if params.__class__ is not dict and "params" in obj and not isinstance(params, list | dict):
        return Invalid(InvalidRequest(data='"params" must be an array or an object'), echo_id)
    if echo_id.__class__ is float and not math.isfinite(echo_id):
        return Invalid(InvalidRequest(data='"id" must be a finite number'))
    return Request(method, params, echo_id, not has_id)


def has_non_finite(value: Any) -> bool:
    """Return True when ``value`` holds a float that is infinite or NaN (at any depth).

    pydantic-core writes such a float as ``Infinity``/``NaN`` or as ``null`` depending on
    a mode: the two texts differ exactly when there is one. (Both passes run in Rust: a
    hostile body of a million values costs milliseconds, not a Python walk.)
    """
    try:
        return pydantic_core.to_json(value) != pydantic_core.to_json(value, inf_nan_mode="null")
    except pydantic_core.PydanticSerializationError:  # not JSON data: look at its floats
        return _walk_non_finite(value)


def _walk_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_walk_non_finite(item) for item in value.values())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_walk_non_finite(item) for item in value)
    return False


PARSER_MAX_DEPTH: Final = 200
"""The deepest nesting the JSON parser itself accepts (pydantic-core's fixed limit)."""


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Return True when arrays and objects in ``value`` nest deeper than ``limit`` levels."""
    if not isinstance(value, dict | list):
        return False
    return nests_deeper(value, limit - 1)


def walk_above(max_depth: int | None) -> float:
    """The body size in bytes above which nesting deeper than ``max_depth`` is possible.

    Nesting N levels deep takes at least 2N bytes: bodies up to twice the limit need no
    walk (infinite when there is no limit).
    """
    return math.inf if max_depth is None else 2 * max_depth


def depth_to_check(size: int, max_depth: int | None) -> int | None:
    """The nesting limit a body of ``size`` bytes must be walked for, or ``None``."""
    return max_depth if size > walk_above(max_depth) else None


def too_deep(max_depth: int) -> RequestTooLarge:
    """The error refusing a body that nests deeper than ``max_depth`` levels."""
    return RequestTooLarge(data=f"JSON nests deeper than {max_depth} levels")


def check_depth(decoded: Any, size: int, max_depth: int | None) -> None:
    """Refuse a decoded body of ``size`` bytes that nests deeper than ``max_depth``.

    Raises:
        RequestTooLarge: It does.
    """
    limit = depth_to_check(size, max_depth)
    if limit is not None and nesting_exceeds(decoded, limit):
        raise too_deep(limit)


def nests_deeper(container: dict[str, Any] | list[Any], room: int) -> bool:
    """Return True when more than ``room`` levels of arrays and objects nest in ``container``.

    ``room`` below zero means ``container`` itself is already too deep.
    """
    return room < 0 or _nests_deeper(container, room)


def _nests_deeper(container: dict[str, Any] | list[Any], room: int) -> bool:
    # ``room``: how many more levels may nest inside ``container``. Recursion is bounded:
    # the JSON parser refuses more than PARSER_MAX_DEPTH levels. Decoded JSON holds exact
    # dicts and lists, so class identity is checked (cheaper than isinstance).
    for child in container.values() if container.__class__ is dict else container:
        if (child.__class__ is dict or child.__class__ is list) and (
            room == 0 or _nests_deeper(child, room - 1)
        ):
            return True
    return False


def parse(
    body: bytes | str, *, max_batch_length: int | None = None, max_depth: int | None = None
) -> ParsedBody:
    """Parse a request body into one request, one invalid entry, or a batch.

    Every batch element is validated on its own, so one bad element does not spoil
    the others.

    Args:
        body: The raw HTTP body.
        max_batch_length: The longest batch accepted; ``None`` for no limit.
        max_depth: The deepest nesting of arrays and objects accepted (the body itself
            is level 1); ``None``: only the parser's own limit of 200 levels.

    Raises:
        ParseError: The body is not JSON.
        InvalidRequest: The body is an empty array.
        RequestTooLarge: The batch is longer than ``max_batch_length``, or the JSON nests
            deeper than ``max_depth``.
    """
    try:
        decoded = pydantic_core.from_json(body, allow_inf_nan=False)  # loads(), inlined
    except ValueError as exc:
        if "recursion limit" in str(exc):
            raise RequestTooLarge(
                data=f"JSON nests deeper than {PARSER_MAX_DEPTH} levels"
            ) from None
        raise ParseError() from None
    return parse_value(decoded, len(body), max_batch_length=max_batch_length, max_depth=max_depth)


def parse_value(
    decoded: Any,
    size: int,
    *,
    max_batch_length: int | None = None,
    max_depth: int | None = None,
) -> ParsedBody:
    """:func:`parse` for a body already decoded from JSON (``size``: its length in bytes).

    Raises:
        InvalidRequest: The body is an empty array.
        RequestTooLarge: As in :func:`parse`.
    """
    check_depth(decoded, size, max_depth)
    if isinstance(decoded, list):
        if not decoded:
            raise InvalidRequest(data="an empty batch is not a request")
        if max_batch_length is not None and len(decoded) > max_batch_length:
            raise RequestTooLarge(
                data=f"batch of {len(decoded)} requests exceeds the limit of {max_batch_length}"
            )
        return [parse_object(item) for item in decoded]
    return parse_object(decoded)


MAX_ERROR_ANSWER_BYTES: Final = 16 * 1024
"""The largest error answer sent: past it, ``data`` is replaced by a short note."""


def error_answer(id: Id, error: JsonRpcError) -> bytes:
    """Serialise the answer of a failed call, never larger than :data:`MAX_ERROR_ANSWER_BYTES`."""
    answer = dumps(error_response(id, error))
    if len(answer) <= MAX_ERROR_ANSWER_BYTES:
        return answer
    # The id is echoed whatever its size (it came in the body); message and data are cut.
    shortened = {
        "code": error.code,
        "message": error.message[:200],
        "data": {"truncated": f"the error answer exceeded {MAX_ERROR_ANSWER_BYTES} bytes"},
    }
    return dumps({"jsonrpc": "2.0", "error": shortened, "id": id})


def success_answer(id: Id, result: Any) -> bytes:
    """Serialise the answer of a call that succeeded.

    Raises:
        pydantic_core.PydanticSerializationError: ``result`` has no JSON form.
        ValueError: ``result`` holds an infinite or NaN float (JSON has no such number).
    """
    answer = pydantic_core.to_json({"jsonrpc": "2.0", "result": result, "id": id})
    cls = result.__class__
    if cls in _NO_FLOAT_CLASSES:  # the usual results cannot hold a float at all
        return answer
    if cls is float:
        if math.isfinite(result):
            return answer
    # Anything else is looked at again only when its answer spells one of them (a string
    # may hold them too).
    elif not (b"Infinity" in answer or b"NaN" in answer) or not has_non_finite(result):
        return answer
    raise ValueError("the result holds an infinite or NaN number, which JSON cannot carry")


_NO_FLOAT_CLASSES: Final = frozenset({str, int, bool, type(None)})


def success_response(id: Id, result: Any) -> dict[str, Any]:
    """Build the response object for a successful call."""
    return {"jsonrpc": "2.0", "result": result, "id": id}


def error_response(id: Id, error: JsonRpcError) -> dict[str, Any]:
    """Build the response object for a failed call."""
    return {"jsonrpc": "2.0", "error": error.to_error_object(), "id": id}
