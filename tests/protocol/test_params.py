"""Binding JSON-RPC params to a signature: a table of signatures, params and outcomes.

Each function below returns what it was called with, so an outcome is what the call
does, not how the binder spells its arguments: the same bound call whichever internal
path (the keyword validator or the model) validated the params.
"""

from __future__ import annotations

import inspect
from typing import Any

import pydantic
import pytest

from gemstone_aio.errors import InvalidParams, ServiceConfigurationError
from gemstone_aio.protocol import ParamsBinder, binder_for


class Point(pydantic.BaseModel):
    x: int
    y: int = 0


def named(a: int, b: str = "x", *, c: float = 1.0) -> dict[str, Any]:
    return {"a": a, "b": b, "c": c}


def no_params() -> str:
    return "none"


def untyped(a, b=2):  # no annotations: any JSON value
    return {"a": a, "b": b}


def positional_only(a: int, /, b: int) -> tuple[int, int]:
    return (a, b)


def variadic(a: int, *rest: int) -> tuple[int, tuple[int, ...]]:
    return (a, rest)


def keywords(a: int, **options: str) -> tuple[int, dict[str, str]]:
    return (a, options)


def everything(a: int, /, b: int, *rest: int, c: str = "c", **options: int) -> tuple[Any, ...]:
    return (a, b, rest, c, options)


def with_model(point: Point, scale: int = 1) -> tuple[int, int]:
    return (point.x * scale, point.y * scale)


def with_handler(handler: object, x: int) -> tuple[object, int]:
    return (handler, x)


BOUND = [
    # named parameters only (the keyword validator's path)
    pytest.param(named, {"a": 1}, {"a": 1, "b": "x", "c": 1.0}, id="named-defaults"),
    pytest.param(named, {"a": "5", "b": "y", "c": 2}, {"a": 5, "b": "y", "c": 2.0}, id="named-lax"),
    pytest.param(named, {"c": 3.5, "a": 1}, {"a": 1, "b": "x", "c": 3.5}, id="named-keyword-only"),
    pytest.param(named, [1, "y"], {"a": 1, "b": "y", "c": 1.0}, id="named-by-position"),
    pytest.param(named, [1], {"a": 1, "b": "x", "c": 1.0}, id="named-by-position-defaults"),
    pytest.param(no_params, None, "none", id="no-params-omitted"),
    pytest.param(no_params, {}, "none", id="no-params-empty-object"),
    pytest.param(no_params, [], "none", id="no-params-empty-array"),
    pytest.param(untyped, {"a": [1, {"b": None}]}, {"a": [1, {"b": None}], "b": 2}, id="untyped"),
    pytest.param(untyped, ["s", "t"], {"a": "s", "b": "t"}, id="untyped-by-position"),
    # the model's path
    pytest.param(positional_only, {"a": 1, "b": 2}, (1, 2), id="positional-only-by-name"),
    pytest.param(positional_only, [1, "2"], (1, 2), id="positional-only-by-position"),
    pytest.param(variadic, [1, 2, 3], (1, (2, 3)), id="variadic"),
    pytest.param(variadic, [1], (1, ()), id="variadic-empty"),
    pytest.param(variadic, {"a": 1}, (1, ()), id="variadic-by-name"),
    pytest.param(keywords, {"a": 1, "x": "y"}, (1, {"x": "y"}), id="keywords"),
    pytest.param(keywords, [1], (1, {}), id="keywords-by-position"),
    pytest.param(everything, [1, 2, 3, 4], (1, 2, (3, 4), "c", {}), id="everything-by-position"),
    pytest.param(
        everything,
        {"a": 1, "b": 2, "c": "d", "e": 5},
        (1, 2, (), "d", {"e": 5}),
        id="everything-by-name",
    ),
    pytest.param(with_model, {"point": {"x": 1, "y": 2}, "scale": 3}, (3, 6), id="model-param"),
    pytest.param(with_model, [{"x": 4}], (4, 0), id="model-param-by-position"),
]


@pytest.mark.parametrize(("func", "params", "outcome"), BOUND)
def test_params_bind_to_the_call(func: Any, params: Any, outcome: Any) -> None:
    before = repr(params)
    args, kwargs = binder_for(func).bind(params)
    assert func(*args, **kwargs) == outcome
    assert repr(params) == before  # the caller's params are not touched


REFUSED = [
    pytest.param(named, None, [("missing", ["a"])], id="named-omitted"),
    pytest.param(named, {}, [("missing", ["a"])], id="named-missing"),
    pytest.param(named, {"a": 1, "z": 2}, [("extra_forbidden", ["z"])], id="named-extra"),
    pytest.param(named, {"a": "x"}, [("int_parsing", ["a"])], id="named-wrong-type"),
    pytest.param(named, {"a": None}, [("int_type", ["a"])], id="named-null"),
    pytest.param(named, {"*a": 1}, [("extra_forbidden", ["*a"])], id="named-starred-key"),
    pytest.param(named, [], [("missing", ["a"])], id="named-empty-array"),
    pytest.param(
        named, [1, "y", 2.0], [("too_many_positional_params", [])], id="keyword-only-by-position"
    ),
    pytest.param(no_params, [1], [("too_many_positional_params", [])], id="no-params-given-one"),
    pytest.param(no_params, {"x": 1}, [("extra_forbidden", ["x"])], id="no-params-given-named"),
    pytest.param(positional_only, [1], [("missing", ["b"])], id="positional-only-missing"),
    pytest.param(variadic, [1, "x"], [("int_parsing", ["*rest", 0])], id="variadic-wrong-type"),
    pytest.param(
        variadic, {"a": 1, "rest": [2]}, [("extra_forbidden", ["rest"])], id="variadic-named"
    ),
    pytest.param(variadic, {"a": 1, "*rest": [2]}, [("extra_forbidden", ["*rest"])], id="starred"),
    pytest.param(keywords, {"a": 1, "x": 5}, [("string_type", ["**options", "x"])], id="kw-type"),
    pytest.param(
        keywords, {"a": 1, "**options": {}}, [("extra_forbidden", ["**options"])], id="kw-alias"
    ),
    pytest.param(keywords, [1, "x"], [("too_many_positional_params", [])], id="kw-by-position"),
    pytest.param(
        with_model, {"point": {"x": "a"}}, [("int_parsing", ["point", "x"])], id="model-field"
    ),
    pytest.param(
        named,
        {"a": "x", "b": 5, "q": 1},
        [("int_parsing", ["a"]), ("string_type", ["b"]), ("extra_forbidden", ["q"])],
        id="every-error-listed",
    ),
]


@pytest.mark.parametrize(("func", "params", "errors"), REFUSED)
def test_params_that_do_not_fit_are_invalid_params(
    func: Any, params: Any, errors: list[tuple[str, list[Any]]]
) -> None:
    with pytest.raises(InvalidParams) as caught:
        binder_for(func).bind(params)
    data = caught.value.data
    assert caught.value.code == -32602
    assert isinstance(data, list)
    listed = [(entry["type"], entry["loc"]) for entry in data]
    for expected in errors:
        assert expected in listed
    assert len(listed) == len(errors)
    for entry in data:
        assert "input" not in entry  # the caller's values are never echoed
        assert "url" not in entry
        assert isinstance(entry["msg"], str)


@pytest.mark.parametrize(
    "params",
    [{"a": 1}, {"a": "2", "c": 4}, {"a": 1, "b": "q", "c": 0.5}, {"a": "x"}, {"q": 1}, {}],
)
def test_binding_by_name_agrees_with_the_model(params: dict[str, Any]) -> None:
    """The params model is the reference: binding accepts and refuses what it does."""
    binder = binder_for(named)
    try:
        bound: Any = named(*binder.bind(params)[0], **binder.bind(params)[1])
    except InvalidParams as exc:
        bound = sorted((str(entry["loc"]), entry["type"]) for entry in exc.data)
    try:
        reference: Any = named(**binder.model.model_validate(params).model_dump(by_alias=True))
    except pydantic.ValidationError as exc:
        reference = sorted((str(list(entry["loc"])), entry["type"]) for entry in exc.errors())
    assert bound == reference


def test_the_binder_describes_the_signature() -> None:
    binder = binder_for(everything)
    assert [slot.name for slot in binder.slots] == ["a", "b", "rest", "c", "options"]
    assert binder.positional_names == ("a", "b")
    assert binder_for(named).positional_names == ("a", "b")  # c is keyword-only
    assert binder_for(named).result_annotation == dict[str, Any]
    assert binder_for(untyped).result_annotation is inspect.Parameter.empty


def test_the_model_speaks_the_parameter_names() -> None:
    schema = binder_for(named).model.model_json_schema()
    assert set(schema["properties"]) == {"a", "b", "c"}
    assert schema["required"] == ["a"]
    assert schema["additionalProperties"] is False


def test_skip_first_leaves_the_handler_out() -> None:
    binder = binder_for(with_handler, skip_first=True)
    assert binder.positional_names == ("x",)
    args, kwargs = binder.bind([7])
    assert with_handler("h", *args, **kwargs) == ("h", 7)
    with pytest.raises(InvalidParams):
        binder.bind({"handler": 1, "x": 7})


def test_binders_are_cached_per_function() -> None:
    class Owner:
        def method(self, n: int) -> int:
            return n

    first, second = Owner(), Owner()
    assert binder_for(named) is binder_for(named)
    assert binder_for(first.method) is binder_for(second.method)
    assert binder_for(with_handler) is not binder_for(with_handler, skip_first=True)
    assert binder_for(first.method).positional_names == ("n",)  # ``self`` is bound already


def test_skip_first_needs_a_positional_parameter() -> None:
    def keyword_only(*, x: int) -> None:
        return None

    with pytest.raises(ServiceConfigurationError, match="takes no positional parameter"):
        ParamsBinder(keyword_only, skip_first=True)


def test_an_unresolvable_annotation_is_a_configuration_error() -> None:
    def broken(x: int) -> None:
        return None

    broken.__annotations__ = {"x": "NoSuchType", "return": "None"}
    with pytest.raises(ServiceConfigurationError, match="cannot resolve the annotations"):
        ParamsBinder(broken)
