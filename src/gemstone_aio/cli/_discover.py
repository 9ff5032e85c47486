"""``gemstone describe``: list a service's methods, params, types and docs.

The description comes from ``rpc.discover`` (an OpenRPC document); services that do not
answer it but answer the 0.10 ``get_service_specs`` get a names-and-docs listing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer

from ._client import ClientOptions, check_url, parse_headers, run_client
from ._output import ExitCode, dumps, fail, stdout
from ._params import resolve_schema

__all__ = ["describe", "fetch_openrpc", "schema_text"]


async def fetch_openrpc(svc: Any) -> dict[str, Any] | None:
    """The service's OpenRPC document, or ``None`` when it does not answer ``rpc.discover``."""
    from ..errors import CalledServiceError

    try:
        document = await svc.request("rpc.discover")
    except CalledServiceError:
        return None
    return document if isinstance(document, dict) else None


def schema_text(schema: Any, document: Mapping[str, Any], depth: int = 0) -> str:
    """A short human reading of a JSON schema: ``integer``, ``array[string]``, ``A | null``."""
    if not isinstance(schema, Mapping) or depth > 5:
        return "any"
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return name or "any"
    schema = resolve_schema(schema, document)
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return " | ".join(schema_text(s, document, depth + 1) for s in schema[key])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    if kind == "array":
        items = schema.get("items")
        return f"array[{schema_text(items, document, depth + 1)}]" if items else "array"
    if kind == "object" and isinstance(schema.get("additionalProperties"), Mapping):
        return f"object[{schema_text(schema['additionalProperties'], document, depth + 1)}]"
    if "enum" in schema:
        return " | ".join(dumps(v) for v in schema["enum"])
    return str(kind) if kind else "any"


def _signature(method: Mapping[str, Any], document: Mapping[str, Any]) -> str:
    parts = []
    for param in method.get("params") or ():
        if not isinstance(param, Mapping):
            continue
        text = f"{param.get('name')}: {schema_text(param.get('schema'), document)}"
        if param.get("x-variadic"):
            text = f"*{text}"
        elif not param.get("required"):
            text = f"{text} = …"
        parts.append(text)
    result = method.get("result")
    returns = schema_text(result.get("schema"), document) if isinstance(result, Mapping) else "any"
    return f"{method.get('name')}({', '.join(parts)}) -> {returns}"


def _print_methods(title: str, rows: list[tuple[str, str]]) -> None:
    from rich.text import Text

    console = stdout()
    console.print(Text(title, style="bold"))
    for signature, doc in rows:
        console.print()
        console.print(Text(signature, style="cyan"))
        for line in doc.strip().splitlines():
            console.print(Text("    " + line))


def _print_openrpc(document: Mapping[str, Any], url: str) -> None:
    info = document.get("info")
    if not isinstance(info, Mapping):
        info = {}
    title = f"{info.get('title', '?')} {info.get('version', '')}".strip()
    rows = []
    for method in document.get("methods") or ():
        if not isinstance(method, Mapping):
            continue
        # The description is the whole docstring text; the summary its first line.
        doc = str(method.get("description") or method.get("summary") or "")
        if method.get("deprecated"):
            doc = f"(deprecated) {doc}"
        rows.append((_signature(method, document), doc))
    _print_methods(f"{title} — {url}", rows)


def _print_specs(specs: Mapping[str, Any], url: str) -> None:
    methods = specs.get("methods") or {}
    rows = []
    if isinstance(methods, Mapping):
        rows = [(str(name), str(doc or "")) for name, doc in sorted(methods.items())]
    _print_methods(f"{specs.get('name', '?')} — {url} (from get_service_specs)", rows)


def describe(
    url: Annotated[str, typer.Argument(help="The service's JSON-RPC endpoint URL.")],
    token: Annotated[
        str | None,
        typer.Option("--token", help="API token (to see private methods).", show_default=False),
    ] = None,
    token_header: Annotated[
        str, typer.Option("--token-header", help="The header of --token.")
    ] = "X-Api-Token",
    header: Annotated[
        list[str] | None,
        typer.Option("--header", "-H", help="Extra header 'Name: value'.", show_default=False),
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait.")] = 30.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the raw description as JSON.")
    ] = False,
) -> None:
    """List the methods of the service at URL with their params, types and docs.

    Example:
        gemstone describe http://127.0.0.1:8000/api
    """
    check_url(url)
    options = ClientOptions(timeout, token, token_header, parse_headers(header or []))

    async def run() -> ExitCode:
        from ..errors import CalledServiceError

        async with options.client(url) as svc:
            document = await fetch_openrpc(svc)
            specs: Any = None
            if document is None:
                try:
                    specs = await svc.request("get_service_specs")
                except CalledServiceError as exc:
                    fail(
                        f"{url} answers neither rpc.discover nor get_service_specs "
                        f"({exc.code}: {exc.message})",
                        ExitCode.RPC_ERROR,
                    )
        if as_json:
            typer.echo(dumps(document if document is not None else specs, indent=2))
        elif document is not None:
            _print_openrpc(document, url)
        elif isinstance(specs, Mapping):
            _print_specs(specs, url)
        else:
            fail(f"{url} answered get_service_specs with {dumps(specs)}", ExitCode.UNREACHABLE)
        return ExitCode.OK

    run_client(run())
