"""The clients of ``get_service``: balancing, outlier ejection, safe retries, per-instance metrics.

Real HTTP servers (services served in this process, raw TCP servers standing for frozen
instances) and a real registry; no mocks. ``tests/test_call_resilience.py`` does the same
with instances in their own processes (kill -9, SIGSTOP, rolling restarts).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import unused_port
from prometheus_client.parser import text_string_to_metric_families
from pytest_aiohttp import AiohttpClient

import gemstone_aio as gemstone
from gemstone_aio import RemoteService
from gemstone_aio.client import CallTimeoutError, ServiceUnavailableError
from gemstone_aio.discovery import CallPolicy, DiscoveredService
from gemstone_aio.errors import CalledServiceError, ServiceConfigurationError
from gemstone_aio.protocol import get_method_spec
from gemstone_aio.registry import ServiceRegistry
from gemstone_aio.testing import serving
from tests.fixtures.calls import Recorder
from tests.fixtures.discovery import RegistryFactory, unique, wait_until


class Caller(gemstone.MicroService):
    name = "balancing-caller"


class Store(gemstone.MicroService):
    """An instance whose calls can hang, drop their connection or be refused."""

    name = "balancing-store"

    def __init__(self) -> None:
        super().__init__()
        self.runs: collections.Counter[str] = collections.Counter()
        self.gate: asyncio.Event | None = None  # calls wait for it when set
        self.drop = False  # calls close their connection without answering
        self.refuse: type[gemstone.JsonRpcError] | None = None  # calls raise this

    async def _run(self, method: str) -> str:
        self.runs[method] += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.refuse is not None:
            raise self.refuse()
        if self.drop:
            transport = gemstone.current_handler().request.transport
            assert transport is not None
            transport.close()
        return str(self.accessible_at)

    @gemstone.exposed_method(idempotent=True)
    async def read(self) -> str:
        """Read something: harmless to repeat."""
        return await self._run("read")

    @gemstone.exposed_method()
    async def write(self) -> str:
        """Write something: must not run twice."""
        return await self._run("write")

    @gemstone.exposed_method()
    async def budget(self) -> float | None:
        return gemstone.time_left()


async def announce(registry: ServiceRegistry, name: str, *urls: str) -> None:
    async with RemoteService(str(registry.accessible_at)) as client:
        for url in urls:
            await client.call("ping", name, url)


@contextlib.asynccontextmanager
async def caller_of(
    registry: ServiceRegistry, policy: CallPolicy | None = None
) -> AsyncIterator[tuple[Caller, Recorder]]:
    caller = Caller()
    caller.service_registry_urls = [str(registry.accessible_at)]
    caller.call_policy = policy
    recorder = Recorder()
    caller.discovery.locator.metrics = recorder
    try:
        yield caller, recorder
    finally:
        await caller.discovery.aclose()


@contextlib.asynccontextmanager
async def silent_server(port: int = 0) -> AsyncIterator[str]:
    """A TCP server that accepts connections and never answers (a frozen process)."""
    writers: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass

    server = await asyncio.start_server(hold, "127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/api"
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def serving_on(service: Store, port: int) -> AsyncIterator[Store]:
    """Serve ``service`` on ``port`` of 127.0.0.1 (``serving`` picks a free port)."""
    service.host, service.port = "127.0.0.1", port
    service.refresh_accessible_at()
    ready = asyncio.Event()
    task = asyncio.create_task(service.serve(handle_signals=False, ready=ready, configure=False))
    await asyncio.wait_for(ready.wait(), 10)
    try:
        yield service
    finally:
        service.stop()
        await asyncio.wait_for(task, 10)


def dead_url() -> str:
    return f"http://127.0.0.1:{unused_port()}/api"


# -- the flag and its publication ---------------------------------------------------------


async def test_idempotent_methods_are_published(aiohttp_client: AiohttpClient) -> None:
    """``exposed_method(idempotent=True)`` is in the spec and ``x-idempotent`` in rpc.discover."""
    spec = get_method_spec(Store.read)
    assert spec is not None
    assert spec.idempotent
    write_spec = get_method_spec(Store.write)
    assert write_spec is not None
    assert not write_spec.idempotent
    client = await aiohttp_client(Store().make_app())
    response = await client.post("/api", json={"jsonrpc": "2.0", "method": "rpc.discover", "id": 1})
    methods = {m["name"]: m for m in (await response.json())["result"]["methods"]}
    assert methods["read"]["x-idempotent"] is True
    assert "x-idempotent" not in methods["write"]


def test_a_call_policy_is_checked() -> None:
    """Bad settings name themselves; a service's call_policy must be a CallPolicy."""
    with pytest.raises(ServiceConfigurationError, match="failure_threshold"):
        CallPolicy(failure_threshold=0)
    with pytest.raises(ServiceConfigurationError, match="base_ejection"):
        CallPolicy(base_ejection=float("nan"))
    with pytest.raises(ServiceConfigurationError, match="max_ejection"):
        CallPolicy(base_ejection=10, max_ejection=1)
    assert CallPolicy().ejection_time(1) == 1.0
    assert [CallPolicy(max_ejection=5).ejection_time(n) for n in (2, 3, 4, 40)] == [2, 4, 5, 5]
    caller = Caller()
    caller.service_registry_urls = ["http://127.0.0.1:1/api"]
    caller.call_policy = {"failure_threshold": 3}  # type: ignore[assignment]
    with pytest.raises(ServiceConfigurationError, match="call_policy"):
        caller.discovery  # noqa: B018 (building it checks the settings)


# -- balancing ----------------------------------------------------------------------------


async def test_a_stuck_instance_gets_no_more_calls_than_it_holds(
    start_registry: RegistryFactory,
) -> None:
    """Calls go to the candidate with fewer calls in flight: an instance that stopped
    answering keeps the calls it already has, and the others take every new one."""
    registry = await start_registry()
    name = unique()
    stuck, healthy = Store(), Store()
    stuck.gate = asyncio.Event()
    async with serving(stuck), serving(healthy), caller_of(registry) as (caller, _):
        await announce(registry, name, str(stuck.accessible_at), str(healthy.accessible_at))
        done = asyncio.Event()
        answered: collections.Counter[str] = collections.Counter()

        async def load() -> None:
            while not done.is_set():
                service = await caller.get_service(name)
                answered[await service.call("read")] += 1

        loops = [asyncio.create_task(load()) for _ in range(4)]
        try:

            async def healthy_busy() -> bool:
                return answered[str(healthy.accessible_at)] >= 200

            await wait_until(healthy_busy, what="200 calls answered by the healthy instance")
            # Round-robin alone would have sent every other call to it: all four loops
            # would be stuck. Two of them reached it before it looked busier.
            assert stuck.runs["read"] <= 2
            peer = caller.discovery.locator.peer(str(stuck.accessible_at))
            assert peer is not None
            assert peer.in_flight == stuck.runs["read"]
        finally:
            done.set()
            stuck.gate.set()
            await asyncio.gather(*loops)


# -- outlier ejection ---------------------------------------------------------------------


async def test_a_frozen_instance_is_ejected_and_probed_back(
    start_registry: RegistryFactory,
) -> None:
    """Consecutive time-outs eject an instance; probes that get no answer keep it out for
    twice as long each time; once it answers again, its probe brings it back."""
    registry = await start_registry()
    name = unique()
    port = unused_port()
    frozen_url = f"http://127.0.0.1:{port}/api"
    policy = CallPolicy(failure_threshold=2, base_ejection=0.2, max_ejection=0.8, probe_timeout=0.2)
    timeouts: list[str] = []
    async with serving(Store()) as healthy, caller_of(registry, policy) as (caller, recorder):
        await announce(registry, name, frozen_url, str(healthy.accessible_at))

        async def call_once() -> str | None:
            service = await caller.get_service(name)
            try:
                return str(await service.request("read", timeout=0.3))
            except CallTimeoutError as exc:
                timeouts.append(str(exc))
                return None

        async with silent_server(port):

            async def ejected_three_times() -> bool:
                await call_once()
                return len(recorder.of("ejected", frozen_url)) >= 3

            await wait_until(ejected_three_times, what="three ejections of the frozen instance")
        assert recorder.of("ejected", frozen_url)[:3] == [0.2, 0.4, 0.8]
        assert recorder.of("restored", frozen_url) == []  # its probes never got an answer
        assert len(timeouts) == policy.failure_threshold  # then no call went to it

        async with serving_on(Store(), port):

            async def answered_by_it() -> bool:
                return await call_once() == frozen_url

            await wait_until(answered_by_it, timeout=15, what="a call answered by it again")
        assert recorder.of("restored", frozen_url) == [None]
        peer = caller.discovery.locator.peer(frozen_url)
        assert peer is not None
        assert (peer.ejections, peer.failures, peer.probation) == (0, 0, False)
    assert recorder.calls_started_while_ejected(frozen_url) == []


async def test_an_instance_that_refuses_is_ejected_at_once(start_registry: RegistryFactory) -> None:
    """A refused connection ejects at once, and any call, even one that must not run
    twice, goes to another instance: nothing was sent."""
    registry = await start_registry()
    name = unique()
    policy = CallPolicy(base_ejection=0.05, max_ejection=0.2)
    async with serving(Store()) as store, caller_of(registry, policy) as (caller, recorder):
        doomed = Store()
        async with serving(doomed):
            doomed_url = str(doomed.accessible_at)
            await announce(registry, name, doomed_url, str(store.accessible_at))
            service = await caller.get_service(name)
            for _ in range(2):  # both seen alive: no TCP check before the next calls
                await service.call("write")
        for _ in range(30):
            assert await service.call("write") == store.accessible_at
        assert doomed.runs["write"] + store.runs["write"] == 32
        assert recorder.of("call", doomed_url) == ["ok", "connect_failed"]
        assert recorder.of("retried") == ["connect_failed"]

        async def probed_out() -> bool:
            await service.call("write")
            return len(recorder.of("ejected", doomed_url)) >= 3

        await wait_until(probed_out, what="failed probes")
        assert recorder.of("ejected", doomed_url)[:3] == [0.05, 0.1, 0.2]


# -- what is retried ----------------------------------------------------------------------


async def test_a_sent_call_is_retried_only_when_idempotent(
    start_registry: RegistryFactory,
) -> None:
    """A connection that breaks after the request was sent: an idempotent method (as the
    service declares it, learnt from its rpc.discover, or as the caller says) goes to
    another instance; another method fails and says it may have run."""
    registry = await start_registry()
    name = unique()
    policy = CallPolicy(failure_threshold=100)  # keep the dropping instance in rotation
    flaky, store = Store(), Store()
    flaky.drop = True
    async with serving(flaky), serving(store), caller_of(registry, policy) as (caller, recorder):
        await announce(registry, name, str(flaky.accessible_at), str(store.accessible_at))
        service = await caller.get_service(name)
        for _ in range(6):
            assert await service.call("read") == store.accessible_at
        assert flaky.runs["read"] >= 1
        assert recorder.of("retried") == ["failed"] * flaky.runs["read"]
        failures = []
        for _ in range(6):
            try:
                assert await service.call("write") == store.accessible_at
            except ServiceUnavailableError as exc:
                failures.append(str(exc))
        assert len(failures) == flaky.runs["write"] >= 1
        assert store.runs["write"] == 6 - len(failures)
        assert all("may have been run" in failure for failure in failures)
        before = flaky.runs["write"]
        for _ in range(4):
            assert await service.request("write", idempotent=True) == store.accessible_at
        assert len(recorder.of("retried")) == flaky.runs["read"] + flaky.runs["write"] - before


@pytest.mark.parametrize(
    ("error", "reason"),
    [(gemstone.ServerOverloaded, "overloaded"), (gemstone.ServiceShuttingDown, "shutting_down")],
)
async def test_overloaded_and_shutting_down_answers(
    start_registry: RegistryFactory, error: type[gemstone.JsonRpcError], reason: str
) -> None:
    """-32002 and -32005 send an idempotent call to another instance; another call gets
    the answer."""
    registry = await start_registry()
    name = unique()
    policy = CallPolicy(failure_threshold=100)
    busy, store = Store(), Store()
    busy.refuse = error
    async with serving(busy), serving(store), caller_of(registry, policy) as (caller, recorder):
        await announce(registry, name, str(busy.accessible_at), str(store.accessible_at))
        service = await caller.get_service(name)
        assert [await service.call("read") for _ in range(4)] == [store.accessible_at] * 4
        assert recorder.of("retried") == [reason] * busy.runs["read"]
        assert busy.runs["read"] >= 1
        codes = []
        for _ in range(4):
            try:
                await service.call("write")
            except CalledServiceError as exc:
                codes.append(exc.code)
        assert codes == [error.code] * busy.runs["write"]
        assert busy.runs["write"] >= 1


async def test_the_retry_budget_bounds_retries(start_registry: RegistryFactory) -> None:
    """Retries of sent requests are at most retry_ratio of the calls plus retry_reserve."""
    registry = await start_registry()
    name = unique()
    policy = CallPolicy(failure_threshold=1000, retry_ratio=0.1, retry_reserve=2)
    flaky, store = Store(), Store()
    flaky.drop = True
    async with serving(flaky), serving(store), caller_of(registry, policy) as (caller, recorder):
        await announce(registry, name, str(flaky.accessible_at), str(store.accessible_at))
        service = await caller.get_service(name)
        calls, failed = 60, 0
        for _ in range(calls):
            try:
                await service.call("read")
            except ServiceUnavailableError:
                failed += 1
        retried = len(recorder.of("retried"))
        assert retried + failed == flaky.runs["read"]
        assert flaky.runs["read"] >= calls // 2
        assert 2 + 0.1 * calls - 2 <= retried <= 2 + 0.1 * calls  # used, never exceeded
        assert len(recorder.of("denied")) == failed


# -- the client handed out --------------------------------------------------------------


async def test_the_client_balances_every_call(start_registry: RegistryFactory) -> None:
    """One client spreads its calls over the instances; its url is the last one called."""
    registry = await start_registry()
    name = unique()
    first, second = Store(), Store()
    async with serving(first), serving(second), caller_of(registry) as (caller, _):
        await announce(registry, name, str(first.accessible_at), str(second.accessible_at))
        service = await caller.get_service(name)
        assert isinstance(service, DiscoveredService)
        assert service.pattern == name
        picked = service.url
        answers = []
        for _ in range(4):
            answers.append(await service.call("read"))
            assert service.url == answers[-1]
        assert answers[0] == picked
        assert set(answers) == {first.accessible_at, second.accessible_at}
        async with service.batch() as batch:
            one = batch.call("read")
        assert one.result() in answers


async def test_blocking_use_calls_the_instance_of_its_url(start_registry: RegistryFactory) -> None:
    """From a thread without an event loop the client calls its ``url`` as a RemoteService."""
    registry = await start_registry()
    name = unique()
    first, second = Store(), Store()
    async with serving(first), serving(second), caller_of(registry) as (caller, _):
        await announce(registry, name, str(first.accessible_at), str(second.accessible_at))
        service = await caller.get_service(name)
        try:
            for _ in range(3):
                assert await asyncio.to_thread(service.methods.read) == service.url
        finally:
            await service.close()


# -- metrics ------------------------------------------------------------------------------


async def test_per_instance_metrics(start_registry: RegistryFactory) -> None:
    """A served service's /metrics show each instance it calls: attempts by outcome,
    in-flight calls, ejections and retries; never a method name."""
    registry = await start_registry()
    name = unique()

    class Front(gemstone.MicroService):
        name = unique("front")

        @gemstone.exposed_method(private=True)
        async def relay(self) -> str:
            backend = await self.get_service(name)
            return str(await backend.call("read"))

    front = Front()
    front.service_registry_urls = [str(registry.accessible_at)]
    front.api_tokens = ["t0ken"]
    async with serving(Store()) as store, serving(front):
        async with RemoteService(str(front.accessible_at), token="t0ken") as svc:
            doomed = Store()
            async with serving(doomed):
                doomed_url = str(doomed.accessible_at)
                await announce(registry, name, str(store.accessible_at), doomed_url)
                for _ in range(4):
                    await svc.call("relay")
            for _ in range(4):  # one of them is sent to the stopped instance first
                assert await svc.call("relay") == store.accessible_at
        metrics_url = str(front.accessible_at).rsplit("/", 1)[0] + "/metrics"
        async with aiohttp.ClientSession() as session, session.get(metrics_url) as response:
            text = await response.text()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    url = str(store.accessible_at)
    assert samples[("gemstone_peer_calls_total", (("outcome", "ok"), ("peer", url)))] == 6
    assert samples[("gemstone_peer_calls_total", (("outcome", "ok"), ("peer", doomed_url)))] == 2
    refused = (("outcome", "connect_failed"), ("peer", doomed_url))
    assert samples[("gemstone_peer_calls_total", refused)] == 1
    assert samples[("gemstone_peer_ejections_total", (("peer", doomed_url),))] == 1
    assert samples[("gemstone_peer_ejected", (("peer", doomed_url),))] == 1
    assert samples[("gemstone_peer_ejected", (("peer", url),))] == 0
    assert samples[("gemstone_peer_calls_in_flight", (("peer", url),))] == 0
    reason = (("reason", "connect_failed"), ("service", name))
    assert samples[("gemstone_call_retries_total", reason)] == 1
    labels = {value for (_, pairs) in samples for _, value in pairs}
    assert "read" not in labels  # the callee's methods are never named
    assert "relay" not in labels  # and private methods stay unnamed as before
