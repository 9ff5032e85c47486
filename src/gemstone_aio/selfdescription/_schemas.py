"""JSON Schemas of Python types, shared by the OpenRPC and the AsyncAPI documents.

Both documents keep shared schemas under ``components.schemas`` and are read as JSON
Schema draft 7 (OpenRPC's schema dialect, and the base of AsyncAPI's), so both are built
by one :class:`SchemaSet`: every type of a document generated in one pydantic pass.
"""

from __future__ import annotations

import inspect
from typing import Any, Final

import pydantic
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import core_schema

__all__ = ["REF_PREFIX", "SchemaSet", "adapter_for", "draft7"]

REF_PREFIX: Final = "#/components/schemas/"
"""Where shared schemas live in both documents."""


class _Generator(GenerateJsonSchema):
    """pydantic's generator, made total: what JSON Schema cannot express becomes ``{}``.

    A type without a JSON Schema (an arbitrary class allowed as a parameter) must not
    make ``rpc.discover`` fail, and a default that is not JSON must not warn on every
    call; both are simply left undescribed.
    """

    def handle_invalid_for_json_schema(
        self, schema: core_schema.CoreSchema, error_info: str
    ) -> JsonSchemaValue:
        return {}

    def emit_warning(self, kind: Any, detail: str) -> None:
        return None


def adapter_for(annotation: Any) -> pydantic.TypeAdapter[Any] | None:
    """A pydantic ``TypeAdapter`` of ``annotation``, or ``None`` if pydantic cannot build one."""
    try:
        return pydantic.TypeAdapter(annotation)
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError):
        return None


def draft7(node: Any) -> Any:
    """Rewrite the draft 2020-12 forms pydantic emits into draft 7 (recursively)."""
    if isinstance(node, list):
        return [draft7(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: draft7(value) for key, value in node.items()}
    if "prefixItems" in out:
        rest = out.pop("items", False)
        out["items"] = out.pop("prefixItems")
        out["additionalItems"] = rest
    return out


class SchemaSet:
    """Collects every type of a document and generates their schemas in one pass.

    One pass is what lets pydantic name each shared model once and ``$ref`` it
    everywhere. Keys are any hashable the caller picks; a key of the form
    ``("params", ...)`` holds a params model, whose own schema is not shared (its
    fields become content descriptors).
    """

    def __init__(self) -> None:
        self._inputs: list[tuple[Any, JsonSchemaMode, pydantic.TypeAdapter[Any]]] = []
        self._keys: set[Any] = set()
        self._out: dict[Any, JsonSchemaValue] = {}
        self.components: dict[str, JsonSchemaValue] = {}

    def add(self, key: Any, annotation: Any, *, mode: JsonSchemaMode = "serialization") -> None:
        """Schedule the schema of ``annotation`` under ``key`` (once per key)."""
        if annotation is inspect.Parameter.empty or key in self._keys:
            return
        self._keys.add(key)
        adapter = adapter_for(annotation)
        if adapter is not None:
            self._inputs.append((key, mode, adapter))

    def generate(self) -> None:
        """Generate every scheduled schema and the shared ``components``."""
        if not self._inputs:
            return
        schemas, definitions = pydantic.TypeAdapter.json_schemas(
            self._inputs,
            ref_template=REF_PREFIX + "{model}",
            schema_generator=_Generator,
        )
        self.components = {k: draft7(v) for k, v in definitions.get("$defs", {}).items()}
        for (key, _mode), schema in schemas.items():
            if isinstance(key, tuple) and key[0] == "params":
                ref = schema.get("$ref", "")
                if ref.startswith(REF_PREFIX):
                    schema = self.components.pop(ref[len(REF_PREFIX) :], schema)
            self._out[key] = draft7(schema)

    def get(self, key: Any) -> JsonSchemaValue:
        """The schema generated under ``key`` (``{}``: any value, or not describable)."""
        return self._out.get(key, {})
