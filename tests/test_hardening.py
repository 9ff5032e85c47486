"""Hardening: slow clients, bounded connections and shutdown, dropped calls, bounded errors,
strict JSON and nesting (each test fails without its fix)."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient

import gemstone_aio as gemstone
from gemstone_aio.protocol import MAX_REPORTED_ERRORS
from gemstone_aio.protocol._jsonrpc import MAX_ERROR_ANSWER_BYTES
from gemstone_aio.server import CONNECTIONS_KEY, SHUTDOWN_MARGIN
from gemstone_aio.testing import serving
from tests.fixtures.config import StartProcess, wait_until


class Target(gemstone.MicroService):
    name = "hardening_target"

    @gemstone.exposed_method()
    async def echo(self, value: Any = None) -> Any:
        return value

    @gemstone.exposed_method()
    async def add(self, a: float, b: float) -> float:
        return a + b

    @gemstone.exposed_method()
    async def total(self, values: list[int]) -> int:
        return sum(values)

    @gemstone.exposed_method()
    async def infinite(self) -> float:
        return float("inf")

    @gemstone.exposed_method()
    async def nan_inside(self) -> dict[str, Any]:
        return {"ok": [1.0, float("nan")]}


def _rpc(method: str, params: Any = None, id: Any = 1) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": id}
    if params is not None:
        body["params"] = params
    return body


async def _post_raw(client: Any, raw: bytes) -> tuple[int, bytes]:
    response = await client.post(
        "/api", data=io.BytesIO(raw), headers={"Content-Type": "application/json"}
    )
    return response.status, await response.read()


# -- strict JSON: no answer ever carries NaN or Infinity ------------------------------------


@pytest.mark.parametrize(
    ("raw", "code", "id"),
    [
        (b'{"jsonrpc": "2.0", "method": "echo", "id": 1e400}', -32600, None),
        (b'{"jsonrpc": "2.0", "method": "echo", "id": -1e999}', -32600, None),
        (b'{"jsonrpc": "2.0", "method": "echo", "params": [1e400], "id": 2}', -32602, 2),
        (
            b'{"jsonrpc": "2.0", "method": "add", "params": {"a": 1, "b": -1E+400}, "id": 3}',
            -32602,
            3,
        ),
        (
            b'{"jsonrpc": "2.0", "method": "echo", "params": {"value": {"x": [1'
            + b"0" * 400
            + b'.5]}}, "id": 4}',
            -32602,
            4,
        ),
        (b'{"jsonrpc": "2.0", "method": "infinite", "id": 5}', -32603, 5),
        (b'{"jsonrpc": "2.0", "method": "nan_inside", "id": 6}', -32603, 6),
    ],
)
async def test_no_answer_holds_a_non_finite_number(
    aiohttp_client: AiohttpClient, raw: bytes, code: int, id: Any
) -> None:
    client = await aiohttp_client(Target().make_app())
    status, body = await _post_raw(client, raw)
    assert status == 200
    assert b"Infinity" not in body
    assert b"NaN" not in body
    answer = json.loads(body)  # strict: Python's parser would accept Infinity, so check above
    assert answer["error"]["code"] == code
    assert answer["id"] == id


async def test_non_finite_values_in_a_batch_fail_only_their_element(
    aiohttp_client: AiohttpClient,
) -> None:
    client = await aiohttp_client(Target().make_app())
    raw = (
        b'[{"jsonrpc": "2.0", "method": "echo", "params": [1e400], "id": 1},'
        b' {"jsonrpc": "2.0", "method": "echo", "params": ["fine"], "id": 2}]'
    )
    status, body = await _post_raw(client, raw)
    assert status == 200
    answers = {a["id"]: a for a in json.loads(body)}
    assert answers[1]["error"]["code"] == -32602
    assert answers[2]["result"] == "fine"


async def test_a_large_finite_exponent_is_still_accepted(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(Target().make_app())
    status, body = await _post_raw(
        client, b'{"jsonrpc": "2.0", "method": "echo", "params": [1.5e300], "id": 1}'
    )
    assert status == 200
    assert json.loads(body)["result"] == 1.5e300


# -- bounded error answers -------------------------------------------------------------------


async def test_thousands_of_unknown_params_get_a_small_answer(
    aiohttp_client: AiohttpClient,
) -> None:
    client = await aiohttp_client(Target().make_app())
    params = {f"n{i:x}": 0 for i in range(80_000)}  # 0.8 MB, under the 1 MiB body limit
    status, body = await _post_raw(client, json.dumps(_rpc("add", params)).encode())
    assert status == 200
    assert len(body) < MAX_ERROR_ANSWER_BYTES
    error = json.loads(body)["error"]
    assert error["code"] == -32602
    assert len(error["data"]) == MAX_REPORTED_ERRORS + 1
    assert error["data"][-1] == {
        "type": "too_many_errors",
        "loc": [],
        "msg": f"{MAX_REPORTED_ERRORS} of 80000 errors shown",
    }
    assert all(entry["type"] == "extra_forbidden" for entry in error["data"][:-1])


async def test_many_validation_errors_are_capped_with_their_total(
    aiohttp_client: AiohttpClient,
) -> None:
    client = await aiohttp_client(Target().make_app())
    status, body = await _post_raw(
        client, json.dumps(_rpc("total", {"values": ["x"] * 5000})).encode()
    )
    assert status == 200
    error = json.loads(body)["error"]
    assert error["code"] == -32602
    assert len(error["data"]) == MAX_REPORTED_ERRORS + 1
    assert error["data"][-1]["msg"] == f"{MAX_REPORTED_ERRORS} of 5000 errors shown"


async def test_an_unknown_name_of_any_length_is_cut_in_the_answer(
    aiohttp_client: AiohttpClient,
) -> None:
    client = await aiohttp_client(Target().make_app())
    params = {"a": 1, "b": 2, "x" * 100_000: 3}
    status, body = await _post_raw(client, json.dumps(_rpc("add", params)).encode())
    assert status == 200
    error = json.loads(body)["error"]
    assert error["code"] == -32602
    assert len(body) < 2048
    assert error["data"][0]["loc"] == ["x" * 64]


async def test_an_error_answer_is_never_larger_than_the_cap(
    aiohttp_client: AiohttpClient,
) -> None:
    class Wordy(gemstone.MicroService):
        name = "wordy"

        @gemstone.exposed_method()
        async def fail(self) -> None:
            raise gemstone.InvalidParams(data=["detail " * 10] * 5000)

    client = await aiohttp_client(Wordy().make_app())
    status, body = await _post_raw(client, json.dumps(_rpc("fail", id="keep-me")).encode())
    assert status == 200
    answer = json.loads(body)
    assert len(body) <= MAX_ERROR_ANSWER_BYTES
    assert answer["id"] == "keep-me"
    assert answer["error"]["code"] == -32602
    assert "truncated" in answer["error"]["data"]


# -- nesting ---------------------------------------------------------------------------------


async def test_ordinary_deep_documents_are_accepted_by_default(
    aiohttp_client: AiohttpClient,
) -> None:
    client = await aiohttp_client(Target().make_app())
    tree: Any = "leaf"
    for _ in range(100):
        tree = {"child": tree}
    status, body = await _post_raw(client, json.dumps(_rpc("echo", [tree])).encode())
    assert status == 200
    assert json.loads(body)["result"] == tree
    assert Target.max_json_depth >= 128


# -- slow clients and the connection bound ---------------------------------------------------


class Quick(gemstone.MicroService):
    name = "hardening_quick"
    keepalive_timeout = 1.0
    body_read_timeout = 0.5
    max_connections = 1000

    @gemstone.exposed_method()
    async def ping(self) -> str:
        return "pong"


async def _ping(url: str) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=_rpc("ping")) as response,
    ):
        return str((await response.json())["result"])


async def _trickle(host: str, port: int, stop: asyncio.Event) -> float:
    """A slowloris connection: header bytes every 0.2 s; returns when the server closed it."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(host, port)
    began = loop.time()
    writer.write(b"POST /api HTTP/1.1\r\nHost: x\r\n")
    try:
        while not stop.is_set():
            writer.write(b"X-Slow: 1\r\n")
            await writer.drain()
            try:
                data = await asyncio.wait_for(reader.read(1024), 0.2)
            except TimeoutError:
                continue
            if not data:
                return loop.time() - began
    except ConnectionError:
        return loop.time() - began
    finally:
        writer.close()
    return float("inf")


async def test_slow_header_connections_are_closed_while_calls_go_on() -> None:
    service = Quick()
    stop = asyncio.Event()
    async with serving(service):
        host, port = "127.0.0.1", service.port
        slow = [asyncio.create_task(_trickle(host, port, stop)) for _ in range(300)]
        try:
            # Ordinary calls answer while the slow connections are held.
            assert await asyncio.wait_for(_ping(service.accessible_at or ""), 5) == "pong"
            lifetimes = await asyncio.wait_for(asyncio.gather(*slow), 15)
        finally:
            stop.set()
        assert await asyncio.wait_for(_ping(service.accessible_at or ""), 5) == "pong"
    # Every slow connection was closed by the server near the keep-alive deadline.
    assert all(
        service.keepalive_timeout * 0.8 <= t < service.keepalive_timeout + 3 for t in lifetimes
    )


async def test_a_body_that_never_arrives_is_answered_408() -> None:
    service = Quick()
    async with serving(service):
        reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
        body = b'{"jsonrpc": "2.0", "method": "ping", "id": 1}'
        writer.write(
            b"POST /api HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n" + body
        )
        await writer.drain()
        began = time.monotonic()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        reply = head + await asyncio.wait_for(reader.readexactly(length), 5)
        writer.close()
    assert time.monotonic() - began < 3
    assert reply.startswith(b"HTTP/1.1 408")
    assert b"did not arrive within 0.5 s" in reply


async def test_connections_beyond_the_bound_are_closed_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Bounded(Quick):
        name = "hardening_bounded"
        max_connections = 20
        keepalive_timeout = 30.0

        def make_app(self) -> web.Application:
            self.served = super().make_app()
            return self.served

    service = Bounded()
    async with serving(service):
        guard = service.served[CONNECTIONS_KEY]
        held = [await asyncio.open_connection("127.0.0.1", service.port) for _ in range(20)]
        await wait_until(lambda: guard.open == 20)  # the server took them all
        extra_reader, extra_writer = await asyncio.open_connection("127.0.0.1", service.port)
        assert await asyncio.wait_for(extra_reader.read(), 5) == b""  # closed by the server
        extra_writer.close()
        for _, writer in held[:5]:
            writer.close()
            await writer.wait_closed()
        await wait_until(lambda: guard.open == 15)  # room again: an ordinary call answers
        assert await asyncio.wait_for(_ping(service.accessible_at or ""), 5) == "pong"
        for _, writer in held[5:]:
            writer.close()
    assert guard.refused == 1
    warnings = [r for r in caplog.records if "max_connections" in r.getMessage()]
    assert len(warnings) == 1  # one line per overload episode, not one per connection


# -- calls whose caller has gone -------------------------------------------------------------


async def test_a_queued_blocking_call_whose_caller_hung_up_is_not_run() -> None:
    release = threading.Event()
    ran: list[str] = []

    class OneThread(gemstone.MicroService):
        name = "hardening_one_thread"
        max_parallel_blocking_tasks = 1

        @gemstone.exposed_method()
        def hold(self, tag: str) -> str:
            ran.append(tag)
            release.wait(10)
            return tag

    service = OneThread()
    async with serving(service):
        url = service.accessible_at or ""
        async with aiohttp.ClientSession() as first_session:
            first = asyncio.create_task(first_session.post(url, json=_rpc("hold", ["first"])))
            await wait_until(lambda: ran == ["first"])
            # A second caller queues behind it, then hangs up.
            async with aiohttp.ClientSession() as second_session:
                second = asyncio.create_task(
                    second_session.post(url, json=_rpc("hold", ["second"]))
                )
                await asyncio.sleep(0.2)
                second.cancel()
            release.set()
            response = await asyncio.wait_for(first, 5)
            assert (await response.json())["result"] == "first"
            # A third call runs: the thread is free and the hung-up call was dropped.
            async with first_session.post(url, json=_rpc("hold", ["third"])) as third:
                assert (await third.json())["result"] == "third"
    assert ran == ["first", "third"]


# -- bounded shutdown ------------------------------------------------------------------------

STUCK_SCRIPT = textwrap.dedent(
    """
    import threading

    import gemstone_aio as gemstone


    class Stuck(gemstone.MicroService):
        name = "stuck"
        port = 0
        shutdown_grace_period = 1.0

        @gemstone.exposed_method()
        def forever(self) -> None:
            threading.Event().wait()


    if __name__ == "__main__":
        Stuck().start()
    """
)


async def test_sigterm_with_a_method_stuck_forever_exits_within_the_bound(
    service_process: StartProcess, tmp_path: Path
) -> None:
    script = tmp_path / "stuck_service.py"
    script.write_text(STUCK_SCRIPT)
    child = await service_process(script)
    url = await child.wait_serving()
    async with aiohttp.ClientSession() as session:
        call = asyncio.create_task(session.post(url, json=_rpc("forever", id=9)))
        await asyncio.sleep(0.3)
        began = time.monotonic()
        child.proc.send_signal(signal.SIGTERM)
        response = await asyncio.wait_for(call, 10)
        answer = await response.json()
        status = await child.finish(timeout=1.0 + SHUTDOWN_MARGIN + 5)
    elapsed = time.monotonic() - began
    assert answer["id"] == 9
    assert answer["error"]["code"] == -32005
    assert status == 0
    assert elapsed < 1.0 + SHUTDOWN_MARGIN
    text = "\n".join(child.stderr)
    assert "1 call(s) still running after the grace period" in text
    assert "that never returned" in text


# -- stuck blocking workers: liveness and metrics --------------------------------------------


async def test_health_fails_while_every_blocking_worker_is_stuck(
    aiohttp_client: AiohttpClient,
) -> None:
    release = threading.Event()
    entered = threading.Semaphore(0)

    class Stuck(gemstone.MicroService):
        name = "hardening_stuck"
        max_parallel_blocking_tasks = 2
        stuck_call_threshold = 0.2
        use_metrics = True

        @gemstone.exposed_method()
        def hold(self) -> str:
            entered.release()
            release.wait(10)
            return "done"

    client = await aiohttp_client(Stuck().make_app())
    assert (await client.get("/health")).status == 200
    calls = [asyncio.create_task(client.post("/api", json=_rpc("hold"))) for _ in range(2)]
    for _ in range(2):
        assert await asyncio.to_thread(entered.acquire, True, 5)
    await asyncio.sleep(0.3)
    health = await client.get("/health")
    assert health.status == 503
    body = await health.json()
    assert body["status"] == "failing"
    assert "stuck_call_threshold" in body["detail"]
    metrics = await (await client.get("/metrics")).text()
    assert "gemstone_pool_stuck 2.0" in metrics
    assert "gemstone_connections_refused_total 0.0" in metrics
    release.set()
    for call in calls:
        assert (await (await call).json())["result"] == "done"
    assert (await client.get("/health")).status == 200


async def test_one_stuck_worker_of_two_keeps_health_ok(aiohttp_client: AiohttpClient) -> None:
    release = threading.Event()
    entered = threading.Event()

    class HalfStuck(gemstone.MicroService):
        name = "hardening_half_stuck"
        max_parallel_blocking_tasks = 2
        stuck_call_threshold = 0.1

        @gemstone.exposed_method()
        def hold(self) -> str:
            entered.set()
            release.wait(10)
            return "done"

    client = await aiohttp_client(HalfStuck().make_app())
    call = asyncio.create_task(client.post("/api", json=_rpc("hold")))
    assert await asyncio.to_thread(entered.wait, 5)
    await asyncio.sleep(0.2)
    assert (await client.get("/health")).status == 200
    release.set()
    assert (await (await call).json())["result"] == "done"
