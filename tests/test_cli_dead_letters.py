"""``gemstone dead-letters`` and ``gemstone listen --tap`` on the test RabbitMQ node.

The CLI runs as a real subprocess; the services whose handlers fail (making the dead
letters) or compete for one-of-N events run in the test's loop.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import gemstone_aio as gemstone
from gemstone_aio.event._amqp_topology import DEAD_LETTER_PREFIX, TASKS_PREFIX
from gemstone_aio.testing import serving
from tests.fixtures.cli import RunCli, start_cli
from tests.fixtures.events import Recorder, unique
from tests.test_events_faults import queue_depth

pytestmark = pytest.mark.rabbitmq


def service(event: str, url: str, recorder: Recorder, *, fail: bool) -> gemstone.MicroService:
    class Handler(gemstone.MicroService):
        name = unique("billing")
        event_transports = [gemstone.RabbitMqEventTransport(url, max_attempts=1)]

        @gemstone.event_handler(event)
        async def on_event(self, body: Any) -> None:
            if fail:
                raise RuntimeError(f"cannot bill {body}")
            await recorder.add("s", body)

    return Handler()


async def test_list_show_replay_and_purge_dead_letters(
    rabbitmq_url: str, gemstone_cli: RunCli
) -> None:
    event, recorder = unique("invoice.paid"), Recorder()
    failing = service(event, rabbitmq_url, Recorder(), fail=True)
    async with serving(failing):
        for n in range(3):
            await failing.emit_event(event, {"n": n}, broadcast=False)
        async with asyncio.timeout(30):
            while await queue_depth(rabbitmq_url, DEAD_LETTER_PREFIX + event) != 3:  # noqa: ASYNC110
                await asyncio.sleep(0.05)

    listed = await gemstone_cli("dead-letters", "list", "--url", rabbitmq_url, "--json", event)
    assert listed.code == 0, listed.stderr
    records = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["index"] for r in records] == [1, 2, 3]
    assert all(r["attempts"] == 1 and r["broadcast"] is False for r in records)
    assert all(r["service"] == failing.name for r in records)
    assert records[0]["reason"].startswith(f"{type(failing).__qualname__}.on_event failed 1 times")
    ids = [r["message_id"] for r in records]
    assert len(set(ids)) == 3
    assert None not in ids
    # Listing takes nothing away, and keeps the order.
    text = await gemstone_cli("dead-letters", "list", "--url", rabbitmq_url, event)
    assert text.code == 0, text.stderr
    assert text.stdout.splitlines()[0] == f"{DEAD_LETTER_PREFIX}{event}: 3 dead letters"
    assert "cannot bill {'n': 0}" in text.stdout
    assert await queue_depth(rabbitmq_url, DEAD_LETTER_PREFIX + event) == 3

    shown = await gemstone_cli(
        "dead-letters", "show", "--url", rabbitmq_url, "--json", "--id", ids[1], event
    )
    assert shown.code == 0, shown.stderr
    (one,) = [json.loads(line) for line in shown.stdout.splitlines()]
    assert one["body"] == {"n": 1}
    assert one["headers"]["x-gemstone-event"] == event
    missing = await gemstone_cli("dead-letters", "show", "--url", rabbitmq_url, "--id", "no", event)
    assert missing.code == 4
    assert missing.stderr == "error: no dead letter with message id no\n"

    # Replay one to a service that now succeeds: handled once, gone from the dead letters.
    refused = await gemstone_cli("dead-letters", "replay", "--url", rabbitmq_url, event)
    assert refused.code == 2  # neither --id nor --all: nothing is replayed by accident
    async with serving(service(event, rabbitmq_url, recorder, fail=False)):
        replayed = await gemstone_cli(
            "dead-letters", "replay", "--url", rabbitmq_url, "--id", ids[1], event
        )
        assert replayed.code == 0, replayed.stderr
        assert replayed.stdout == f"[!] Replayed 1 dead letter of {event!r}\n"
        await recorder.wait_count(1)
    assert recorder.items == [("s", {"n": 1})]
    after = await gemstone_cli("dead-letters", "list", "--url", rabbitmq_url, "--json", event)
    assert [json.loads(line)["message_id"] for line in after.stdout.splitlines()] == [
        ids[0],
        ids[2],
    ]

    kept = await gemstone_cli("dead-letters", "purge", "--url", rabbitmq_url, event)
    assert kept.code == 2
    assert "add --yes" in kept.stderr
    assert await queue_depth(rabbitmq_url, DEAD_LETTER_PREFIX + event) == 2
    purged = await gemstone_cli("dead-letters", "purge", "--url", rabbitmq_url, "--yes", event)
    assert purged.code == 0, purged.stderr
    assert purged.stdout == f"[!] Purged 2 dead letters of {event!r}\n"
    assert await queue_depth(rabbitmq_url, DEAD_LETTER_PREFIX + event) == 0


async def test_dead_letters_of_an_unknown_event(rabbitmq_url: str, gemstone_cli: RunCli) -> None:
    event = unique("never.failed")
    listed = await gemstone_cli("dead-letters", "list", "--url", rabbitmq_url, event)
    assert listed.code == 0, listed.stderr
    assert listed.stdout == f"{DEAD_LETTER_PREFIX}{event}: 0 dead letters\n"
    assert await queue_depth(rabbitmq_url, DEAD_LETTER_PREFIX + event) is None  # not created


async def test_listen_tap_copies_one_of_n_events_without_taking_them(
    rabbitmq_url: str, gemstone_cli: RunCli
) -> None:
    """--tap prints each one-of-N event while the competing service still handles it."""
    event, recorder = unique("job.render"), Recorder()
    both = await gemstone_cli("listen", "--url", rabbitmq_url, "--tap", "--task", event)
    assert both.code == 2
    async with serving(service(event, rabbitmq_url, recorder, fail=False)) as worker:
        tap = await start_cli(
            "listen", "--url", rabbitmq_url, "--tap", "--json", "--count", "2", event
        )
        try:
            assert tap.stderr is not None
            line = (await asyncio.wait_for(tap.stderr.readline(), 30)).decode()
            assert line.startswith(f"listening for {event} (task copies) on amqp://guest:***@")
            for n in range(2):
                await worker.emit_event(event, {"job": n}, broadcast=False)
            out, err = await asyncio.wait_for(tap.communicate(), 30)
        finally:
            if tap.returncode is None:
                tap.kill()
                await tap.wait()
        await recorder.wait_count(2)
    assert tap.returncode == 0, err.decode()
    assert [json.loads(line) for line in out.decode().splitlines()] == [
        {"event": event, "service": worker.name, "broadcast": False, "body": {"job": n}}
        for n in range(2)
    ]
    assert sorted(v["job"] for v in recorder.by("s")) == [0, 1]  # the service got both
    assert await queue_depth(rabbitmq_url, TASKS_PREFIX + event) == 0
