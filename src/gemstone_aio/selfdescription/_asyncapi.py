"""The AsyncAPI 3.0 document of a service's events: what ``{endpoint}/asyncapi.json`` serves.

It describes the service's side of the RabbitMQ topology of ``docs/events.md``; the
in-memory transport keeps the same semantics. The AMQP binding describes either an
exchange or a queue, never both, so each RabbitMQ entity the service uses is a channel
of its own, named after the event:

- ``E.broadcast``: the fanout exchange ``gemstone.broadcast.E`` (routing key ignored;
  gemstone publishes with ``""``, the channel's address). A **send** operation when the
  service emits ``E`` as a broadcast (transient messages, delivery mode 1).
- ``E.tasks``: the direct exchange ``gemstone.tasks.E``, routing key ``tasks`` (the
  address), which routes to the durable queue ``gemstone.tasks.E``. A **send**
  operation when the service emits ``E`` one-of-N (persistent, delivery mode 2).
- ``E.broadcast-queue``: the durable, expiring queue each instance of a subscribing
  service binds to the fanout exchange (server-named, so its address is ``null``).
- ``E.tasks-queue``: the durable queue ``gemstone.tasks.E`` the instances of the
  subscribing services compete on.
- ``E.dead-letter``: the direct exchange ``gemstone.dead-letter`` with routing key ``E``,
  routing to the durable queue ``gemstone.dead-letter.E``.

A service that handles ``E`` **receives** on both queues (an emitter chooses the mode
per call) and **sends** dead letters. Operations carry ``x-gemstone-event`` (the event
name) and ``x-gemstone-delivery`` (``broadcast``, ``one-of-N`` or ``dead-letter``), so
tools need not decode the bindings. Messages of untyped events have an open payload
schema ``{}`` and ``"x-untyped": true``.

The document has no ``servers``: a broker's address and credentials are configuration,
never part of a published description.
"""

from __future__ import annotations

import inspect
from typing import Any, Final

from ._events import EventCatalogue, EventInfo
from ._openrpc import DescribedService
from ._schemas import SchemaSet

__all__ = [
    "ASYNCAPI_VERSION",
    "BROADCAST_PREFIX",
    "DEAD_LETTER_EXCHANGE",
    "DEAD_LETTER_PREFIX",
    "TASKS_PREFIX",
    "TASKS_ROUTING_KEY",
    "build_asyncapi_document",
]

ASYNCAPI_VERSION: Final = "3.0.0"
"""The version of the AsyncAPI specification the documents follow."""

# The RabbitMQ names of docs/events.md. The event package defines them for the transport;
# features do not import each other, so they are repeated here (a test compares them).
BROADCAST_PREFIX: Final = "gemstone.broadcast."
TASKS_PREFIX: Final = "gemstone.tasks."
TASKS_ROUTING_KEY: Final = "tasks"
DEAD_LETTER_EXCHANGE: Final = "gemstone.dead-letter"
DEAD_LETTER_PREFIX: Final = "gemstone.dead-letter."

_AMQP: Final = "0.3.0"
_BROADCAST: Final = "broadcast"
_ONE_OF_N: Final = "one-of-N"
_DEAD_LETTER: Final = "dead-letter"

_BROADCAST_TEXT: Final = (
    "Broadcast: every running instance of every subscribing service handles each event "
    "once (each instance has its own durable queue bound to the fanout exchange, kept "
    "across broker restarts while the instance lives and expiring once it is gone)."
)
_ONE_OF_N_TEXT: Final = (
    "One-of-N: exactly one instance of the subscribing services handles each event, at "
    "least once. Events wait in the durable queue (even for a subscriber that starts "
    "later) and are acknowledged only after the handlers succeeded; a failing handler is "
    "retried with backoff, then the event is dead-lettered."
)


def _headers(name: str, *, dead_letter: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "x-gemstone-event": {"type": "string", "const": name, "description": "The event name."},
        "x-gemstone-service": {
            "type": "string",
            "description": "The name of the emitting service (also the AMQP app_id).",
        },
        "x-gemstone-broadcast": {
            "type": "boolean",
            "description": "true for a broadcast, false for a one-of-N event.",
        },
        "traceparent": {
            "type": "string",
            "description": "W3C trace context, when the emitting service traces.",
        },
    }
    if dead_letter:
        properties["x-gemstone-error"] = {
            "type": "string",
            "description": "Why the event was dead-lettered.",
        }
        properties["x-gemstone-attempts"] = {
            "type": "integer",
            "minimum": 0,
            "description": "How many times the handlers ran (0: undecodable or invalid).",
        }
    return {
        "type": "object",
        "description": "Informational: a subscriber takes the event name from its queue.",
        "properties": properties,
    }


def _exchange(name: str, kind: str) -> dict[str, Any]:
    return {"name": name, "type": kind, "durable": True, "autoDelete": False}


def _channel(
    address: str | None, title: str, description: str, binding: dict[str, Any], message: str
) -> dict[str, Any]:
    return {
        "address": address,
        "title": title,
        "description": description,
        "messages": {message: {"$ref": f"#/components/messages/{message}"}},
        "bindings": {"amqp": {**binding, "bindingVersion": _AMQP}},
    }


def _operation(
    action: str,
    channel: str,
    message: str,
    info: EventInfo,
    delivery: str,
    description: str,
    amqp: dict[str, Any],
) -> dict[str, Any]:
    if delivery == _DEAD_LETTER:
        title = f"Dead-letter {info.name}"
    else:
        title = f"{'Emit' if action == 'send' else 'Handle'} {info.name} ({delivery})"
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "title": title,
        "description": description,
        "messages": [{"$ref": f"#/channels/{channel}/messages/{message}"}],
        "bindings": {"amqp": {**amqp, "bindingVersion": _AMQP}},
        "x-gemstone-event": info.name,
        "x-gemstone-delivery": delivery,
    }


def _message(info: EventInfo, payload: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"name": info.name, "title": info.name}
    if info.description:
        message["summary"] = info.description.split("\n\n", 1)[0].replace("\n", " ")
        message["description"] = info.description
    message["contentType"] = "application/json"
    message["headers"] = _headers(info.name, dead_letter=False)
    message["payload"] = payload
    if not info.typed:
        message["x-untyped"] = True
    return message


def _dead_letter_message(info: EventInfo) -> dict[str, Any]:
    return {
        "name": f"{info.name} (dead letter)",
        "title": f"{info.name} (dead letter)",
        "summary": "An event its handlers gave up on, with the reason in its headers.",
        "description": (
            "The body exactly as it was received: it may not fit the event's schema, or "
            "not be JSON at all (that is one reason to dead-letter it)."
        ),
        "contentType": "application/json",
        "headers": _headers(info.name, dead_letter=True),
        "payload": {},
    }


def _handled_text(info: EventInfo) -> str:
    docs = [h.doc.split("\n\n", 1)[0] for h in info.handlers if h.doc]
    return " ".join(docs)


def _add_event(
    info: EventInfo,
    payload: dict[str, Any],
    channels: dict[str, Any],
    operations: dict[str, Any],
    messages: dict[str, Any],
) -> None:
    key = info.key
    messages[key] = _message(info, payload)
    if True in info.modes:
        channel = f"{key}.broadcast"
        exchange = BROADCAST_PREFIX + info.name
        channels[channel] = _channel(
            "",
            f"{info.name}: broadcast exchange",
            f"The fanout exchange `{exchange}` (durable); the routing key is ignored. "
            + _BROADCAST_TEXT,
            {"is": "routingKey", "exchange": _exchange(exchange, "fanout")},
            key,
        )
        operations[f"emit.{key}.broadcast"] = _operation(
            "send",
            channel,
            key,
            info,
            _BROADCAST,
            f"The service emits {info.name} to every subscribing instance: publish to "
            f"`{exchange}`, transient (delivery mode 1), with publisher confirms.",
            {"deliveryMode": 2, "mandatory": False},
        )
    if False in info.modes:
        channel = f"{key}.tasks"
        exchange = TASKS_PREFIX + info.name
        channels[channel] = _channel(
            TASKS_ROUTING_KEY,
            f"{info.name}: one-of-N exchange",
            f"The direct exchange `{exchange}` (durable), routing key `{TASKS_ROUTING_KEY}`, "
            f"bound to the durable queue `{exchange}` (publishers and subscribers declare "
            "both). " + _ONE_OF_N_TEXT,
            {"is": "routingKey", "exchange": _exchange(exchange, "direct")},
            key,
        )
        operations[f"emit.{key}.tasks"] = _operation(
            "send",
            channel,
            key,
            info,
            _ONE_OF_N,
            f"The service emits {info.name} for exactly one subscribing instance: publish "
            f"to `{exchange}` with routing key `{TASKS_ROUTING_KEY}`, persistent "
            "(delivery mode 2), with publisher confirms.",
            {"deliveryMode": 2, "mandatory": False},
        )
    if info.handlers:
        _add_handled(info, channels, operations, messages)


def _add_handled(
    info: EventInfo,
    channels: dict[str, Any],
    operations: dict[str, Any],
    messages: dict[str, Any],
) -> None:
    key = info.key
    handled = _handled_text(info)
    queue = TASKS_PREFIX + info.name
    channels[f"{key}.broadcast-queue"] = _channel(
        None,
        f"{info.name}: this instance's broadcast queue",
        f"The durable queue `{BROADCAST_PREFIX}{info.name}.<service>.<instance>` bound to "
        f"the fanout exchange `{BROADCAST_PREFIX}{info.name}`: each instance of the service "
        "has its own, declared with `x-expires` so the queue of an instance that died goes "
        "away; the instance deletes it when it stops. " + _BROADCAST_TEXT,
        {"is": "queue", "queue": {"durable": True, "exclusive": False, "autoDelete": False}},
        key,
    )
    channels[f"{key}.tasks-queue"] = _channel(
        queue,
        f"{info.name}: the shared one-of-N queue",
        f"The durable quorum queue `{queue}` (`x-queue-type: quorum`: the broker counts "
        "deliveries in `x-delivery-count`), bound to the direct exchange "
        f"`{queue}` with routing key `{TASKS_ROUTING_KEY}`; the instances of the subscribing "
        "services compete on it. " + _ONE_OF_N_TEXT,
        {
            "is": "queue",
            "queue": {"name": queue, "durable": True, "exclusive": False, "autoDelete": False},
        },
        key,
    )
    dead_key = f"{key}.dead-letter"
    messages[dead_key] = _dead_letter_message(info)
    dead_queue = DEAD_LETTER_PREFIX + info.name
    channels[dead_key] = _channel(
        info.name,
        f"{info.name}: dead letters",
        f"The direct exchange `{DEAD_LETTER_EXCHANGE}` (durable) with routing key "
        f"`{info.name}`, bound to the durable queue `{dead_queue}`, where the events "
        "the handlers gave up on wait for an operator.",
        {"is": "routingKey", "exchange": _exchange(DEAD_LETTER_EXCHANGE, "direct")},
        dead_key,
    )
    for channel, delivery in (("broadcast-queue", _BROADCAST), ("tasks-queue", _ONE_OF_N)):
        operations[f"handle.{key}.{channel.split('-')[0]}"] = _operation(
            "receive",
            f"{key}.{channel}",
            key,
            info,
            delivery,
            (handled + " " if handled else "")
            + "Acknowledged after every handler of the service succeeded.",
            {"ack": True},
        )
    operations[f"deadLetter.{key}"] = _operation(
        "send",
        dead_key,
        dead_key,
        info,
        _DEAD_LETTER,
        "An event whose body is not valid, or whose handlers kept failing, is published "
        f"to `{DEAD_LETTER_EXCHANGE}` with routing key `{info.name}`, persistent.",
        {"deliveryMode": 2, "mandatory": False},
    )


def build_asyncapi_document(service: DescribedService, catalogue: EventCatalogue) -> dict[str, Any]:
    """Build the AsyncAPI 3.0 document of the events ``service`` emits and handles.

    Args:
        service: The service described (``info`` comes from it).
        catalogue: Its events.

    Returns:
        The document as JSON-ready data (no ``servers``: no broker address).
    """
    schemas = SchemaSet()
    for info in catalogue.events.values():
        if info.typed:
            # A declared type is what the service sends; a handler's, what it accepts.
            if info.from_declaration:
                schemas.add(("event", info.name), info.body, mode="serialization")
            else:
                schemas.add(("event", info.name), info.body, mode="validation")
    schemas.generate()
    info_object: dict[str, Any] = {"title": str(service.name), "version": str(service.version)}
    class_doc = type(service).__doc__
    if class_doc and class_doc.strip():
        info_object["description"] = inspect.cleandoc(class_doc)
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for event in catalogue.events.values():
        payload = schemas.get(("event", event.name)) if event.typed else {}
        _add_event(event, payload, channels, operations, messages)
    components: dict[str, Any] = {}
    if schemas.components:
        components["schemas"] = schemas.components
    if messages:
        components["messages"] = messages
    document: dict[str, Any] = {
        "asyncapi": ASYNCAPI_VERSION,
        "info": info_object,
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
    }
    if components:
        document["components"] = components
    return document
