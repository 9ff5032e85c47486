"""The service's thread pool: results, errors, bounds, cancellation, shutdown, several loops."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Iterator

import pytest

from gemstone_aio.core.concurrency import BlockingPool
from gemstone_aio.errors import ServerOverloaded, ServiceConfigurationError

request_name: contextvars.ContextVar[str] = contextvars.ContextVar("request_name", default="-")


@pytest.fixture
def pool() -> Iterator[BlockingPool]:
    pool = BlockingPool(3, max_pending=2, name="test-pool")
    yield pool
    pool.shutdown(wait=True)


def _wait_until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


async def test_many_calls_all_get_their_own_result(pool: BlockingPool) -> None:
    """1,000 calls finishing in bursts: every caller gets its own result, the count drops to 0."""
    big = BlockingPool(4, max_pending=None)
    try:
        results = await asyncio.gather(*(big.run(pow, i, 2) for i in range(1000)))
        assert results == [i * i for i in range(1000)]
        assert big.submitted == 0
    finally:
        big.shutdown()


async def test_errors_reach_the_caller(pool: BlockingPool) -> None:
    def fail(value: int) -> None:
        raise ValueError(f"bad value {value}")

    with pytest.raises(ValueError, match="bad value 7"):
        await pool.run(fail, 7)
    assert pool.submitted == 0


async def test_runs_off_the_loop_thread_in_the_callers_context(pool: BlockingPool) -> None:
    request_name.set("req-42")

    def where() -> tuple[str, str]:
        return threading.current_thread().name, request_name.get()

    thread, seen = await pool.run(where)
    assert thread.startswith("test-pool_")
    assert thread != threading.current_thread().name
    assert seen == "req-42"


async def test_at_most_max_workers_run_at_once(pool: BlockingPool) -> None:
    running = 0
    peak = 0
    lock = threading.Lock()
    release = threading.Event()

    def hold() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        release.wait(5)
        with lock:
            running -= 1

    calls = [pool.run(hold) for _ in range(5)]  # 3 run, 2 wait (max_pending=2)
    await asyncio.to_thread(_wait_until, lambda: running == 3)
    assert pool.submitted == 5
    assert pool.queued == 2
    release.set()
    await asyncio.gather(*calls)
    assert peak == 3
    assert pool.submitted == 0


async def test_past_max_pending_calls_are_refused_at_once(pool: BlockingPool) -> None:
    release = threading.Event()
    calls = [pool.run(release.wait, 5) for _ in range(5)]
    with pytest.raises(ServerOverloaded) as refused:
        pool.run(release.wait, 5)
    assert "5 blocking calls" in str(refused.value.data)
    release.set()
    assert await asyncio.gather(*calls) == [True] * 5


async def test_max_pending_zero_refuses_only_when_every_thread_is_busy() -> None:
    pool = BlockingPool(2, max_pending=0)
    release = threading.Event()
    try:
        assert await pool.run(lambda: "free threads take it") == "free threads take it"
        calls = [pool.run(release.wait, 5) for _ in range(2)]
        with pytest.raises(ServerOverloaded):
            pool.run(release.wait, 5)
        release.set()
        await asyncio.gather(*calls)
    finally:
        pool.shutdown()


async def test_a_call_abandoned_before_a_thread_took_it_never_runs(pool: BlockingPool) -> None:
    release = threading.Event()
    ran: list[str] = []
    busy = [pool.run(release.wait, 5) for _ in range(3)]
    waiting = pool.run(ran.append, "should not run")
    waiting.cancel()  # a timeout, say
    release.set()
    await asyncio.gather(*busy)
    await asyncio.to_thread(_wait_until, lambda: pool.submitted == 0)
    assert ran == []


async def test_a_cancelled_running_call_still_frees_its_slot(pool: BlockingPool) -> None:
    release = threading.Event()
    running = pool.run(release.wait, 5)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(running, 0.05)
    assert pool.submitted == 1  # the thread is still busy
    release.set()
    await asyncio.to_thread(_wait_until, lambda: pool.submitted == 0)
    assert await pool.run(lambda: "next") == "next"


async def test_executor_api_and_run_in_executor(pool: BlockingPool) -> None:
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(pool, sum, [1, 2, 3]) == 6
    assert pool.executor is pool
    future = pool.submit(pow, 2, 10)
    assert await asyncio.wrap_future(future) == 1024
    failing = pool.submit(int, "x")
    with pytest.raises(ValueError, match="'x'"):
        await asyncio.wrap_future(failing)
    assert pool.submitted == 0


def test_shutdown_refuses_new_work_and_cancels_queued_work_when_not_waiting() -> None:
    pool = BlockingPool(1, max_pending=None)
    release = threading.Event()
    running = pool.submit(release.wait, 5)
    queued = pool.submit(lambda: "never")
    _wait_until(running.running)
    stopper = threading.Thread(target=pool.shutdown, kwargs={"wait": False})
    stopper.start()
    stopper.join(5)
    assert queued.cancelled()
    with pytest.raises(RuntimeError, match="shutdown"):
        pool.submit(print)
    release.set()
    assert running.result(5) is True
    pool.shutdown(wait=True)  # twice is fine


def test_shutdown_with_wait_runs_what_was_queued() -> None:
    pool = BlockingPool(1, max_pending=None)
    futures = [pool.submit(time.sleep, 0.01) for _ in range(3)]
    pool.shutdown(wait=True)
    assert all(f.done() and not f.cancelled() for f in futures)


def test_one_pool_serves_successive_event_loops() -> None:
    pool = BlockingPool(2)
    try:
        for value in range(3):
            assert asyncio.run(_double(pool, value)) == value * 2
    finally:
        pool.shutdown()


async def _double(pool: BlockingPool, value: int) -> int:
    return await pool.run(lambda: value * 2)


@pytest.mark.parametrize(("workers", "pending"), [(0, 1), (True, 1), (-1, 1), (2, -1)])
def test_bad_bounds_name_the_value(workers: int, pending: int) -> None:
    with pytest.raises(ServiceConfigurationError, match=repr(workers) if pending >= 0 else "-1"):
        BlockingPool(workers, max_pending=pending)


async def test_stop_iteration_reaches_the_caller_as_runtime_error(pool: BlockingPool) -> None:
    def exhausted() -> None:
        next(iter(()))

    with pytest.raises(RuntimeError, match="StopIteration"):
        await pool.run(exhausted)
    assert await pool.run(lambda: "still serving") == "still serving"


def test_calls_left_running_when_their_loop_closed_still_free_their_slot() -> None:
    pool = BlockingPool(1, max_pending=0)
    release = threading.Event()

    async def start_and_leave() -> None:
        pool.run(release.wait, 5)  # never awaited: the loop closes while it runs

    try:
        asyncio.run(start_and_leave())
        assert pool.submitted == 1
        release.set()
        _wait_until(lambda: pool.submitted == 0)
        assert asyncio.run(_double(pool, 4)) == 8  # not refused as overloaded
    finally:
        pool.shutdown()
