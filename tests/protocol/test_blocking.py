"""BlockingRunner: plain functions off the loop, with a bound on waiting calls.

Blocking functions here wait on a :class:`Gate` (a ``threading.Event``) so that each test
decides when they finish; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import contextvars
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import pytest

from gemstone_aio.errors import ServerOverloaded, ServiceShuttingDown
from gemstone_aio.protocol import BlockingRunner

from ._support import WAIT, turns

MARK: contextvars.ContextVar[str] = contextvars.ContextVar("tests_protocol_blocking_mark")


# Module-level functions: a process pool pickles them by reference.


def square(n: int, *, plus: int = 0) -> int:
    return n * n + plus


def explode(message: str) -> None:
    raise ValueError(message)


def read_mark() -> str | None:
    return MARK.get(None)


def exhausted() -> None:
    next(iter([]))  # a StopIteration escaping a plain function, a common slip


class Gate:
    """Functions that block until released; the loop can wait until N of them started."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = 0
        self.threads: list[str] = []
        self._lock = threading.Lock()
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()

    def hold(self, value: Any = None) -> Any:
        with self._lock:
            self.started += 1
            self.threads.append(threading.current_thread().name)
        self._loop.call_soon_threadsafe(self._changed.set)
        assert self.release.wait(WAIT), "the test never released the gate"
        return value

    async def wait_started(self, count: int) -> None:
        async with asyncio.timeout(WAIT):
            while True:
                self._changed.clear()
                if self.started >= count:
                    return
                await self._changed.wait()


RunnerFactory = Callable[..., BlockingRunner]


@pytest.fixture
def make_runner() -> Iterator[RunnerFactory]:
    """Build thread-pool runners; all are shut down (their gates released) after the test."""
    made: list[BlockingRunner] = []

    def make(workers: int, waiting: int | None, executor: Executor | None = None) -> BlockingRunner:
        runner = BlockingRunner(
            executor or ThreadPoolExecutor(workers, thread_name_prefix="blocking-test"),
            max_workers=workers,
            max_waiting=waiting,
        )
        made.append(runner)
        return runner

    yield make
    for runner in made:
        runner.shutdown(wait=True)


@pytest.fixture
async def gate() -> Any:
    gate = Gate()
    yield gate
    gate.release.set()


# -- running -----------------------------------------------------------------------------


async def test_a_function_runs_in_a_worker_thread(make_runner: RunnerFactory) -> None:
    runner = make_runner(2, 8)
    assert await runner.run(square, 4) == 16
    assert await runner.run(square, 4, plus=2) == 18
    name = await runner.run(lambda: threading.current_thread().name)
    assert name.startswith("blocking-test")
    assert (runner.waiting, runner.running) == (0, 0)


async def test_exceptions_reach_the_caller(make_runner: RunnerFactory) -> None:
    runner = make_runner(1, None)
    with pytest.raises(ValueError, match="from the thread"):
        await runner.run(explode, "from the thread")
    assert await runner.run(square, 2) == 4  # the worker is fine afterwards
    assert (runner.waiting, runner.running) == (0, 0)


async def test_a_stop_iteration_reaches_the_caller_as_runtime_error(
    make_runner: RunnerFactory,
) -> None:
    """An asyncio future cannot hold a StopIteration: the caller must get a RuntimeError.

    (Handed to the future as it is, it raises TypeError in the loop's callback and the
    caller waits forever; the pool of the old design converted it.)
    """
    runner = make_runner(1, None)
    future = runner.run(exhausted)
    done, _ = await asyncio.wait({future}, timeout=WAIT)
    assert future in done, "the caller of a function raising StopIteration is never answered"
    error = future.exception()
    assert isinstance(error, RuntimeError)
    assert isinstance(error.__cause__, StopIteration)


async def test_context_variables_reach_the_thread_and_stay_there(
    make_runner: RunnerFactory,
) -> None:
    runner = make_runner(2, 8)

    def read_and_set() -> str | None:
        seen = MARK.get(None)
        MARK.set("set in the thread")
        return seen

    token = MARK.set("the caller's")
    try:
        assert await runner.run(read_and_set) == "the caller's"
        assert MARK.get() == "the caller's"  # the thread ran in a copy
        assert await runner.run(read_mark) == "the caller's"
    finally:
        MARK.reset(token)
    assert await runner.run(read_mark) is None


# -- the bound on waiting calls ----------------------------------------------------------


async def test_past_max_waiting_a_call_is_refused_at_once(
    make_runner: RunnerFactory, gate: Gate
) -> None:
    runner = make_runner(2, 2)
    busy = [runner.run(gate.hold, n) for n in range(2)]
    await gate.wait_started(2)
    assert (runner.running, runner.waiting) == (2, 0)
    waiting = [runner.run(gate.hold, n) for n in range(2, 4)]
    assert (runner.running, runner.waiting) == (2, 2)
    ran = threading.Event()
    with pytest.raises(ServerOverloaded) as refused:
        runner.run(ran.set)  # raises here, before anything is awaited
    assert refused.value.code == -32002
    assert runner.waiting == 2
    gate.release.set()
    assert await asyncio.wait_for(asyncio.gather(*busy, *waiting), WAIT) == [0, 1, 2, 3]
    assert not ran.is_set()
    assert (runner.running, runner.waiting) == (0, 0)
    assert await runner.run(square, 3) == 9  # room again


async def test_max_waiting_zero_means_no_waiting(make_runner: RunnerFactory, gate: Gate) -> None:
    runner = make_runner(2, 0)
    busy = [runner.run(gate.hold, n) for n in range(2)]  # idle threads take them
    await gate.wait_started(2)
    for _ in range(3):
        with pytest.raises(ServerOverloaded):
            runner.run(square, 1)
    gate.release.set()
    assert await asyncio.wait_for(asyncio.gather(*busy), WAIT) == [0, 1]
    assert await runner.run(square, 5) == 25
    assert runner.waiting == 0


async def test_no_bound_without_max_waiting(make_runner: RunnerFactory, gate: Gate) -> None:
    runner = make_runner(1, None)
    calls = [runner.run(gate.hold, n) for n in range(50)]
    await gate.wait_started(1)
    assert runner.waiting == 49
    gate.release.set()
    assert await asyncio.wait_for(asyncio.gather(*calls), WAIT) == list(range(50))


async def test_calls_idle_threads_will_take_do_not_count_as_waiting(
    make_runner: RunnerFactory,
) -> None:
    """With two idle threads and max_waiting=1, three calls at once fit: only one waits.

    The threads are held in their initializer, so that they take nothing before the
    third call comes (as when a burst of calls arrives within one turn of the loop).
    """
    threads_up = threading.Event()
    executor = ThreadPoolExecutor(2, initializer=threads_up.wait, initargs=(WAIT,))
    runner = make_runner(2, 1, executor)
    try:
        calls = [runner.run(square, n) for n in range(3)]
        with pytest.raises(ServerOverloaded):
            runner.run(square, 3)
    finally:
        threads_up.set()
    assert await asyncio.wait_for(asyncio.gather(*calls), WAIT) == [0, 1, 4]


# -- callers that give up ----------------------------------------------------------------


async def test_a_call_whose_caller_gave_up_before_a_thread_took_it_never_runs(
    make_runner: RunnerFactory, gate: Gate
) -> None:
    runner = make_runner(1, 4)
    busy = runner.run(gate.hold, "busy")
    await gate.wait_started(1)
    ran = threading.Event()

    async def caller() -> None:
        await runner.run(ran.set)

    waiting = asyncio.create_task(caller())
    await turns()
    assert runner.waiting == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await turns()
    assert runner.waiting == 0  # its place is free at once
    gate.release.set()
    assert await asyncio.wait_for(busy, WAIT) == "busy"
    assert await runner.run(square, 2) == 4  # the worker went past the abandoned call
    assert not ran.is_set()
    assert (runner.waiting, runner.running) == (0, 0)


async def test_a_call_cancelled_just_before_a_thread_frees_never_runs(
    make_runner: RunnerFactory, gate: Gate
) -> None:
    """Cancelled, then a worker frees before the loop turns again: it must still not run.

    The loop thread blocks on purpose until the worker reached the call after it.
    """
    runner = make_runner(1, 4)
    busy = runner.run(gate.hold, "busy")
    await gate.wait_started(1)
    ran, next_started = threading.Event(), threading.Event()
    abandoned = runner.run(ran.set)
    following = runner.run(next_started.set)
    abandoned.cancel()
    gate.release.set()
    assert next_started.wait(WAIT)  # the worker went past the abandoned call
    await asyncio.wait_for(asyncio.gather(busy, following), WAIT)
    assert not ran.is_set(), "a call cancelled before any thread took it ran"
    assert (runner.waiting, runner.running) == (0, 0)


async def test_a_caller_giving_up_on_a_running_call_does_not_wait_for_it(
    make_runner: RunnerFactory, gate: Gate
) -> None:
    runner = make_runner(1, 4)
    running = runner.run(gate.hold, "late")
    await gate.wait_started(1)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await running
    assert runner.running == 1  # the thread cannot be stopped: it goes on
    gate.release.set()
    assert await asyncio.wait_for(runner.run(square, 3), WAIT) == 9
    assert (runner.waiting, runner.running) == (0, 0)


# -- shutdown ----------------------------------------------------------------------------


async def test_after_shutdown_calls_are_refused_and_never_run(make_runner: RunnerFactory) -> None:
    runner = make_runner(2, 8)
    assert await runner.run(square, 2) == 4
    runner.shutdown()
    ran = threading.Event()
    with pytest.raises(ServiceShuttingDown) as refused:
        runner.run(ran.set)
    assert refused.value.code == -32005
    await turns()
    assert not ran.is_set()
    assert (runner.waiting, runner.running) == (0, 0)


async def test_shutdown_waits_for_running_calls(make_runner: RunnerFactory, gate: Gate) -> None:
    runner = make_runner(1, 4)
    running = runner.run(gate.hold, "finished")
    await gate.wait_started(1)
    stopped = asyncio.get_running_loop().run_in_executor(None, runner.shutdown)
    await turns()
    assert not stopped.done()
    gate.release.set()
    await asyncio.wait_for(stopped, WAIT)
    assert await asyncio.wait_for(running, WAIT) == "finished"


async def test_shutdown_drops_queued_calls_unrun(make_runner: RunnerFactory, gate: Gate) -> None:
    runner = make_runner(1, 4)
    running = runner.run(gate.hold, "first")
    await gate.wait_started(1)
    ran = threading.Event()
    queued = runner.run(ran.set)
    runner.shutdown(wait=False)
    gate.release.set()
    assert await asyncio.wait_for(running, WAIT) == "first"
    await asyncio.wait({queued}, timeout=WAIT)
    assert queued.done()
    assert not ran.is_set()
    assert runner.waiting == 0


async def test_a_call_dropped_at_shutdown_is_answered_service_shutting_down(
    make_runner: RunnerFactory, gate: Gate
) -> None:
    """Its caller is told -32005, not handed a CancelledError its task never asked for.

    (A CancelledError in an element of a batch ends the whole batch as if it had been
    cancelled.)
    """
    runner = make_runner(1, 4)
    running = runner.run(gate.hold, "first")
    await gate.wait_started(1)
    queued = runner.run(square, 1)
    runner.shutdown(wait=False)
    gate.release.set()
    assert await asyncio.wait_for(running, WAIT) == "first"
    [outcome] = await asyncio.wait_for(asyncio.gather(queued, return_exceptions=True), WAIT)
    assert isinstance(outcome, ServiceShuttingDown), repr(outcome)


async def test_no_accepted_call_is_left_hanging_by_a_concurrent_shutdown(
    make_runner: RunnerFactory,
) -> None:
    """Calls made while another thread shuts the runner down: each is refused, or finishes."""
    runner = make_runner(2, None)
    stopping = asyncio.get_running_loop().run_in_executor(None, runner.shutdown)
    accepted: list[asyncio.Future[Any]] = []
    refused = 0
    for n in range(200):
        try:
            accepted.append(runner.run(square, n))
        except ServiceShuttingDown:
            refused += 1
        await asyncio.sleep(0)
    await asyncio.wait_for(stopping, WAIT)
    assert refused + len(accepted) == 200
    if accepted:
        _, pending = await asyncio.wait(accepted, timeout=WAIT)
        assert not pending
    with pytest.raises(ServiceShuttingDown):
        runner.run(square, 1)
    assert (runner.waiting, runner.running) == (0, 0)


# -- other executors ---------------------------------------------------------------------


@pytest.fixture
def process_runner() -> Iterator[BlockingRunner]:
    """One worker process ("spawn": no fork of a threaded test process)."""
    executor = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    runner = BlockingRunner(executor, max_workers=1, max_waiting=1)
    yield runner
    runner.shutdown(wait=True)


async def test_a_process_pool_runs_a_picklable_function(process_runner: BlockingRunner) -> None:
    assert await asyncio.wait_for(process_runner.run(square, 7), WAIT) == 49
    assert await asyncio.wait_for(process_runner.run(square, 3, plus=1), WAIT) == 10
    assert await asyncio.wait_for(process_runner.run(os.getpid), WAIT) != os.getpid()
    with pytest.raises(ValueError, match="in the child"):
        await asyncio.wait_for(process_runner.run(explode, "in the child"), WAIT)
    token = MARK.set("the caller's")
    try:  # context variables do not travel to another process
        assert await asyncio.wait_for(process_runner.run(read_mark), WAIT) is None
    finally:
        MARK.reset(token)
    assert (process_runner.waiting, process_runner.running) == (0, 0)


async def test_a_process_pool_bounds_the_calls_in_flight(process_runner: BlockingRunner) -> None:
    """For other executors the bound counts every call in flight: max_workers + max_waiting."""
    first = process_runner.run(square, 1)
    second = process_runner.run(square, 2)
    assert process_runner.waiting == 2
    with pytest.raises(ServerOverloaded):
        process_runner.run(square, 3)
    assert list(await asyncio.wait_for(asyncio.gather(first, second), WAIT)) == [1, 4]
    assert process_runner.waiting == 0
    assert await asyncio.wait_for(process_runner.run(square, 3), WAIT) == 9
    process_runner.shutdown()
    with pytest.raises(ServiceShuttingDown):
        process_runner.run(square, 4)
