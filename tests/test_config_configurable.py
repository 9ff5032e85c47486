"""Configurable and its templates."""

from __future__ import annotations

from typing import Any

import pytest

import gemstone_aio as gemstone
from gemstone_aio.config import (
    Configurable,
    as_bool,
    as_endpoint,
    as_float,
    as_int,
    as_port,
    comma_list,
)


@pytest.mark.parametrize(
    ("template", "raw", "expected"),
    [
        pytest.param(as_int, "8001", 8001, id="int-from-string"),
        pytest.param(as_int, " 42 ", 42, id="int-strips"),
        pytest.param(as_int, 7, 7, id="int-from-json-int"),
        pytest.param(as_int, 3.0, 3, id="int-from-whole-float"),
        pytest.param(as_float, "2.5", 2.5, id="float-from-string"),
        pytest.param(as_float, 2, 2.0, id="float-from-int"),
        pytest.param(as_bool, "yes", True, id="bool-yes"),
        pytest.param(as_bool, "OFF", False, id="bool-off-any-case"),
        pytest.param(as_bool, "1", True, id="bool-1"),
        pytest.param(as_bool, "", False, id="bool-empty"),
        pytest.param(as_bool, True, True, id="bool-json"),
        pytest.param(comma_list, "a, b,,c ", ["a", "b", "c"], id="list-from-string"),
        pytest.param(comma_list, "", [], id="list-empty"),
        pytest.param(comma_list, ["x", " y"], ["x", "y"], id="list-from-json"),
        pytest.param(as_port, "9000", 9000, id="port"),
        pytest.param(as_port, "random", 0, id="port-random-is-free-port"),
        pytest.param(as_port, 0, 0, id="port-zero"),
        pytest.param(as_endpoint, "/rpc", "/rpc", id="endpoint"),
    ],
)
def test_templates_convert_strings_and_json_values(template: Any, raw: Any, expected: Any) -> None:
    """Each helper template converts command-line strings and JSON values alike."""
    assert template(raw) == expected


@pytest.mark.parametrize(
    ("template", "raw", "reason"),
    [
        pytest.param(as_int, "eight", "not an integer", id="int-word"),
        pytest.param(as_int, 1.5, "not a whole number", id="int-fraction"),
        pytest.param(as_int, True, "boolean", id="int-bool"),
        pytest.param(as_float, "x", "not a number", id="float-word"),
        pytest.param(as_bool, "maybe", "not a boolean", id="bool-word"),
        pytest.param(as_port, "70000", "between 0 and 65535", id="port-range"),
        pytest.param(as_port, "-1", "between 0 and 65535", id="port-negative"),
        pytest.param(as_endpoint, "api", "starting with '/'", id="endpoint-relative"),
    ],
)
def test_templates_reject_bad_values(template: Any, raw: Any, reason: str) -> None:
    """A bad value makes a template raise ValueError or TypeError with the reason."""
    with pytest.raises((ValueError, TypeError), match=reason):
        template(raw)


def test_convert_names_configurable_and_value() -> None:
    """A rejected value becomes a ServiceConfigurationError naming both."""
    configurable = Configurable("workers", template=as_int)
    with pytest.raises(gemstone.ServiceConfigurationError) as caught:
        configurable.convert("many")
    assert str(caught.value) == "invalid value 'many' for configurable 'workers': not an integer"


def test_convert_of_a_secret_does_not_show_the_value() -> None:
    """The error of a secret configurable does not repeat the secret."""
    configurable = Configurable("db_password", template=as_int)
    with pytest.raises(gemstone.ServiceConfigurationError) as caught:
        configurable.convert("hunter2")
    assert "hunter2" not in str(caught.value)
    assert "'db_password'" in str(caught.value)


def test_without_template_the_raw_value_is_kept() -> None:
    """No template: the value is used as given."""
    assert Configurable("greeting").convert("hi") == "hi"


def test_gemstone_010_value_api() -> None:
    """set_value / get_final_value and the repr of gemstone 0.10 still work."""
    configurable = Configurable("b", template=lambda v: int(v) * 2)
    configurable.set_value("21")
    assert configurable.get_final_value() == 42
    assert repr(configurable) == "<Configurable name=b>"


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("api_token", True),
        ("DB_PASSWORD", True),
        ("client_secret", True),
        ("stripe_api_key", True),
        ("port", False),
        ("greeting", False),
    ],
)
def test_secret_rule_from_the_name(name: str, secret: bool) -> None:
    """Names holding password/secret/token/api_key are secret by default."""
    assert Configurable(name).secret is secret


def test_secret_can_be_set_explicitly() -> None:
    """``secret=`` overrides the rule both ways."""
    assert Configurable("pin", secret=True).secret is True
    assert Configurable("token_bucket_size", secret=False).secret is False


@pytest.mark.parametrize("name", ["", "2fast", "with-dash", "has space"])
def test_name_must_be_an_identifier(name: str) -> None:
    """A name that cannot be an attribute is refused."""
    with pytest.raises(gemstone.ServiceConfigurationError, match="identifier"):
        Configurable(name)


def test_template_must_be_callable() -> None:
    """A template that is not callable is refused at once."""
    with pytest.raises(gemstone.ServiceConfigurationError, match="callable"):
        Configurable("x", template=42)  # type: ignore[arg-type]
