"""Writing a typed client module from a service's OpenRPC document (``gemstone client``).

The module holds a pydantic model (or enum, or type alias) per shared schema, and two
classes: an async client (:class:`TypedClient`) and its blocking twin
(:class:`BlockingTypedClient`), with one method per method of the service: its params as
arguments with their types and defaults, its result type, and its docstring (summary,
description, params, result, errors). ``rpc.*`` methods are left out.

The output passes ``mypy --strict``, ``ruff check`` and ``ruff format --check``; it
depends only on gemstone-aio and pydantic.
"""

from __future__ import annotations

import keyword
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ._pysource import docstring, exploded, identifier, string
from ._schema_types import SchemaTypes

__all__ = ["generate_client"]

# Names the module itself uses, which no generated name may take.
_MODULE_NAMES: Final = frozenset(
    {
        "OMITTED",
        "BlockingTypedClient",
        "TypedClient",
        "annotations",
        "datetime",
        "enum",
        "pydantic",
        "typing",
        "typing_extensions",
        "uuid",
    }
)
# Attributes of the client classes, which no method may shadow.
_CLIENT_NAMES: Final = frozenset(
    {"aclose", "close", "default_url", "remote", "mro"} | set(keyword.kwlist)
)


@dataclass(frozen=True, slots=True)
class _Param:
    name: str  # in Python
    wire: str  # in the call
    annotation: str
    default: str | None  # None: required
    variadic: bool
    description: str


def _pascal(text: str) -> str:
    words = identifier(text).replace("_", " ").split()
    return "".join(word[:1].upper() + word[1:] for word in words) or "Service"


class _Writer:
    def __init__(self, document: Mapping[str, Any], class_name: str | None, url: str | None):
        self.document = document
        info: Mapping[str, Any] = document.get("info") or {}
        self.title = str(info.get("title") or "service")
        self.version = str(info.get("version") or "")
        self.description = str(info.get("description") or "")
        servers = document.get("servers") or []
        server_url = servers[0].get("url") if servers and isinstance(servers[0], Mapping) else None
        self.url = url or server_url
        base = class_name or _pascal(self.title)
        taken = set(_MODULE_NAMES)
        self.async_name = identifier(f"{base}Client" if not class_name else base, taken)
        taken.add(self.async_name)
        blocking = (
            f"{base}BlockingClient" if not class_name else f"{base.removesuffix('Client')}Blocking"
        )
        self.blocking_name = identifier(blocking, taken)
        taken.add(self.blocking_name)
        components = (document.get("components") or {}).get("schemas") or {}
        self.types = SchemaTypes(components, taken)
        self.methods = [
            m
            for m in document.get("methods") or ()
            if isinstance(m, Mapping)
            and isinstance(m.get("name"), str)
            and not m["name"].startswith("rpc.")
        ]
        self.uses_omitted = False
        self.uses_deprecated = False
        taken_methods: set[str] = set(_CLIENT_NAMES)
        self.method_names: list[str] = []
        for method in self.methods:
            name = identifier(method["name"], taken_methods)
            taken_methods.add(name)
            self.method_names.append(name)

    # -- params --------------------------------------------------------------------------

    def params(self, method: Mapping[str, Any]) -> list[_Param]:
        taken = {"self", "reply", "result", "params"}
        out = []
        for param in method.get("params") or ():
            if not isinstance(param, Mapping) or not isinstance(param.get("name"), str):
                continue
            schema = param.get("schema", {})
            name = identifier(param["name"], taken)
            taken.add(name)
            default: str | None = None
            variadic = bool(param.get("x-variadic"))
            if not param.get("required") and not variadic:
                if isinstance(schema, Mapping) and "default" in schema:
                    default = self.types.default(schema["default"], schema)
                if default is None:
                    default = "OMITTED"
                    self.uses_omitted = True
            description = str(param.get("description") or "").strip()
            if not description and isinstance(schema, Mapping):
                description = str(schema.get("description") or "").strip()
            out.append(
                _Param(
                    name,
                    param["name"],
                    self.types.annotation(schema),
                    default,
                    variadic,
                    description or f"The ``{param['name']}`` param.",
                )
            )
        return out

    # -- one method ------------------------------------------------------------------------

    def method(self, method: Mapping[str, Any], py_name: str, *, blocking: bool) -> list[str]:
        params = self.params(method)
        structure = method.get("paramStructure", "either")
        extra = method.get("x-additional-params")
        result: Mapping[str, Any] = method.get("result") or {}
        schema = result.get("schema", {})
        returns = self.types.annotation(schema)
        if isinstance(schema, Mapping) and schema.get("type") == "null":
            returns = "None"
        signature = ["self"]
        for p in params:
            text = f"{'*' if p.variadic else ''}{p.name}: {p.annotation}"
            signature.append(text if p.default is None else f"{text} = {p.default}")
        extra_name = identifier("extra", {p.name for p in params} | {"self"})
        if extra is not None and structure == "by-name":
            signature.append(f"**{extra_name}: {self.types.annotation(extra)}")
        prefix = "def" if blocking else "async def"
        lines: list[str] = []
        if method.get("deprecated"):
            self.uses_deprecated = True
            lines.append(
                f"    @typing_extensions.deprecated({string(method['name'] + ' is deprecated')})"
            )
        lines += exploded(f"{prefix} {py_name}(", signature, f") -> {returns}:", 4)
        lines += self._docstring(method, params, result, extra is not None, extra_name)
        lines += self._body(method, params, structure, extra, extra_name, returns, blocking)
        return lines

    def _docstring(
        self,
        method: Mapping[str, Any],
        params: Sequence[_Param],
        result: Mapping[str, Any],
        has_extra: bool,
        extra_name: str,
    ) -> list[str]:
        summary = str(method.get("summary") or "").strip()
        description = str(method.get("description") or "").strip()
        first, _, rest = description.partition("\n\n")
        if not summary or " ".join(first.split()) == " ".join(summary.split()):
            summary = summary or first  # the description repeats the summary first
            description = rest.strip()
        summary = " ".join(summary.split()) or f"Call ``{method['name']}``."
        if summary[-1] not in ".?!":
            summary += "."
        paragraphs = [summary]
        if description:
            paragraphs.append(description)
        if method.get("deprecated"):
            paragraphs.append("Deprecated by the service.")
        entries = [f"    {'*' if p.variadic else ''}{p.name}: {p.description}" for p in params]
        if has_extra:
            entries.append(f"    **{extra_name}: Further params, by name.")
        if entries:
            paragraphs.append("Args:\n" + "\n".join(entries))
        if result and result.get("description"):
            paragraphs.append("Returns:\n    " + " ".join(str(result["description"]).split()))
        errors = [
            f"{e.get('code')} {e.get('message')}"
            for e in method.get("errors") or ()
            if isinstance(e, Mapping)
        ]
        if errors:
            paragraphs.append(
                "Raises:\n    CalledServiceError: The service answered an error: "
                + "; ".join(errors)
                + "."
            )
        return docstring(paragraphs, 8)

    def _body(
        self,
        method: Mapping[str, Any],
        params: Sequence[_Param],
        structure: Any,
        extra: Any,
        extra_name: str,
        returns: str,
        blocking: bool,
    ) -> list[str]:
        lines: list[str] = []
        if structure == "by-position":
            items = [f"*{p.name}" if p.variadic else p.name for p in params]
            # Python binds positions in order, so params left OMITTED are only trailing ones.
            lines += exploded("params: list[typing.Any] = [", items, "]", 8)
            if any(p.default == "OMITTED" for p in params):
                lines.append("        params = [p for p in params if p is not OMITTED]")
        else:
            items = [f"{string(p.wire)}: {p.name}" for p in params]
            if extra is not None and structure == "by-name":
                items.append(f"**{extra_name}")
            lines += exploded("params: dict[str, typing.Any] = {", items, "}", 8)
        call = [string(method["name"]), "params"]
        wait = "" if blocking else "await "
        if returns == "typing.Any":
            lines += exploded(f"return {wait}self._call(", call, ")", 8)
        elif returns == "None":
            lines += exploded(f"{wait}self._call(", call, ")", 8)
        else:
            lines += exploded(f"reply = {wait}self._call(", call, ")", 8)
            lines += exploded(f"result: {returns} = self._result(", [returns, "reply"], ")", 8)
            lines.append("        return result")
        return lines

    # -- the module ----------------------------------------------------------------------

    def client_class(self, *, blocking: bool) -> list[str]:
        name = self.blocking_name if blocking else self.async_name
        base = "BlockingTypedClient" if blocking else "TypedClient"
        kind = "Blocking client (for scripts and threads)" if blocking else "Async client"
        about = f"{kind} of the service ``{self.title}``"
        if self.version:
            about += f" {self.version}"
        about += "."
        paragraphs = [about]
        if self.description:
            paragraphs.append(self.description)
        lines = [f"class {name}({base}):", *docstring(paragraphs, 4)]
        if self.url:
            lines += ["", f"    default_url = {string(self.url)}"]
        for method, py_name in zip(self.methods, self.method_names, strict=True):
            lines.append("")
            lines += self.method(method, py_name, blocking=blocking)
        return lines

    def module(self) -> str:
        classes = [self.client_class(blocking=False), self.client_class(blocking=True)]
        definitions = self.types.definitions()
        head = [f"Typed clients of the service ``{self.title}``"]
        if self.version:
            head[0] += f" {self.version}"
        head[0] += "."
        head.append(
            "Written by ``gemstone client`` from the service's ``rpc.discover`` document: "
            "write it again when the service changes rather than editing it."
        )
        out = [*docstring(head, 0), "", "from __future__ import annotations", ""]
        stdlib = sorted(self.types.modules | {"typing"})
        out += [f"import {module}" for module in stdlib]
        out += ["", "import pydantic"] if self._needs_pydantic(definitions) else [""]
        if self.uses_deprecated:
            out.append("import typing_extensions")
        names = (["OMITTED"] if self.uses_omitted else []) + ["BlockingTypedClient", "TypedClient"]
        out.append(f"from gemstone_aio.client import {', '.join(names)}")
        for block in [*definitions, *("\n".join(c) for c in classes)]:
            out += ["", "", block]
        return "\n".join(out) + "\n"

    def _needs_pydantic(self, definitions: Sequence[str]) -> bool:
        return any("pydantic." in block for block in definitions)


def generate_client(
    document: Mapping[str, Any], *, class_name: str | None = None, url: str | None = None
) -> str:
    """Write the Python source of a typed client module for a service.

    Args:
        document: The service's OpenRPC document (what ``rpc.discover`` returns).
        class_name: The async client's class name (default: the service's name in
            CamelCase plus ``Client``); the blocking one adds ``Blocking``.
        url: The clients' default URL (default: the document's first server).

    Returns:
        The module's source: models for the shared schemas, the async client class and
        its blocking twin.
    """
    return _Writer(document, class_name, url).module()
