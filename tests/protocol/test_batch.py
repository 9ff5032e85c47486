"""Batches: each element a task of its own, at most ``batch_concurrency`` at once, answers in order.

Regression tests of the defects the rebuild fixes (the old design ran each element in
the batch's own task up to its first wait):

1. a batch holding a method whose own time limit expires answers -32003 for that element
   and results for the others, over HTTP too (200, no dropped connection);
2. a method that uses ``asyncio.timeout`` itself and catches its ``TimeoutError`` answers
   its result, alone and in a batch;
3. inside an element ``asyncio.current_task()`` is one task from start to end, context
   variables stay in their element, and ``asyncio.TaskGroup`` works.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

import gemstone_aio as gemstone
from gemstone_aio.protocol import (
    BlockingRunner,
    CallContext,
    Invalid,
    Request,
    Router,
    current_context,
    exposed_method,
)
from gemstone_aio.protocol._batch import BatchRunner

from ._support import WAIT, call, make_router, methods_of, request, turns

LIMIT = 0.05
"""The time limit of ``stuck`` (seconds)."""

MARK: contextvars.ContextVar[str] = contextvars.ContextVar("tests_protocol_batch_mark")


async def double(value: int) -> int:
    await asyncio.sleep(0)
    return 2 * value


async def boom() -> None:
    await asyncio.sleep(0)
    raise ValueError("a child failed")


class BatchMethods:
    """Methods for batches; ``gated`` calls wait for ``gate`` and count themselves."""

    def __init__(self) -> None:
        super().__init__()  # MicroService.__init__ in BatchService
        self.gate = asyncio.Event()
        self.stuck_cancelled = asyncio.Event()
        self.full = asyncio.Event()
        self.full_at = 0  # ``full`` is set when this many gated calls run at once
        self.started = 0
        self.running = 0
        self.peak = 0
        self.cancelled = 0
        self.element_tasks: list[asyncio.Task[Any]] = []
        self.expected_context: CallContext | None = None

    @exposed_method(timeout=LIMIT)
    async def stuck(self) -> None:
        try:
            await asyncio.Event().wait()  # never set: only the time limit ends it
        finally:
            self.stuck_cancelled.set()

    @exposed_method()
    async def after_stuck(self) -> str:
        # Still running when ``stuck``'s limit expires in the same batch.
        await asyncio.wait_for(self.stuck_cancelled.wait(), WAIT)
        return "after"

    @exposed_method()
    async def echo(self, value: Any = None) -> Any:
        await asyncio.sleep(0)
        return value

    @exposed_method()
    async def own_timeout(self) -> str:
        try:
            async with asyncio.timeout(0.01):
                await asyncio.Event().wait()
        except TimeoutError:
            return "gave up in time"
        return "unreachable"

    @exposed_method()
    async def same_task(self) -> bool:
        before = asyncio.current_task()
        await asyncio.sleep(0)
        after = asyncio.current_task()
        await asyncio.sleep(0)
        return before is not None and before is after is asyncio.current_task()

    @exposed_method()
    async def mark(self, value: str) -> str | None:
        seen = MARK.get(None)
        MARK.set(value)
        await asyncio.sleep(0)
        assert MARK.get() == value
        return seen

    @exposed_method()
    async def task_group(self) -> list[object]:
        # The failing group is entered before the method's first await: its parent task
        # must be the element's own (it is cancelled, then uncancelled, by the group).
        outcome: list[object] = []
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(boom())
                group.create_task(asyncio.Event().wait())  # cancelled by the failure
        except* ValueError as failures:
            outcome.append(str(failures.exceptions[0]))
        async with asyncio.TaskGroup() as group:
            first = group.create_task(double(1))
            second = group.create_task(double(2))
        return [*outcome, first.result(), second.result()]

    @exposed_method()
    async def gated(self, index: int) -> int:
        task = asyncio.current_task()
        assert task is not None
        self.element_tasks.append(task)
        self.started += 1
        self.running += 1
        self.peak = max(self.peak, self.running)
        if self.running == self.full_at:
            self.full.set()
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.running -= 1
        return index

    @exposed_method()
    async def context_is_current(self) -> bool:
        return current_context() is self.expected_context


class BatchService(BatchMethods, gemstone.MicroService):
    """The same methods behind a real server."""

    name = "protocol-batch"


@pytest.fixture
def methods() -> BatchMethods:
    return BatchMethods()


@pytest.fixture
def router(methods: BatchMethods, blocking_runner: BlockingRunner) -> Router:
    return make_router(methods_of(methods), blocking_runner)


async def post(client: Any, body: Any) -> tuple[int, Any]:
    response = await client.post(
        "/api", data=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    raw = await response.read()
    return response.status, (json.loads(raw) if raw else None)


def results(answer: Any) -> list[Any]:
    assert isinstance(answer, list)
    return [element.get("result", element.get("error")) for element in answer]


# -- defect 1: a method's time limit in a batch ------------------------------------------


TIMED_OUT = {
    "code": -32003,
    "message": "Method timed out",
    "data": {"timeout": LIMIT, "limit": "method"},
}


async def test_time_limit_in_a_batch_answers_only_that_element(router: Router) -> None:
    """The element whose limit expires answers -32003; the others, running on, their results."""
    answer = await call(
        router,
        [
            request("echo", ["first"], 1),
            request("stuck", id=2),
            request("after_stuck", id=3),
            request("echo", {"value": "last"}, 4),
        ],
    )
    assert answer == [
        {"jsonrpc": "2.0", "result": "first", "id": 1},
        {"jsonrpc": "2.0", "error": TIMED_OUT, "id": 2},
        {"jsonrpc": "2.0", "result": "after", "id": 3},
        {"jsonrpc": "2.0", "result": "last", "id": 4},
    ]


async def test_time_limit_in_a_batch_over_http(aiohttp_client: AiohttpClient) -> None:
    """Through the real server: HTTP 200 with every element answered, then the server goes on."""
    client = await aiohttp_client(BatchService().make_app())
    status, answer = await post(
        client,
        [request("stuck", id=1), request("after_stuck", id=2), request("echo", [3], 3)],
    )
    assert status == 200
    assert answer == [
        {"jsonrpc": "2.0", "error": TIMED_OUT, "id": 1},
        {"jsonrpc": "2.0", "result": "after", "id": 2},
        {"jsonrpc": "2.0", "result": 3, "id": 3},
    ]
    # The same connection pool keeps working: nothing was torn down.
    status, answer = await post(client, request("echo", ["again"], 4))
    assert (status, answer) == (200, {"jsonrpc": "2.0", "result": "again", "id": 4})


async def test_several_time_limits_in_one_batch(router: Router) -> None:
    """Each element's limit is its own: two expiring elements do not spoil the third."""
    answer = await call(
        router, [request("stuck", id=1), request("echo", [2], 2), request("stuck", id=3)]
    )
    assert results(answer) == [TIMED_OUT, 2, TIMED_OUT]


# -- defect 2: the method's own asyncio.timeout ------------------------------------------


OWN = request("own_timeout", id=7)
GAVE_UP = {"jsonrpc": "2.0", "result": "gave up in time", "id": 7}


async def test_own_timeout_alone(router: Router) -> None:
    """A single call of a method that catches its own ``asyncio.timeout`` gets its result."""
    assert await call(router, OWN) == GAVE_UP


async def test_own_timeout_in_a_batch(router: Router) -> None:
    """Alone in a batch and among other elements, it answers the same result."""
    assert await call(router, [OWN]) == [GAVE_UP]
    answer = await call(router, [request("echo", [1], 1), OWN, OWN | {"id": 8}])
    assert answer == [
        {"jsonrpc": "2.0", "result": 1, "id": 1},
        GAVE_UP,
        GAVE_UP | {"id": 8},
    ]


async def test_own_timeout_over_http(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(BatchService().make_app())
    assert await post(client, OWN) == (200, GAVE_UP)
    assert await post(client, [OWN, request("echo", ["x"], 2)]) == (
        200,
        [GAVE_UP, {"jsonrpc": "2.0", "result": "x", "id": 2}],
    )


# -- defect 3: one task per element ------------------------------------------------------


async def test_current_task_is_the_same_before_and_after_the_first_await(router: Router) -> None:
    """Inside an element ``asyncio.current_task()`` is the same task from start to end."""
    assert await call(router, request("same_task", id=1)) == {
        "jsonrpc": "2.0",
        "result": True,
        "id": 1,
    }
    answer = await call(router, [request("same_task", id=n) for n in range(5)])
    assert results(answer) == [True] * 5


async def test_each_element_runs_in_a_task_of_its_own(
    methods: BatchMethods, router: Router
) -> None:
    """Not the task that awaits ``handle``, and not a sibling's."""
    methods.gate.set()
    await call(router, [request("gated", [n], n) for n in range(4)])
    assert len(set(methods.element_tasks)) == 4
    assert asyncio.current_task() not in methods.element_tasks


@pytest.mark.parametrize("concurrency", [1, 16])
async def test_a_context_variable_stays_in_its_element(
    blocking_runner: BlockingRunner, concurrency: int
) -> None:
    """What one element sets is seen neither by the others (one after another or at once) nor after."""
    router = make_router(methods_of(BatchMethods()), blocking_runner, batch_concurrency=concurrency)
    token = MARK.set("outside")
    try:
        answer = await call(router, [request("mark", [f"element {n}"], n) for n in range(4)])
        assert results(answer) == ["outside"] * 4  # each saw the batch's value, not a sibling's
        assert MARK.get() == "outside"
    finally:
        MARK.reset(token)


async def test_current_context_reaches_every_element(
    methods: BatchMethods, blocking_runner: BlockingRunner
) -> None:
    """Elements started later (when earlier ones finish) see the request's context too."""
    router = make_router(methods_of(methods), blocking_runner, batch_concurrency=1)
    context = CallContext()
    methods.expected_context = context
    answer = await call(router, [request("context_is_current", id=n) for n in range(3)], context)
    assert results(answer) == [True] * 3


async def test_task_group_inside_an_element(router: Router) -> None:
    """A TaskGroup works in an element, a failing child included, beside other elements."""
    expected = ["a child failed", 2, 4]
    assert await call(router, request("task_group", id=1)) == {
        "jsonrpc": "2.0",
        "result": expected,
        "id": 1,
    }
    answer = await call(router, [request("task_group", id=1), request("echo", [2], 2)])
    assert results(answer) == [expected, 2]


async def test_one_task_per_element_over_http(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(BatchService().make_app())
    status, answer = await post(
        client,
        [
            request("same_task", id=1),
            request("task_group", id=2),
            request("mark", ["a"], 3),
            request("mark", ["b"], 4),
        ],
    )
    assert status == 200
    assert results(answer) == [True, ["a child failed", 2, 4], None, None]


# -- batch_concurrency and cancellation -------------------------------------------------


@pytest.mark.parametrize(("concurrency", "length"), [(1, 4), (3, 10), (16, 20), (0, 3)])
async def test_batch_concurrency_bounds_the_running_elements(
    blocking_runner: BlockingRunner, concurrency: int, length: int
) -> None:
    """At most ``batch_concurrency`` elements run at once (at least one); all are answered in order."""
    methods = BatchMethods()
    room = max(concurrency, 1)
    methods.full_at = room
    router = make_router(methods_of(methods), blocking_runner, batch_concurrency=concurrency)
    batch = asyncio.create_task(call(router, [request("gated", [n], n) for n in range(length)]))
    await asyncio.wait_for(methods.full.wait(), WAIT)
    await turns()
    assert (methods.started, methods.running) == (room, room)
    methods.gate.set()
    answer = await asyncio.wait_for(batch, WAIT)
    assert results(answer) == list(range(length))
    assert methods.peak == room
    assert methods.started == length


async def test_a_cancelled_batch_cancels_its_elements_and_leaves_no_task(
    methods: BatchMethods, blocking_runner: BlockingRunner
) -> None:
    """Cancelling the task awaiting ``handle`` cancels the running elements and starts no other."""
    methods.full_at = 2
    router = make_router(methods_of(methods), blocking_runner, batch_concurrency=2)
    before = asyncio.all_tasks()
    batch = asyncio.create_task(call(router, [request("gated", [n], n) for n in range(5)]))
    await asyncio.wait_for(methods.full.wait(), WAIT)
    batch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await batch
    assert methods.cancelled == 2
    assert methods.started == 2  # the waiting elements never started
    assert methods.running == 0
    assert all(task.done() and task.cancelled() for task in methods.element_tasks)
    assert asyncio.all_tasks() <= before
    methods.gate.set()
    await turns()
    assert methods.started == 2


async def test_a_batch_cancelled_by_an_outer_time_limit(
    methods: BatchMethods, router: Router
) -> None:
    """An ``asyncio.timeout`` around ``handle`` ends the batch with TimeoutError, elements included."""
    before = asyncio.all_tasks()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await call(router, [request("gated", [n], n) for n in range(3)])
    assert methods.cancelled == 3
    assert asyncio.all_tasks() <= before


# -- whole-batch answers ---------------------------------------------------------------


async def test_an_all_notification_batch_answers_nothing(
    router: Router, aiohttp_client: AiohttpClient
) -> None:
    batch = [
        request("echo", [1], notification=True),
        request("nope", notification=True),
        request("stuck", notification=True),
    ]
    assert await call(router, batch) is None
    client = await aiohttp_client(BatchService().make_app())
    assert await post(client, batch) == (204, None)


async def test_an_empty_batch_is_an_invalid_request(router: Router) -> None:
    assert await call(router, []) == {
        "jsonrpc": "2.0",
        "error": {
            "code": -32600,
            "message": "Invalid Request",
            "data": "an empty batch is not a request",
        },
        "id": None,
    }


async def test_a_too_long_batch_is_refused_whole(
    blocking_runner: BlockingRunner, aiohttp_client: AiohttpClient
) -> None:
    methods = BatchMethods()
    methods.gate.set()
    router = make_router(methods_of(methods), blocking_runner, max_batch_length=3)
    assert results(await call(router, [request("gated", [n], n) for n in range(3)])) == [0, 1, 2]
    answer = await call(router, [request("gated", [n], n) for n in range(4)])
    assert answer == {
        "jsonrpc": "2.0",
        "error": {
            "code": -32004,
            "message": "Request too large",
            "data": "batch of 4 requests exceeds the limit of 3",
        },
        "id": None,
    }
    assert methods.started == 3  # nothing of the refused batch ran
    service = BatchService()
    service.max_batch_length = 3
    client = await aiohttp_client(service.make_app())
    assert await post(client, [request("echo", [n], n) for n in range(4)]) == (200, answer)


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("max_depth", "levels", "refused"),
    [
        # An element's params nest at level 3 (batch 1, element 2): depth = 2 + levels.
        (8, 6, False),
        (8, 7, True),
        (3, 1, False),
        (3, 2, True),
        (1, 0, True),  # a batch of objects nests two levels
    ],
)
async def test_too_deep_json_in_a_batch(
    blocking_runner: BlockingRunner, max_depth: int, levels: int, refused: bool
) -> None:
    router = make_router(methods_of(BatchMethods()), blocking_runner, max_json_depth=max_depth)
    element = request("echo", id=1)
    if levels:
        element["params"] = nested(levels)
    body = [element, request("echo", id=2)]
    answer = await call(router, body)
    if refused:
        assert answer == {
            "jsonrpc": "2.0",
            "error": {
                "code": -32004,
                "message": "Request too large",
                "data": f"JSON nests deeper than {max_depth} levels",
            },
            "id": None,
        }
    else:
        assert isinstance(answer, list)
        assert [element["id"] for element in answer] == [1, 2]


async def test_json_deeper_than_the_parser_takes_in_a_batch(router: Router) -> None:
    body = "[" + "[" * 300 + "]" * 300 + "]"
    answer = await call(router, body)
    assert answer["error"]["code"] == -32004
    assert answer["id"] is None


async def test_invalid_elements_are_answered_in_place(router: Router) -> None:
    answer = await call(
        router,
        [
            request("echo", ["a"], 1),
            1,
            {"jsonrpc": "2.0", "method": "echo", "id": True},
            request("echo", ["b"], notification=True),
            {"jsonrpc": "2.0", "method": "echo", "params": "x", "id": 5},
            request("echo", ["c"], 6),
        ],
    )
    assert [
        (element["id"], element.get("result", element.get("error", {}).get("code")))
        for element in answer
    ] == [
        (1, "a"),
        (None, -32600),
        (None, -32600),
        (5, -32600),
        (6, "c"),
    ]


# -- the runner on its own ---------------------------------------------------------------


async def test_answers_keep_the_order_of_the_elements_not_of_completion() -> None:
    """Elements finishing in reverse order are still answered in the batch's order."""
    releases = [asyncio.Event() for _ in range(4)]
    answered: list[int] = []

    async def answer(parsed: Request | Invalid, context: CallContext) -> bytes | None:
        assert isinstance(parsed, Request)
        assert isinstance(parsed.id, int)
        await releases[parsed.id].wait()
        answered.append(parsed.id)
        return json.dumps({"id": parsed.id}).encode()

    runner = BatchRunner(answer, max_batch_length=None, max_json_depth=None, batch_concurrency=8)
    batch = [request("m", id=n) for n in range(4)]
    task = asyncio.create_task(runner.run(batch, 100, CallContext()))
    for event in reversed(releases):
        event.set()
        await turns()
    raw = await asyncio.wait_for(task, WAIT)
    assert raw is not None
    assert answered == [3, 2, 1, 0]
    assert [element["id"] for element in json.loads(raw)] == [0, 1, 2, 3]


async def test_invalid_elements_never_reach_the_answer_step() -> None:
    seen: list[Any] = []

    async def answer(parsed: Request | Invalid, context: CallContext) -> bytes | None:
        seen.append(parsed)
        return None

    runner = BatchRunner(answer, max_batch_length=None, max_json_depth=None, batch_concurrency=8)
    raw = await runner.run([1, {"jsonrpc": "2.0", "method": "m"}, "x"], 100, CallContext())
    assert raw is not None
    assert [element["error"]["code"] for element in json.loads(raw)] == [-32600, -32600]
    assert len(seen) == 1
    assert isinstance(seen[0], Request)
    assert seen[0].is_notification


class Escape(BaseException):
    """What only a broken answer step would let out (it is no Exception)."""


async def test_an_escaping_base_exception_fails_the_batch_and_cancels_the_rest() -> None:
    cancelled: list[int] = []

    async def answer(parsed: Request | Invalid, context: CallContext) -> bytes | None:
        assert isinstance(parsed, Request)
        if parsed.id == 0:
            await asyncio.sleep(0)
            raise Escape
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            assert isinstance(parsed.id, int)
            cancelled.append(parsed.id)
            raise
        return None

    runner = BatchRunner(answer, max_batch_length=None, max_json_depth=None, batch_concurrency=8)
    before = asyncio.all_tasks()
    with pytest.raises(Escape):
        await runner.run([request("m", id=n) for n in range(3)], 100, CallContext())
    assert sorted(cancelled) == [1, 2]
    assert asyncio.all_tasks() <= before


@pytest.mark.parametrize("concurrency", [1, 16])
async def test_elements_that_never_wait_start_without_nesting(concurrency: int) -> None:
    """A long batch of elements that end at once: every one answered, in order, each in a
    task of its own, and the stack does not grow with the batch (on Python 3.12+ such
    elements start eagerly and end inside the loop that starts the next one)."""
    depths: list[int] = []
    tasks: set[asyncio.Task[Any] | None] = set()

    async def answer(parsed: Request | Invalid, context: CallContext) -> bytes | None:
        assert isinstance(parsed, Request)
        depths.append(len(inspect.stack(0)))
        tasks.add(asyncio.current_task())
        return json.dumps({"id": parsed.id}).encode()

    runner = BatchRunner(
        answer, max_batch_length=None, max_json_depth=None, batch_concurrency=concurrency
    )
    batch = [request("m", id=n) for n in range(1000)]
    outer = asyncio.current_task()
    raw = await asyncio.wait_for(runner.run(batch, 30_000, CallContext()), WAIT)
    assert raw is not None
    assert [element["id"] for element in json.loads(raw)] == list(range(1000))
    assert len(tasks) == 1000
    assert outer not in tasks
    assert None not in tasks
    assert max(depths) - min(depths) <= 5, (min(depths), max(depths))


@pytest.mark.parametrize("how", ["raises", "cancelled"])
async def test_an_element_failing_at_once_stops_the_batch(how: str) -> None:
    """An element that fails the batch before it ever waits (eagerly started on Python
    3.12+): no element after it starts."""
    ran: list[int] = []
    gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    gone.cancel()

    async def answer(parsed: Request | Invalid, context: CallContext) -> bytes | None:
        assert isinstance(parsed, Request)
        assert isinstance(parsed.id, int)
        ran.append(parsed.id)
        if parsed.id == 1:
            if how == "raises":
                raise Escape
            await gone  # already cancelled: CancelledError without a wait
        return b"{}"

    runner = BatchRunner(answer, max_batch_length=None, max_json_depth=None, batch_concurrency=1)
    expected = Escape if how == "raises" else asyncio.CancelledError
    with pytest.raises(expected):
        await runner.run([request("m", id=n) for n in range(6)], 100, CallContext())
    assert ran == [0, 1]


async def test_the_applications_task_factory_makes_the_element_tasks() -> None:
    loop = asyncio.get_running_loop()
    made: list[asyncio.Task[Any]] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **options: Any) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=loop, **options)
        made.append(task)
        return task

    async def answer(parsed: Request | Invalid, context: CallContext) -> bytes | None:
        assert asyncio.current_task() in made
        return b"{}"

    runner = BatchRunner(answer, max_batch_length=None, max_json_depth=None, batch_concurrency=4)
    loop.set_task_factory(factory)
    try:
        raw = await runner.run([request("m", id=n) for n in range(10)], 100, CallContext())
    finally:
        loop.set_task_factory(None)
    assert raw == b"[" + b",".join([b"{}"] * 10) + b"]"
    assert len(made) == 10
