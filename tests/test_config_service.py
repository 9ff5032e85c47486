"""Configuring a service: defaults, precedence, bad values, --help, independence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import gemstone_aio as gemstone
from gemstone_aio.config import as_bool, as_int
from gemstone_aio.testing import serving


class Configured(gemstone.MicroService):
    name = "configured_service"
    workers: int = 1
    verbose: bool = False
    greeting: str = "hello"
    api_token: str | None = None
    configurables = [
        gemstone.Configurable("workers", template=as_int),
        gemstone.Configurable("verbose", template=as_bool),
        gemstone.Configurable("greeting", help="what say_hello says"),
        gemstone.Configurable("api_token"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.seen_at_start: dict[str, Any] = {}

    def on_service_start(self) -> None:
        self.seen_at_start = {
            "workers": self.workers,
            "greeting": self.greeting,
            "port": self.port,
        }

    @gemstone.exposed_method()
    def say_hello(self, name: str) -> str:
        return f"{self.greeting} {name}"


def test_defaults_and_user_configurables_together() -> None:
    """The default configurables come first, the service's own are added to them."""
    names = [c.name for c in Configured().get_configurables()]
    assert names == [
        "port",
        "host",
        "accessible_at",
        "endpoint",
        "service_registry_urls",
        "ssl_certfile",
        "ssl_keyfile",
        "ssl_keyfile_password",
        "ssl_ca_certs",
        "ssl_cert_reqs",
        "ssl_allowed_clients",
        "client_ssl_ca_certs",
        "client_ssl_certfile",
        "client_ssl_keyfile",
        "workers",
        "verbose",
        "greeting",
        "api_token",
    ]


def test_command_line_sets_instance_attributes_not_class_ones() -> None:
    """Configured values land on the instance, converted by their templates."""
    service = Configured()
    service.load_configuration(["--port=8001", "--workers", "4", "--verbose=yes", "--greeting=hi"])
    assert (service.port, service.workers, service.verbose, service.greeting) == (
        8001,
        4,
        True,
        "hi",
    )
    assert (Configured.port, Configured.workers, Configured.greeting) == (8000, 1, "hello")


def test_service_registry_urls_is_a_comma_list() -> None:
    """The registry URLs configurable splits on commas."""
    service = Configured()
    service.load_configuration(["--service_registry_urls=http://a:1/api, http://b:2/api"])
    assert service.service_registry_urls == ["http://a:1/api", "http://b:2/api"]


def test_accessible_at_follows_configured_host_and_port() -> None:
    """accessible_at is derived again after configuration..."""
    service = Configured()
    service.load_configuration(["--port=9100", "--endpoint=/rpc", "--host=0.0.0.0"])
    assert service.accessible_at == "http://127.0.0.1:9100/rpc"


def test_configured_accessible_at_wins() -> None:
    """... unless it is configured itself."""
    service = Configured()
    service.load_configuration(["--port=9100", "--accessible_at=http://public.example/api"])
    assert service.accessible_at == "http://public.example/api"


def test_precedence_across_three_configurators(tmp_path: Path) -> None:
    """Configurators apply in the order given: file < environment < command line here."""
    path = tmp_path / "svc.json"
    path.write_text(json.dumps({"port": 8100, "workers": 2, "greeting": "file", "verbose": True}))
    environ = {"SVC_WORKERS": "3", "SVC_GREETING": "env"}

    class Layered(Configured):
        name = "layered_service"
        configurators = [
            gemstone.JsonFileConfigurator(path),
            gemstone.EnvironmentConfigurator(prefix="SVC_", environ=environ),
            gemstone.CommandLineConfigurator(),
        ]

    service = Layered()
    service.load_configuration(["--greeting=cli"])
    assert service.port == 8100  # only the file has it
    assert service.verbose is True  # only the file has it
    assert service.workers == 3  # environment beats file
    assert service.greeting == "cli"  # command line beats both


def test_reversed_order_reverses_precedence(tmp_path: Path) -> None:
    """The order is the list's order, not a fixed ranking of kinds."""
    path = tmp_path / "svc.json"
    path.write_text(json.dumps({"greeting": "file"}))

    class Reversed(Configured):
        name = "reversed_service"
        configurators = [
            gemstone.CommandLineConfigurator(),
            gemstone.EnvironmentConfigurator(prefix="R_", environ={"R_GREETING": "env"}),
            gemstone.JsonFileConfigurator(path),
        ]

    service = Reversed()
    service.load_configuration(["--greeting=cli"])
    assert service.greeting == "file"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["--port=http"],
            "invalid value 'http' for configurable 'port': not an integer "
            "(from command-line option --port)",
            id="port-not-int",
        ),
        pytest.param(
            ["--port=99999"],
            "invalid value '99999' for configurable 'port': a port is between 0 and 65535 "
            "(from command-line option --port)",
            id="port-range",
        ),
        pytest.param(
            ["--workers=lots"],
            "invalid value 'lots' for configurable 'workers': not an integer "
            "(from command-line option --workers)",
            id="user-configurable",
        ),
        pytest.param(
            ["--endpoint=api"],
            "invalid value 'api' for configurable 'endpoint': an endpoint is a path "
            "starting with '/' (from command-line option --endpoint)",
            id="endpoint",
        ),
    ],
)
def test_bad_value_names_configurable_value_and_source(argv: list[str], message: str) -> None:
    """An invalid value stops configuration with a message naming all three."""
    service = Configured()
    with pytest.raises(gemstone.ServiceConfigurationError) as caught:
        service.load_configuration(argv)
    assert str(caught.value) == message


def test_bad_value_leaves_the_service_untouched() -> None:
    """Nothing is applied when any value is bad (no half-configured service)."""
    service = Configured()
    with pytest.raises(gemstone.ServiceConfigurationError):
        service.load_configuration(["--greeting=changed", "--workers=x"])
    assert service.greeting == "hello"


def test_bad_value_from_a_file_names_the_file(tmp_path: Path) -> None:
    """The source in the message is the file and key."""
    path = tmp_path / "bad.json"
    path.write_text('{"workers": "x"}')

    class FromFile(Configured):
        name = "from_file"
        configurators = [gemstone.JsonFileConfigurator(path)]

    with pytest.raises(gemstone.ServiceConfigurationError, match=r"'workers' of '.*bad\.json'"):
        FromFile().load_configuration()


def test_help_lists_configurables_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    """--help prints every configurable with its current value, then exits with 0."""
    with pytest.raises(SystemExit) as caught:
        Configured().load_configuration(["--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    assert "Run the configured_service service." in out
    for option in (
        "--port PORT",
        "--host HOST",
        "--accessible_at ACCESSIBLE_AT",
        "--endpoint ENDPOINT",
        "--service_registry_urls SERVICE_REGISTRY_URLS",
        "--workers WORKERS",
        "--verbose VERBOSE",
        "--greeting GREETING",
        "--api_token API_TOKEN",
    ):
        assert option in out
    assert "what say_hello says" in out
    assert "(current: 'hello')" in " ".join(out.split())


def test_help_masks_secret_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    """--help does not print a secret's current value."""

    class WithToken(Configured):
        name = "with_token"
        api_token = "s3cr3t-value"

    with pytest.raises(SystemExit):
        WithToken().load_configuration(["--help"])
    out = capsys.readouterr().out
    assert "s3cr3t-value" not in out
    assert "<secret>" in out


def test_skip_configuration(unused_tcp_port: int) -> None:
    """With skip_configuration, serving does not read the command line at all."""

    class Skipping(Configured):
        name = "skipping"
        skip_configuration = True

    service = Skipping()
    assert service.skip_configuration is True
    # load_configuration() still works when asked for explicitly
    service.load_configuration([f"--port={unused_tcp_port}"])
    assert service.port == unused_tcp_port


async def test_skip_configuration_ignores_argv_when_serving() -> None:
    """serve(argv=...) with skip_configuration leaves the defaults alone."""

    class Skipping(Configured):
        name = "skipping_serve"
        skip_configuration = True

    service = Skipping()
    async with serving(service, argv=["--greeting=ignored"]) as running:
        assert running.greeting == "hello"


async def test_configured_values_are_set_before_on_service_start() -> None:
    """on_service_start already sees the configured values."""
    service = Configured()
    async with serving(service, argv=["--workers=6", "--greeting=hey"]):
        assert service.seen_at_start == {"workers": 6, "greeting": "hey", "port": 0}
        async with aiohttp.ClientSession() as session:
            payload = {"jsonrpc": "2.0", "method": "say_hello", "params": ["ann"], "id": 1}
            async with session.post(service.accessible_at or "", json=payload) as response:
                assert (await response.json())["result"] == "hey ann"


async def test_serve_runs_configuration_with_explicit_argv() -> None:
    """serve(argv=...) configures first: the port given on the command line is bound."""
    import asyncio
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    service = Configured()
    ready = asyncio.Event()
    task = asyncio.create_task(
        service.serve(handle_signals=False, ready=ready, argv=[f"--port={port}", "--greeting=yo"])
    )
    await asyncio.wait_for(ready.wait(), 10)
    try:
        assert service.port == port
        assert service.accessible_at == f"http://127.0.0.1:{port}/api"
    finally:
        service.stop()
        await asyncio.wait_for(task, 10)


async def test_bad_value_stops_serve_before_binding() -> None:
    """serve() raises the configuration error; nothing starts."""
    service = Configured()
    with pytest.raises(gemstone.ServiceConfigurationError, match="'workers'"):
        await service.serve(handle_signals=False, argv=["--workers=none"])
    assert service.seen_at_start == {}


def test_two_services_in_one_process_are_configured_independently() -> None:
    """Two instances (and two classes) share no parser or configuration state."""

    class Other(gemstone.MicroService):
        name = "other_service"
        configurables = [gemstone.Configurable("colour")]
        colour = "red"

    first, second, other = Configured(), Configured(), Other()
    first.load_configuration(["--port=8001", "--workers=2"])
    second.load_configuration(["--port=8002"])
    other.load_configuration(["--port=8003", "--colour=blue"])
    first.load_configuration(["--port=8004"])  # configuring again is fine (no duplicate options)
    assert (first.port, first.workers) == (8004, 2)
    assert (second.port, second.workers) == (8002, 1)
    assert (other.port, other.colour) == (8003, "blue")
    with pytest.raises(gemstone.ServiceConfigurationError, match="--colour"):
        second.load_configuration(["--colour=green"])


def test_configurable_without_class_default_becomes_none() -> None:
    """A configurable with no attribute on the class and no value is None, not missing."""

    class Bare(gemstone.MicroService):
        name = "bare_service"
        configurables = [gemstone.Configurable("region")]

    service = Bare()
    service.load_configuration([])
    assert service.region is None  # type: ignore[attr-defined]


def test_replacing_a_default_configurable() -> None:
    """A service configurable named like a default replaces it (another template here)."""

    class Lenient(gemstone.MicroService):
        name = "lenient_service"
        configurables = [gemstone.Configurable("port", template=lambda v: int(v) + 1)]

    service = Lenient()
    service.load_configuration(["--port=8000"])
    assert service.port == 8001
    assert [c.name for c in service.get_configurables()].count("port") == 1


def test_duplicate_user_configurables_are_refused() -> None:
    """Declaring the same configurable twice is an error naming it."""

    class Twice(gemstone.MicroService):
        name = "twice_service"
        configurables = [gemstone.Configurable("a"), gemstone.Configurable("a")]

    with pytest.raises(gemstone.ServiceConfigurationError, match="'a' declared twice"):
        Twice().load_configuration([])


def test_current_configuration_masks_secrets() -> None:
    """get_current_configuration shows effective values; secrets and URL passwords masked."""
    service = Configured()
    service.load_configuration(
        [
            "--port=8123",
            "--api_token=tok-123",
            "--service_registry_urls=http://user:pw@reg:9000/api,http://open:1/api",
        ]
    )
    assert service.get_current_configuration() == {
        "name": "configured_service",
        "port": 8123,
        "host": "127.0.0.1",
        "accessible_at": "http://127.0.0.1:8123/api",
        "endpoint": "/api",
        "service_registry_urls": ["http://user:********@reg:9000/api", "http://open:1/api"],
        "ssl_certfile": None,
        "ssl_keyfile": None,
        "ssl_keyfile_password": None,
        "ssl_ca_certs": None,
        "ssl_cert_reqs": None,
        "ssl_allowed_clients": [],
        "client_ssl_ca_certs": None,
        "client_ssl_certfile": None,
        "client_ssl_keyfile": None,
        "workers": 1,
        "verbose": False,
        "greeting": "hello",
        "api_token": "********",
    }


def test_current_configuration_before_configuring() -> None:
    """The class defaults are reported before any configuration; an unset secret is None."""
    config = Configured().get_current_configuration()
    assert config["port"] == 8000
    assert config["api_token"] is None


async def test_an_exposed_method_named_configure_does_not_interfere() -> None:
    """Services often expose ``configure``; serving still configures them."""

    class SelfConfiguring(gemstone.MicroService):
        name = "self_configuring"
        colour = "red"
        configurables = [gemstone.Configurable("colour")]

        @gemstone.exposed_method()
        async def configure(self, colour: str) -> str:
            self.colour = colour
            return colour

    service = SelfConfiguring()
    async with serving(service, argv=["--colour=blue"]):
        assert service.colour == "blue"
        async with aiohttp.ClientSession() as session:
            payload = {"jsonrpc": "2.0", "method": "configure", "params": ["green"], "id": 1}
            async with session.post(service.accessible_at or "", json=payload) as response:
                assert (await response.json())["result"] == "green"
    assert service.colour == "green"
