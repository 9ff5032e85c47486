"""``gemstone dead-letters``: list, show, replay and purge the dead letters of an event.

Dead letters of an event ``E`` wait in the durable queue ``gemstone.dead-letter.E``
(docs/events.md), each with the reason it was given up on (``x-gemstone-error``) and how
many times its handlers ran (``x-gemstone-attempts``). Listing and showing take the
messages without acknowledging them and give them all back when the channel closes, so
they keep their order and nothing is lost. Replaying publishes a copy the way it was
first published (one-of-N to ``gemstone.tasks.E``, a broadcast to
``gemstone.broadcast.E``) with the dead-letter headers removed and ``x-gemstone-replayed``
counted up, waits for the broker's confirm, then acknowledges the dead letter.
"""

from __future__ import annotations

import datetime
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer

from ..event._amqp_topology import HEADER_DELIVERY_COUNT, HEADER_REPLAYED
from ..event._base import HEADER_ATTEMPTS, HEADER_ERROR
from ._amqp import (
    DEAD_LETTER_PREFIX,
    DEFAULT_URL,
    HEADER_BROADCAST,
    HEADER_EVENT,
    HEADER_SERVICE,
    TASKS_ROUTING_KEY,
    declare_route,
)
from ._events import TimeoutOpt, UrlOpt, _check_url, _connect, _run
from ._flags import PlainFlagsGroup
from ._output import ExitCode, dumps, fail, stdout

__all__ = ["dead_letters"]

dead_letters = typer.Typer(
    name="dead-letters",
    help="List, show, replay and purge the dead letters of an event (on RabbitMQ).",
    no_args_is_help=True,
    cls=PlainFlagsGroup,
)
"""The ``gemstone dead-letters`` command group."""

EventArg = Annotated[str, typer.Argument(help="The event name.")]
LimitOpt = Annotated[
    int, typer.Option("--limit", "-n", help="Look at this many dead letters at most.")
]
IdsOpt = Annotated[
    list[str] | None,
    typer.Option("--id", metavar="ID", show_default=False,
                 help="Only the dead letter with this message id (repeatable)."),
]  # fmt: skip
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]

# Headers a replayed message does not carry on: the dead-lettering's, and the broker's.
_DROPPED_ON_REPLAY = frozenset(
    {HEADER_ERROR, HEADER_ATTEMPTS, HEADER_DELIVERY_COUNT, "x-death", "x-first-death-reason",
     "x-first-death-queue", "x-first-death-exchange"}
)  # fmt: skip


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _record(index: int, message: Any) -> dict[str, Any]:
    headers = {key: _text(value) for key, value in (message.headers or {}).items()}
    try:
        body: Any = json.loads(message.body)
    except ValueError:
        body = message.body.decode("utf-8", "replace")
    stamp = message.timestamp
    return {
        "index": index,
        "message_id": message.message_id,
        "event": headers.get(HEADER_EVENT),
        "service": headers.get(HEADER_SERVICE) or message.app_id,
        "broadcast": headers.get(HEADER_BROADCAST) is True,
        "attempts": headers.get(HEADER_ATTEMPTS),
        "reason": headers.get(HEADER_ERROR),
        "dead_lettered_at": stamp.isoformat() if isinstance(stamp, datetime.datetime) else None,
        "headers": headers,
        "body": body,
    }


Work = Callable[[Any, Any, list[Any]], Awaitable[None]]


async def _with_letters(url: str, event: str, limit: int, timeout: float, work: Work) -> None:
    """Hand up to ``limit`` dead letters of ``event`` to ``work(connection, channel, messages)``.

    They are taken unacknowledged: those ``work`` does not settle go back, in order.
    """
    from aio_pika.exceptions import ChannelNotFoundEntity

    connection = await _connect(url, timeout)
    async with connection:
        channel = await connection.channel()
        try:
            queue = await channel.declare_queue(DEAD_LETTER_PREFIX + event, passive=True)
        except ChannelNotFoundEntity:
            await work(connection, None, [])
            return
        messages: list[Any] = []
        while len(messages) < limit:
            message = await queue.get(no_ack=False, fail=False, timeout=timeout)
            if message is None:
                break
            messages.append(message)
        await work(connection, channel, messages)
        await channel.close()  # the ones not acknowledged go back to the queue


def _select(messages: list[Any], ids: list[str] | None) -> list[tuple[int, Any]]:
    indexed = list(enumerate(messages, 1))
    if not ids:
        return indexed
    chosen = [(i, m) for i, m in indexed if m.message_id in ids]
    missing = sorted(set(ids) - {m.message_id for _, m in chosen})
    if missing:
        fail(f"no dead letter with message id {', '.join(missing)}", ExitCode.NOT_FOUND)
    return chosen


def _check(url: str, limit: int) -> None:
    _check_url(url)
    if limit <= 0:
        fail(f"--limit must be positive, got {limit}", ExitCode.USAGE)


@dead_letters.command("list")
def list_(
    event: EventArg,
    url: UrlOpt = DEFAULT_URL,
    limit: LimitOpt = 100,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 10.0,
) -> None:
    """List the dead letters of an event (oldest first), leaving them in their queue.

    Example:
        gemstone dead-letters list --url amqp://guest:guest@127.0.0.1:5672/ order.paid
    """
    _check(url, limit)

    async def work(_connection: Any, _channel: Any, messages: list[Any]) -> None:
        records = [_record(i, m) for i, m in enumerate(messages, 1)]
        if as_json:
            for record in records:
                del record["headers"], record["body"]
                sys.stdout.write(dumps(record) + "\n")
            return
        console = stdout()
        noun = "dead letter" if len(records) == 1 else "dead letters"
        more = f" (the first {limit})" if len(records) == limit else ""
        console.print(f"{DEAD_LETTER_PREFIX}{event}: {len(records)} {noun}{more}", markup=False)
        for r in records:
            kind = "broadcast" if r["broadcast"] else "one-of-N"
            console.print(
                f"#{r['index']}  {r['dead_lettered_at'] or '?'}  from {r['service'] or '?'}  "
                f"{kind}  attempts {r['attempts']}  id {r['message_id'] or '-'}",
                markup=False,
            )
            reason = " ".join(str(r["reason"] or "").split())
            console.print(f"    {reason[:200]}", markup=False)

    _run(_with_letters(url, event, limit, timeout, work), url)


@dead_letters.command("show")
def show(
    event: EventArg,
    url: UrlOpt = DEFAULT_URL,
    ids: IdsOpt = None,
    limit: LimitOpt = 100,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 10.0,
) -> None:
    """Print dead letters whole (headers, reason, body), leaving them in their queue.

    Example:
        gemstone dead-letters show order.paid --id 6f1c2a...
    """
    _check(url, limit)

    async def work(_connection: Any, _channel: Any, messages: list[Any]) -> None:
        chosen = _select(messages, ids)
        if as_json:
            for index, message in chosen:
                sys.stdout.write(dumps(_record(index, message)) + "\n")
            return
        from rich.json import JSON

        console = stdout()
        for index, message in chosen:
            record = _record(index, message)
            console.print(f"#{index}  id {record['message_id'] or '-'}", markup=False)
            console.print(f"reason: {record['reason']}", markup=False)
            console.print("headers:", markup=False)
            console.print(JSON(dumps(record["headers"])))
            console.print("body:", markup=False)
            console.print(JSON(dumps(record["body"])))

    _run(_with_letters(url, event, limit, timeout, work), url)


@dead_letters.command("replay")
def replay(
    event: EventArg,
    url: UrlOpt = DEFAULT_URL,
    ids: IdsOpt = None,
    replay_all: Annotated[
        bool, typer.Option("--all", help="Replay every dead letter (up to --limit).")
    ] = False,
    limit: LimitOpt = 100,
    timeout: TimeoutOpt = 10.0,
) -> None:
    """Publish dead letters again, as they were first published, then remove them.

    One-of-N events go back to their shared queue (one subscriber handles each again);
    a broadcast dead letter is broadcast again, to every subscribing instance. Give the
    message ids to replay (--id, see `list`) or --all.

    Example:
        gemstone dead-letters replay order.paid --all
    """
    _check(url, limit)
    if bool(ids) == replay_all:
        fail("give the dead letters to replay: --id ID (repeatable) or --all", ExitCode.USAGE)

    async def work(connection: Any, channel: Any, messages: list[Any]) -> None:
        import aio_pika

        chosen = _select(messages, ids)
        routes: dict[bool, Any] = {}
        for _index, message in chosen:
            headers = {
                k: v for k, v in (message.headers or {}).items() if k not in _DROPPED_ON_REPLAY
            }
            previous = headers.get(HEADER_REPLAYED, 0)
            headers[HEADER_REPLAYED] = (previous if isinstance(previous, int) else 0) + 1
            broadcast = headers.get(HEADER_BROADCAST) is True
            if broadcast not in routes:
                routes[broadcast], _ = await declare_route(
                    channel, event, broadcast, connection=connection
                )
            await routes[broadcast].publish(
                aio_pika.Message(
                    message.body,
                    content_type=message.content_type or "application/json",
                    headers=headers,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=message.message_id,
                    app_id=message.app_id,
                    timestamp=time.time(),
                ),
                routing_key="" if broadcast else TASKS_ROUTING_KEY,
                timeout=timeout,
            )  # confirmed by the broker: only then is the dead letter removed
            await message.ack()
        noun = "dead letter" if len(chosen) == 1 else "dead letters"
        stdout().print(f"[!] Replayed {len(chosen)} {noun} of {event!r}", markup=False)

    _run(_with_letters(url, event, limit, timeout, work), url)


@dead_letters.command("purge")
def purge(
    event: EventArg,
    url: UrlOpt = DEFAULT_URL,
    yes: Annotated[
        bool, typer.Option("--yes", help="Really delete them (nothing is deleted without it).")
    ] = False,
    timeout: TimeoutOpt = 10.0,
) -> None:
    """Delete every dead letter of an event, for good. Needs --yes.

    Example:
        gemstone dead-letters purge order.paid --yes
    """
    _check_url(url)
    if not yes:
        fail(f"purging deletes the dead letters of {event!r} for good: add --yes", ExitCode.USAGE)

    async def run() -> None:
        from aio_pika.exceptions import ChannelNotFoundEntity

        connection = await _connect(url, timeout)
        async with connection:
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(DEAD_LETTER_PREFIX + event, passive=True)
            except ChannelNotFoundEntity:
                count = 0
            else:
                count = (await queue.purge(timeout=timeout)).message_count or 0
        noun = "dead letter" if count == 1 else "dead letters"
        stdout().print(f"[!] Purged {count} {noun} of {event!r}", markup=False)

    _run(run(), url)
