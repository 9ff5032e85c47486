"""PARAMS parsing and type conversion (pure functions; the CLI tests cover the wiring)."""

from __future__ import annotations

from typing import Any

import pytest

from gemstone_aio.cli._params import Params, ParamsError, coerce, parse_params


@pytest.mark.parametrize(
    ("items", "value", "loose"),
    [
        ([], None, set()),
        (["name=world"], {"name": "world"}, {"name"}),
        (["a=b=c"], {"a": "b=c"}, {"a"}),
        (["empty="], {"empty": ""}, {"empty"}),
        (
            ["n:=5", "f:=1.5", "ok:=true", "none:=null"],
            {"n": 5, "f": 1.5, "ok": True, "none": None},
            set(),
        ),
        (['tags:=["a", "b"]', 'o:={"k": 1}'], {"tags": ["a", "b"], "o": {"k": 1}}, set()),
        (["n:=5", "s=5"], {"n": 5, "s": "5"}, {"s"}),
        (["5", "2.5", "true", "null", '"x=y"', "[1]"], [5, 2.5, True, None, "x=y", [1]], set()),
        (["hello", "5"], ["hello", 5], {0}),
        (['{"a": "b=c"}'], [{"a": "b=c"}], set()),
        (["dotted.key=v"], {"dotted.key": "v"}, {"dotted.key"}),
    ],
)
def test_parse_params(items: list[str], value: Any, loose: set[Any]) -> None:
    parsed = parse_params(items)
    assert parsed.value == value
    assert parsed.loose == loose


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["a=1", "5"], "'a=1' is by name and '5' is by position"),
        (["a=1", "a=2"], "param 'a' is given twice"),
        (["n:=five"], "'n:=five': the value after ':=' is not JSON"),
    ],
)
def test_parse_params_rejects(items: list[str], message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        parse_params(items)


DOC: dict[str, Any] = {
    "openrpc": "1.2.6",
    "info": {"title": "typed", "version": "1"},
    "methods": [
        {
            "name": "typed",
            "params": [
                {"name": "count", "schema": {"type": "integer"}},
                {"name": "ratio", "schema": {"type": "number"}},
                {"name": "flag", "schema": {"type": "boolean"}},
                {"name": "items", "schema": {"type": "array", "items": {"type": "integer"}}},
                {"name": "label", "schema": {"type": "string"}},
                {"name": "maybe", "schema": {"anyOf": [{"type": "integer"}, {"type": "null"}]}},
                {"name": "point", "schema": {"$ref": "#/components/schemas/Point"}},
                {"name": "either", "schema": {"anyOf": [{"type": "integer"}, {"type": "string"}]}},
            ],
        }
    ],
    "components": {"schemas": {"Point": {"type": "object"}}},
}


def test_coerce_by_name_follows_declared_types() -> None:
    params = parse_params(
        [
            "count=3",
            "ratio=0.5",
            "flag=yes",
            "items=[1,2]",
            "label=7",
            "maybe=null",
            'point={"x":1}',
            "either=8",
        ]
    )
    assert coerce(params, DOC, "typed").value == {
        "count": 3,
        "ratio": 0.5,
        "flag": True,
        "items": [1, 2],
        "label": "7",
        "maybe": None,
        "point": {"x": 1},
        "either": "8",
    }


def test_coerce_by_position_and_unconvertible_values_stay_strings() -> None:
    params = Params(["x3", "abc", "maybe"], {0, 1, 2})
    assert coerce(params, DOC, "typed").value == ["x3", "abc", "maybe"]
    assert coerce(Params(["3"], {0}), DOC, "typed").value == [3]


def test_coerce_leaves_typed_values_and_unknown_methods_alone() -> None:
    params = parse_params(['count:="3"'])
    assert coerce(params, DOC, "typed").value == {"count": "3"}
    loose = parse_params(["count=3"])
    assert coerce(loose, DOC, "other").value == {"count": "3"}


def test_coerce_variadic_positions() -> None:
    doc = {
        "methods": [
            {
                "name": "total",
                "params": [
                    {"name": "scale", "schema": {"type": "number"}, "required": True},
                    {"name": "values", "schema": {"type": "integer"}, "x-variadic": True},
                ],
            }
        ]
    }
    params = Params(["2.5", "1", "2", "x"], {0, 1, 2, 3})
    assert coerce(params, doc, "total").value == [2.5, 1, 2, "x"]
