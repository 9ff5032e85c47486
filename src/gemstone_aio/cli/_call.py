"""``gemstone call`` and ``gemstone call_raw``: call a method and print its result."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from ._client import ClientOptions, check_url, parse_headers, run_client
from ._discover import fetch_openrpc
from ._output import ExitCode, dumps, fail, stdout
from ._params import Params, ParamsError, coerce, parse_params

__all__ = ["call", "call_raw"]

ParamsArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="key=value (a string), key:=JSON (a typed value), or bare JSON values by position.",
        show_default=False,
    ),
]
TokenOpt = Annotated[
    str | None, typer.Option("--token", help="API token for private methods.", show_default=False)
]
TokenHeaderOpt = Annotated[
    str, typer.Option("--token-header", help="The header that carries --token.")
]
HeaderOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--header",
        "-H",
        help="An extra HTTP header 'Name: value' (repeatable).",
        show_default=False,
    ),
]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds to wait for each answer.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print only the result, as JSON, on stdout.")]
NoDiscoverOpt = Annotated[
    bool,
    typer.Option(
        "--no-discover",
        help="Send key=value strings as they are, without asking rpc.discover for types.",
    ),
]


def _options(
    token: str | None, token_header: str, header: list[str] | None, timeout: float
) -> ClientOptions:
    if timeout <= 0:
        fail(f"--timeout must be positive, got {timeout}", ExitCode.USAGE)
    return ClientOptions(timeout, token, token_header, parse_headers(header or []))


def _parse(items: list[str] | None) -> Params:
    try:
        return parse_params(items or [])
    except ParamsError as exc:
        fail(str(exc), ExitCode.USAGE)


async def _typed(svc: Any, params: Params, method: str, discover: bool) -> Params:
    """Convert loose strings to declared types when the service describes itself."""
    if not discover or not params.loose:
        return params
    document = await fetch_openrpc(svc)
    return coerce(params, document, method) if document is not None else params


def _print_result(result: Any, as_json: bool, lines: list[str]) -> None:
    if as_json:
        typer.echo(dumps(result))
        return
    from rich.json import JSON

    console = stdout()
    for line in lines:
        console.print(line, markup=False)
    console.print("[!] Result:", markup=False)
    console.print()
    console.print(JSON(dumps(result)))


async def _locate(registry: str, name: str, options: ClientOptions) -> tuple[list[str], float]:
    started = time.perf_counter()
    async with options.client(registry) as reg:
        urls = await reg.request("locate_service", {"name": name})
    elapsed = time.perf_counter() - started
    if urls is None:
        urls = []
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        fail(
            f"registry {registry} answered locate_service with {dumps(urls)}, not a list of URLs",
            ExitCode.UNREACHABLE,
        )
    return urls, elapsed


def call(
    name: Annotated[str, typer.Argument(help="The service name; a glob (* and ?) is fine.")],
    method: Annotated[str, typer.Argument(help="The method to call.")],
    params: ParamsArg = None,
    registry: Annotated[
        str | None,
        typer.Option(
            "--registry",
            "-r",
            envvar="GEMSTONE_REGISTRY",
            help="URL of the service registry (or $GEMSTONE_REGISTRY).",
            show_default=False,
        ),
    ] = None,
    token: TokenOpt = None,
    token_header: TokenHeaderOpt = "X-Api-Token",
    header: HeaderOpt = None,
    timeout: TimeoutOpt = 30.0,
    as_json: JsonOpt = False,
    no_discover: NoDiscoverOpt = False,
) -> None:
    """Find a service through the registry and call one of its methods.

    Prints how long finding the service took, its name and URL, how long the call took,
    and the result.

    Example:
        gemstone call --registry http://127.0.0.1:5000/api 'hello.*' say_hello name=world
    """
    if registry is None:
        fail("no registry: pass --registry URL or set GEMSTONE_REGISTRY", ExitCode.USAGE)
    check_url(registry, "--registry")
    options = _options(token, token_header, header, timeout)
    parsed = _parse(params)

    async def run() -> ExitCode:
        urls, located = await _locate(registry, name, options)
        if not urls:
            fail(f"registry {registry} knows no live service matching {name!r}", ExitCode.NOT_FOUND)
        from ..errors import GemstoneTransportError

        last: GemstoneTransportError | None = None
        for url in urls:  # the first instance that answers wins
            async with options.client(url) as svc:
                try:
                    typed = await _typed(svc, parsed, method, not no_discover)
                    started = time.perf_counter()
                    result = await svc.request(method, typed.value)
                except GemstoneTransportError as exc:
                    last = exc
                    continue
                elapsed = time.perf_counter() - started
            _print_result(
                result,
                as_json,
                [
                    f"[!] Service identification: {located:.5f} seconds",
                    f"[!] Service name: {name}",
                    f"[!] Service URL : {url}",
                    f"[!] Method call: {elapsed:.5f} seconds",
                ],
            )
            return ExitCode.OK
        assert last is not None
        raise last

    run_client(run())


def call_raw(
    url: Annotated[str, typer.Argument(help="The service's JSON-RPC endpoint URL.")],
    method: Annotated[str, typer.Argument(help="The method to call.")],
    params: ParamsArg = None,
    token: TokenOpt = None,
    token_header: TokenHeaderOpt = "X-Api-Token",
    header: HeaderOpt = None,
    timeout: TimeoutOpt = 30.0,
    as_json: JsonOpt = False,
    no_discover: NoDiscoverOpt = False,
) -> None:
    """Call a method of the service at URL (no registry).

    Example:
        gemstone call_raw http://127.0.0.1:8000/api subtract minuend:=42 subtrahend:=23
    """
    check_url(url)
    options = _options(token, token_header, header, timeout)
    parsed = _parse(params)

    async def run() -> ExitCode:
        async with options.client(url) as svc:
            typed = await _typed(svc, parsed, method, not no_discover)
            started = time.perf_counter()
            result = await svc.request(method, typed.value)
            elapsed = time.perf_counter() - started
        _print_result(result, as_json, [f"[!] Method call: {elapsed:.5f} seconds"])
        return ExitCode.OK

    run_client(run())
