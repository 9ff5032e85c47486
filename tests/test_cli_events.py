"""``gemstone emit`` and ``gemstone listen`` on the test RabbitMQ node, in subprocesses."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from typing import Any

import aio_pika
import pytest
from aiohttp.test_utils import unused_port

import gemstone_aio as gemstone
from gemstone_aio.event import RabbitMqEventTransport
from gemstone_aio.testing import serving
from tests.fixtures.cli import RunCli, start_cli

pytestmark = pytest.mark.rabbitmq


def unique(prefix: str) -> str:
    return f"{prefix}.{uuid.uuid4().hex[:8]}"


async def _ready(proc: asyncio.subprocess.Process) -> str:
    """Wait until ``listen`` says its queue is bound (its first stderr line)."""
    assert proc.stderr is not None
    line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
    assert line.startswith("listening for "), line
    return line


async def test_listen_prints_broadcast_events(rabbitmq_url: str, gemstone_cli: RunCli) -> None:
    created, paid = unique("order.created"), unique("order.paid")
    listener = await start_cli(
        "listen", "--url", rabbitmq_url, "--json", "--count", "3", created, paid
    )
    try:
        line = await _ready(listener)
        assert f"listening for {created}, {paid} (broadcast) on amqp://guest:***@" in line
        first = await gemstone_cli("emit", "--url", rabbitmq_url, created, "id:=42", "who=ann")
        assert first.code == 0, first.stderr
        assert first.stdout == (
            f"[!] Event '{created}' published (broadcast) to gemstone.broadcast.{created}\n"
        )
        second = await gemstone_cli(
            "emit", "--url", rabbitmq_url, "--service", "billing", paid, "[1, 2]"
        )
        assert second.code == 0, second.stderr
        third = await gemstone_cli("emit", "--url", rabbitmq_url, paid, "plain text")
        assert third.code == 0, third.stderr
        out, err = await asyncio.wait_for(listener.communicate(), 30)
    finally:
        if listener.returncode is None:
            listener.kill()
            await listener.wait()
    assert listener.returncode == 0, err.decode()
    assert [json.loads(line) for line in out.decode().splitlines()] == [
        {
            "event": created,
            "service": "gemstone-cli",
            "broadcast": True,
            "body": {"id": 42, "who": "ann"},
        },
        {"event": paid, "service": "billing", "broadcast": True, "body": [1, 2]},
        {"event": paid, "service": "gemstone-cli", "broadcast": True, "body": "plain text"},
    ]


async def test_emitted_event_reaches_an_amqp_consumer(
    rabbitmq_url: str, gemstone_cli: RunCli
) -> None:
    """Another program sees the documented topology: fanout exchange, headers, JSON body."""
    event = unique("user.signed_up")
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            f"gemstone.broadcast.{event}", aio_pika.ExchangeType.FANOUT, durable=True
        )
        queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
        await queue.bind(exchange)
        result = await gemstone_cli("emit", "--url", rabbitmq_url, event, '{"name": "zoe"}')
        assert result.code == 0, result.stderr
        message = await queue.get(timeout=10)
        await message.ack()
    assert json.loads(message.body) == {"name": "zoe"}
    assert message.content_type == "application/json"
    assert message.headers["x-gemstone-event"] == event
    assert message.headers["x-gemstone-service"] == "gemstone-cli"
    assert message.headers["x-gemstone-broadcast"] is True


async def test_task_events_wait_in_their_queue(rabbitmq_url: str, gemstone_cli: RunCli) -> None:
    event = unique("invoice.render")
    sent = await gemstone_cli("emit", "--url", rabbitmq_url, "--task", event, "n:=1")
    assert sent.code == 0, sent.stderr
    assert sent.stdout == f"[!] Event '{event}' published (task) to gemstone.tasks.{event}\n"
    # Published before anyone listened: the durable task queue kept it.
    got = await gemstone_cli("listen", "--url", rabbitmq_url, "--task", "--count", "1", event)
    assert got.code == 0, got.stderr
    lines = got.stdout.splitlines()
    assert lines[0].endswith(f"] {event} from gemstone-cli (task)")
    assert json.loads("\n".join(lines[1:])) == {"n": 1}
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(f"gemstone.tasks.{event}", passive=True)
        assert queue.declaration_result.message_count == 0  # taken, acknowledged
        await queue.delete(if_unused=False, if_empty=False)


async def test_broker_failures_and_bad_urls(gemstone_cli: RunCli) -> None:
    dead = f"amqp://guest:guest@127.0.0.1:{unused_port()}/"
    emit, listen, bad = await asyncio.gather(
        gemstone_cli("emit", "--url", dead, "--timeout", "3", "x", "1"),
        gemstone_cli("listen", "--url", dead, "--timeout", "3", "x"),
        gemstone_cli("emit", "--url", "http://127.0.0.1/", "x"),
    )
    for result in (emit, listen):
        assert result.code == 3, result
        assert result.stderr.startswith(
            f"error: RabbitMQ at amqp://guest:***@127.0.0.1:{dead.rsplit(':', 1)[1]}"
        )
        assert result.stderr.count("\n") == 1
    assert bad.code == 2
    assert bad.stderr == (
        "error: --url 'http://127.0.0.1/': expected amqp://user:password@host:port/vhost\n"
    )


async def test_listen_stops_on_ctrl_c(rabbitmq_url: str) -> None:
    """Ctrl-C is how one stops ``listen``: exit 130, and nothing said about it."""
    listener = await start_cli("listen", "--url", rabbitmq_url, unique("quiet"))
    try:
        await _ready(listener)
        listener.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(listener.communicate(), 30)
    finally:
        if listener.returncode is None:
            listener.kill()
            await listener.wait()
    assert listener.returncode == 130
    assert err == b""  # after the "listening for" line _ready read: nothing
    assert out == b""


async def test_cli_and_services_talk_both_ways(rabbitmq_url: str, gemstone_cli: RunCli) -> None:
    """``emit`` reaches a service's handler (broadcast and task); ``listen`` sees its emits."""
    inbound, outbound = unique("cli.to.service"), unique("service.to.cli")
    got: asyncio.Queue[Any] = asyncio.Queue()

    class Inbox(gemstone.MicroService):
        name = unique("inbox")
        event_transports = [RabbitMqEventTransport(rabbitmq_url)]

        @gemstone.event_handler(inbound)
        async def on_event(self, body: Any) -> None:
            await got.put(body)

    async with serving(Inbox()) as inbox:
        for flag in ([], ["--task"]):
            sent = await gemstone_cli("emit", "--url", rabbitmq_url, *flag, inbound, "n:=7")
            assert sent.code == 0, sent.stderr
            assert await asyncio.wait_for(got.get(), 30) == {"n": 7}
        listener = await start_cli(
            "listen", "--url", rabbitmq_url, "--json", "--count", "1", outbound
        )
        try:
            await _ready(listener)
            await inbox.emit_event(outbound, {"from": "service"})
            out, err = await asyncio.wait_for(listener.communicate(), 30)
        finally:
            if listener.returncode is None:
                listener.kill()
                await listener.wait()
    assert listener.returncode == 0, err.decode()
    assert json.loads(out) == {
        "event": outbound,
        "service": Inbox.name,
        "broadcast": True,
        "body": {"from": "service"},
    }
