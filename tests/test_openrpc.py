"""The OpenRPC document: generation from signatures, docstrings and decorator metadata.

Every document is checked against the official OpenRPC meta-schema (vendored) and the
rules of the specification the meta-schema cannot express.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import importlib
import inspect
import json
import re
import uuid
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import jsonschema
import pydantic
import pydantic_core
import pytest

import gemstone_aio as gemstone
from gemstone_aio.selfdescription import OPENRPC_VERSION, build_document
from gemstone_aio.server import SELF_DESCRIPTION_KEY
from tests.fixtures.openrpc import assert_valid_openrpc

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))


def document_of(service: gemstone.MicroService, *, private: bool = False) -> dict[str, Any]:
    return service.make_app()[SELF_DESCRIPTION_KEY].document(include_private=private)


def method_of(document: dict[str, Any], name: str) -> dict[str, Any]:
    found = [m for m in document["methods"] if m["name"] == name]
    assert len(found) == 1, name
    result: dict[str, Any] = found[0]
    return result


def services_in(path: Path) -> list[type[gemstone.MicroService]]:
    module = importlib.import_module(f"examples.{path.stem}")
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, gemstone.MicroService)
        and obj.__module__ == module.__name__
    ]


def test_there_are_example_services() -> None:
    """The glob below really finds services (so the parametrised test cannot pass empty)."""
    assert sum(len(services_in(path)) for path in EXAMPLES) >= 2


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_every_example_service_has_a_valid_document(path: Path) -> None:
    """The documents of every service under examples/, anonymous and authenticated,
    validate against the OpenRPC meta-schema and list every method they should."""
    for service_class in services_in(path):
        service = service_class()
        app = service.make_app()
        description = app[SELF_DESCRIPTION_KEY]
        for private in (False, True):
            document = description.document(include_private=private)
            assert_valid_openrpc(document)
            assert document["openrpc"] == OPENRPC_VERSION
            assert document["info"]["title"] == service.name
            expected = [
                name
                for name, entry in description.router.methods.items()
                if private or not entry.spec.private
            ]
            assert [m["name"] for m in document["methods"]] == expected
            assert "rpc.discover" in expected


# -- a service with rich types ------------------------------------------------------


class Colour(enum.Enum):
    """A primary colour."""

    RED = "red"
    GREEN = "green"
    BLUE = "blue"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Dimensions(pydantic.BaseModel):
    width: float
    height: float


class Widget(pydantic.BaseModel):
    """A thing we make."""

    id: uuid.UUID
    name: Annotated[str, pydantic.Field(min_length=1, max_length=40)]
    colour: Colour = Colour.RED
    tags: set[str] = set()
    size: Dimensions | None = None
    made: datetime.datetime
    price: decimal.Decimal


class Opaque:
    """No JSON Schema for this one."""


class RichService(gemstone.MicroService):
    """Exercises every kind of type the schemas support."""

    name = "rich"
    version = "3.2.1"
    accessible_at = "http://widgets.example:9000/rpc"
    method_timeout = None

    @gemstone.exposed_method()
    async def create(
        self,
        name: str,
        colour: Colour = Colour.GREEN,
        tags: list[str] | None = None,
        size: Dimensions | None = None,
        priority: Priority = Priority.LOW,
        mode: Literal["draft", "final"] = "draft",
        corner: tuple[int, int] = (0, 0),
        ratings: dict[str, float] | None = None,
        count: Annotated[int, pydantic.Field(ge=1, le=100)] = 1,
    ) -> Widget:
        """Create a widget.

        Some more words about it,
        over two lines.

        Args:
            name: What to call it.
            colour (Colour): Its colour,
                green unless said.
            tags: Free labels.

        Returns:
            The new widget.

        Raises:
            ValueError: Never, really.
        """
        return Widget(
            id=uuid.UUID(int=7),
            name=name,
            colour=colour,
            tags=set(tags or ()),
            size=size,
            made=datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
            price=decimal.Decimal("9.99"),
        )

    @gemstone.exposed_method()
    async def find(self, *, colour: Colour | None = None, limit: int = 10) -> list[Widget]:
        """Find widgets."""
        return []

    @gemstone.exposed_method()
    async def label(self, prefix: str, /, text: str, *, upper: bool) -> str:
        return prefix + text

    @gemstone.exposed_method()
    async def total(self, first: int, *more: int) -> int:
        """Add numbers.

        Args:
            first: The first number.
            *more: Any number of others.
        """
        return first + sum(more)

    @gemstone.exposed_method()
    async def configure(self, name: str, **options: int) -> dict[str, int]:
        return options

    @gemstone.exposed_method()
    async def opaque(self, thing: Opaque | None = None, when: object = Opaque()) -> Opaque:
        return Opaque()

    @gemstone.exposed_method()
    async def untyped(self, a, b=2):
        return a

    @gemstone.exposed_method(requires_handler_reference=True)
    async def whoami(self, handler: gemstone.RequestHandler, greeting: str = "hi") -> str:
        return greeting

    @gemstone.exposed_method()
    async def pair(self, value: tuple[str, int, bool]) -> tuple[int, ...]:
        return ()


@pytest.fixture(scope="module")
def rich() -> dict[str, Any]:
    return document_of(RichService())


def test_rich_document_is_valid(rich: dict[str, Any]) -> None:
    """The rich service's document passes the meta-schema and the spec's extra rules."""
    assert_valid_openrpc(rich)


def test_info_and_servers_come_from_the_service(rich: dict[str, Any]) -> None:
    """info.title/version/description and servers come from name, version, the class
    docstring and accessible_at."""
    assert rich["info"] == {
        "title": "rich",
        "version": "3.2.1",
        "description": "Exercises every kind of type the schemas support.",
    }
    assert rich["servers"] == [{"name": "rich", "url": "http://widgets.example:9000/rpc"}]
    assert list(rich) == ["openrpc", "info", "servers", "methods", "components"]


def test_params_carry_schemas_defaults_and_docstring_descriptions(rich: dict[str, Any]) -> None:
    """Each param is a content descriptor: its schema (enums, optionals, lists, models,
    literals, tuples, constraints, defaults), required, and its Args: description."""
    create = method_of(rich, "create")
    assert create["paramStructure"] == "either"
    params = {p["name"]: p for p in create["params"]}
    assert list(params) == [
        "name",
        "colour",
        "tags",
        "size",
        "priority",
        "mode",
        "corner",
        "ratings",
        "count",
    ]
    assert params["name"] == {
        "name": "name",
        "schema": {"type": "string"},
        "required": True,
        "description": "What to call it.",
    }
    assert params["colour"] == {
        "name": "colour",
        "schema": {"$ref": "#/components/schemas/Colour", "default": "green"},
        "required": False,
        "description": "Its colour, green unless said.",
    }
    assert params["tags"]["schema"] == {
        "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}],
        "default": None,
    }
    assert params["size"]["schema"] == {
        "anyOf": [{"$ref": "#/components/schemas/Dimensions"}, {"type": "null"}],
        "default": None,
    }
    assert params["priority"]["schema"] == {
        "$ref": "#/components/schemas/Priority",
        "default": 1,
    }
    assert params["mode"]["schema"] == {
        "enum": ["draft", "final"],
        "type": "string",
        "default": "draft",
    }
    # Tuples are rewritten from draft 2020-12's prefixItems to draft 7's items array.
    assert params["corner"]["schema"] == {
        "type": "array",
        "items": [{"type": "integer"}, {"type": "integer"}],
        "additionalItems": False,
        "minItems": 2,
        "maxItems": 2,
        "default": [0, 0],
    }
    assert params["ratings"]["schema"]["anyOf"][0] == {
        "type": "object",
        "additionalProperties": {"type": "number"},
    }
    assert params["count"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 100,
        "default": 1,
    }
    assert not any(p["required"] for name, p in params.items() if name != "name")


def test_summary_description_and_result_come_from_the_docstring(rich: dict[str, Any]) -> None:
    """The first paragraph is the summary; the text without Args:/Returns: is the
    description; Returns: describes the result, whose schema is the return annotation."""
    create = method_of(rich, "create")
    assert create["summary"] == "Create a widget."
    assert create["description"] == (
        "Create a widget.\n\nSome more words about it,\nover two lines.\n\n"
        "Raises:\n    ValueError: Never, really."
    )
    assert create["result"] == {
        "name": "result",
        "schema": {"$ref": "#/components/schemas/Widget"},
        "description": "The new widget.",
    }
    assert "description" not in method_of(rich, "find")
    assert method_of(rich, "find")["summary"] == "Find widgets."
    assert "summary" not in method_of(rich, "label")


def test_shared_schemas_live_in_components(rich: dict[str, Any]) -> None:
    """Models and enums are written once under components.schemas and referenced."""
    schemas = rich["components"]["schemas"]
    assert set(schemas) == {"Colour", "Priority", "Dimensions", "Widget"}
    assert schemas["Colour"] == {
        "description": "A primary colour.",
        "enum": ["red", "green", "blue"],
        "title": "Colour",
        "type": "string",
    }
    widget = schemas["Widget"]
    assert widget["required"] == ["id", "name", "made", "price"]
    assert widget["properties"]["id"] == {"format": "uuid", "title": "Id", "type": "string"}
    assert widget["properties"]["colour"] == {
        "$ref": "#/components/schemas/Colour",
        "default": "red",
    }
    assert widget["properties"]["name"]["maxLength"] == 40


def test_param_structure_follows_the_signature(rich: dict[str, Any]) -> None:
    """Keyword-only params make a method by-name, *args by-position; **kwargs is the
    x-additional-params schema; the handler reference is no param at all."""
    find = method_of(rich, "find")
    assert find["paramStructure"] == "by-name"
    assert [p["name"] for p in find["params"]] == ["colour", "limit"]

    label = method_of(rich, "label")
    assert label["paramStructure"] == "by-name"
    # Required params first, as OpenRPC asks (by name, order carries no meaning).
    assert [(p["name"], p["required"]) for p in label["params"]] == [
        ("prefix", True),
        ("text", True),
        ("upper", True),
    ]

    total = method_of(rich, "total")
    assert total["paramStructure"] == "by-position"
    assert total["params"] == [
        {
            "name": "first",
            "schema": {"type": "integer"},
            "required": True,
            "description": "The first number.",
        },
        {
            "name": "more",
            "schema": {"type": "integer"},
            "required": False,
            "x-variadic": True,
            "description": "Any number of others.",
        },
    ]

    configure = method_of(rich, "configure")
    assert configure["paramStructure"] == "by-name"
    assert [p["name"] for p in configure["params"]] == ["name"]
    assert configure["x-additional-params"] == {"type": "integer"}

    whoami = method_of(rich, "whoami")
    assert whoami["paramStructure"] == "either"
    assert [p["name"] for p in whoami["params"]] == ["greeting"]


def test_types_without_a_json_schema_are_left_open(rich: dict[str, Any]) -> None:
    """An arbitrary class, a default that is not JSON or no annotation at all give an
    open schema ({}), without a warning (warnings fail the tests)."""
    opaque = method_of(rich, "opaque")
    assert opaque["params"][0]["schema"] == {"anyOf": [{}, {"type": "null"}], "default": None}
    assert opaque["params"][1]["schema"] == {}
    assert opaque["result"]["schema"] == {}
    untyped = method_of(rich, "untyped")
    assert untyped["params"] == [
        {"name": "a", "schema": {}, "required": True},
        {"name": "b", "schema": {"default": 2}, "required": False},
    ]
    assert untyped["result"]["schema"] == {}


def test_tuple_results_are_draft7(rich: dict[str, Any]) -> None:
    """Fixed and variable tuples come out as draft 7 arrays."""
    pair = method_of(rich, "pair")
    assert pair["params"][0]["schema"]["items"] == [
        {"type": "string"},
        {"type": "integer"},
        {"type": "boolean"},
    ]
    assert pair["result"]["schema"] == {"type": "array", "items": {"type": "integer"}}


async def test_the_schemas_accept_real_values(rich: dict[str, Any]) -> None:
    """What the method really returns (as JSON) validates against its result schema, and
    the params it accepts validate against the param schemas."""
    service = RichService()
    widget = await service.create("w", size=Dimensions(width=1, height=2), tags=["a"])
    components = rich["components"]

    def check(schema: dict[str, Any], value: Any) -> None:
        jsonschema.Draft7Validator({**schema, "components": components}).validate(
            pydantic_core.to_jsonable_python(value)
        )

    check(method_of(rich, "create")["result"]["schema"], widget)
    params = {p["name"]: p["schema"] for p in method_of(rich, "create")["params"]}
    check(params["size"], {"width": 1.5, "height": 2})
    check(params["corner"], [3, 4])
    with pytest.raises(jsonschema.ValidationError):
        check(params["corner"], [3, 4, 5])
    with pytest.raises(jsonschema.ValidationError):
        check(params["colour"], "purple")
    with pytest.raises(jsonschema.ValidationError):
        check(params["count"], 0)


# -- errors, examples, deprecation, privacy -------------------------------------------


class QuotaData(pydantic.BaseModel):
    used: int
    limit: int


class QuotaExceeded(gemstone.JsonRpcError):
    code = -32050
    default_message = "Quota exceeded"
    data_model: ClassVar[type[QuotaData]] = QuotaData


class NotYours(gemstone.JsonRpcError):
    code = 4003
    default_message = "Not yours"


class Annotated_(gemstone.MicroService):
    name = "annotated"
    method_timeout = 5.0

    def authenticate_request(self, request: Any) -> bool:
        return True

    @gemstone.exposed_method(
        errors=[QuotaExceeded, NotYours, ValueError, KeyError, gemstone.InvalidParams],
        examples=[
            {"params": {"a": 1, "b": 2}, "result": 3},
            {"name": "by position", "description": "Same, as a list.", "params": [5, 6]},
        ],
        deprecated=True,
    )
    async def add(self, a: int, b: int = 0) -> int:
        return a + b

    @gemstone.exposed_method(private=True, timeout=1.0)
    async def secret(self) -> QuotaData:
        return QuotaData(used=1, limit=2)

    @gemstone.exposed_method(examples=[{"params": [1, 2, 3]}])
    async def many(self, *values: int) -> int:
        return sum(values)


def test_errors_list_codes_messages_and_data_schemas() -> None:
    """-32602 always, -32003 when a timeout applies, then the declared errors (with the
    schema of their data model); other exceptions show as -32603; codes appear once."""
    document = document_of(Annotated_())
    assert_valid_openrpc(document)
    add = method_of(document, "add")
    assert add["errors"] == [
        {"code": -32602, "message": "Invalid params"},
        {"code": -32003, "message": "Method timed out"},
        {
            "code": -32050,
            "message": "Quota exceeded",
            "data": {"$ref": "#/components/schemas/QuotaData"},
        },
        {"code": 4003, "message": "Not yours"},
        {"code": -32603, "message": "Internal error"},
    ]
    assert document["components"]["schemas"]["QuotaData"]["required"] == ["used", "limit"]
    assert add["deprecated"] is True
    assert "deprecated" not in method_of(document, "many")


def test_private_methods_are_listed_only_when_asked() -> None:
    """The anonymous document has no private method and no schema only it uses; the
    authenticated one lists it with -32001 and a "private" tag."""
    service = Annotated_()
    anonymous = document_of(service)
    full = document_of(service, private=True)
    assert_valid_openrpc(full)
    assert "secret" not in [m["name"] for m in anonymous["methods"]]
    secret = method_of(full, "secret")
    assert [e["code"] for e in secret["errors"]] == [-32602, -32001, -32003]
    assert secret["tags"] == [{"name": "private", "description": "Needs an authenticated caller."}]
    assert secret["result"]["schema"] == {"$ref": "#/components/schemas/QuotaData"}


def test_examples_become_pairing_objects() -> None:
    """Declared examples become example pairings: named params (by position mapped to
    names, variadic values repeated), the result when given."""
    document = document_of(Annotated_())
    assert method_of(document, "add")["examples"] == [
        {
            "name": "example 1",
            "params": [{"name": "a", "value": 1}, {"name": "b", "value": 2}],
            "result": {"name": "result", "value": 3},
        },
        {
            "name": "by position",
            "description": "Same, as a list.",
            "params": [{"name": "a", "value": 5}, {"name": "b", "value": 6}],
        },
    ]
    assert method_of(document, "many")["examples"] == [
        {
            "name": "example 1",
            "params": [
                {"name": "values", "value": 1},
                {"name": "values", "value": 2},
                {"name": "values", "value": 3},
            ],
        }
    ]


@pytest.mark.parametrize(
    ("example", "message"),
    [
        pytest.param(
            {"params": {"a": "x"}},
            "example 1 of method 'bad' has invalid params",
            id="params-do-not-validate",
        ),
        pytest.param(
            {"params": {"c": 1}}, "example 1 of method 'bad' has invalid params", id="unknown-param"
        ),
        pytest.param({"params": [1], "reslt": 2}, "has unknown keys ['reslt']", id="misspelt-key"),
        pytest.param(
            {"params": [1], "result": "three"}, "has a result that does not fit", id="bad-result"
        ),
        pytest.param({"params": 5}, "params must be a list or a dict", id="params-not-structured"),
    ],
)
def test_a_wrong_example_fails_when_the_app_is_built(example: Any, message: str) -> None:
    """An example that does not fit the method is a configuration error at start-up,
    naming the method, not a surprise for the first caller of rpc.discover."""

    class Bad(gemstone.MicroService):
        name = "bad_examples"

        @gemstone.exposed_method(examples=[example])
        async def bad(self, a: int) -> int:
            return a

    with pytest.raises(gemstone.ServiceConfigurationError, match=message.replace("[", r"\[")):
        Bad().make_app()


def test_documents_are_cached_but_servers_follow_accessible_at() -> None:
    """The methods are generated once; servers reflect accessible_at when asked."""
    service = Annotated_()
    description = service.make_app()[SELF_DESCRIPTION_KEY]
    first = description.document(include_private=False)
    service.port = 8123
    service.refresh_accessible_at()
    second = description.document(include_private=False)
    assert second["methods"] is first["methods"]
    assert second["servers"] == [{"name": "annotated", "url": "http://127.0.0.1:8123/api"}]


def test_build_document_works_on_a_router_table_directly() -> None:
    """build_document is usable without an application (e.g. to write openrpc.json at
    build time)."""
    service = Annotated_()
    router = service.make_app()[SELF_DESCRIPTION_KEY].router
    document = build_document(service, router.methods, include_private=True)
    assert_valid_openrpc(document)
    assert method_of(document, "rpc.discover")["result"] == {
        "name": "OpenRPC Schema",
        "schema": {"$ref": "https://meta.open-rpc.org/"},
    }


# -- the docs page cannot drift from the example ----------------------------------------

DOCS = Path(__file__).parent.parent / "docs" / "self-description.md"


def test_the_docs_json_is_what_the_example_returns() -> None:
    """docs/self-description.md includes the example, and its JSON of the menu method is
    what rpc.discover returns for it."""
    from examples import self_description

    text = DOCS.read_text()
    assert '--8<-- "examples/self_description.py"' in text
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)
    document = self_description.openrpc_document()
    assert_valid_openrpc(document)
    assert json.loads(blocks[0]) == method_of(document, "menu")
    assert "revenue" in [m["name"] for m in document["methods"]]


def _module_a() -> Any:
    class Item(pydantic.BaseModel):
        a: int

    return Item


def _module_b() -> Any:
    class Item(pydantic.BaseModel):
        b: int

    return Item


# Two different models both named "Item", as two modules of one service may have.
ItemA = _module_a()
ItemB = _module_b()


class Box(pydantic.BaseModel):
    item: ItemB  # type: ignore[valid-type]


class Clashing(gemstone.MicroService):
    name = "clashing"

    @gemstone.exposed_method()
    async def first(self, item: ItemA) -> ItemA:  # type: ignore[valid-type]
        return item

    @gemstone.exposed_method()
    async def second(self, box: Box) -> ItemB:  # type: ignore[valid-type]
        return box.item

    @gemstone.exposed_method()
    async def third(self, item: ItemA) -> Box:  # type: ignore[valid-type]
        return Box(item=ItemB(b=item.a))  # type: ignore[attr-defined]


def test_schemas_with_the_same_name_are_kept_apart() -> None:
    """Two different models of one name get two components (pydantic qualifies their
    names), each referenced where it is used; a model several methods use is written once."""
    document = document_of(Clashing())
    assert_valid_openrpc(document)
    schemas = document["components"]["schemas"]
    assert len(schemas) == 3
    by_field = {next(iter(s["properties"])): name for name, s in schemas.items()}
    item_a, item_b = by_field["a"], by_field["b"]
    assert by_field["item"] == "Box"
    assert item_a != item_b
    assert schemas[item_a]["title"] == schemas[item_b]["title"] == "Item"

    def ref(name: str) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{name}"}

    assert schemas["Box"]["properties"]["item"] == ref(item_b)
    first, second, third = (method_of(document, n) for n in ("first", "second", "third"))
    assert first["params"][0]["schema"] == ref(item_a)
    assert first["result"]["schema"] == ref(item_a)
    assert second["result"]["schema"] == ref(item_b)
    assert third["params"][0]["schema"] == ref(item_a)
    assert third["result"]["schema"] == ref("Box")
