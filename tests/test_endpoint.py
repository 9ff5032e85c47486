"""The JSON-RPC endpoint over real HTTP: the specification's examples and the HTTP contract."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import decimal
import io
import json
import uuid
from typing import Any

import pydantic
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

import gemstone_aio as gemstone
from tests.fixtures.services import Calculator

Client = TestClient[Any, Any]


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, calculator: Calculator) -> Client:
    return await aiohttp_client(calculator.make_app())


async def post(client: Client, body: str | bytes, **headers: str) -> tuple[int, Any]:
    headers.setdefault("Content-Type", "application/json")
    raw = body.encode() if isinstance(body, str) else body
    response = await client.post("/api", data=io.BytesIO(raw), headers=headers)
    text = await response.text()
    if response.status == 204:
        assert text == ""
        return 204, None
    assert response.content_type == "application/json"
    return response.status, json.loads(text)


# The examples of https://www.jsonrpc.org/specification §7, verbatim.
SPEC_EXAMPLES = [
    pytest.param(
        '{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}',
        {"jsonrpc": "2.0", "result": 19, "id": 1},
        id="positional",
    ),
    pytest.param(
        '{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}',
        {"jsonrpc": "2.0", "result": -19, "id": 2},
        id="positional-reversed",
    ),
    pytest.param(
        '{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}',
        {"jsonrpc": "2.0", "result": 19, "id": 3},
        id="named",
    ),
    pytest.param(
        '{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}',
        {"jsonrpc": "2.0", "result": 19, "id": 4},
        id="named-reordered",
    ),
    pytest.param(
        '{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}', None, id="notification"
    ),
    pytest.param('{"jsonrpc": "2.0", "method": "foobar"}', None, id="notification-unknown"),
    pytest.param(
        '{"jsonrpc": "2.0", "method": "foobar", "id": "1"}',
        {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"},
        id="method-not-found",
    ),
    pytest.param(
        '{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]',
        {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None},
        id="invalid-json",
    ),
    pytest.param(
        '{"jsonrpc": "2.0", "method": 1, "params": "bar"}',
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None},
        id="invalid-request",
    ),
    pytest.param(
        """[
          {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
          {"jsonrpc": "2.0", "method"
        ]""",
        {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None},
        id="batch-invalid-json",
    ),
    pytest.param(
        "[]",
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None},
        id="empty-array",
    ),
    pytest.param(
        "[1]",
        [{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None}],
        id="batch-of-one-invalid",
    ),
    pytest.param(
        "[1,2,3]",
        [{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None}]
        * 3,
        id="batch-of-invalids",
    ),
    pytest.param(
        """[
        {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
        ]""",
        [
            {"jsonrpc": "2.0", "result": 7, "id": "1"},
            {"jsonrpc": "2.0", "result": 19, "id": "2"},
            {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None},
            {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"},
            {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"},
        ],
        id="mixed-batch",
    ),
    pytest.param(
        """[
        {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
        ]""",
        None,
        id="all-notifications",
    ),
]


def _strip_data(value: Any) -> Any:
    # The specification's examples show no ``data``; ours adds a reason. Compare without it.
    if isinstance(value, list):
        return [_strip_data(item) for item in value]
    if isinstance(value, dict) and "error" in value:
        error = {k: v for k, v in value["error"].items() if k != "data"}
        return {**value, "error": error}
    return value


@pytest.mark.parametrize(("body", "expected"), SPEC_EXAMPLES)
async def test_specification_examples(client: Client, body: str, expected: Any) -> None:
    """Each example of the specification gets exactly the specified answer (or none)."""
    status, answer = await post(client, body)
    if expected is None:
        assert status == 204
        return
    assert status == 200
    assert _strip_data(answer) == expected


@pytest.mark.parametrize("id_", [0, "", None, "abc", -5, 2**64 + 3, 12345678901234567890123, 2.5])
async def test_id_is_echoed_exactly(client: Client, id_: Any) -> None:
    """Results and errors echo the id exactly, 0, "" and null included."""
    for method in ("get_data", "missing"):
        body = json.dumps({"jsonrpc": "2.0", "method": method, "id": id_})
        _, answer = await post(client, body)
        assert "id" in answer
        assert answer["id"] == id_
        assert type(answer["id"]) is type(id_)
        assert ("result" in answer) != ("error" in answer)


@pytest.mark.parametrize(
    ("params", "code", "error_type"),
    [
        pytest.param([1], -32602, "missing", id="too-few-by-position"),
        pytest.param([1, 2, 3], -32602, "too_many_positional_params", id="too-many-by-position"),
        pytest.param({"minuend": 1}, -32602, "missing", id="missing-by-name"),
        pytest.param(
            {"minuend": 1, "subtrahend": 2, "x": 3}, -32602, "extra_forbidden", id="extra"
        ),
        pytest.param({"minuend": "a", "subtrahend": 2}, -32602, "int_parsing", id="wrong-type"),
        pytest.param(None, -32602, "missing", id="no-params"),
    ],
)
async def test_invalid_params(client: Client, params: Any, code: int, error_type: str) -> None:
    """Params that do not fit get -32602 with pydantic's error list (no input echoed)."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": "subtract", "id": 9}
    if params is not None:
        message["params"] = params
    _, answer = await post(client, json.dumps(message))
    assert answer["id"] == 9
    assert answer["error"]["code"] == code
    assert answer["error"]["message"] == "Invalid params"
    types = [entry["type"] for entry in answer["error"]["data"]]
    assert error_type in types
    assert all("input" not in entry for entry in answer["error"]["data"])


async def test_variadic_params(client: Client) -> None:
    """``*args`` collects extra positional params and validates each one."""
    _, answer = await post(
        client, json.dumps({"jsonrpc": "2.0", "method": "sum", "params": list(range(100)), "id": 1})
    )
    assert answer["result"] == 4950
    _, answer = await post(
        client, json.dumps({"jsonrpc": "2.0", "method": "sum", "params": [1, "x"], "id": 2})
    )
    assert answer["error"]["code"] == -32602
    assert answer["error"]["data"][0]["loc"] == ["*numbers", 1]


async def test_internal_error_leaks_nothing(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """A raising method answers -32603 without the exception text; the server logs it."""
    status, answer = await post(client, '{"jsonrpc": "2.0", "method": "fail", "id": 5}')
    assert status == 200
    assert answer == {
        "jsonrpc": "2.0",
        "error": {"code": -32603, "message": "Internal error"},
        "id": 5,
    }
    assert "secret" not in json.dumps(answer)
    assert any("secret internal detail" in (r.exc_text or "") for r in caplog.records)


async def test_debug_mode_shows_the_exception(aiohttp_client: AiohttpClient) -> None:
    """With ``debug = True`` the internal error carries the exception class and text."""
    service = Calculator()
    service.debug = True
    client = await aiohttp_client(service.make_app())
    _, answer = await post(client, '{"jsonrpc": "2.0", "method": "fail", "id": 5}')
    assert answer["error"]["data"] == {"class": "ValueError", "message": "secret internal detail"}


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "APPLICATION/JSON;charset=UTF-8",
    ],
)
async def test_content_type_variants_are_accepted(client: Client, content_type: str) -> None:
    """``application/json`` with parameters and in any letter case is accepted."""
    status, answer = await post(
        client,
        '{"jsonrpc": "2.0", "method": "get_data", "id": 1}',
        **{"Content-Type": content_type},
    )
    assert status == 200
    assert answer["result"] == ["hello", 5]


async def test_other_content_types_are_refused(client: Client) -> None:
    """A form post gets HTTP 415 with a JSON-RPC error naming the content type."""
    status, answer = await post(
        client,
        '{"jsonrpc": "2.0", "method": "get_data", "id": 1}',
        **{"Content-Type": "text/plain"},
    )
    assert status == 415
    assert answer["error"]["code"] == -32600
    assert "text/plain" in answer["error"]["data"]


@pytest.mark.parametrize("verb", ["GET", "PUT", "DELETE", "PATCH"])
async def test_other_verbs_get_405(client: Client, verb: str) -> None:
    """Verbs other than POST get HTTP 405 with ``Allow: POST``."""
    response = await client.request(verb, "/api")
    assert response.status == 405
    assert response.headers["Allow"] == "POST"


async def test_notification_gets_204_and_runs(client: Client) -> None:
    """A notification runs the method and answers HTTP 204 with no body."""
    response = await client.post(
        "/api",
        data='{"jsonrpc": "2.0", "method": "say_hello", "params": ["x"]}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 204
    assert await response.read() == b""


class Point(pydantic.BaseModel):
    x: int
    y: int


@dataclasses.dataclass
class Pair:
    a: int
    b: str


async def test_results_are_serialised_through_pydantic(aiohttp_client: AiohttpClient) -> None:
    """Models, dataclasses, datetimes, UUIDs, decimals and sets are serialised."""

    class Rich(gemstone.MicroService):
        name = "rich"

        @gemstone.exposed_method()
        async def everything(self) -> dict[str, Any]:
            return {
                "model": Point(x=1, y=2),
                "dataclass": Pair(1, "b"),
                "when": datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
                "uuid": uuid.UUID(int=1),
                "decimal": decimal.Decimal("1.50"),
                "set": {3},
            }

        @gemstone.exposed_method()
        async def move(self, point: Point, by: int = 1) -> Point:
            return Point(x=point.x + by, y=point.y + by)

        @gemstone.exposed_method()
        async def unserialisable(self) -> object:
            return object()

    client = await aiohttp_client(Rich().make_app())
    _, answer = await post(client, '{"jsonrpc": "2.0", "method": "everything", "id": 1}')
    assert answer["result"] == {
        "model": {"x": 1, "y": 2},
        "dataclass": {"a": 1, "b": "b"},
        "when": "2020-01-02T03:04:05Z",
        "uuid": "00000000-0000-0000-0000-000000000001",
        "decimal": "1.50",
        "set": [3],
    }
    _, answer = await post(
        client,
        '{"jsonrpc": "2.0", "method": "move", "params": {"point": {"x": 1, "y": 1}}, "id": 2}',
    )
    assert answer["result"] == {"x": 2, "y": 2}
    _, answer = await post(
        client, '{"jsonrpc": "2.0", "method": "move", "params": [{"x": "no", "y": 1}], "id": 3}'
    )
    assert answer["error"]["data"][0]["loc"] == ["point", "x"]
    _, answer = await post(client, '{"jsonrpc": "2.0", "method": "unserialisable", "id": 4}')
    assert answer == {
        "jsonrpc": "2.0",
        "error": {"code": -32603, "message": "Internal error"},
        "id": 4,
    }


async def test_huge_body_is_refused_and_service_keeps_serving(client: Client) -> None:
    """A body over the limit gets HTTP 413 with -32004; the next call is served."""
    big = json.dumps(
        {"jsonrpc": "2.0", "method": "echo", "params": ["x" * (2 * 1024 * 1024)], "id": 1}
    )
    status, answer = await post(client, big)
    assert status == 413
    assert answer["error"]["code"] == -32004
    status, answer = await post(client, '{"jsonrpc": "2.0", "method": "get_data", "id": 2}')
    assert (status, answer["result"]) == (200, ["hello", 5])


async def test_deeply_nested_body_is_refused_and_service_keeps_serving(client: Client) -> None:
    """Pathological nesting gets -32004, never a crash; the next call is served."""
    depth = 100_000
    body = (
        '{"jsonrpc": "2.0", "method": "echo", "params": ['
        + "[" * depth
        + "]" * depth
        + '], "id": 1}'
    )
    status, answer = await post(client, body)
    assert status == 200
    assert answer["error"]["code"] == -32004
    status, answer = await post(client, '{"jsonrpc": "2.0", "method": "get_data", "id": 2}')
    assert answer["result"] == ["hello", 5]


async def test_batch_too_long(aiohttp_client: AiohttpClient) -> None:
    """A batch longer than ``max_batch_length`` is refused as a whole."""
    service = Calculator()
    service.max_batch_length = 3
    client = await aiohttp_client(service.make_app())
    body = json.dumps([{"jsonrpc": "2.0", "method": "get_data", "id": i} for i in range(4)])
    _, answer = await post(client, body)
    assert answer["error"]["code"] == -32004


@pytest.mark.parametrize(
    ("limit", "depth", "refused"), [(64, 60, False), (64, 70, True), (8, 9, True), (8, 6, False)]
)
async def test_configurable_nesting_depth(
    aiohttp_client: AiohttpClient, limit: int, depth: int, refused: bool
) -> None:
    """``max_json_depth`` bounds nesting (the body is level 1) with -32004 naming the limit."""
    service = Calculator()
    service.max_json_depth = limit
    client = await aiohttp_client(service.make_app())
    nested = "[" * (depth - 2) + "]" * (depth - 2)  # body object + params list + these
    body = '{"jsonrpc": "2.0", "method": "echo", "params": [' + nested + '], "id": 1}'
    _, answer = await post(client, body)
    if refused:
        assert answer["error"]["code"] == -32004
        assert answer["error"]["data"] == f"JSON nests deeper than {limit} levels"
    else:
        assert "result" in answer


class BodySigned(gemstone.MicroService):
    """Admits a caller whose ``X-Body-Length`` header matches the body it sent."""

    name = "body_signed"

    async def authenticate_request(self, request: web.Request) -> Any:
        body = await request.read()  # the endpoint has read it already: same bytes
        return "signer" if request.headers.get("X-Body-Length") == str(len(body)) else None

    @gemstone.exposed_method(private=True)
    async def signed_echo(self, text: str) -> str:
        return text


@pytest.mark.parametrize(("extra", "status"), [(0, 200), (1, 413)])
async def test_body_limit_is_exact(aiohttp_client: AiohttpClient, extra: int, status: int) -> None:
    """A body of exactly ``max_request_body_size`` bytes is served; one byte more is not."""
    service = Calculator()
    service.max_request_body_size = 300
    client = await aiohttp_client(service.make_app())
    body = '{"jsonrpc": "2.0", "method": "echo", "params": ["' + "x" * 200 + '"], "id": 1}'
    body += " " * (300 - len(body) + extra)
    got, answer = await post(client, body)
    assert got == status
    if status == 200:
        assert answer["result"] == "x" * 200
    else:
        assert answer["error"] == {
            "code": -32004,
            "message": "Request too large",
            "data": "the body exceeds 300 bytes",
        }


async def test_a_body_arriving_in_pieces_is_read_whole(client: Client) -> None:
    """The handler starts before the end of the body: it waits for the rest."""
    assert client.server.host is not None
    assert client.server.port is not None
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    body = b'{"jsonrpc": "2.0", "method": "echo", "params": ["' + b"y" * 5000 + b'"], "id": 7}'
    writer.write(
        b"POST /api HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
    )
    for start in range(0, len(body), 1000):
        writer.write(body[start : start + 1000])
        await writer.drain()
        await asyncio.sleep(0.02)
    response = await reader.read()
    writer.close()
    head, _, payload = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(payload) == {"jsonrpc": "2.0", "result": "y" * 5000, "id": 7}


async def test_a_middleware_may_read_the_body_first(
    aiohttp_client: AiohttpClient, calculator: Calculator
) -> None:
    seen: list[bytes] = []

    @web.middleware
    async def audit(request: web.Request, handler: Any) -> web.StreamResponse:
        seen.append(await request.read())
        return await handler(request)  # type: ignore[no-any-return]

    app = calculator.make_app()
    app.middlewares.append(audit)
    client = await aiohttp_client(app)
    body = '{"jsonrpc": "2.0", "method": "subtract", "params": [5, 2], "id": 1}'
    assert await post(client, body) == (200, {"jsonrpc": "2.0", "result": 3, "id": 1})
    assert seen == [body.encode()]


async def test_authentication_may_read_the_body(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(BodySigned().make_app())
    body = '{"jsonrpc": "2.0", "method": "signed_echo", "params": ["hi"], "id": 1}'
    status, answer = await post(client, body, **{"X-Body-Length": str(len(body))})
    assert (status, answer["result"]) == (200, "hi")
    status, answer = await post(client, body, **{"X-Body-Length": "1"})
    assert answer["error"]["code"] == -32001
