"""Brokers and stores over TLS: RabbitMQ (amqps), Redis (rediss) and etcd (https).

Each server runs here, on 127.0.0.1, with a certificate from a CA made at test time, and
requires a client certificate from it: the RabbitMQ node of the session has a TLS
listener (``tests/fixtures/rabbitmq.py``); Redis and etcd servers with TLS are started
by the fixtures below and stopped when the test ends.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import unused_port

import gemstone_aio as gemstone
from gemstone_aio.cluster import RedisLeaseStore
from gemstone_aio.discovery import EtcdDiscoveryStrategy, RedisDiscoveryStrategy
from gemstone_aio.testing import serving
from tests.fixtures.etcd import _etcd_binary
from tests.fixtures.rabbitmq import RabbitMqNode
from tests.fixtures.redis import _redis_server_binary
from tests.fixtures.tls import TlsFiles

_START_TIMEOUT = 30.0


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait(
    ready: Callable[[], bool], process: subprocess.Popen[bytes], log: Path, what: str
) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while not ready():
        if process.poll() is not None:
            text = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{text}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer within {_START_TIMEOUT} s")
        time.sleep(0.05)


# -- Redis -------------------------------------------------------------------------------------


@pytest.fixture
def rediss(tls: TlsFiles, tmp_path: Path) -> Iterator[tuple[str, tuple[str, str]]]:
    """A Redis with TLS only (client certificates required); its URL and a client certificate."""
    port = unused_port()
    client = tls.issue("redis-client.internal")
    log = tmp_path / "redis.log"
    command = [
        _redis_server_binary(),
        "--bind", "127.0.0.1",
        "--port", "0",
        "--tls-port", str(port),
        "--tls-cert-file", tls.server_cert,
        "--tls-key-file", tls.server_key,
        "--tls-ca-cert-file", tls.ca_file,
        "--tls-auth-clients", "yes",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(tmp_path),
        "--logfile", str(log),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    context = ssl.create_default_context(cafile=tls.ca_file)
    context.load_cert_chain(*client)

    def answers() -> bool:
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=0.5) as raw,
                context.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
            ):
                conn.sendall(b"PING\r\n")
                return conn.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    try:
        _wait(answers, process, log, "redis-server (TLS)")
        yield f"rediss://127.0.0.1:{port}/0", client
    finally:
        _stop(process)


@pytest.mark.redis
async def test_redis_discovery_and_leases_over_tls(
    rediss: tuple[str, tuple[str, str]], tls: TlsFiles, other_tls: TlsFiles
) -> None:
    url, (certfile, keyfile) = rediss
    strategy = RedisDiscoveryStrategy(
        url, ssl_ca_certs=tls.ca_file, ssl_certfile=certfile, ssl_keyfile=keyfile
    )
    try:
        await strategy.ping("tls-svc", "https://127.0.0.1:9/api")
        assert await strategy.locate("tls-svc") == ["https://127.0.0.1:9/api"]
    finally:
        await strategy.aclose()
    store = RedisLeaseStore(
        url, ssl_ca_certs=tls.ca_file, ssl_certfile=certfile, ssl_keyfile=keyfile
    )
    try:
        assert await store.acquire("tls-lease", "me", 5.0)
    finally:
        await store.aclose()
    for refused in (
        RedisDiscoveryStrategy(url, ssl_ca_certs=tls.ca_file),  # no client certificate
        RedisDiscoveryStrategy(  # the server's CA is not this one
            url, ssl_ca_certs=other_tls.ca_file, ssl_certfile=certfile, ssl_keyfile=keyfile
        ),
    ):
        try:
            with pytest.raises(Exception):  # noqa: B017, PT011 (redis-py's own errors)
                await refused.locate("tls-svc")
        finally:
            await refused.aclose()


def test_redis_tls_files_need_rediss_and_private_keys(tls: TlsFiles, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"ssl_ca_certs given for a Redis URL that is not rediss"):
        RedisDiscoveryStrategy("redis://127.0.0.1:6379/0", ssl_ca_certs=tls.ca_file)
    certfile, keyfile = tls.issue("open.internal")
    Path(keyfile).chmod(0o644)
    with pytest.raises(ValueError, match=r"^ssl_keyfile '.*' holds a private key that other users"):
        RedisLeaseStore("rediss://127.0.0.1:6380/0", ssl_certfile=certfile, ssl_keyfile=keyfile)


# -- etcd --------------------------------------------------------------------------------------


@pytest.fixture
def etcd_tls(tls: TlsFiles, tmp_path: Path) -> Iterator[tuple[str, tuple[str, str]]]:
    """An etcd whose client URL is https:// and requires client certificates."""
    client_port, peer_port = unused_port(), unused_port()
    client_url = f"https://127.0.0.1:{client_port}"
    peer_url = f"http://127.0.0.1:{peer_port}"
    client = tls.issue("etcd-client.internal")
    log = tmp_path / "etcd.log"
    command = [
        _etcd_binary(),
        "--name", "gemstone-tls",
        "--data-dir", str(tmp_path / "data"),
        "--listen-client-urls", client_url,
        "--advertise-client-urls", client_url,
        "--listen-peer-urls", peer_url,
        "--initial-advertise-peer-urls", peer_url,
        "--initial-cluster", f"gemstone-tls={peer_url}",
        "--cert-file", tls.server_cert,
        "--key-file", tls.server_key,
        "--trusted-ca-file", tls.ca_file,
        "--client-cert-auth",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    context = ssl.create_default_context(cafile=tls.ca_file)
    context.load_cert_chain(*client)

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{client_url}/health", timeout=0.5, context=context) as r:
                return b'"true"' in r.read()
        except OSError:
            return False

    try:
        _wait(healthy, process, log, "etcd (TLS)")
        yield client_url, client
    finally:
        _stop(process)


@pytest.mark.etcd
async def test_etcd_discovery_over_tls(
    etcd_tls: tuple[str, tuple[str, str]], tls: TlsFiles
) -> None:
    endpoint, (certfile, keyfile) = etcd_tls
    strategy = EtcdDiscoveryStrategy(
        endpoint, ssl_ca_certs=tls.ca_file, ssl_certfile=certfile, ssl_keyfile=keyfile, ttl=5
    )
    try:
        await strategy.ping("tls-svc", "https://127.0.0.1:9/api")
        assert await strategy.locate("tls-svc") == ["https://127.0.0.1:9/api"]
    finally:
        await strategy.aclose()
    anonymous = EtcdDiscoveryStrategy(endpoint, ssl_ca_certs=tls.ca_file, timeout=2)
    try:
        with pytest.raises(Exception):  # noqa: B017, PT011 (gRPC's own errors)
            await anonymous.locate("tls-svc")
    finally:
        await anonymous.aclose()
    with pytest.raises(ValueError, match="need an https:// endpoint"):
        EtcdDiscoveryStrategy("http://127.0.0.1:2379", ssl_ca_certs=tls.ca_file)


# -- RabbitMQ ----------------------------------------------------------------------------------


class Publisher(gemstone.MicroService):
    name = "tls_publisher"


class Subscriber(gemstone.MicroService):
    name = "tls_subscriber"

    def __init__(self) -> None:
        super().__init__()
        self.received: asyncio.Queue[str] = asyncio.Queue()

    @gemstone.event_handler("tls_checked")
    async def on_checked(self, body: str) -> None:
        await self.received.put(body)


@pytest.mark.rabbitmq
async def test_events_over_amqps_with_a_client_certificate(rabbitmq_node: RabbitMqNode) -> None:
    rabbitmq_node.start()
    certfile, keyfile = rabbitmq_node.issue_client_certificate("events.internal")

    def transport() -> gemstone.RabbitMqEventTransport:
        return gemstone.RabbitMqEventTransport(
            rabbitmq_node.tls_url,
            ssl_ca_certs=rabbitmq_node.tls_ca_file,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )

    publisher, subscriber = Publisher(), Subscriber()
    publisher.event_transports = [transport()]
    subscriber.event_transports = [transport()]
    async with serving(subscriber), serving(publisher):
        assert publisher.event_transports[0].readiness()[0]
        await publisher.emit_event("tls_checked", "over amqps")
        assert await asyncio.wait_for(subscriber.received.get(), 10) == "over amqps"


@pytest.mark.rabbitmq
async def test_amqps_refuses_a_broker_from_another_ca_and_a_missing_client_certificate(
    rabbitmq_node: RabbitMqNode, other_tls: TlsFiles
) -> None:
    rabbitmq_node.start()
    certfile, keyfile = rabbitmq_node.issue_client_certificate("events.internal")
    wrong_ca = gemstone.RabbitMqEventTransport(
        rabbitmq_node.tls_url,
        ssl_ca_certs=other_tls.ca_file,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
        connect_timeout=3,
    )
    anonymous = gemstone.RabbitMqEventTransport(
        rabbitmq_node.tls_url, ssl_ca_certs=rabbitmq_node.tls_ca_file, connect_timeout=3
    )
    for transport in (wrong_ca, anonymous):
        service = Publisher()
        service.event_transports = [transport]
        async with serving(service):
            ready, note = service.event_transports[0].readiness()
            assert not ready
            assert note is not None
            assert "not connected" in note
    with pytest.raises(gemstone.ServiceConfigurationError, match="need an amqps:// URL"):
        gemstone.RabbitMqEventTransport(rabbitmq_node.url, ssl_ca_certs=rabbitmq_node.tls_ca_file)
