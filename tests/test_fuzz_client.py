"""Property-based fuzzing of the client's reply parsing, over real HTTP.

A server answers with arbitrary bytes, arbitrary JSON and arbitrary response shapes;
the client either returns a result or raises one of its documented errors
(:class:`CalledServiceError` or a :class:`GemstoneTransportError` subclass), never
anything else.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gemstone_aio import CalledServiceError, GemstoneError, RemoteService
from gemstone_aio.errors import GemstoneTransportError
from tests.fixtures.threaded import ThreadedServer

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class _Replier:
    """An aiohttp app that answers every POST with ``self.reply``."""

    def __init__(self) -> None:
        self.reply: tuple[int, bytes] = (200, b"{}")
        self.port = 0

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        status, body = self.reply
        return web.Response(status=status, body=body, content_type="application/json")

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[int]:
        app = web.Application()
        app.router.add_post("/api", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            yield int(runner.addresses[0][1])
        finally:
            await runner.cleanup()


@pytest.fixture(scope="module")
def replier() -> Iterator[_Replier]:
    server = _Replier()
    with ThreadedServer(server.serve) as running:
        server.port = running.port
        yield server


@pytest.fixture(scope="module")
def client(replier: _Replier) -> Iterator[RemoteService]:
    remote = RemoteService(f"http://127.0.0.1:{replier.port}/api", timeout=10)
    yield remote
    remote.close()


def outcome(client: RemoteService) -> Any:
    """Call through the blocking facade; return the result or the documented error."""
    error: GemstoneError
    try:
        return ("result", client.methods.anything(1))
    except (CalledServiceError, GemstoneTransportError) as exc:
        error = exc
    if isinstance(error, CalledServiceError):
        assert isinstance(error.code, int)
        assert isinstance(error.message, str)
        return ("error", error.code)
    assert "127.0.0.1" in str(error)  # transport errors name the URL
    return ("transport", type(error).__name__)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=15,
)

response_shapes = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0"]) | json_values,
        "result": json_values,
        "error": st.fixed_dictionaries(
            {},
            optional={
                "code": st.integers() | json_values,
                "message": st.text() | json_values,
                "data": json_values,
            },
        )
        | json_values,
        "id": st.integers() | st.none() | json_values,
    },
)


@FUZZ
@given(
    status=st.sampled_from([200, 200, 200, 204, 400, 404, 500, 502]), body=st.binary(max_size=200)
)
def test_arbitrary_bytes(
    replier: _Replier, client: RemoteService, status: int, body: bytes
) -> None:
    """Any bytes with any status end in a documented outcome."""
    replier.reply = (status, body)
    kind, _ = outcome(client)
    assert kind in ("result", "error", "transport")


@FUZZ
@given(value=json_values)
def test_arbitrary_json(replier: _Replier, client: RemoteService, value: Any) -> None:
    """Any JSON document ends in a documented outcome."""
    replier.reply = (200, json.dumps(value).encode())
    kind, _ = outcome(client)
    assert kind in ("result", "error", "transport")


@FUZZ
@given(shape=response_shapes)
def test_arbitrary_response_shapes(
    replier: _Replier, client: RemoteService, shape: dict[str, Any]
) -> None:
    """Response-like objects: only a well-formed error object raises CalledServiceError."""
    replier.reply = (200, json.dumps(shape).encode())
    kind, detail = outcome(client)
    if kind == "error":
        assert shape["error"]["code"] == detail
    if kind == "result":
        assert shape.get("jsonrpc") == "2.0"
        assert "result" in shape
        assert "error" not in shape


def test_documented_errors_share_the_root() -> None:
    """Everything the client raises on a bad reply derives from GemstoneError."""
    assert issubclass(CalledServiceError, GemstoneError)
    assert issubclass(GemstoneTransportError, GemstoneError)
