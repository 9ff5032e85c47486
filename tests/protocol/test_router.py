"""The router: bodies in, answers out, one call path (invoke, then outcome) for every call.

Includes the regression test of defect 4 of the old design: a ``TimeoutError`` that the
method raises itself is an internal error (-32603), never -32003, which means only that a
time limit of the framework expired.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Awaitable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

import gemstone_aio as gemstone
from gemstone_aio.errors import InternalError, JsonRpcError, MethodNotFound
from gemstone_aio.protocol import (
    BlockingRunner,
    CallContext,
    Invalid,
    Request,
    Router,
    exposed_method,
)

from ._support import LOGGER, WAIT, call, make_router, method_table, request, turns

# -- methods -----------------------------------------------------------------------------


class Teapot(JsonRpcError):
    """A service's own error, in the server range."""

    code = -32050
    default_message = "I am a teapot"


@exposed_method()
async def add(a: int, b: int = 0) -> int:
    return a + b


@exposed_method()
async def echo(value: Any = None) -> Any:
    return value


@exposed_method()
async def fail() -> None:
    raise ValueError("secret internal detail")


@exposed_method()
async def teapot() -> None:
    raise Teapot(data={"brew": "tea"})


@exposed_method()
async def unserialisable() -> object:
    return object()


@exposed_method()
async def raises_timeout() -> None:
    raise TimeoutError("the method's own")


@exposed_method(timeout=WAIT)
async def raises_timeout_limited() -> None:
    await asyncio.sleep(0)
    raise TimeoutError("the method's own")


@exposed_method()
async def own_limit_expires() -> None:
    async with asyncio.timeout(0.01):  # the method's own limit, not caught
        await asyncio.Event().wait()


@exposed_method(timeout=WAIT)
async def own_limit_expires_limited() -> None:
    async with asyncio.timeout(0.01):
        await asyncio.Event().wait()


@exposed_method()
def blocking_raises_timeout() -> None:
    raise TimeoutError("the method's own")


@exposed_method(timeout=0.05)
async def limited() -> None:
    await asyncio.Event().wait()


@exposed_method()
async def unlimited() -> None:
    await asyncio.Event().wait()


@exposed_method(private=True)
async def secret(code: int) -> str:
    return f"secret {code}"


@exposed_method(requires_handler_reference=True)
async def with_handler(handler: Any, x: int) -> list[Any]:
    return [handler, x]


@exposed_method()
def blocking_echo(value: Any) -> list[Any]:
    return [value, threading.current_thread() is not threading.main_thread()]


ALL = method_table(
    add,
    echo,
    fail,
    teapot,
    unserialisable,
    raises_timeout,
    raises_timeout_limited,
    own_limit_expires,
    own_limit_expires_limited,
    blocking_raises_timeout,
    limited,
    unlimited,
    secret,
    with_handler,
    blocking_echo,
)


@pytest.fixture
def router(blocking_runner: BlockingRunner) -> Router:
    return make_router(ALL, blocking_runner)


def error_of(answer: Any) -> dict[str, Any]:
    assert isinstance(answer, dict)
    assert "result" not in answer
    error = answer["error"]
    assert isinstance(error, dict)
    return error


# -- MethodEntry -------------------------------------------------------------------------


def test_method_entry_knows_how_to_run_the_method() -> None:
    entries = method_table(add, blocking_echo, with_handler)
    assert entries["add"].is_async
    assert not entries["blocking_echo"].is_async
    assert entries["add"].semaphore is None
    # The handler argument is not a param: the binder skips it.
    assert entries["with_handler"].binder.positional_names == ("x",)


def test_method_entry_of_a_bound_method_and_its_bound() -> None:
    class Owner:
        @exposed_method(max_concurrency=2)
        async def bounded(self) -> None:
            return None

        @exposed_method()
        def plain(self) -> None:
            return None

    owner = Owner()
    entries = method_table(owner.bounded, owner.plain, owner=owner)
    assert entries["bounded"].is_async
    assert entries["bounded"].owner is owner
    assert entries["bounded"].semaphore is not None
    assert not entries["plain"].is_async
    assert entries["plain"].binder.positional_names == ()


def test_the_router_keeps_its_own_table() -> None:
    table = method_table(add)
    router = Router(table, run_blocking=asyncio.sleep, logger=logging.getLogger(LOGGER))
    table.clear()
    assert list(router.methods) == ["add"]


# -- bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"jsonrpc": "2.0", "method"', id="truncated"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff\xfe", id="not-utf-8"),
        pytest.param(b'{"jsonrpc": "2.0", "method": "echo", "params": [NaN], "id": 1}', id="nan"),
        pytest.param(b'[{"jsonrpc": "2.0", "method": "echo", "id": 1},', id="batch-truncated"),
    ],
)
async def test_a_body_that_is_not_json_is_a_parse_error(router: Router, body: bytes) -> None:
    assert await call(router, body) == {
        "jsonrpc": "2.0",
        "error": {"code": -32700, "message": "Parse error"},
        "id": None,
    }


async def test_json_deeper_than_max_json_depth(blocking_runner: BlockingRunner) -> None:
    """The body is level 1, its params level 2: max_json_depth=3 takes one list inside them."""
    router = make_router(ALL, blocking_runner, max_json_depth=3)
    assert await call(router, request("echo", [[1]], 1)) == {
        "jsonrpc": "2.0",
        "result": [1],
        "id": 1,
    }
    assert await call(router, request("echo", [[[1]]], 1)) == {
        "jsonrpc": "2.0",
        "error": {
            "code": -32004,
            "message": "Request too large",
            "data": "JSON nests deeper than 3 levels",
        },
        "id": None,
    }


async def test_json_deeper_than_the_parser_takes(router: Router) -> None:
    body = '{"jsonrpc": "2.0", "method": "echo", "params": ' + "[" * 300 + "]" * 300 + "}"
    answer = await call(router, body)
    assert error_of(answer)["code"] == -32004
    assert answer["id"] is None


async def test_an_invalid_entry_is_answered_with_its_error_and_observed_by_nobody(
    router: Router,
) -> None:
    codes: list[int | None] = []
    router.observers.append(lambda method, duration, code: codes.append(code))
    invalid = Invalid(InternalError(), 5)
    assert json.loads(await router.answer(invalid, CallContext()) or b"") == {
        "jsonrpc": "2.0",
        "error": {"code": -32603, "message": "Internal error"},
        "id": 5,
    }
    assert codes == []


async def test_invoke_returns_the_result_or_raises(router: Router) -> None:
    assert await router.invoke("add", {"a": 1, "b": 2}, CallContext()) == 3
    with pytest.raises(MethodNotFound):
        await router.invoke("missing", None, CallContext())
    with pytest.raises(ValueError, match="secret"):
        await router.invoke("fail", None, CallContext())


# -- outcomes ----------------------------------------------------------------------------


async def test_a_service_error_is_answered_as_it_is(
    router: Router, caplog: pytest.LogCaptureFixture
) -> None:
    answer = await call(router, request("teapot", id=1))
    assert error_of(answer) == {"code": -32050, "message": "I am a teapot", "data": {"brew": "tea"}}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_internal_error_is_logged_with_its_traceback(
    router: Router, caplog: pytest.LogCaptureFixture
) -> None:
    answer = await call(router, request("fail", id=1))
    assert error_of(answer) == {"code": -32603, "message": "Internal error"}
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.name == LOGGER
    assert "secret internal detail" in (record.exc_text or "")


def test_error_for_maps_exceptions(blocking_runner: BlockingRunner) -> None:
    router = make_router(ALL, blocking_runner)
    debugging = make_router(ALL, blocking_runner, debug=True)
    teapot_error = Teapot()
    assert router.error_for("m", teapot_error) is teapot_error
    plain = router.error_for("m", KeyError("k"))
    assert isinstance(plain, InternalError)
    assert plain.data is None
    assert debugging.error_for("m", KeyError("k")).data == {"class": "KeyError", "message": "'k'"}


async def test_an_unserialisable_result_is_an_internal_error(
    router: Router, caplog: pytest.LogCaptureFixture
) -> None:
    codes: list[int | None] = []
    router.observers.append(lambda method, duration, code: codes.append(code))
    answer = await call(router, request("unserialisable", id=1))
    assert answer == {
        "jsonrpc": "2.0",
        "error": {"code": -32603, "message": "Internal error"},
        "id": 1,
    }
    assert codes == [-32603]
    assert any("cannot be serialised" in r.getMessage() for r in caplog.records)
    # A notification's result is never serialised: nothing to answer, nothing failed.
    assert await call(router, request("unserialisable", notification=True)) is None
    assert codes == [-32603, None]


async def test_a_failed_notification_is_logged_not_answered(
    router: Router, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    assert await call(router, request("missing", notification=True)) is None
    assert any(
        r.levelno == logging.INFO
        and r.getMessage().startswith("notification 'missing' failed: -32601")
        for r in caplog.records
    )


# -- defect 4: the method's own TimeoutError ---------------------------------------------


OWN_TIMEOUTS = [
    "raises_timeout",
    "raises_timeout_limited",
    "own_limit_expires",
    "own_limit_expires_limited",
    "blocking_raises_timeout",
]


@pytest.mark.parametrize("method", OWN_TIMEOUTS)
@pytest.mark.parametrize("default_timeout", [None, WAIT])
async def test_a_timeout_error_of_the_method_is_an_internal_error(
    blocking_runner: BlockingRunner, method: str, default_timeout: float | None
) -> None:
    """With or without a framework limit, the method's own TimeoutError answers -32603."""
    router = make_router(ALL, blocking_runner, default_timeout=default_timeout)
    internal = {"code": -32603, "message": "Internal error"}
    assert error_of(await call(router, request(method, id=1))) == internal
    answer = await call(router, [request(method, id=1), request("add", [1, 2], 2)])
    assert answer == [
        {"jsonrpc": "2.0", "error": internal, "id": 1},
        {"jsonrpc": "2.0", "result": 3, "id": 2},
    ]


class TimeoutService(gemstone.MicroService):
    name = "protocol-own-timeouts"

    @gemstone.exposed_method()
    async def raises_timeout(self) -> None:
        raise TimeoutError("the method's own")

    @gemstone.exposed_method(timeout=WAIT)
    async def raises_timeout_limited(self) -> None:
        await asyncio.sleep(0)
        raise TimeoutError("the method's own")

    @gemstone.exposed_method()
    def blocking_raises_timeout(self) -> None:
        raise TimeoutError("the method's own")


async def test_a_timeout_error_of_the_method_over_http(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(TimeoutService().make_app())
    names = ["raises_timeout", "raises_timeout_limited", "blocking_raises_timeout"]
    body = [request(name, id=n) for n, name in enumerate(names)]
    response = await client.post(
        "/api", data=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert response.status == 200
    answer = await response.json()
    assert [element["error"]["code"] for element in answer] == [-32603] * 3


# -- framework time limits ---------------------------------------------------------------


async def test_the_method_time_limit_beats_the_default(blocking_runner: BlockingRunner) -> None:
    router = make_router(ALL, blocking_runner, default_timeout=WAIT)
    assert error_of(await call(router, request("limited", id=1))) == {
        "code": -32003,
        "message": "Method timed out",
        "data": {"timeout": 0.05, "limit": "method"},
    }


async def test_the_default_time_limit(
    blocking_runner: BlockingRunner, caplog: pytest.LogCaptureFixture
) -> None:
    router = make_router(ALL, blocking_runner, default_timeout=0.05)
    assert error_of(await call(router, request("unlimited", id=1))) == {
        "code": -32003,
        "message": "Method timed out",
        "data": {"timeout": 0.05, "limit": "service"},
    }
    assert any(
        r.levelno == logging.WARNING
        and "unlimited timed out after 0.05 s (service limit)" in r.getMessage()
        for r in caplog.records
    )


async def test_a_blocking_method_time_limit_does_not_wait_for_the_thread(
    blocking_runner: BlockingRunner,
) -> None:
    release = threading.Event()
    finished = threading.Event()

    @exposed_method(name="hold", timeout=0.05)
    def hold() -> str:
        try:
            assert release.wait(WAIT)
            return "released"
        finally:
            finished.set()

    router = make_router(method_table(hold), blocking_runner)
    try:
        answer = await call(router, request("hold", id=1))
        assert error_of(answer)["code"] == -32003
        assert not finished.is_set()  # answered while the thread still runs
    finally:
        release.set()
    assert await asyncio.get_running_loop().run_in_executor(None, finished.wait, WAIT)


async def test_max_concurrency_bounds_the_calls_of_a_method(
    blocking_runner: BlockingRunner,
) -> None:
    gate = asyncio.Event()
    state = {"running": 0, "peak": 0}
    two_running = asyncio.Event()

    @exposed_method(name="bounded", max_concurrency=2)
    async def bounded(n: int) -> int:
        state["running"] += 1
        state["peak"] = max(state["peak"], state["running"])
        if state["running"] == 2:
            two_running.set()
        try:
            await gate.wait()
        finally:
            state["running"] -= 1
        return n

    router = make_router(method_table(bounded), blocking_runner)
    calls = [asyncio.create_task(call(router, request("bounded", [n], n))) for n in range(5)]
    await asyncio.wait_for(two_running.wait(), WAIT)
    await turns()
    assert state["running"] == 2
    gate.set()
    answers = await asyncio.wait_for(asyncio.gather(*calls), WAIT)
    assert [answer["result"] for answer in answers] == list(range(5))
    assert state["peak"] == 2


# -- access and the handler object -------------------------------------------------------


class Access:
    """An access check that counts its runs."""

    def __init__(self, identity: Any) -> None:
        self.identity = identity
        self.runs = 0

    async def __call__(self, context: CallContext) -> Any:
        self.runs += 1
        await asyncio.sleep(0)
        return self.identity


async def test_access_is_checked_before_the_params(router: Router) -> None:
    """Without credentials a caller learns nothing of the params: -32001 whatever they are."""
    denied = Access(None)
    for params in ({"code": 1}, {"code": "x"}, {"nope": 1}, [1, 2, 3]):
        answer = await call(router, request("secret", params, 1), CallContext(authenticate=denied))
        assert error_of(answer) == {"code": -32001, "message": "Access denied"}
    admitted = CallContext(authenticate=Access("alice"))
    assert error_of(await call(router, request("secret", {"code": "x"}, 1), admitted))["code"] == (
        -32602
    )
    assert await call(router, request("secret", [7], 1), admitted) == {
        "jsonrpc": "2.0",
        "result": "secret 7",
        "id": 1,
    }


async def test_a_context_without_access_check_is_anonymous(router: Router) -> None:
    assert error_of(await call(router, request("secret", [1], 1)))["code"] == -32001


async def test_the_access_check_runs_once_per_context(router: Router) -> None:
    """However many private calls a batch makes, concurrently, the check runs once."""
    access = Access("alice")
    context = CallContext(authenticate=access)
    answer = await call(router, [request("secret", [n], n) for n in range(5)], context)
    assert [element["result"] for element in answer] == [f"secret {n}" for n in range(5)]
    assert access.runs == 1
    await call(router, request("secret", [9], 9), context)
    assert access.runs == 1


async def test_public_methods_never_run_the_access_check(router: Router) -> None:
    access = Access("alice")
    await call(
        router, [request("add", [1], 1), request("missing", id=2)], CallContext(authenticate=access)
    )
    assert access.runs == 0


async def test_the_handler_object_is_the_first_argument(router: Router) -> None:
    made: list[CallContext] = []

    def make_handler(context: CallContext) -> str:
        made.append(context)
        return "the handler"

    context = CallContext(make_handler=make_handler)
    answer = await call(
        router, [request("with_handler", [1], 1), request("with_handler", {"x": 2}, 2)], context
    )
    assert [element["result"] for element in answer] == [["the handler", 1], ["the handler", 2]]
    assert made == [context]  # built once, on first use


async def test_no_handler_object_outside_http_is_an_internal_error(router: Router) -> None:
    assert error_of(await call(router, request("with_handler", [1], 1)))["code"] == -32603


# -- blocking methods --------------------------------------------------------------------


async def test_a_blocking_method_runs_in_the_runner(router: Router) -> None:
    assert await call(router, request("blocking_echo", [5], 1)) == {
        "jsonrpc": "2.0",
        "result": [5, True],
        "id": 1,
    }


@pytest.fixture
def one_thread_no_waiting() -> Iterator[BlockingRunner]:
    runner = BlockingRunner(ThreadPoolExecutor(1), max_workers=1, max_waiting=0)
    yield runner
    runner.shutdown(wait=True)


async def test_an_overloaded_runner_answers_server_overloaded(
    one_thread_no_waiting: BlockingRunner,
) -> None:
    release = threading.Event()
    started = asyncio.Event()
    loop = asyncio.get_running_loop()

    @exposed_method(name="hold")
    def hold() -> str:
        loop.call_soon_threadsafe(started.set)
        assert release.wait(WAIT)
        return "done"

    router = make_router(method_table(hold), one_thread_no_waiting)
    try:
        first = asyncio.create_task(call(router, request("hold", id=1)))
        await asyncio.wait_for(started.wait(), WAIT)
        answer = await call(router, request("hold", id=2))
        assert error_of(answer)["code"] == -32002
        assert error_of(answer)["message"] == "Server overloaded"
    finally:
        release.set()
    assert (await asyncio.wait_for(first, WAIT))["result"] == "done"


# -- observers, wrappers, DEBUG lines ----------------------------------------------------


async def test_every_observer_is_told_every_call(router: Router) -> None:
    first: list[tuple[str, int | None]] = []
    second: list[tuple[str, int | None]] = []
    router.observers.append(lambda method, duration, code: first.append((method, code)))
    router.observers.append(lambda method, duration, code: second.append((method, code)))
    await call(
        router,
        [
            request("add", [1], 1),
            request("fail", id=2),
            request("missing", notification=True),
            {"jsonrpc": "2.0", "method": 5, "id": 4},  # invalid: no call to observe
        ],
    )
    expected = [("add", None), ("fail", -32603), ("missing", -32601)]
    assert sorted(first, key=str) == sorted(expected, key=str)
    assert second == first


async def test_call_wrappers_nest_in_order_and_see_the_raw_outcome(router: Router) -> None:
    events: list[str] = []

    def wrapper(name: str) -> Any:
        def wrap(request: Request, call: Awaitable[Any]) -> Awaitable[Any]:
            async def run() -> Any:
                events.append(f"{name} enter {request.method}")
                try:
                    result = await call
                except Exception as exc:
                    events.append(f"{name} raised {type(exc).__name__}")
                    raise
                events.append(f"{name} returned {result!r}")
                return result

            return run()

        return wrap

    router.call_wrappers.extend([wrapper("inner"), wrapper("outer")])
    assert (await call(router, request("add", [1, 1], 1)))["result"] == 2
    assert events == [
        "outer enter add",
        "inner enter add",
        "inner returned 2",
        "outer returned 2",
    ]
    events.clear()
    assert error_of(await call(router, request("fail", id=1)))["code"] == -32603
    assert events == [
        "outer enter fail",
        "inner enter fail",
        "inner raised ValueError",
        "outer raised ValueError",
    ]
    events.clear()
    assert error_of(await call(router, request("missing", id=1)))["code"] == -32601
    assert events[-1] == "outer raised MethodNotFound"


async def test_debug_lines_carry_the_method_duration_and_outcome(
    router: Router, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    await call(router, [request("add", [1], 1), request("missing", id=2)])
    lines = {
        r.__dict__["rpc_method"]: r.__dict__ for r in caplog.records if r.levelno == logging.DEBUG
    }
    assert set(lines) == {"add", "missing"}
    assert lines["add"]["outcome"] == "ok"
    assert lines["missing"]["outcome"] == "error -32601"
    assert all(line["duration_ms"] >= 0 for line in lines.values())


async def test_no_debug_line_without_debug_level(
    router: Router, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    await call(router, request("add", [1], 1))
    assert not [r for r in caplog.records if r.levelno == logging.DEBUG]


# -- cancellation ------------------------------------------------------------------------


async def test_a_cancelled_single_call_is_not_answered(router: Router) -> None:
    codes: list[int | None] = []
    router.observers.append(lambda method, duration, code: codes.append(code))
    task = asyncio.create_task(call(router, request("unlimited", id=1)))
    await turns()
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert codes == []  # a cancelled call is no outcome of the method
