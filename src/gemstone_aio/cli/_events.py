"""``gemstone emit`` and ``gemstone listen``: publish and watch events on RabbitMQ."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from typing import Annotated, Any

import typer

from ._amqp import (
    BROADCAST_PREFIX,
    DEFAULT_URL,
    HEADER_BROADCAST,
    HEADER_EVENT,
    HEADER_SERVICE,
    TASKS_PREFIX,
    TASKS_ROUTING_KEY,
    declare_route,
    declare_tasks_exchange,
)
from ._output import ExitCode, dumps, fail, stdout
from ._params import ParamsError, parse_params

__all__ = ["emit", "listen"]

UrlOpt = Annotated[
    str,
    typer.Option("--url", envvar="GEMSTONE_AMQP_URL", help="The broker (or $GEMSTONE_AMQP_URL)."),
]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds to wait for the broker.")]


def _body(items: list[str] | None) -> Any:
    try:
        params = parse_params(items or [])
    except ParamsError as exc:
        fail(str(exc), ExitCode.USAGE)
    value = params.value
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def _safe(url: str) -> str:
    from yarl import URL

    parsed = URL(url)
    return str(parsed.with_password("***")) if parsed.password else str(parsed)


def _run(coro: Any, url: str) -> None:
    """Run ``coro``; an unreachable broker exits 3, Ctrl-C 130, a bad URL 2."""
    from aio_pika.exceptions import AMQPError

    # The failure is reported once, below; the client libraries' own log lines would
    # repeat it (through logging's last-resort handler) on stderr.
    for name in ("aiormq", "aio_pika"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        asyncio.run(coro)
    except (OSError, AMQPError, TimeoutError) as exc:
        fail(f"RabbitMQ at {_safe(url)}: {type(exc).__name__}: {exc}", ExitCode.UNREACHABLE)
    except KeyboardInterrupt:  # Ctrl-C is how one stops listen: no message
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None


def _check_url(url: str) -> None:
    if not url.startswith(("amqp://", "amqps://")):
        fail(f"--url {url!r}: expected amqp://user:password@host:port/vhost", ExitCode.USAGE)


async def _connect(url: str, timeout: float) -> Any:
    import aio_pika

    return await aio_pika.connect(url, timeout=timeout)


def emit(
    event: Annotated[str, typer.Argument(help="The event name.")],
    body: Annotated[
        list[str] | None,
        typer.Argument(
            help="The body: one JSON value, or key=value / key:=JSON items making an object.",
            show_default=False,
        ),
    ] = None,
    url: UrlOpt = DEFAULT_URL,
    task: Annotated[
        bool, typer.Option("--task", help="Send to exactly one subscriber (broadcast=False).")
    ] = False,
    service: Annotated[
        str, typer.Option("--service", help="The emitter named in the headers.")
    ] = "gemstone-cli",
    timeout: TimeoutOpt = 10.0,
) -> None:
    """Publish an event (as a service's emit_event would), waiting for the broker's confirm.

    Example:
        gemstone emit --url amqp://guest:guest@127.0.0.1:5672/ order.created id:=42 customer=ann
    """
    _check_url(url)
    value = _body(body)
    try:
        payload = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    except ValueError as exc:
        fail(f"the body is not JSON: {exc}", ExitCode.USAGE)
    broadcast = not task

    async def run() -> None:
        import aio_pika

        connection = await _connect(url, timeout)
        async with connection:
            channel = await connection.channel()  # publisher confirms are on
            exchange, _ = await declare_route(channel, event, broadcast, connection=connection)
            message = aio_pika.Message(
                payload,
                content_type="application/json",
                content_encoding="utf-8",
                headers={HEADER_EVENT: event, HEADER_SERVICE: service, HEADER_BROADCAST: broadcast},
                delivery_mode=(
                    aio_pika.DeliveryMode.NOT_PERSISTENT
                    if broadcast
                    else aio_pika.DeliveryMode.PERSISTENT
                ),
                timestamp=time.time(),
                app_id=service,
            )
            async with asyncio.timeout(timeout):
                await exchange.publish(message, routing_key="" if broadcast else TASKS_ROUTING_KEY)
        kind = "broadcast" if broadcast else "task"
        stdout().print(f"[!] Event {event!r} published ({kind}) to {exchange.name}", markup=False)

    _run(run(), url)


def _event_name(message: Any) -> str:
    name = (message.headers or {}).get(HEADER_EVENT)
    if isinstance(name, bytes):
        name = name.decode()
    if isinstance(name, str):
        return name
    exchange = message.exchange or ""
    for prefix in (BROADCAST_PREFIX, TASKS_PREFIX):
        if exchange.startswith(prefix):
            return str(exchange[len(prefix) :])
    return str(exchange)


def _print_event(message: Any, as_json: bool) -> None:
    headers = message.headers or {}
    service = headers.get(HEADER_SERVICE)
    if isinstance(service, bytes):
        service = service.decode()
    broadcast = not str(message.exchange or "").startswith(TASKS_PREFIX)
    try:
        body: Any = json.loads(message.body)
    except ValueError:
        body = message.body.decode("utf-8", "replace")
    name = _event_name(message)
    if as_json:
        record = {"event": name, "service": service, "broadcast": broadcast, "body": body}
        sys.stdout.write(dumps(record) + "\n")
        sys.stdout.flush()
        return
    from rich.json import JSON

    console = stdout()
    stamp = time.strftime("%H:%M:%S")
    kind = "broadcast" if broadcast else "task"
    console.print(f"[{stamp}] {name} from {service or '?'} ({kind})", markup=False)
    console.print(JSON(dumps(body)))


def listen(
    events: Annotated[list[str], typer.Argument(help="Event names to print.")],
    url: UrlOpt = DEFAULT_URL,
    task: Annotated[
        bool,
        typer.Option(
            "--task",
            help="Take one-of-N (task) events from their shared queue. They are "
            "acknowledged, so services do not get them: use on a test broker only.",
        ),
    ] = False,
    tap: Annotated[
        bool,
        typer.Option(
            "--tap",
            help="Watch one-of-N (task) events without taking them: a private queue gets "
            "a copy of each one published from now on; the services still get them all.",
        ),
    ] = False,
    count: Annotated[
        int | None,
        typer.Option(
            "--count", "-n", help="Exit after printing this many events.", show_default=False
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    timeout: TimeoutOpt = 10.0,
) -> None:
    """Print events as they are published, until Ctrl-C (or --count events).

    Broadcast events are copied to a private queue, so listening takes nothing away
    from the services; so are one-of-N events with --tap.

    Example:
        gemstone listen --url amqp://guest:guest@127.0.0.1:5672/ order.created order.paid
    """
    _check_url(url)
    if task and tap:
        fail("--task takes one-of-N events, --tap copies them: give one", ExitCode.USAGE)
    if count is not None and count <= 0:
        fail(f"--count must be positive, got {count}", ExitCode.USAGE)

    async def run() -> None:
        connection = await _connect(url, timeout)
        async with connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=1 if task else 100)
            queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
            queues = [queue]
            for event in events:
                if tap:  # bound beside the shared queue: a copy of each, nothing taken
                    await queue.bind(
                        await declare_tasks_exchange(channel, event), routing_key=TASKS_ROUTING_KEY
                    )
                    continue
                exchange, shared = await declare_route(
                    channel, event, not task, connection=connection
                )
                if shared is not None:
                    queues.append(shared)
                else:
                    await queue.bind(exchange)
            done = asyncio.Event()
            seen = 0

            async def on_message(message: Any) -> None:
                nonlocal seen
                if done.is_set():  # past --count: give it back untouched
                    await message.reject(requeue=True)
                    return
                _print_event(message, as_json)
                await message.ack()
                seen += 1
                if count is not None and seen >= count:
                    done.set()

            for q in queues[1:] if task else queues:
                await q.consume(on_message)
            kind = "task" if task else "task copies" if tap else "broadcast"
            sys.stderr.write(f"listening for {', '.join(events)} ({kind}) on {_safe(url)}\n")
            sys.stderr.flush()
            await done.wait()

    _run(run(), url)
