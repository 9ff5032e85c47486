"""The blocking facade, driven from a real thread with no event loop.

The services run on the test's event loop; each scenario runs in a worker thread via
``asyncio.to_thread`` so the loop keeps serving while the thread blocks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import importlib
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import gemstone_aio as gemstone
from gemstone_aio import (
    AsyncMethodCall,
    RemoteService,
    as_completed,
    first_completed,
    make_callbacks,
)
from gemstone_aio.client import (
    AccessDeniedError,
    CallTimeoutError,
    MethodNotFoundError,
    ServiceUnavailableError,
)
from gemstone_aio.testing import serving
from tests.fixtures.client import TOKEN, ClientTarget

SRC = str(Path(__file__).resolve().parent.parent / "src")


def _client_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("gemstone-client ")]


async def test_blocking_calls_return_results(target_url: str) -> None:
    def script() -> list[Any]:
        with RemoteService(target_url) as client:
            return [
                client.methods.say_hello("world"),
                client.methods.say_hello(name="you"),
                client.methods.math.add(1, 2),
                client.notifications.record("noted"),
            ]

    assert await asyncio.to_thread(script) == ["hello world", "hello you", 3, None]
    assert _client_threads() == []


async def test_blocking_notification_arrives(target: ClientTarget, target_url: str) -> None:
    def script() -> None:
        with RemoteService(target_url) as client:
            client.notifications.record(value="blocking")

    await asyncio.to_thread(script)
    assert await asyncio.wait_for(target.notified.get(), 5) == "blocking"


async def test_blocking_errors_are_raised(target_url: str, refused_url: str) -> None:
    def script() -> None:
        with RemoteService(target_url, timeout=0.1) as client:
            with pytest.raises(MethodNotFoundError):
                client.methods.nope()
            with pytest.raises(AccessDeniedError):
                client.methods.secret()
            with pytest.raises(CallTimeoutError, match=target_url):
                client.methods.nap(1)
        with RemoteService(refused_url) as client, pytest.raises(ServiceUnavailableError):
            client.methods.say_hello()
        with RemoteService(target_url, token=TOKEN) as client:
            assert client.methods.secret() == "the secret"

    await asyncio.to_thread(script)


async def test_async_method_call(target_url: str) -> None:
    def script() -> None:
        with RemoteService(target_url) as client:
            call = client.methods.nap(0.3, __async=True)
            assert isinstance(call, AsyncMethodCall)
            assert not call.finished()
            assert "running" in repr(call)
            with pytest.raises(RuntimeError, match="not finished"):
                call.result()
            with pytest.raises(RuntimeError, match="not finished"):
                call.error()
            with pytest.raises(TimeoutError, match=r"still running after 0\.01 s"):
                call.wait(timeout=0.01)
            assert call.wait() == 0.3
            assert call.finished()
            assert call.result() == 0.3
            assert call.error() is None

            failed = client.methods.nope(__async=True)
            with pytest.raises(MethodNotFoundError):
                failed.wait(5)
            assert failed.result() is None
            assert isinstance(failed.error(), MethodNotFoundError)

    await asyncio.to_thread(script)


async def test_async_calls_overlap(target_url: str) -> None:
    def script() -> float:
        with RemoteService(target_url) as client:
            started = time.monotonic()
            calls = [client.methods.nap(0.5, __async=True) for _ in range(4)]
            assert [c.wait(10) for c in calls] == [0.5] * 4
            return time.monotonic() - started

    assert await asyncio.to_thread(script) < 1.5  # four 0.5 s calls in sequence take 2 s


async def test_idle_wait_costs_no_cpu(target_url: str) -> None:
    def script() -> tuple[float, float]:
        with RemoteService(target_url) as client:
            client.methods.echo(1)  # start the background loop first
            cpu, wall = time.process_time(), time.monotonic()
            call = client.methods.nap(1.0, __async=True)
            assert call.wait() == 1.0
            calls = [client.methods.nap(0.5, __async=True), client.methods.nap(0.5, __async=True)]
            assert [c.result() for c in as_completed(*calls)] == [0.5, 0.5]
            return time.process_time() - cpu, time.monotonic() - wall

    cpu, wall = await asyncio.to_thread(script)
    assert wall >= 1.5
    assert cpu < 0.25, f"waiting 1.5 s burned {cpu:.3f} s of CPU"


async def test_as_completed_yields_in_finishing_order(target_url: str) -> None:
    def script() -> list[float]:
        with RemoteService(target_url) as client:
            calls = [client.methods.nap(s, __async=True) for s in (0.4, 0.0, 0.2)]
            return [call.result() for call in as_completed(*calls, timeout=10)]

    assert await asyncio.to_thread(script) == [0.0, 0.2, 0.4]


async def test_as_completed_timeout(target_url: str) -> None:
    def script() -> None:
        with RemoteService(target_url) as client:
            quick = client.methods.nap(0, __async=True)
            slow = client.methods.nap(5, __async=True)
            finishing = as_completed(quick, slow, timeout=0.3)
            assert next(finishing) is quick
            with pytest.raises(TimeoutError, match=r"still running after 0\.3 s: \['nap'\]"):
                next(finishing)

    await asyncio.to_thread(script)


async def test_first_completed(target_url: str) -> None:
    def script() -> None:
        with RemoteService(target_url) as client:
            slow = client.methods.nap(3, __async=True)
            quick = client.methods.nap(0.1, __async=True)
            assert first_completed(slow, quick, timeout=5) is quick
            assert first_completed(slow, quick) is quick  # already finished
            later = client.methods.nap(0.2, __async=True)
            assert later.wait(5) == 0.2
            assert first_completed(later, quick) is quick  # the earliest of finished calls
            slower = client.methods.nap(5, __async=True)
            with pytest.raises(TimeoutError, match=r"none of 1 calls finished within 0\.1 s"):
                first_completed(slower, timeout=0.1)
            with pytest.raises(ValueError, match="at least one"):
                first_completed()
            with pytest.raises(TypeError, match="AsyncMethodCall"):
                first_completed("x")  # type: ignore[arg-type]

    await asyncio.to_thread(script)


@pytest.mark.parametrize("run_in_threads", [False, True])
async def test_make_callbacks(target_url: str, run_in_threads: bool) -> None:
    def script() -> tuple[list[Any], list[BaseException], set[str]]:
        results: list[Any] = []
        errors: list[BaseException] = []
        threads: set[str] = set()
        lock = threading.Lock()

        def on_result(value: Any) -> None:
            with lock:
                results.append(value)
                threads.add(threading.current_thread().name)

        def on_error(error: BaseException) -> None:
            with lock:
                errors.append(error)
                threads.add(threading.current_thread().name)

        with RemoteService(target_url) as client:
            calls = [client.methods.nap(s, __async=True) for s in (0.3, 0.1, 0.2)]
            calls.append(client.methods.nope(__async=True))
            make_callbacks(calls, on_result, on_error, run_in_threads=run_in_threads)
        return results, errors, threads

    results, errors, threads = await asyncio.to_thread(script)
    assert sorted(results) == [0.1, 0.2, 0.3]
    assert len(errors) == 1
    assert isinstance(errors[0], MethodNotFoundError)
    if run_in_threads:
        assert all(name.startswith("gemstone-callback-") for name in threads)
    else:
        assert len(threads) == 1
        assert not next(iter(threads)).startswith("gemstone-callback-")


async def test_one_background_thread_per_client_closed_on_close(target_url: str) -> None:
    def script() -> None:
        client = RemoteService(target_url)
        assert _client_threads() == []
        for i in range(3):
            assert client.methods.echo(i) == i
        assert len(_client_threads()) == 1
        client.close()
        assert _client_threads() == []
        client.close()  # idempotent
        assert client.methods.echo("again") == "again"  # reopens on demand
        assert len(_client_threads()) == 1
        client.close()

    await asyncio.to_thread(script)
    assert _client_threads() == []


async def test_garbage_collected_client_stops_its_thread(target_url: str) -> None:
    def script() -> None:
        client = RemoteService(target_url)
        assert client.methods.echo(1) == 1
        assert len(_client_threads()) == 1
        del client
        gc.collect()

    await asyncio.to_thread(script)
    assert _client_threads() == []


async def test_blocking_calls_reuse_one_connection(target_url: str, raw_server: Any) -> None:
    import json

    from aiohttp import web

    peers: list[object] = []

    async def handler(request: web.Request) -> web.Response:
        assert request.transport is not None
        peers.append(request.transport.get_extra_info("peername"))
        message = json.loads(await request.read())
        return web.json_response({"jsonrpc": "2.0", "result": 1, "id": message["id"]})

    url = await raw_server(handler)

    def script() -> None:
        with RemoteService(url) as client:
            for _ in range(10):
                assert client.methods.x() == 1

    await asyncio.to_thread(script)
    assert len(peers) == 10
    assert len(set(peers)) == 1


async def test_proxy_in_a_running_loop_returns_awaitables(target_url: str) -> None:
    async with RemoteService(target_url) as svc:
        pending = svc.methods.say_hello("loop")
        assert asyncio.iscoroutine(pending)
        assert await pending == "hello loop"
        assert _client_threads() == []


async def test_blocking_only_apis_refuse_a_running_loop(target_url: str) -> None:
    async with RemoteService(target_url) as svc:
        with pytest.raises(RuntimeError, match="use the async client"):
            svc.methods.say_hello("x", __async=True)

    def make_call() -> AsyncMethodCall:
        with RemoteService(target_url) as client:
            call: AsyncMethodCall = client.methods.echo(1, __async=True)
            call.wait(5)
            return call

    call = await asyncio.to_thread(make_call)
    with pytest.raises(RuntimeError, match="use the async client"):
        call.wait()
    with pytest.raises(RuntimeError, match="use the async client"):
        first_completed(call)
    with pytest.raises(RuntimeError, match="use the async client"):
        list(as_completed(call))
    with pytest.raises(RuntimeError, match="use the async client"):
        make_callbacks([call], print, print)
    assert call.result() == 1  # non-blocking accessors work anywhere


async def test_close_in_a_loop_also_stops_the_background_thread(target_url: str) -> None:
    svc = RemoteService(target_url)
    assert await svc.call("echo", 1) == 1
    assert await asyncio.to_thread(svc.methods.echo, 2) == 2
    assert len(_client_threads()) == 1
    await svc.close()
    assert _client_threads() == []


async def test_sync_close_with_an_open_async_session_is_refused(target_url: str) -> None:
    svc = RemoteService(target_url)
    assert await svc.call("echo", 1) == 1
    with pytest.raises(RuntimeError, match=r"await svc\.close"):
        await asyncio.to_thread(svc.close)
    await svc.close()


def test_module_path_of_the_old_docs() -> None:
    old_path = importlib.import_module("gemstone_aio.client.remote_service")

    assert old_path.RemoteService is gemstone.RemoteService
    assert gemstone.AsyncMethodCall is AsyncMethodCall


async def test_threads_share_one_blocking_client(target_url: str) -> None:
    client = RemoteService(target_url)

    def worker(n: int) -> list[Any]:
        return [client.methods.echo([n, i]) for i in range(5)]

    results = await asyncio.gather(*(asyncio.to_thread(worker, n) for n in range(4)))
    assert results == [[[n, i] for i in range(5)] for n in range(4)]
    assert len(_client_threads()) == 1
    await asyncio.to_thread(client.close)
    assert _client_threads() == []


async def test_closing_cancels_running_calls(target_url: str) -> None:
    def script() -> None:
        client = RemoteService(target_url)
        call = client.methods.nap(5, __async=True)
        client.close()
        assert call.finished()
        assert call.result() is None
        assert isinstance(call.error(), concurrent.futures.CancelledError)
        assert "client was closed" in str(call.error())

    await asyncio.to_thread(script)


async def test_unclosed_client_at_exit_is_cleaned_up(target_url: str) -> None:
    code = (
        "import sys, warnings\n"
        "warnings.simplefilter('error')\n"
        "from gemstone_aio import RemoteService\n"
        "client = RemoteService(sys.argv[1])\n"
        "print(client.methods.say_hello('exit'))\n"
    )
    env = dict(os.environ, PYTHONPATH=SRC)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        target_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert out.decode() == "hello exit\n"
    assert err.decode() == ""


# -- gemstone 0.10's call_method_async -------------------------------------------------


class Stuff(gemstone.MicroService):
    """The service of the reference's ``as_completed`` example."""

    name = "stuff"

    @gemstone.exposed_method()
    async def do_stuff(self, x: int) -> int:
        await asyncio.sleep((x % 5) * 0.02)  # finish in another order than started
        return x * x


AS_COMPLETED_EXAMPLE = """\
import sys

import gemstone_aio as gemstone

service = gemstone.RemoteService(sys.argv[1])

# The example of gemstone 0.10.1's as_completed docstring, as written:
async_calls = [service.call_method_async("do_stuff", (x,)) for x in range(25)]

for async_call in gemstone.as_completed(*async_calls):
    print("just finished with result ", async_call.result())
"""


async def test_as_completed_example_of_gemstone_010_runs_as_written() -> None:
    """The reference's example, run as a script against a served service."""
    async with serving(Stuff()) as service:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            AS_COMPLETED_EXAMPLE,
            str(service.accessible_at),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(os.environ, PYTHONPATH=SRC),
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert err.decode() == ""
    lines = out.decode().splitlines()
    assert len(lines) == 25
    prefix = "just finished with result  "
    assert all(line.startswith(prefix) for line in lines)
    assert sorted(int(line.removeprefix(prefix)) for line in lines) == [x * x for x in range(25)]


async def test_call_method_async_returns_an_async_method_call(target_url: str) -> None:
    """call_method_async(name, params) starts the call and returns at once."""

    def script() -> None:
        with RemoteService(target_url) as client:
            call = client.call_method_async("nap", [0.3])
            assert isinstance(call, AsyncMethodCall)
            assert call.method == "nap"
            assert not call.finished()
            with pytest.raises(RuntimeError, match="not finished"):
                call.result()
            with pytest.raises(RuntimeError, match="not finished"):
                call.successful()
            assert call.result(wait=True) == 0.3  # gemstone 0.10: blocks first
            assert call.finished()
            assert call.successful()
            assert call.error() is None
            assert call.wait() == 0.3

            by_position = client.call_method_async("subtract", (42, 23))
            by_name = client.call_method_async("subtract", {"minuend": 23, "subtrahend": 42})
            no_params = client.call_method_async("get_data")
            assert by_position.result(wait=True) == 19
            assert by_name.result(wait=True) == -19
            assert no_params.result(wait=True) == ["hello", 5]

    await asyncio.to_thread(script)


async def test_call_method_async_errors(target_url: str) -> None:
    """A failed call gives None from result(wait=True); error() and successful() tell why."""

    def script() -> None:
        with RemoteService(target_url) as client:
            missing = client.call_method_async("nope", [])
            assert missing.result(wait=True) is None
            assert not missing.successful()
            assert isinstance(missing.error(), MethodNotFoundError)
            with pytest.raises(MethodNotFoundError):
                missing.wait()

            late = client.call_method_async("nap", [5], timeout=0.1)
            assert late.result(wait=True) is None
            assert isinstance(late.error(), CallTimeoutError)

            with pytest.raises(TypeError, match=r"params of 'echo' must be .* got 'abc'"):
                client.call_method_async("echo", "abc")  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="takes a method name, got 42"):
                client.call_method_async(42, [])  # type: ignore[arg-type]

    await asyncio.to_thread(script)


async def test_call_method_async_works_with_the_helpers(target_url: str) -> None:
    """first_completed and make_callbacks take calls from call_method_async too."""

    def script() -> tuple[AsyncMethodCall, list[Any], list[BaseException]]:
        results: list[Any] = []
        errors: list[BaseException] = []
        with RemoteService(target_url) as client:
            slow = client.call_method_async("nap", [3])
            quick = client.call_method_async("nap", [0.05])
            first = first_completed(slow, quick, timeout=10)
            calls = [client.call_method_async("echo", [n]) for n in range(5)]
            calls.append(client.call_method_async("nope"))
            make_callbacks(calls, results.append, errors.append)
        return first, results, errors

    first, results, errors = await asyncio.to_thread(script)
    assert first.result() == 0.05
    assert sorted(results) == [0, 1, 2, 3, 4]
    assert [type(e) for e in errors] == [MethodNotFoundError]


async def test_call_method_async_refuses_a_running_loop(target_url: str) -> None:
    """In an event loop, call_method_async and result(wait=True) point to the async client."""
    async with RemoteService(target_url) as svc:
        with pytest.raises(RuntimeError, match=r"use the async client.*svc\.request\('echo'"):
            svc.call_method_async("echo", [1])

    def start() -> tuple[RemoteService, AsyncMethodCall, AsyncMethodCall]:
        client = RemoteService(target_url)
        done = client.call_method_async("echo", [1])
        done.wait(5)
        return client, done, client.call_method_async("nap", [5])

    client, done, running = await asyncio.to_thread(start)
    try:
        assert done.result(wait=True) == 1  # finished: nothing to block on
        with pytest.raises(RuntimeError, match="use the async client"):
            running.result(wait=True)
    finally:
        await asyncio.to_thread(client.close)
    assert _client_threads() == []
