"""The forms of RabbitMqEventTransport's constructor: an AMQP URL, or gemstone 0.10's parts.

gemstone 0.10.1 documented ``RabbitMqEventTransport(host="127.0.0.1", port=5672,
username="", password="", **connection_options)``. The unit tests check the URL each
form builds; the integration tests connect with the parts to the session's RabbitMQ node.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from yarl import URL

import gemstone_aio as gemstone
from gemstone_aio.errors import ServiceConfigurationError
from gemstone_aio.event import RabbitMqEventTransport
from gemstone_aio.event._rabbitmq import TASKS_PREFIX
from tests.fixtures.events import Recorder, unique
from tests.fixtures.rabbitmq import RabbitMqNode
from tests.test_events_contract import running

# -- the URL each form builds (no broker) ----------------------------------------------


def test_no_arguments_mean_the_local_default_user() -> None:
    assert RabbitMqEventTransport().url == "amqp://guest:guest@127.0.0.1:5672/"


def test_a_url_is_kept_as_given() -> None:
    for url in ("amqp://user:pw@rabbit:5673/orders", "amqps://rabbit/"):
        assert RabbitMqEventTransport(url).url == url
    assert RabbitMqEventTransport(URL("amqp://a:b@h:1/")).url == "amqp://a:b@h:1/"


def test_keyword_form_of_gemstone_010_with_its_defaults() -> None:
    """gemstone 0.10's defaults, written out: an empty username means guest/guest."""
    transport = RabbitMqEventTransport(host="127.0.0.1", port=5672, username="", password="")
    assert transport.url == "amqp://guest:guest@127.0.0.1:5672/"
    assert RabbitMqEventTransport(host="rabbit").url == "amqp://guest:guest@rabbit:5672/"
    assert RabbitMqEventTransport(port=5673).url == "amqp://guest:guest@127.0.0.1:5673/"


def test_keyword_form_with_a_user() -> None:
    transport = RabbitMqEventTransport(host="rabbit.local", port=5673, username="u", password="p")
    assert transport.url == "amqp://u:p@rabbit.local:5673/"
    assert transport.connection_options == {}


def test_positional_form_of_gemstone_010() -> None:
    transport = RabbitMqEventTransport("10.0.0.7", 5672, "guest", "guest")
    assert transport.url == "amqp://guest:guest@10.0.0.7:5672/"
    assert RabbitMqEventTransport("::1").url == "amqp://guest:guest@[::1]:5672/"


def test_user_and_password_are_quoted() -> None:
    """Characters that mean something in a URL survive the trip: the parsed URL gives
    back exactly the user and password that were passed."""
    user, password = "ops@example.com", "p@ss:w/rd%20?#é"
    transport = RabbitMqEventTransport(host="rabbit", username=user, password=password)
    assert transport.url == (
        "amqp://ops%40example.com:p%40ss%3Aw%2Frd%2520%3F%23%C3%A9@rabbit:5672/"
    )
    parsed = URL(transport.url)
    assert (parsed.user, parsed.password, parsed.host, parsed.port) == (
        user,
        password,
        "rabbit",
        5672,
    )


def test_url_shaping_connection_options() -> None:
    """virtualhost (or pika's virtual_host) becomes the path, ssl the scheme and port;
    pika's heartbeat_interval is aio-pika's heartbeat; the rest passes through."""
    transport = RabbitMqEventTransport(
        host="rabbit", virtual_host="shop/orders", heartbeat_interval=30, timeout=5
    )
    assert transport.url == "amqp://guest:guest@rabbit:5672/shop%2Forders"
    assert transport.connection_options == {"heartbeat": 30, "timeout": 5}
    tls = RabbitMqEventTransport(host="rabbit", ssl=True, ssl_options={"cafile": "/ca.pem"})
    assert tls.url == "amqps://guest:guest@rabbit:5671/"
    assert tls.connection_options == {"ssl_options": {"cafile": "/ca.pem"}}
    explicit = RabbitMqEventTransport(host="rabbit", port=5672, ssl=True, virtualhost="/")
    assert explicit.url == "amqps://guest:guest@rabbit:5672/"


def test_the_url_and_secrets_stay_out_of_repr() -> None:
    password = "s3cret-Pa55"
    for transport in (
        RabbitMqEventTransport(host="rabbit", username="bob", password=password),
        RabbitMqEventTransport("rabbit", 5672, "bob", password),
        RabbitMqEventTransport(f"amqp://bob:{password}@rabbit:5672/"),
    ):
        assert repr(transport) == "RabbitMqEventTransport('amqp://bob:***@rabbit:5672/')"
        assert str(transport) == repr(transport)
        assert password not in repr(transport.clone())


def test_clone_keeps_the_settings() -> None:
    """Each service instance works with a clone: same URL and options, own state."""
    template = RabbitMqEventTransport(
        host="rabbit",
        port=5673,
        username="bob",
        password="pw",
        virtual_host="v",
        heartbeat=20,
        prefetch_count=3,
    )
    twin = template.clone()
    assert isinstance(twin, RabbitMqEventTransport)
    assert twin is not template
    assert twin.url == template.url == "amqp://bob:pw@rabbit:5673/v"
    assert twin.connection_options == template.connection_options == {"heartbeat": 20}
    assert twin.prefetch_count == 3
    assert not twin.connected


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"host": "rabbit"}, "host="),
        ({"port": 5672}, "port="),
        ({"username": "bob", "password": "pw"}, "username=, password="),
        ({"host": "rabbit", "port": 5673}, "host=, port="),
    ],
)
def test_a_url_mixed_with_parts_is_a_one_line_error(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(ServiceConfigurationError) as caught:
        RabbitMqEventTransport("amqp://bob:s3cret@rabbit/", **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    assert "not both" in message
    assert message.endswith(f"the URL 'amqp://bob:***@rabbit/' and {named}")
    assert "s3cret" not in message


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("rabbit",), {"host": "other"}, r"host is given twice: 'rabbit' .* host='other'"),
        ((), {"host": ""}, r"host must be a non-empty string, got ''"),
        (("rabbit:5672",), {}, r"host 'rabbit:5672' is not a valid host name"),
        ((), {"port": "5672"}, r"port must be an integer from 1 to 65535, got '5672'"),
        ((), {"port": 0}, r"got 0"),
        ((), {"username": "bob"}, r"username 'bob' needs a password="),
        ((), {"password": "pw"}, r"a password is given without a username"),
        ((), {"username": 7, "password": "pw"}, r"username must be a string, got int"),
        ((), {"ssl": "yes"}, r"ssl must be True or False, got 'yes'"),
        ((), {"virtualhost": ""}, r"virtualhost must be a non-empty string"),
        (
            (),
            {"virtualhost": "a", "virtual_host": "a"},
            r"virtualhost= and pika's virtual_host= say the same thing",
        ),
        ((), {"credentials": object()}, r"credentials= is not understood by aio-pika"),
        ((), {"login": "bob"}, r"login= .* give the user as username="),
        (("http://rabbit/",), {}, r"not an AMQP URL .*'http://rabbit/'"),
        (("amqp://rabbit/",), {"virtualhost": "v"}, r"with a URL, aio-pika ignores virtualhost="),
        (("amqp://rabbit/",), {"ssl": True}, r"with a URL, aio-pika ignores ssl="),
    ],
)
def test_bad_settings_name_the_value(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ServiceConfigurationError, match=message):
        RabbitMqEventTransport(*args, **kwargs)


def test_a_password_is_never_echoed_in_errors() -> None:
    with pytest.raises(ServiceConfigurationError) as caught:
        RabbitMqEventTransport(username="bob", password=b"s3cret")  # type: ignore[arg-type]
    assert str(caught.value) == "password must be a string, got bytes"


# -- connecting to the test node with gemstone 0.10's keyword form ----------------------


def _service(event: str, transport: RabbitMqEventTransport, recorder: Recorder) -> Any:
    class KeywordForm(gemstone.MicroService):
        name = unique("keyword-form")
        event_transports = [transport]

        @gemstone.event_handler(event)
        async def on_event(self, body: Any) -> None:
            await recorder.add("handled", body)

    return KeywordForm()


async def _emit_and_handle(service: Any, event: str, recorder: Recorder) -> None:
    """In a running ``service``: it is connected, and handles what it emits."""
    transport = service.event_transports[0]
    assert transport.readiness()[0], transport.readiness()[1]
    await service.emit_event(event, {"n": 1}, broadcast=False)
    await service.emit_event(event, {"n": 2}, broadcast=True)
    await recorder.wait_count(2)
    assert sorted(body["n"] for body in recorder.by("handled")) == [1, 2]


@pytest.mark.rabbitmq
@pytest.mark.parametrize("credentials", ["given", "default"])
async def test_keyword_form_round_trips_an_event(
    rabbitmq_node: RabbitMqNode, rabbitmq_url: str, credentials: str
) -> None:
    """host=, port=, username=, password= as gemstone 0.10 documented them; an empty
    username logs in as RabbitMQ's default user. Connection options reach aio-pika."""
    node = URL(rabbitmq_url)
    if credentials == "given":
        username, password = node.user, node.password
    else:
        username = password = ""
    event, recorder = unique("keyword-form"), Recorder()
    product = f"keyword-form-{uuid.uuid4().hex[:8]}"
    transport = RabbitMqEventTransport(
        host=node.host,
        port=node.port,
        username=username,
        password=password,
        heartbeat=17,
        client_properties={"product": product},
    )
    service = _service(event, transport, recorder)
    async with running(service):
        await _emit_and_handle(service, event, recorder)
        listing = await asyncio.to_thread(
            rabbitmq_node.ctl, "list_connections", "timeout", "client_properties", "-q"
        )
    ours = [line for line in listing.splitlines() if product in line]
    assert len(ours) == 1, listing
    assert ours[0].split("\t")[0] == "17"  # the heartbeat asked for
    assert f"gemstone-aio {service.name}" in ours[0]  # the connection name stays


@contextlib.contextmanager
def _user_and_vhost(node: RabbitMqNode, user: str, password: str, vhost: str) -> Iterator[None]:
    node.ctl("add_vhost", vhost)
    try:
        node.ctl("add_user", user, password)
        try:
            node.ctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
            yield
        finally:
            node.ctl("delete_user", user)
    finally:
        node.ctl("delete_vhost", vhost)


@pytest.mark.rabbitmq
async def test_keyword_form_quotes_credentials_and_the_virtual_host(
    rabbitmq_node: RabbitMqNode, rabbitmq_url: str
) -> None:
    """A user and password full of URL characters, and a virtual host with a "/" in its
    name (pika's virtual_host= option), reach the broker intact."""
    tag = uuid.uuid4().hex[:8]
    user, password, vhost = f"ops@{tag}:x", f"p@ss:w/rd%20?#{tag}", f"gemstone/{tag}"
    node = URL(rabbitmq_url)
    event, recorder = unique("quoted"), Recorder()
    provisioned = _user_and_vhost(rabbitmq_node, user, password, vhost)
    await asyncio.to_thread(provisioned.__enter__)
    try:
        transport = RabbitMqEventTransport(
            host=node.host, port=node.port, username=user, password=password, virtual_host=vhost
        )
        service = _service(event, transport, recorder)
        async with running(service):
            await _emit_and_handle(service, event, recorder)
        queues = await asyncio.to_thread(rabbitmq_node.ctl, "list_queues", "-p", vhost, "name")
        assert TASKS_PREFIX + event in queues.split()  # declared in that virtual host
    finally:
        await asyncio.to_thread(provisioned.__exit__, None, None, None)
