"""``gemstone call`` and ``gemstone call-raw``: call a method and print its result."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from ._client import ClientOptions, check_url, run_client
from ._discover import fetch_openrpc
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
from ._output import ExitCode, dumps, fail, stderr, stdout
from ._params import Params, ParamsError, coerce, parse_params

__all__ = ["call", "call_raw"]

ParamsArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="key=value (a string), key:=JSON (a typed value), or bare JSON values by position.",
        show_default=False,
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print only the result, as one line of JSON.")
]
NoDiscoverOpt = Annotated[
    bool,
    typer.Option(
        "--no-discover",
        help="Send key=value strings as they are, without asking rpc.discover for types.",
    ),
]


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
    """The result on stdout (alone, so it pipes cleanly); what led to it on stderr."""
    if as_json:
        typer.echo(dumps(result))
        return
    from rich.json import JSON

    notes = stderr()
    for line in lines:
        notes.print(line, markup=False)
    stdout().print(JSON(dumps(result)))


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


def _is_glob(name: str) -> bool:
    return any(c in name for c in "*?[")


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
    bearer: BearerOpt = None,
    timeout: TimeoutOpt = 30.0,
    ssl_ca_certs: CaCertsOpt = None,
    ssl_certfile: CertfileOpt = None,
    ssl_keyfile: KeyfileOpt = None,
    no_ssl_verify: NoVerifyOpt = False,
    as_json: JsonOpt = False,
    no_discover: NoDiscoverOpt = False,
) -> None:
    """Find a service through the registry and call one of its methods.

    The result goes to stdout; how long finding the service and the call took, and the
    service's name and URL, go to stderr. With a glob, the first service found that has
    the method answers.

    Example:
        gemstone call --registry http://127.0.0.1:5000/api 'hello.*' say_hello name=world
    """
    if registry is None:
        fail("no registry: pass --registry URL or set GEMSTONE_REGISTRY", ExitCode.USAGE)
    check_url(registry, "--registry")
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
    parsed = _parse(params)
    glob = _is_glob(name)

    async def run() -> ExitCode:
        urls, located = await _locate(registry, name, options)
        if not urls:
            fail(f"registry {registry} knows no live service matching {name!r}", ExitCode.NOT_FOUND)
        from ..errors import CalledServiceError, GemstoneTransportError

        last: GemstoneTransportError | CalledServiceError | None = None
        lacking: list[str] = []
        for index, url in enumerate(urls):  # the first instance that answers wins
            more = index < len(urls) - 1
            async with options.client(url) as svc:
                try:
                    typed = await _typed(svc, parsed, method, not no_discover)
                    started = time.perf_counter()
                    result = await svc.request(method, typed.value)
                except GemstoneTransportError as exc:
                    last = exc
                    continue
                except CalledServiceError as exc:
                    # A glob matches several services: one without the method is skipped.
                    if glob and exc.code == -32601:
                        last = exc
                        lacking.append(url)
                        if more:
                            continue
                        break
                    raise
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
        if lacking and len(lacking) == len(urls):
            fail(
                f"no service matching {name!r} has a method {method!r} "
                f"(asked {len(urls)}: {', '.join(urls)})",
                ExitCode.NOT_FOUND,
            )
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
    bearer: BearerOpt = None,
    timeout: TimeoutOpt = 30.0,
    ssl_ca_certs: CaCertsOpt = None,
    ssl_certfile: CertfileOpt = None,
    ssl_keyfile: KeyfileOpt = None,
    no_ssl_verify: NoVerifyOpt = False,
    as_json: JsonOpt = False,
    no_discover: NoDiscoverOpt = False,
) -> None:
    """Call a method of the service at URL (no registry).

    The result goes to stdout, the time the call took to stderr. (``call_raw``, the
    gemstone 0.10 spelling, still works.)

    Example:
        gemstone call-raw http://127.0.0.1:8000/api subtract minuend:=42 subtrahend:=23
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
