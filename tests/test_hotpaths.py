"""The fast paths of the endpoint keep the contract: batch bounds, order, params errors, timing."""

from __future__ import annotations

import asyncio
import contextvars
import json
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

import gemstone_aio as gemstone
from gemstone_aio.protocol import CallContext
from gemstone_aio.protocol._jsonrpc import nesting_exceeds
from gemstone_aio.server import POOL_KEY, ROUTER_KEY


class Tracked(gemstone.MicroService):
    name = "hotpaths_tracked"
    batch_concurrency = 3

    def __init__(self) -> None:
        super().__init__()
        self.running = 0
        self.most = 0

    @gemstone.exposed_method()
    async def step(self, n: int) -> int:
        self.running += 1
        self.most = max(self.most, self.running)
        for _ in range(5):  # give the other batch elements the loop
            await asyncio.sleep(0)
        self.running -= 1
        return n * 10

    @gemstone.exposed_method()
    def plain(self, a: int, *, b: str = "x") -> str:
        return f"{a}{b}"

    @gemstone.exposed_method()
    async def with_extra(self, a: int, **extra: int) -> dict[str, int]:
        return {"a": a, **extra}

    @gemstone.exposed_method()
    async def only_positional(self, a: int, /, b: int) -> int:
        return a - b


async def rpc(client: Any, body: Any) -> tuple[int, Any]:
    response = await client.post(
        "/api", data=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    text = await response.text()
    return response.status, (json.loads(text) if text else None)


async def test_batch_runs_at_most_batch_concurrency_elements_and_keeps_order(
    aiohttp_client: AiohttpClient,
) -> None:
    service = Tracked()
    client = await aiohttp_client(service.make_app())
    batch: list[Any] = [
        {"jsonrpc": "2.0", "method": "step", "params": [i], "id": i} for i in range(10)
    ]
    batch.insert(4, {"jsonrpc": "2.0", "method": 7, "id": "bad"})
    batch.insert(6, {"jsonrpc": "2.0", "method": "step", "params": [99]})  # a notification
    status, answer = await rpc(client, batch)
    assert status == 200
    assert service.most == 3
    assert [item["id"] for item in answer] == [0, 1, 2, 3, "bad", 4, 5, 6, 7, 8, 9]
    assert answer[4]["error"]["code"] == -32600
    assert [item["result"] for item in answer if "result" in item] == [i * 10 for i in range(10)]


async def test_a_starred_key_is_refused_alone_for_a_named_only_method(
    aiohttp_client: AiohttpClient,
) -> None:
    client = await aiohttp_client(Tracked().make_app())
    body = {"jsonrpc": "2.0", "method": "plain", "params": {"*args": [1], "b": 2}, "id": 1}
    status, answer = await rpc(client, body)
    assert status == 200
    assert answer["error"]["code"] == -32602
    assert answer["error"]["data"] == [
        {"type": "extra_forbidden", "loc": ["*args"], "msg": "Extra inputs are not permitted"}
    ]


async def test_named_and_positional_only_params_bind_as_before(
    aiohttp_client: AiohttpClient,
) -> None:
    client = await aiohttp_client(Tracked().make_app())
    calls = [
        {"jsonrpc": "2.0", "method": "plain", "params": {"a": "4", "b": "y"}, "id": 1},
        {"jsonrpc": "2.0", "method": "plain", "params": [5], "id": 2},
        {"jsonrpc": "2.0", "method": "plain", "params": {"a": "z"}, "id": 3},
        {"jsonrpc": "2.0", "method": "only_positional", "params": [9, 2], "id": 4},
        {"jsonrpc": "2.0", "method": "with_extra", "params": {"a": 1, "z": "2"}, "id": 5},
    ]
    status, answer = await rpc(client, calls)
    assert status == 200
    assert answer[0]["result"] == "4y"
    assert answer[1]["result"] == "5x"
    assert answer[2]["error"]["data"][0]["loc"] == ["a"]
    assert answer[3]["result"] == 7
    assert answer[4]["result"] == {"a": 1, "z": 2}


async def test_observers_still_see_every_call(aiohttp_client: AiohttpClient) -> None:
    app = Tracked().make_app()
    seen: list[tuple[str, int | None]] = []
    app[ROUTER_KEY].observers.append(lambda method, duration, code: seen.append((method, code)))
    client = await aiohttp_client(app)
    status, _ = await rpc(
        client,
        [
            {"jsonrpc": "2.0", "method": "step", "params": [1], "id": 1},
            {"jsonrpc": "2.0", "method": "nope", "id": 2},
        ],
    )
    assert status == 200
    assert sorted(seen, key=lambda item: item[0]) == [("nope", -32601), ("step", None)]


class Shapes(gemstone.MicroService):
    name = "hotpaths_shapes"

    @gemstone.exposed_method()
    async def greet(self, name: str, punctuation: str = "!") -> str:
        return f"hello {name}{punctuation}"

    @gemstone.exposed_method()
    def greet_blocking(self, name: str) -> str:
        return f"hi {name}"

    @gemstone.exposed_method()
    async def fails(self) -> None:
        raise RuntimeError("secret detail")

    @gemstone.exposed_method()
    async def unserialisable(self) -> object:
        return object()

    @gemstone.exposed_method(private=True)
    async def hidden(self) -> str:
        return "hidden"


# Requests in the usual shape and near misses of it, all against the same methods.
SHAPES: list[Any] = [
    {"jsonrpc": "2.0", "method": "greet", "params": {"name": "ann"}, "id": 1},
    {"jsonrpc": "2.0", "method": "greet", "params": {"name": "ann", "punctuation": "?"}, "id": "a"},
    {"jsonrpc": "2.0", "method": "greet", "params": {"name": 5}, "id": 2},
    {"jsonrpc": "2.0", "method": "greet", "params": {}, "id": 3},
    {"jsonrpc": "2.0", "method": "greet", "params": {"name": "a", "extra": 1}, "id": 4},
    {"jsonrpc": "2.0", "method": "greet", "params": {"*args": [1]}, "id": 5},
    {"jsonrpc": "2.0", "method": "greet_blocking", "params": {"name": "bo"}, "id": 6},
    {"jsonrpc": "2.0", "method": "fails", "params": {}, "id": 7},
    {"jsonrpc": "2.0", "method": "unserialisable", "params": {}, "id": 8},
    {"jsonrpc": "2.0", "method": "hidden", "params": {}, "id": 9},
    {"jsonrpc": "2.0", "method": "missing", "params": {}, "id": 10},
    {"jsonrpc": "2.0", "method": "greet", "params": {"name": "ann"}, "id": True},
    {"jsonrpc": "2.0", "method": "greet", "params": {"name": "ann"}, "id": 1.5},
    {"jsonrpc": "2.0", "method": "greet", "params": {"name": "ann"}, "id": None},
    {"jsonrpc": "2.0", "method": "greet", "params": {"name": "ann"}, "id": 2**70},
    {"jsonrpc": "2.0", "method": "greet", "params": ["ann"], "id": 11},
    {"jsonrpc": "1.0", "method": "greet", "params": {"name": "ann"}, "id": 12},
    {"jsonrpc": "2.0", "method": ["greet"], "params": {"name": "ann"}, "id": 13},
    {"jsonrpc": "2.0", "method": "greet", "params": {"name": "ann"}, "idx": 14},
    {"jsonrpc": "2.0", "method": "greet", "params": {"name": [[[[[[[[1]]]]]]]]}, "id": 15},
]


async def test_calls_answer_alike_with_and_without_a_call_wrapper() -> None:
    # A call wrapper wraps the one invoke step: answers must not change.
    apps = [Shapes().make_app(), Shapes().make_app()]
    plain, wrapped = (app[ROUTER_KEY] for app in apps)
    wrapped.call_wrappers.append(lambda request, call: call)
    plain._max_json_depth = wrapped._max_json_depth = 4

    for body in SHAPES:
        raw = json.dumps(body).encode()
        plain_answer = await plain.handle(raw, CallContext())
        wrapped_answer = await wrapped.handle(raw, CallContext())
        assert plain_answer == wrapped_answer, body
    answers = [json.loads(await plain.handle(json.dumps(b).encode(), CallContext()) or b"null")
               for b in SHAPES[:3]]  # fmt: skip
    assert [a.get("result") for a in answers] == ["hello ann!", "hello ann?", None]
    assert answers[2]["error"]["code"] == -32602
    for app in apps:
        app[POOL_KEY].shutdown()


async def test_observers_are_told_of_usual_calls(
    aiohttp_client: AiohttpClient,
) -> None:
    app = Shapes().make_app()
    seen: list[tuple[str, int | None]] = []
    app[ROUTER_KEY].observers.append(lambda method, duration, code: seen.append((method, code)))
    client = await aiohttp_client(app)
    for params in ({"name": "ann"}, {"name": 5}):
        await rpc(client, {"jsonrpc": "2.0", "method": "greet", "params": params, "id": 1})
    for method in ("fails", "unserialisable"):
        await rpc(client, {"jsonrpc": "2.0", "method": method, "params": {}, "id": 2})
    assert seen == [
        ("greet", None),
        ("greet", -32602),
        ("fails", -32603),
        ("unserialisable", -32603),
    ]


def _routers(depth: int | None = None) -> tuple[Any, Any, list[Any]]:
    # Two routers of the same service, one with a call wrapper around its invoke step.
    apps = [Shapes().make_app(), Shapes().make_app()]
    plain, wrapped = (app[ROUTER_KEY] for app in apps)
    wrapped.call_wrappers.append(lambda request, call: call)
    for router in (plain, wrapped):
        router._max_json_depth = router._batches._max_json_depth = depth
    return plain, wrapped, apps


async def test_batches_answer_alike_with_and_without_a_call_wrapper() -> None:
    plain, wrapped, apps = _routers(depth=None)
    batches = [SHAPES, SHAPES[::-1], [SHAPES[0]], [SHAPES[6], SHAPES[7], SHAPES[0]]]
    for batch in batches:
        raw = json.dumps(batch).encode()
        plain_answer = await plain.handle(raw, CallContext())
        assert plain_answer == await wrapped.handle(raw, CallContext())
        assert len(json.loads(plain_answer)) == sum("id" in element for element in batch)
    for app in apps:
        app[POOL_KEY].shutdown()


@pytest.mark.parametrize("depth", range(1, 9))
@pytest.mark.parametrize("usual", [True, False])
async def test_batch_nesting_limit_is_exact(depth: int, usual: bool) -> None:
    """A batch is refused as a whole exactly when it nests deeper than ``max_json_depth``."""
    limit = 5
    plain, wrapped, apps = _routers(depth=limit)
    value: Any = 1
    for _ in range(depth):
        value = [value]
    element = {"jsonrpc": "2.0", "method": "greet", "params": {"name": value}, "id": 1}
    if not usual:
        element["params"] = [value]
    batch = [SHAPES[0], element, SHAPES[1]]
    raw = json.dumps(batch).encode() + b" " * 64  # long enough to be walked
    expected_refused = nesting_exceeds(batch, limit)
    for router in (plain, wrapped):
        answer = json.loads(await router.handle(raw, CallContext()))
        if expected_refused:
            assert answer == {
                "jsonrpc": "2.0",
                "error": {
                    "code": -32004,
                    "message": "Request too large",
                    "data": f"JSON nests deeper than {limit} levels",
                },
                "id": None,
            }
        else:
            assert [item["id"] for item in answer] == [1, 1, "a"]
    for app in apps:
        app[POOL_KEY].shutdown()


request_tag: contextvars.ContextVar[str] = contextvars.ContextVar("request_tag", default="none")


class Waiting(gemstone.MicroService):
    name = "hotpaths_waiting"
    batch_concurrency = 2

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.cancelled: list[int] = []

    @gemstone.exposed_method()
    async def tag(self, n: int, wait: bool = False) -> str:
        seen = request_tag.get()
        token = request_tag.set(f"element {n}")
        if wait:
            await asyncio.sleep(0.01 * (5 - n % 5))
        request_tag.reset(token)  # a token set before the wait is reset after it
        return seen

    @gemstone.exposed_method()
    async def fail_after_wait(self, kind: str) -> None:
        await asyncio.sleep(0)
        if kind == "rpc":
            raise gemstone.errors.InvalidParams(data="checked late")
        raise RuntimeError("late failure")

    @gemstone.exposed_method()
    async def hold(self, n: int) -> int:
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled.append(n)
            raise
        return n


async def test_batch_elements_run_in_contexts_of_their_own(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(Waiting().make_app())
    batch = [
        {"jsonrpc": "2.0", "method": "tag", "params": {"n": n, "wait": n % 2 == 0}, "id": n}
        for n in range(10)
    ]
    status, answer = await rpc(client, batch)
    assert status == 200
    assert answer == [{"jsonrpc": "2.0", "result": "none", "id": n} for n in range(10)]


async def test_errors_raised_after_the_first_wait_answer_that_element_only(
    aiohttp_client: AiohttpClient,
) -> None:
    client = await aiohttp_client(Waiting().make_app())
    batch = [
        {"jsonrpc": "2.0", "method": "fail_after_wait", "params": {"kind": "rpc"}, "id": 1},
        {"jsonrpc": "2.0", "method": "tag", "params": {"n": 2}, "id": 2},
        {"jsonrpc": "2.0", "method": "fail_after_wait", "params": {"kind": "bug"}, "id": 3},
    ]
    status, answer = await rpc(client, batch)
    assert status == 200
    assert answer[0]["error"] == {
        "code": -32602,
        "message": "Invalid params",
        "data": "checked late",
    }
    assert answer[1]["result"] == "none"
    assert answer[2]["error"] == {"code": -32603, "message": "Internal error"}


async def test_a_cancelled_batch_cancels_its_waiting_elements() -> None:
    service = Waiting()
    app = service.make_app()
    batch = [{"jsonrpc": "2.0", "method": "hold", "params": {"n": n}, "id": n} for n in range(2)]
    running = asyncio.ensure_future(
        app[ROUTER_KEY].handle(json.dumps(batch).encode(), CallContext())
    )
    async with asyncio.timeout(5):
        while len(asyncio.all_tasks()) < 4:  # noqa: ASYNC110 -- the batch offers no event
            await asyncio.sleep(0)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await asyncio.sleep(0)
    assert sorted(service.cancelled) == [0, 1]
    app[POOL_KEY].shutdown()
