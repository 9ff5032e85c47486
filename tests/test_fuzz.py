"""Property-based fuzzing of the endpoint over real HTTP.

Arbitrary bytes, arbitrary JSON and arbitrary request shapes: every answer is a valid
JSON-RPC response (or no body for notifications), never HTTP 500, and the service keeps
answering afterwards.
"""

from __future__ import annotations

import contextlib
import http.client
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gemstone_aio.testing import serving
from tests.fixtures.services import Calculator
from tests.fixtures.threaded import ThreadedServer

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@contextlib.asynccontextmanager
async def _calculator() -> AsyncIterator[int]:
    async with serving(Calculator()) as service:
        yield service.port


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedServer]:
    with ThreadedServer(_calculator) as running:
        yield running


def post(port: int, body: bytes, content_type: str = "application/json") -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", "/api", body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def assert_valid_answer(status: int, body: bytes) -> None:
    assert status in (200, 204, 413, 415), status
    if status == 204:
        assert body == b""
        return
    answer = json.loads(body)
    entries = answer if isinstance(answer, list) else [answer]
    assert entries, "an empty array is never an answer"
    for entry in entries:
        assert isinstance(entry, dict)
        assert entry["jsonrpc"] == "2.0"
        assert "id" in entry
        assert ("result" in entry) != ("error" in entry)
        if "error" in entry:
            error = entry["error"]
            assert isinstance(error["code"], int)
            assert isinstance(error["message"], str)
            assert set(error) <= {"code", "message", "data"}


def assert_still_serving(port: int) -> None:
    status, body = post(port, b'{"jsonrpc": "2.0", "method": "get_data", "id": 1}')
    assert status == 200
    assert json.loads(body)["result"] == ["hello", 5]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)

methods = st.sampled_from(
    [
        "subtract",
        "sum",
        "say_hello",
        "echo",
        "get_data",
        "fail",
        "missing",
        "rpc.discover",
        "",
        "math.add",
    ]
) | st.text(max_size=15)

request_shapes = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0", 2.0, None]) | json_values,
        "method": methods | json_values,
        "params": st.lists(json_values, max_size=4)
        | st.dictionaries(
            st.sampled_from(["minuend", "subtrahend", "name", "value", "x"]),
            json_values,
            max_size=3,
        )
        | json_values,
        "id": st.integers() | st.text(max_size=8) | st.none() | json_values,
    },
)


@FUZZ
@given(body=st.binary(max_size=300))
def test_arbitrary_bytes(server: ThreadedServer, body: bytes) -> None:
    """Any bytes get a valid JSON-RPC answer, never a 500."""
    assert_valid_answer(*post(server.port, body))


@FUZZ
@given(value=json_values)
def test_arbitrary_json(server: ThreadedServer, value: Any) -> None:
    """Any JSON document gets a valid JSON-RPC answer."""
    assert_valid_answer(*post(server.port, json.dumps(value).encode()))


@FUZZ
@given(request=request_shapes)
def test_arbitrary_request_shapes(server: ThreadedServer, request: dict[str, Any]) -> None:
    """Request-like objects with any members get a valid answer (or none for notifications)."""
    status, body = post(server.port, json.dumps(request).encode())
    assert_valid_answer(status, body)
    if (
        status == 200
        and isinstance(request.get("id"), int | str)
        and not isinstance(request.get("id"), bool)
    ):
        assert json.loads(body)["id"] == request["id"]


@FUZZ
@given(batch=st.lists(request_shapes | json_values, min_size=1, max_size=8))
def test_arbitrary_batches(server: ThreadedServer, batch: list[Any]) -> None:
    """Batches of anything get one answer per non-notification element, in a valid shape."""
    assert_valid_answer(*post(server.port, json.dumps(batch).encode()))


def test_service_still_answers_after_fuzzing(server: ThreadedServer) -> None:
    """After all of the above the service is alive and correct."""
    assert_still_serving(server.port)
