"""The JSON-RPC wire format, without a server or an event loop."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from gemstone_aio.errors import InvalidRequest, MethodNotFound, ParseError, RequestTooLarge
from gemstone_aio.protocol import _jsonrpc as jsonrpc


def parse_one(body: Any) -> jsonrpc.Request | jsonrpc.Invalid:
    parsed = jsonrpc.parse(json.dumps(body).encode())
    assert not isinstance(parsed, list)
    return parsed


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(("." * node.level) + (node.module or ""))
    return names


def test_engine_does_not_import_aiohttp() -> None:
    """The protocol layer (wire format, params, router) and errors work without aiohttp.

    (``lint-imports`` checks the same, and the layers, in CI.)
    """
    protocol = Path(jsonrpc.__file__).parent
    for path in [*sorted(protocol.glob("*.py")), protocol.parent / "errors.py"]:
        assert not any(name.startswith("aiohttp") for name in _imports(path)), path


@pytest.mark.parametrize(
    ("body", "method", "params", "id_", "notification"),
    [
        pytest.param(
            {"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1},
            "subtract",
            [42, 23],
            1,
            False,
            id="by-position",
        ),
        pytest.param(
            {"jsonrpc": "2.0", "method": "subtract", "params": {"a": 1}, "id": "x"},
            "subtract",
            {"a": 1},
            "x",
            False,
            id="by-name",
        ),
        pytest.param(
            {"jsonrpc": "2.0", "method": "update", "params": [1]},
            "update",
            [1],
            None,
            True,
            id="notification",
        ),
        pytest.param(
            {"jsonrpc": "2.0", "method": "m", "id": None}, "m", None, None, False, id="null-id"
        ),
        pytest.param({"jsonrpc": "2.0", "method": "m", "id": 0}, "m", None, 0, False, id="zero-id"),
        pytest.param(
            {"jsonrpc": "2.0", "method": "m", "id": ""}, "m", None, "", False, id="empty-id"
        ),
        pytest.param(
            {"jsonrpc": "2.0", "method": "m", "id": -7}, "m", None, -7, False, id="negative-id"
        ),
        pytest.param(
            {"jsonrpc": "2.0", "method": "m", "id": 2**70}, "m", None, 2**70, False, id="huge-id"
        ),
        pytest.param(
            {"jsonrpc": "2.0", "method": "m", "id": 1.5}, "m", None, 1.5, False, id="fraction-id"
        ),
        pytest.param(
            {"jsonrpc": "2.0", "method": "m", "id": 1, "extra": True},
            "m",
            None,
            1,
            False,
            id="unknown-member-ignored",
        ),
    ],
)
def test_valid_requests(body: Any, method: str, params: Any, id_: Any, notification: bool) -> None:
    """Valid request objects parse into a Request keeping method, params and the exact id."""
    request = parse_one(body)
    assert isinstance(request, jsonrpc.Request)
    assert (request.method, request.params, request.id, request.is_notification) == (
        method,
        params,
        id_,
        notification,
    )


@pytest.mark.parametrize(
    ("body", "echo_id"),
    [
        pytest.param({"method": "m", "id": 1}, 1, id="no-jsonrpc"),
        pytest.param({"jsonrpc": "1.0", "method": "m", "id": 1}, 1, id="jsonrpc-1.0"),
        pytest.param({"jsonrpc": 2.0, "method": "m", "id": 1}, 1, id="jsonrpc-number"),
        pytest.param({"jsonrpc": "2.0", "id": 1}, 1, id="no-method"),
        pytest.param({"jsonrpc": "2.0", "method": 1, "params": "bar"}, None, id="method-number"),
        pytest.param({"jsonrpc": "2.0", "method": "", "id": 1}, 1, id="method-empty"),
        pytest.param(
            {"jsonrpc": "2.0", "method": "m", "params": "bar", "id": 2}, 2, id="params-str"
        ),
        pytest.param(
            {"jsonrpc": "2.0", "method": "m", "params": None, "id": 2}, 2, id="params-null"
        ),
        pytest.param(
            {"jsonrpc": "2.0", "method": "m", "params": 5, "id": 2}, 2, id="params-number"
        ),
        pytest.param({"jsonrpc": "2.0", "method": "m", "id": True}, None, id="id-bool"),
        pytest.param({"jsonrpc": "2.0", "method": "m", "id": {"a": 1}}, None, id="id-object"),
        pytest.param({"jsonrpc": "2.0", "method": "m", "id": [1]}, None, id="id-array"),
        pytest.param(1, None, id="number"),
        pytest.param("request", None, id="string"),
        pytest.param(None, None, id="null"),
    ],
)
def test_invalid_requests(body: Any, echo_id: Any) -> None:
    """Every validity rule of the specification yields -32600 with a readable reason."""
    invalid = parse_one(body)
    assert isinstance(invalid, jsonrpc.Invalid)
    assert isinstance(invalid.error, InvalidRequest)
    assert invalid.id == echo_id
    assert isinstance(invalid.error.data, str)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b'{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]',
        b"NaN",
        b"\xff\xfe",
    ],
)
def test_parse_errors(body: bytes) -> None:
    """Bodies that are not JSON raise ParseError (-32700)."""
    with pytest.raises(ParseError):
        jsonrpc.parse(body)


def test_empty_batch_is_invalid() -> None:
    """``[]`` is a single Invalid Request, not an empty batch."""
    with pytest.raises(InvalidRequest):
        jsonrpc.parse(b"[]")


def test_batch_elements_are_validated_one_by_one() -> None:
    """One bad element does not spoil its neighbours."""
    batch = jsonrpc.parse(b'[1, {"jsonrpc": "2.0", "method": "m", "id": 3}, {"foo": "boo"}]')
    assert isinstance(batch, list)
    assert [type(item).__name__ for item in batch] == ["Invalid", "Request", "Invalid"]


def test_batch_length_limit() -> None:
    """A batch longer than the limit is refused as a whole with -32004 naming both sizes."""
    body = json.dumps([{"jsonrpc": "2.0", "method": "m", "id": i} for i in range(5)]).encode()
    with pytest.raises(RequestTooLarge) as caught:
        jsonrpc.parse(body, max_batch_length=4)
    assert "5" in str(caught.value.data)
    assert "4" in str(caught.value.data)
    assert isinstance(jsonrpc.parse(body, max_batch_length=5), list)


def test_deep_nesting_is_refused() -> None:
    """Pathological nesting is refused by the parser, never a stack overflow."""
    depth = sys.getrecursionlimit() * 2
    with pytest.raises(RequestTooLarge):
        jsonrpc.parse(b"[" * depth + b"]" * depth)


@pytest.mark.parametrize("id_", [0, "", None, "abc", -1, 2**64 + 1, 1.5])
def test_responses_echo_the_id_exactly(id_: Any) -> None:
    """A response carries ``result`` xor ``error`` and the very id of the request."""
    ok = json.loads(jsonrpc.dumps(jsonrpc.success_response(id_, [1, 2])))
    assert ok == {"jsonrpc": "2.0", "result": [1, 2], "id": id_}
    failed = json.loads(jsonrpc.dumps(jsonrpc.error_response(id_, MethodNotFound())))
    assert failed == {
        "jsonrpc": "2.0",
        "error": {"code": -32601, "message": "Method not found"},
        "id": id_,
    }


def test_null_result_is_kept() -> None:
    """A method returning None answers ``"result": null`` (the member must be present)."""
    assert json.loads(jsonrpc.dumps(jsonrpc.success_response(1, None))) == {
        "jsonrpc": "2.0",
        "result": None,
        "id": 1,
    }
