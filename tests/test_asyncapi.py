"""Events described: declarations, the AsyncAPI 3.0 document, and the OpenRPC links to it."""

from __future__ import annotations

import asyncio
import copy
import importlib
import inspect
import json
from pathlib import Path
from typing import Any

import aiohttp
import pydantic
import pytest
from pytest_aiohttp import AiohttpClient
from typing_extensions import TypedDict

import gemstone_aio as gemstone
from gemstone_aio.event import RabbitMqEventTransport
from gemstone_aio.event import _rabbitmq as rabbitmq
from gemstone_aio.selfdescription import _asyncapi as asyncapi
from gemstone_aio.server import SELF_DESCRIPTION_KEY
from gemstone_aio.testing import serving
from tests.fixtures.asyncapi import assert_valid_asyncapi, asyncapi_validator
from tests.fixtures.events import unique
from tests.fixtures.openrpc import assert_valid_openrpc

ROOT = Path(__file__).parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").rglob("*.py") if p.name != "__init__.py")


class OrderPlaced(pydantic.BaseModel):
    """An order was placed."""

    item: str
    quantity: int = 1


class Cancelled(TypedDict):
    order: int


class Auditing(gemstone.Module):
    @gemstone.exposed_method()
    async def audit(self) -> None:
        """Check the books."""
        self.microservice.emit_event("audit.done", {"ok": True}, broadcast=False)


class Shop(gemstone.MicroService):
    """Sells things."""

    name = "shop"
    emitted_events = [
        gemstone.EmittedEvent("order.cancelled", Cancelled, description="An order was called off.")
    ]
    event_transports = [
        RabbitMqEventTransport("amqp://shopkeeper:s3cret-pass@broker.internal:5672/shop")
    ]

    def __init__(self) -> None:
        super().__init__()
        self.modules = [Auditing()]

    @gemstone.exposed_method()
    @gemstone.emits("order.placed", OrderPlaced, broadcast=False)
    async def place(self, item: str) -> int:
        """Place an order."""
        await self.emit_event("order.placed", {"item": item, "quantity": 1}, broadcast=False)
        return 1

    @gemstone.exposed_method()
    def legacy(self, loud: bool) -> str:
        """Written the gemstone 0.10 way."""
        self.emit_event("said hello", {"loud": loud})
        self.emit_event("shouted", {}, broadcast=loud)
        return "ok"

    @gemstone.event_handler("stock.low")
    async def on_stock_low(self, body: list[str]) -> None:
        """Reorder the items running low."""

    @gemstone.event_handler("anything")
    def on_anything(self, body: Any) -> None:
        pass


def asyncapi_of(service: gemstone.MicroService) -> dict[str, Any]:
    return service.make_app()[SELF_DESCRIPTION_KEY].asyncapi_document()


def services_in(path: Path) -> list[type[gemstone.MicroService]]:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    module = importlib.import_module(name)
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, gemstone.MicroService)
        and obj.__module__ == module.__name__
    ]


def operations(document: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    """Operation id -> (action, event, delivery)."""
    return {
        key: (op["action"], op["x-gemstone-event"], op["x-gemstone-delivery"])
        for key, op in document["operations"].items()
    }


def test_the_validator_rejects_what_asyncapi_3_forbids() -> None:
    """The vendored schema really validates: a valid document passes, a wrong action,
    an AMQP binding naming both an exchange and a queue, and a missing info fail."""
    document = asyncapi_of(Shop())
    assert_valid_asyncapi(document)
    validator = asyncapi_validator()
    wrong_action = copy.deepcopy(document)
    wrong_action["operations"]["emit.order.placed.tasks"]["action"] = "publish"
    both = copy.deepcopy(document)
    both["channels"]["order.placed.tasks"]["bindings"]["amqp"]["queue"] = {"name": "q"}
    no_info = {k: v for k, v in document.items() if k != "info"}
    for broken in (wrong_action, both, no_info):
        assert not validator.is_valid(broken)


def test_there_are_example_services_with_events() -> None:
    """The glob finds the examples' services, several of them with events."""
    with_events = [
        klass
        for path in EXAMPLES
        for klass in services_in(path)
        if asyncapi_of(klass())["operations"]
    ]
    assert len(with_events) >= 5


@pytest.mark.parametrize("path", EXAMPLES, ids=[str(p.relative_to(ROOT)) for p in EXAMPLES])
def test_every_example_service_has_a_valid_asyncapi_document(path: Path) -> None:
    """The AsyncAPI document of every service under examples/ validates against the
    official AsyncAPI 3.0.0 schema, names the service, and has no servers."""
    for service_class in services_in(path):
        service = service_class()
        document = asyncapi_of(service)
        assert_valid_asyncapi(document)
        assert document["asyncapi"] == "3.0.0"
        assert document["info"]["title"] == service.name
        assert "servers" not in document


def test_declared_handled_and_undeclared_events_are_described() -> None:
    """Declared events are typed from their declaration, handled ones from the handler's
    annotation; events emitted without a declaration (found in the source, in the service
    and in its modules) are untyped, with the mode of their broadcast= argument, both
    modes when it is computed."""
    document = asyncapi_of(Shop())
    assert operations(document) == {
        "emit.audit.done.tasks": ("send", "audit.done", "one-of-N"),
        "emit.order.cancelled.broadcast": ("send", "order.cancelled", "broadcast"),
        "emit.order.placed.tasks": ("send", "order.placed", "one-of-N"),
        "emit.said_hello.broadcast": ("send", "said hello", "broadcast"),
        "emit.shouted.broadcast": ("send", "shouted", "broadcast"),
        "emit.shouted.tasks": ("send", "shouted", "one-of-N"),
        "handle.anything.broadcast": ("receive", "anything", "broadcast"),
        "handle.anything.tasks": ("receive", "anything", "one-of-N"),
        "deadLetter.anything": ("send", "anything", "dead-letter"),
        "handle.stock.low.broadcast": ("receive", "stock.low", "broadcast"),
        "handle.stock.low.tasks": ("receive", "stock.low", "one-of-N"),
        "deadLetter.stock.low": ("send", "stock.low", "dead-letter"),
    }
    messages = document["components"]["messages"]
    schemas = document["components"]["schemas"]
    assert messages["order.placed"]["payload"] == {"$ref": "#/components/schemas/OrderPlaced"}
    assert messages["order.placed"]["summary"] == "An order was placed."
    assert schemas["OrderPlaced"]["required"] == ["item"]
    assert messages["order.cancelled"]["payload"] == {"$ref": "#/components/schemas/Cancelled"}
    assert messages["order.cancelled"]["description"] == "An order was called off."
    assert messages["stock.low"]["payload"] == {"type": "array", "items": {"type": "string"}}
    for untyped in ("said_hello", "shouted", "audit.done", "anything"):
        assert messages[untyped]["payload"] == {}
        assert messages[untyped]["x-untyped"] is True
    assert "x-untyped" not in messages["order.placed"]
    assert messages["said_hello"]["name"] == "said hello"
    receive = document["operations"]["handle.stock.low.tasks"]
    assert receive["description"].startswith("Reorder the items running low.")
    assert receive["bindings"]["amqp"] == {"ack": True, "bindingVersion": "0.3.0"}


def test_channels_follow_the_rabbitmq_topology() -> None:
    """Exchanges, queues, routing keys and delivery modes are those of docs/events.md,
    spelled with the transport's own constants."""
    assert (
        asyncapi.BROADCAST_PREFIX,
        asyncapi.TASKS_PREFIX,
        asyncapi.TASKS_ROUTING_KEY,
        asyncapi.DEAD_LETTER_EXCHANGE,
        asyncapi.DEAD_LETTER_PREFIX,
    ) == (
        rabbitmq.BROADCAST_PREFIX,
        rabbitmq.TASKS_PREFIX,
        rabbitmq.TASKS_ROUTING_KEY,
        rabbitmq.DEAD_LETTER_EXCHANGE,
        rabbitmq.DEAD_LETTER_PREFIX,
    )
    document = asyncapi_of(Shop())
    channels = document["channels"]

    def amqp(channel: str) -> dict[str, Any]:
        binding: dict[str, Any] = channels[channel]["bindings"]["amqp"]
        assert binding.pop("bindingVersion") == "0.3.0"
        return binding

    assert channels["order.placed.tasks"]["address"] == "tasks"
    assert amqp("order.placed.tasks") == {
        "is": "routingKey",
        "exchange": {
            "name": "gemstone.tasks.order.placed",
            "type": "direct",
            "durable": True,
            "autoDelete": False,
        },
    }
    assert channels["order.cancelled.broadcast"]["address"] == ""
    assert amqp("order.cancelled.broadcast")["exchange"]["type"] == "fanout"
    assert channels["stock.low.tasks-queue"]["address"] == "gemstone.tasks.stock.low"
    assert amqp("stock.low.tasks-queue") == {
        "is": "queue",
        "queue": {
            "name": "gemstone.tasks.stock.low",
            "durable": True,
            "exclusive": False,
            "autoDelete": False,
        },
    }
    assert channels["stock.low.broadcast-queue"]["address"] is None  # server-named
    assert amqp("stock.low.broadcast-queue")["queue"] == {
        "durable": True,
        "exclusive": False,
        "autoDelete": False,
    }
    assert channels["stock.low.dead-letter"]["address"] == "stock.low"
    assert amqp("stock.low.dead-letter")["exchange"]["name"] == "gemstone.dead-letter"
    ops = document["operations"]
    assert ops["emit.order.placed.tasks"]["bindings"]["amqp"]["deliveryMode"] == 2
    assert ops["emit.order.cancelled.broadcast"]["bindings"]["amqp"]["deliveryMode"] == 2
    headers = document["components"]["messages"]["stock.low.dead-letter"]["headers"]
    assert set(headers["properties"]) >= {
        "x-gemstone-event",
        "x-gemstone-service",
        "x-gemstone-broadcast",
        "x-gemstone-error",
        "x-gemstone-attempts",
    }


def test_no_broker_address_or_credentials_appear() -> None:
    """The transport's URL (host, user, password, virtual host) is nowhere in the documents."""
    service = Shop()
    description = service.make_app()[SELF_DESCRIPTION_KEY]
    texts = [
        json.dumps(description.asyncapi_document()),
        json.dumps(description.document(include_private=True)),
    ]
    for text in texts:
        for secret in ("s3cret-pass", "shopkeeper", "broker.internal", "amqp://", "5672"):
            assert secret not in text


def test_openrpc_lists_what_methods_emit_and_links_the_asyncapi_document() -> None:
    """Methods carry x-emits (declared or found in their source); the document links
    asyncapi.json; a service without events has neither."""
    service = Shop()
    document = service.make_app()[SELF_DESCRIPTION_KEY].document(include_private=False)
    assert_valid_openrpc(document)
    emits = {m["name"]: m.get("x-emits") for m in document["methods"]}
    assert emits["place"] == ["order.placed"]
    assert emits["legacy"] == ["said hello", "shouted"]
    assert emits["audit"] == ["audit.done"]
    assert emits["rpc.discover"] is None
    assert document["x-asyncapi"] == "http://127.0.0.1:8000/api/asyncapi.json"
    assert list(document)[-1] == "x-asyncapi"

    class Quiet(gemstone.MicroService):
        name = "quiet"

        @gemstone.exposed_method()
        async def ping(self) -> str:
            return "pong"

    quiet = Quiet().make_app()[SELF_DESCRIPTION_KEY]
    assert "x-asyncapi" not in quiet.document(include_private=False)
    empty = quiet.asyncapi_document()
    assert_valid_asyncapi(empty)
    assert (empty["channels"], empty["operations"]) == ({}, {})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            "two types",
            "event 'x' is declared with two body types: <class 'int'> and <class 'str'>",
            id="conflicting-types",
        ),
        pytest.param("not an event", "Bad.emitted_events holds 'x'", id="not-emitted-event"),
    ],
)
def test_invalid_declarations_fail_when_the_app_is_built(body: str, message: str) -> None:
    """A wrong declaration is a ServiceConfigurationError when the app is built, naming it."""

    class Bad(gemstone.MicroService):
        name = "bad"
        emitted_events: Any = [gemstone.EmittedEvent("x", int)] if body == "two types" else ["x"]

        @gemstone.exposed_method()
        @gemstone.emits("x", str)
        async def go(self) -> None:
            pass

    with pytest.raises(gemstone.ServiceConfigurationError) as info:
        Bad().make_app()
    assert message in str(info.value)


def test_the_decorators_check_their_arguments_at_once() -> None:
    """An empty event name or a broadcast that is not a bool fails where it is written."""
    with pytest.raises(gemstone.ServiceConfigurationError, match="Invalid event name: ''"):
        gemstone.emits("")
    with pytest.raises(gemstone.ServiceConfigurationError, match="broadcast must be True or"):
        gemstone.EmittedEvent("x", broadcast="no")  # type: ignore[arg-type]


async def test_asyncapi_json_is_served_and_linked(aiohttp_client: AiohttpClient) -> None:
    """GET {endpoint}/asyncapi.json serves the document; a listening service's OpenRPC
    document links it with the real URL, also with endpoint "/"."""

    class Root(gemstone.MicroService):
        name = "root"
        endpoint = "/"

        @gemstone.event_handler("ping")
        async def on_ping(self, body: int) -> None:
            pass

    client = await aiohttp_client(Root().make_app())
    response = await client.get("/asyncapi.json")
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    document = await response.json()
    assert_valid_asyncapi(document)
    assert document["components"]["messages"]["ping"]["payload"] == {"type": "integer"}

    async with serving(Listening()) as service:
        assert service.accessible_at is not None
        async with aiohttp.ClientSession() as session:
            rpc = {"jsonrpc": "2.0", "method": "rpc.discover", "id": 1}
            async with session.post(service.accessible_at, json=rpc) as reply:
                discovered = (await reply.json())["result"]
            assert discovered["x-asyncapi"] == f"{service.accessible_at}/asyncapi.json"
            async with session.get(discovered["x-asyncapi"]) as reply:
                assert (await reply.json())["info"]["title"] == service.name


class Listening(gemstone.MicroService):
    name = "listening"

    @gemstone.event_handler("heard")
    async def on_heard(self, body: str) -> None:
        pass


async def test_undeclared_events_are_still_emitted_and_handled() -> None:
    """gemstone 0.10 code that emits without declaring keeps working; its event is described
    as untyped."""
    received: asyncio.Queue[Any] = asyncio.Queue()

    class Old(gemstone.MicroService):
        name = unique("old")

        @gemstone.exposed_method()
        def shout(self) -> str:
            self.emit_event("asyncapi-test.shouted", {"loud": True})
            return "shouted"

    class Ear(gemstone.MicroService):
        name = unique("ear")

        @gemstone.event_handler("asyncapi-test.shouted")
        async def on_event(self, body: Any) -> None:
            await received.put(body)

    async with serving(Ear()), serving(Old()) as old:
        assert old.accessible_at is not None
        async with gemstone.RemoteService(old.accessible_at) as remote:
            assert await remote.call("shout") == "shouted"
        assert await asyncio.wait_for(received.get(), 10) == {"loud": True}
    message = asyncapi_of(Old())["components"]["messages"]["asyncapi-test.shouted"]
    assert message["x-untyped"] is True
    assert asyncapi_of(Old())["operations"]["emit.asyncapi-test.shouted.broadcast"]
