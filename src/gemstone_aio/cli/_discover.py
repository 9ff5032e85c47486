"""``gemstone describe``: list a service's methods, params, types and docs.

The description comes from ``rpc.discover`` (an OpenRPC document); services that do not
answer it but answer the 0.10 ``get_service_specs`` get a names-and-docs listing.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from typing import Annotated, Any, Final

import typer

from ._client import check_url, run_client
from ._describe_events import fetch_asyncapi, print_events
from ._options import (
    BearerOpt,
    CaCertsOpt,
    CertfileOpt,
    HeaderOpt,
    KeyfileOpt,
    NoVerifyOpt,
    TimeoutOpt,
    TokenHeaderOpt,
    TokenOpt,
    client_options,
)
from ._output import ExitCode, dumps, fail, stdout
from ._params import resolve_schema

__all__ = [
    "builtin_methods",
    "describe",
    "fetch_openrpc",
    "method_signature",
    "plain_text",
    "schema_text",
]

# Inline reStructuredText a docstring may hold: :role:`target`, :role:`text <target>`,
# :role:`~a.b.Name` (shown as Name), ``code`` and `code`.
_ROLE: Final = re.compile(r":[\w.+-]+(?::[\w.+-]+)*:`([^`]+)`")
_LITERAL: Final = re.compile(r"``(.+?)``|`([^`]+)`")
_TITLED: Final = re.compile(r"^(.*?)\s*<[^<>]+>$")


def _role_text(match: re.Match[str]) -> str:
    content = match.group(1)
    titled = _TITLED.match(content)
    if titled and titled.group(1):
        return titled.group(1)
    if content.startswith("~"):
        return content[1:].rsplit(".", 1)[-1]
    return content


def plain_text(doc: str) -> str:
    """A docstring as it reads in a terminal, without inline markup (roles, literals)."""
    text = _ROLE.sub(_role_text, doc)
    return _LITERAL.sub(lambda m: m.group(1) or m.group(2), text)


def _framework_summaries() -> dict[str, str]:
    """The summary of each built-in method a service may also define itself."""
    from ..observability._statistics import STATISTICS_METHOD, CallStatistics
    from ..selfdescription._docstrings import parse_docstring
    from ..server._selfdescription import SPECS_METHOD, SelfDescription

    found = {
        SPECS_METHOD: SelfDescription.get_service_specs,
        STATISTICS_METHOD: CallStatistics.statistics,
    }
    return {name: parse_docstring(inspect.getdoc(func)).summary for name, func in found.items()}


def builtin_methods(document: Mapping[str, Any]) -> set[str]:
    """The names of the framework's methods in an OpenRPC document.

    ``rpc.*`` always; ``get_service_specs`` and ``statistics`` when they are the
    framework's (a service may define methods of those names itself).
    """
    summaries = _framework_summaries()
    found: set[str] = set()
    for method in document.get("methods") or ():
        if not isinstance(method, Mapping):
            continue
        name = str(method.get("name"))
        if name.startswith("rpc.") or (
            name in summaries and summaries[name] == method.get("summary")
        ):
            found.add(name)
    return found


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


def method_signature(method: Mapping[str, Any], document: Mapping[str, Any]) -> str:
    """``name(a: integer, b: string = "x") -> boolean`` from an OpenRPC method object."""
    parts = []
    for param in method.get("params") or ():
        if not isinstance(param, Mapping):
            continue
        schema = param.get("schema")
        text = f"{param.get('name')}: {schema_text(schema, document)}"
        if param.get("x-variadic"):
            text = f"*{text}"
        elif not param.get("required"):
            default = (
                dumps(schema["default"])
                if isinstance(schema, Mapping) and "default" in schema
                else "…"
            )
            text = f"{text} = {default}"
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


def _print_openrpc(document: Mapping[str, Any], url: str, show_all: bool) -> None:
    info = document.get("info")
    if not isinstance(info, Mapping):
        info = {}
    title = f"{info.get('title', '?')} {info.get('version', '')}".strip()
    hidden = set() if show_all else builtin_methods(document)
    rows = []
    for method in document.get("methods") or ():
        if not isinstance(method, Mapping) or method.get("name") in hidden:
            continue
        # The description is the whole docstring text; the summary its first line.
        doc = plain_text(str(method.get("description") or method.get("summary") or ""))
        if method.get("deprecated"):
            doc = f"(deprecated) {doc}"
        rows.append((method_signature(method, document), doc))
    _print_methods(f"{title} — {url}", rows)
    if hidden:
        stdout().print()
        stdout().print(
            f"(built-in methods not shown: {', '.join(sorted(hidden))}; --all shows them)",
            markup=False,
        )


def _print_specs(specs: Mapping[str, Any], url: str) -> None:
    methods = specs.get("methods") or {}
    rows = []
    if isinstance(methods, Mapping):
        rows = [(str(name), plain_text(str(doc or ""))) for name, doc in sorted(methods.items())]
    _print_methods(f"{specs.get('name', '?')} — {url} (from get_service_specs)", rows)


def describe(
    url: Annotated[str, typer.Argument(help="The service's JSON-RPC endpoint URL.")],
    token: TokenOpt = None,
    token_header: TokenHeaderOpt = "X-Api-Token",
    header: HeaderOpt = None,
    bearer: BearerOpt = None,
    timeout: TimeoutOpt = 30.0,
    ssl_ca_certs: CaCertsOpt = None,
    ssl_certfile: CertfileOpt = None,
    ssl_keyfile: KeyfileOpt = None,
    no_ssl_verify: NoVerifyOpt = False,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also list the framework's methods (rpc.discover, ...).")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the raw description as JSON.")
    ] = False,
) -> None:
    """List the methods of the service at URL with their params, defaults, types and docs.

    Example:
        gemstone describe http://127.0.0.1:8000/api
    """
    check_url(url)
    options = client_options(
        token,
        token_header,
        header,
        bearer,
        timeout,
        ssl_ca_certs=ssl_ca_certs,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        no_ssl_verify=no_ssl_verify,
    )

    async def run() -> ExitCode:
        from ..errors import CalledServiceError

        async with options.client(url) as svc:
            document = await fetch_openrpc(svc)
            events = None if document is None else await fetch_asyncapi(svc, url, document)
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
            _print_openrpc(document, url, show_all)
            if events is not None:
                print_events(events)
        elif isinstance(specs, Mapping):
            _print_specs(specs, url)
        else:
            fail(f"{url} answered get_service_specs with {dumps(specs)}", ExitCode.UNREACHABLE)
        return ExitCode.OK

    run_client(run())
