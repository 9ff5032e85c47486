"""The table test of the one call path: every request shape, every way of being called, one answer.

Each shape is a request object and the answer the JSON-RPC contract gives it. Way (a), a
single body through :meth:`Router.handle`, must give exactly that answer; every other
way must give the very same decoded answer:

- the request as the only element of a batch, and among other elements (its element
  of the batch's answer is the single answer, the other elements answer as usual);
- with a call observer, with a call wrapper, with DEBUG lines on the router's logger,
  and with all three around a mixed batch (each also told exactly what it should be);
- through a real aiohttp server built by ``make_app`` for a ``MicroService`` serving the
  same methods, alone and in a mixed batch.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

import gemstone_aio as gemstone
from gemstone_aio.protocol import (
    BlockingRunner,
    CallContext,
    Request,
    Router,
    current_context,
    exposed_method,
)

from ._support import LOGGER, call, make_router, methods_of, request

LIMIT = 0.1
"""The framework time limit of the shapes that time out (seconds)."""
TOKEN = "tok-alice"
"""The API token that admits the caller "alice" (router: ``authenticate``; server: ``api_tokens``)."""
REFERENCE_LOGGER = "tests.protocol.reference"
"""The logger of the router giving the reference answer (never at DEBUG level)."""


class TableMethods:
    """The methods the shapes call, for the routers built here and for the server's service."""

    @exposed_method()
    async def subtract(self, minuend: int, subtrahend: int) -> int:
        await asyncio.sleep(0)  # an element that waits, so a batch really interleaves
        return minuend - subtrahend

    @exposed_method()
    async def get_data(self) -> list[object]:
        return ["hello", 5]

    @exposed_method()
    async def filler(self, tag: str) -> str:
        await asyncio.sleep(0)
        return tag

    @exposed_method()
    async def fail(self) -> None:
        raise ValueError("secret internal detail")

    @exposed_method(timeout=LIMIT)
    async def stuck(self) -> None:
        await asyncio.Event().wait()  # never set: only the method's time limit ends it

    @exposed_method()
    async def stuck_by_default(self) -> None:
        await asyncio.Event().wait()  # only the router's default time limit ends it

    @exposed_method()
    def blocking_add(self, a: int, b: int) -> dict[str, object]:
        return {
            "sum": a + b,
            "in_thread": threading.current_thread() is not threading.main_thread(),
        }

    @exposed_method(private=True)
    async def whoami(self) -> object:
        return current_context().known_identity


class TableService(TableMethods, gemstone.MicroService):
    """The same methods behind a real server (the token admits "alice")."""

    name = "protocol-call-path"
    api_tokens = {TOKEN: "alice"}


async def authenticate(context: CallContext) -> str | None:
    """The routers' access check: the server's rule for ``TableService``, without aiohttp."""
    return "alice" if context.headers.get("X-Api-Token") == TOKEN else None


class ErrorList:
    """Equals a list of pydantic errors that holds one of ``type`` at ``loc`` and echoes no input."""

    def __init__(self, type: str, loc: list[Any]) -> None:
        self.type = type
        self.loc = loc

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, list)
            and any(e.get("type") == self.type and e.get("loc") == self.loc for e in other)
            and all("input" not in e for e in other)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<pydantic errors with {self.type!r} at {self.loc!r}>"


@dataclass(frozen=True)
class Shape:
    """One request shape.

    Attributes:
        request: The request object (a whole body, or an element of a batch).
        expected: The decoded answer; ``None``: nothing is answered.
        observed: ``(method, code)`` observers are told; ``None``: no call is observed.
        debug: The router (and the service) run with ``debug``.
        default_timeout: The router's (and the service's) default time limit.
        credentials: The caller presents the token admitting "alice".
    """

    request: Any
    expected: Any
    observed: tuple[str, int | None] | None
    debug: bool = False
    default_timeout: float | None = None
    credentials: bool = False


def result(value: Any, id: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "result": value, "id": id}


def error(id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        body["data"] = data
    return {"jsonrpc": "2.0", "error": body, "id": id}


BIG_ID = 2**70 + 3  # beyond 64 bits: no JSON library may round it

SHAPES = [
    pytest.param(
        Shape(
            request("subtract", {"minuend": 42, "subtrahend": 23}, 1),
            result(19, 1),
            ("subtract", None),
        ),
        id="params-by-name",
    ),
    pytest.param(
        Shape(request("subtract", [42, 23], 2), result(19, 2), ("subtract", None)),
        id="params-by-position",
    ),
    pytest.param(
        Shape(request("get_data", id=3), result(["hello", 5], 3), ("get_data", None)),
        id="no-params",
    ),
    pytest.param(
        Shape(
            request("subtract", {"minuend": "x", "subtrahend": 1}, 4),
            error(4, -32602, "Invalid params", ErrorList("int_parsing", ["minuend"])),
            ("subtract", -32602),
        ),
        id="invalid-params",
    ),
    pytest.param(
        Shape(
            request("nope", [1], 5),
            error(5, -32601, "Method not found", "no method named 'nope'"),
            ("nope", -32601),
        ),
        id="unknown-method",
    ),
    pytest.param(
        Shape(
            {"jsonrpc": "2.0", "method": 1, "id": 6},
            error(6, -32600, "Invalid Request", '"method" must be a non-empty string'),
            None,
        ),
        id="invalid-request",
    ),
    pytest.param(
        Shape(
            {"jsonrpc": "1.0", "method": "get_data", "id": 7},
            error(7, -32600, "Invalid Request", '"jsonrpc" must be exactly "2.0"'),
            None,
        ),
        id="invalid-request-version",
    ),
    pytest.param(
        Shape(42, error(None, -32600, "Invalid Request", "a request must be a JSON object"), None),
        id="not-an-object",
    ),
    pytest.param(
        Shape(request("subtract", [5, 3], notification=True), None, ("subtract", None)),
        id="notification",
    ),
    pytest.param(
        Shape(request("fail", notification=True), None, ("fail", -32603)),
        id="notification-failing",
    ),
    pytest.param(
        Shape(request("nope", notification=True), None, ("nope", -32601)),
        id="notification-unknown-method",
    ),
    pytest.param(
        Shape(request("fail", id=9), error(9, -32603, "Internal error"), ("fail", -32603)),
        id="method-raises",
    ),
    pytest.param(
        Shape(
            request("fail", id=10),
            error(
                10,
                -32603,
                "Internal error",
                {"class": "ValueError", "message": "secret internal detail"},
            ),
            ("fail", -32603),
            debug=True,
        ),
        id="method-raises-debug",
    ),
    pytest.param(
        Shape(
            request("stuck", id=11),
            error(11, -32003, "Method timed out", {"timeout": LIMIT, "limit": "method"}),
            ("stuck", -32003),
        ),
        id="method-time-limit",
    ),
    pytest.param(
        Shape(
            request("stuck_by_default", id=12),
            error(12, -32003, "Method timed out", {"timeout": LIMIT, "limit": "service"}),
            ("stuck_by_default", -32003),
            default_timeout=LIMIT,
        ),
        id="default-time-limit",
    ),
    pytest.param(
        Shape(
            request("blocking_add", {"a": 2, "b": 3}, 13),
            result({"sum": 5, "in_thread": True}, 13),
            ("blocking_add", None),
        ),
        id="blocking-method",
    ),
    pytest.param(
        Shape(request("whoami", id=14), error(14, -32001, "Access denied"), ("whoami", -32001)),
        id="private-without-credentials",
    ),
    pytest.param(
        Shape(
            request("whoami", {"unexpected": 1}, 15),
            error(15, -32001, "Access denied"),
            ("whoami", -32001),
        ),
        id="private-without-credentials-bad-params",
    ),
    pytest.param(
        Shape(request("whoami", id=16), result("alice", 16), ("whoami", None), credentials=True),
        id="private-with-credentials",
    ),
    pytest.param(
        Shape(request("get_data", id=0), result(["hello", 5], 0), ("get_data", None)),
        id="id-zero",
    ),
    pytest.param(
        Shape(request("get_data", id=""), result(["hello", 5], ""), ("get_data", None)),
        id="id-empty-string",
    ),
    pytest.param(
        Shape(request("get_data", id=None), result(["hello", 5], None), ("get_data", None)),
        id="id-null",
    ),
    pytest.param(
        Shape(
            request("nope", id=None),
            error(None, -32601, "Method not found", "no method named 'nope'"),
            ("nope", -32601),
        ),
        id="id-null-error",
    ),
    pytest.param(
        Shape(request("get_data", id=BIG_ID), result(["hello", 5], BIG_ID), ("get_data", None)),
        id="id-big-int",
    ),
    pytest.param(
        Shape(request("get_data", id=2.5), result(["hello", 5], 2.5), ("get_data", None)),
        id="id-float",
    ),
]

# The other elements of a mixed batch: answered before and after the shape's, and a
# notification that answers nothing.
BEFORE = request("filler", {"tag": "before"}, "filler-before")
NOTE = request("filler", {"tag": "note"}, notification=True)
AFTER = request("filler", ["after"], "filler-after")
BEFORE_ANSWER = result("before", "filler-before")
AFTER_ANSWER = result("after", "filler-after")


@dataclass
class Harness:
    """Calls one shape in every way."""

    shape: Shape
    runner: BlockingRunner
    aiohttp_client: AiohttpClient

    def router(self, logger: str = LOGGER) -> Router:
        return make_router(
            methods_of(TableMethods()),
            self.runner,
            logger=logger,
            debug=self.shape.debug,
            default_timeout=self.shape.default_timeout,
        )

    def context(self) -> CallContext:
        headers = {"X-Api-Token": TOKEN} if self.shape.credentials else {}
        return CallContext(headers=headers, authenticate=authenticate)

    async def single(self, router: Router) -> Any:
        return await call(router, self.shape.request, self.context())

    async def batch_alone(self, router: Router) -> Any:
        answer = await call(router, [self.shape.request], self.context())
        if answer is None:  # the batch held a notification only
            return None
        assert isinstance(answer, list)
        assert len(answer) == 1
        return answer[0]

    async def batch_mixed(self, router: Router) -> Any:
        return element_of(await call(router, self.mixed(), self.context()))

    def mixed(self) -> list[Any]:
        return [BEFORE, self.shape.request, NOTE, AFTER]

    async def post(self, body: Any) -> Any:
        service = TableService()
        service.debug = self.shape.debug
        service.method_timeout = self.shape.default_timeout
        client = await self.aiohttp_client(service.make_app())
        headers = {"Content-Type": "application/json"}
        if self.shape.credentials:
            headers["X-Api-Token"] = TOKEN
        response = await client.post("/api", data=json.dumps(body), headers=headers)
        raw = await response.read()
        if response.status == 204:
            assert raw == b""
            return None
        assert response.status == 200, raw
        assert response.content_type == "application/json"
        return json.loads(raw)


def element_of(answer: Any) -> Any:
    """The shape's element of a mixed batch's answer, after checking the other elements."""
    assert isinstance(answer, list)
    assert answer[0] == BEFORE_ANSWER
    assert answer[-1] == AFTER_ANSWER
    middle = answer[1:-1]
    assert len(middle) <= 1, answer
    return middle[0] if middle else None


class Recorder:
    """A call observer and a call wrapper (one that awaits the call) that record what they see."""

    def __init__(self) -> None:
        self.observed: list[tuple[str, int | None]] = []
        self.wrapped: list[str] = []

    def observe(self, method: str, duration: float, code: int | None) -> None:
        assert duration >= 0
        self.observed.append((method, code))

    def wrap(self, request: Request, call: Awaitable[Any]) -> Awaitable[Any]:
        self.wrapped.append(request.method)
        return self._wrapped(call)

    @staticmethod
    async def _wrapped(call: Awaitable[Any]) -> Any:
        return await call

    def observed_calls(self) -> list[tuple[str, int | None]]:
        return [entry for entry in self.observed if entry[0] != "filler"]

    def wrapped_calls(self) -> list[str]:
        return [method for method in self.wrapped if method != "filler"]


def expected_calls(shape: Shape) -> list[tuple[str, int | None]]:
    return [] if shape.observed is None else [shape.observed]


def debug_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    """``(method, outcome)`` of the router's per-call DEBUG lines, fillers left out."""
    return [
        (getattr(record, "rpc_method", "?"), getattr(record, "outcome", "?"))
        for record in caplog.records
        if record.name == LOGGER
        and record.levelno == logging.DEBUG
        and record.getMessage().startswith("call ")
        and getattr(record, "rpc_method", None) != "filler"
    ]


def expected_debug_lines(shape: Shape) -> list[tuple[str, str]]:
    if shape.observed is None:
        return []
    method, code = shape.observed
    return [(method, "ok" if code is None else f"error {code}")]


Way = Callable[[Harness, pytest.LogCaptureFixture], Awaitable[Any]]


async def batch_alone(h: Harness, caplog: pytest.LogCaptureFixture) -> Any:
    return await h.batch_alone(h.router())


async def batch_mixed(h: Harness, caplog: pytest.LogCaptureFixture) -> Any:
    return await h.batch_mixed(h.router())


async def with_observer(h: Harness, caplog: pytest.LogCaptureFixture) -> Any:
    router = h.router()
    recorder = Recorder()
    router.observers.append(recorder.observe)
    answer = await h.single(router)
    assert recorder.observed == expected_calls(h.shape)
    return answer


async def with_wrapper(h: Harness, caplog: pytest.LogCaptureFixture) -> Any:
    router = h.router()
    recorder = Recorder()
    router.call_wrappers.append(recorder.wrap)
    answer = await h.single(router)
    assert recorder.wrapped == [method for method, _ in expected_calls(h.shape)]
    return answer


async def with_debug_lines(h: Harness, caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    answer = await h.single(h.router())
    assert debug_lines(caplog) == expected_debug_lines(h.shape)
    return answer


async def instrumented_batch(h: Harness, caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    router = h.router()
    recorder = Recorder()
    router.observers.append(recorder.observe)
    router.call_wrappers.append(recorder.wrap)
    answer = await h.batch_mixed(router)
    assert recorder.observed_calls() == expected_calls(h.shape)
    assert recorder.wrapped_calls() == [method for method, _ in expected_calls(h.shape)]
    assert [method for method, _ in recorder.observed].count("filler") == 3
    assert debug_lines(caplog) == expected_debug_lines(h.shape)
    return answer


async def server(h: Harness, caplog: pytest.LogCaptureFixture) -> Any:
    return await h.post(h.shape.request)


async def server_batch(h: Harness, caplog: pytest.LogCaptureFixture) -> Any:
    return element_of(await h.post(h.mixed()))


WAYS: dict[str, Way] = {
    "batch-alone": batch_alone,
    "batch-mixed": batch_mixed,
    "observer": with_observer,
    "wrapper": with_wrapper,
    "debug-lines": with_debug_lines,
    "instrumented-batch": instrumented_batch,
    "server": server,
    "server-batch": server_batch,
}


@pytest.mark.parametrize("shape", SHAPES)
async def test_single_body_gets_the_table_answer(
    shape: Shape, blocking_runner: BlockingRunner, aiohttp_client: AiohttpClient
) -> None:
    """Way (a): the single body through ``Router.handle`` answers exactly the table's answer."""
    harness = Harness(shape, blocking_runner, aiohttp_client)
    answer = await harness.single(harness.router(REFERENCE_LOGGER))
    assert answer == shape.expected
    if not shape.debug:
        assert "secret" not in json.dumps(answer)
    if answer is not None:
        assert "id" in answer
        assert type(answer["id"]) is type(shape.expected["id"])


@pytest.mark.parametrize("way", list(WAYS))
@pytest.mark.parametrize("shape", SHAPES)
async def test_every_way_gives_the_single_answer(
    shape: Shape,
    way: str,
    blocking_runner: BlockingRunner,
    aiohttp_client: AiohttpClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Ways (b)-(f): the decoded answer is identical to the single body's, whatever the way."""
    harness = Harness(shape, blocking_runner, aiohttp_client)
    reference = await harness.single(harness.router(REFERENCE_LOGGER))
    assert reference == shape.expected
    answer = await WAYS[way](harness, caplog)
    assert answer == reference
    if answer is not None:
        assert type(answer["id"]) is type(reference["id"])
