"""The configurators on their own: command line, JSON file, environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import gemstone_aio as gemstone
from gemstone_aio.config import (
    CommandLineConfigurator,
    Configurable,
    EnvironmentConfigurator,
    JsonFileConfigurator,
)
from gemstone_aio.config._configurator import BaseConfigurator, default_env_prefix

CONFIGURABLES = [Configurable("port"), Configurable("accessible_at"), Configurable("greeting")]


def bind(configurator: BaseConfigurator) -> BaseConfigurator:
    bound = configurator.bind(
        CONFIGURABLES, service_name="orders.v2", defaults={"port": 8000, "greeting": "hi"}
    )
    bound.load()
    return bound


@pytest.mark.parametrize(
    "argv",
    [["--port=8001"], ["--port", "8001"]],
    ids=["equals", "separate"],
)
def test_command_line_both_option_forms(argv: list[str]) -> None:
    """``--port=8001`` and ``--port 8001`` give the same raw value."""
    assert bind(CommandLineConfigurator(argv)).get("port") == "8001"


def test_command_line_dashes_alias_underscores() -> None:
    """``--accessible-at`` is accepted for ``accessible_at``."""
    bound = bind(CommandLineConfigurator(["--accessible-at", "http://x/api"]))
    assert bound.get("accessible_at") == "http://x/api"


def test_command_line_absent_option_is_none_and_empty_is_a_value() -> None:
    """Not given → None; given empty → the empty string (a value, not "none")."""
    bound = bind(CommandLineConfigurator(["--greeting="]))
    assert bound.get("port") is None
    assert bound.get("greeting") == ""


def test_command_line_no_prefix_matching() -> None:
    """An abbreviation of an option is not silently accepted."""
    with pytest.raises(gemstone.ServiceConfigurationError, match="unrecognized arguments: --gre"):
        bind(CommandLineConfigurator(["--gre=x"]))


def test_command_line_unknown_option_is_a_one_line_error() -> None:
    """An unknown option is an error naming it, in one line."""
    with pytest.raises(gemstone.ServiceConfigurationError) as caught:
        bind(CommandLineConfigurator(["--colour=red"]))
    assert str(caught.value) == "unrecognized arguments: --colour=red (see --help)"


def test_command_line_missing_value_is_an_error() -> None:
    """``--port`` with no value is an error naming the option."""
    with pytest.raises(gemstone.ServiceConfigurationError, match="--port"):
        bind(CommandLineConfigurator(["--port"]))


def test_command_line_reads_sys_argv_at_load_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without explicit arguments ``sys.argv[1:]`` is read when loading, not when created."""
    configurator = CommandLineConfigurator()
    monkeypatch.setattr("sys.argv", ["svc.py", "--greeting=from-argv"])
    assert bind(configurator).get("greeting") == "from-argv"


def test_bind_leaves_the_shared_configurator_untouched() -> None:
    """A configurator shared on a class keeps no state from a run."""
    shared = CommandLineConfigurator(["--greeting=x"])
    bound = bind(shared)
    assert bound is not shared
    assert shared.configurables == []
    assert shared.get("greeting") is None


def test_json_file_values_keep_their_json_type(tmp_path: Path) -> None:
    """JSON values reach the templates as numbers, lists, ...; null means no value."""
    path = tmp_path / "svc.json"
    path.write_text(json.dumps({"port": 8123, "greeting": None, "accessible_at": "http://a/api"}))
    bound = bind(JsonFileConfigurator(path))
    assert bound.get("port") == 8123
    assert bound.get("greeting") is None
    assert bound.get("accessible_at") == "http://a/api"


def test_json_file_missing(tmp_path: Path) -> None:
    """A missing file stops configuration, naming the file."""
    path = tmp_path / "absent.json"
    with pytest.raises(gemstone.ServiceConfigurationError, match="cannot read configuration file"):
        bind(JsonFileConfigurator(path))


def test_json_file_invalid_json(tmp_path: Path) -> None:
    """Invalid JSON is reported with the file and the position."""
    path = tmp_path / "bad.json"
    path.write_text('{"port": 80,\n "x": }')
    with pytest.raises(gemstone.ServiceConfigurationError, match=r"bad\.json.*line 2"):
        bind(JsonFileConfigurator(path))


def test_json_file_must_hold_an_object(tmp_path: Path) -> None:
    """A top-level list is refused."""
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(
        gemstone.ServiceConfigurationError, match="must hold a JSON object, got list"
    ):
        bind(JsonFileConfigurator(path))


def test_json_file_unknown_key(tmp_path: Path) -> None:
    """A key that is no configurable is an error (a typo must not pass silently)..."""
    path = tmp_path / "typo.json"
    path.write_text('{"prot": 8001}')
    with pytest.raises(gemstone.ServiceConfigurationError, match=r"unknown key.*'prot'"):
        bind(JsonFileConfigurator(path))


def test_json_file_unknown_key_allowed(tmp_path: Path) -> None:
    """... unless the file is shared and says so."""
    path = tmp_path / "shared.json"
    path.write_text('{"other_service_setting": 1, "port": 9}')
    assert bind(JsonFileConfigurator(path, allow_unknown=True)).get("port") == 9


def test_environment_prefix_derived_from_service_name() -> None:
    """The default prefix comes from the service name."""
    assert default_env_prefix("orders.v2") == "ORDERS_V2_"
    bound = bind(EnvironmentConfigurator(environ={"ORDERS_V2_PORT": "8005", "PORT": "1"}))
    assert bound.get("port") == "8005"


def test_environment_explicit_prefix() -> None:
    """An explicit prefix replaces the derived one; an empty value is a value."""
    environ = {"APP_GREETING": "", "ORDERS_V2_PORT": "8005"}
    bound = bind(EnvironmentConfigurator(prefix="APP_", environ=environ))
    assert bound.get("greeting") == ""
    assert bound.get("port") is None


def test_environment_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a mapping, the process environment is read when loading."""
    monkeypatch.setenv("ORDERS_V2_GREETING", "hello from env")
    assert bind(EnvironmentConfigurator()).get("greeting") == "hello from env"


def test_describe_names_the_source(tmp_path: Path) -> None:
    """Each configurator names where a value came from (used in error messages)."""
    assert CommandLineConfigurator([]).describe("port") == "command-line option --port"
    env = EnvironmentConfigurator(prefix="X_")
    assert env.describe("port") == "environment variable X_PORT"
    path = tmp_path / "c.json"
    assert JsonFileConfigurator(path).describe("port") == f"key 'port' of {str(path)!r}"


def test_gemstone_010_registration_api() -> None:
    """register_configurable / get_configurable_by_name / repr of gemstone 0.10."""
    configurator = CommandLineConfigurator([])
    port = Configurable("port")
    configurator.register_configurable(port)
    assert configurator.get_configurable_by_name("port") is port
    assert configurator.get_configurable_by_name("nope") is None
    assert repr(configurator) == "<CommandLineConfigurator>"
