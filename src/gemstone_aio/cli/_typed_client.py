"""``gemstone client``: write a typed Python client module for the service at a URL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._client import check_url, run_client
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
from ._output import ExitCode, fail

__all__ = ["client"]


def _without_credentials(url: str) -> str:
    # The URL becomes the client's default: no user or password in a generated file.
    from yarl import URL

    return str(URL(url).with_user(None))


def client(
    url: Annotated[str, typer.Argument(help="The service's JSON-RPC endpoint URL.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the module here (default: stdout).", show_default=False
        ),
    ] = None,
    class_name: Annotated[
        str | None,
        typer.Option(
            "--class-name",
            help="The async client's class name (default: the service's name + Client).",
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
) -> None:
    """Write a typed Python client of the service at URL, from its rpc.discover document.

    The module has pydantic models for the service's schemas, an async client class with
    one typed method per method, and its blocking twin. With --token, private methods
    are included.

    Example:
        gemstone client http://127.0.0.1:8000/api --output orders_client.py
    """
    check_url(url)
    if class_name is not None and not class_name.isidentifier():
        fail(f"--class-name {class_name!r} is not a Python identifier", ExitCode.USAGE)
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
        from ..client import generate_client

        async with options.client(url) as svc:
            document = await svc.request("rpc.discover")
        if not isinstance(document, dict) or not isinstance(document.get("methods"), list):
            fail(f"{url} answered rpc.discover with no OpenRPC document", ExitCode.UNREACHABLE)
        source = generate_client(document, class_name=class_name, url=_without_credentials(url))
        if output is None:
            typer.echo(source, nl=False)
        else:
            try:
                output.write_text(source, encoding="utf-8")
            except OSError as exc:
                fail(f"cannot write {output}: {exc.strerror or exc}", ExitCode.USAGE)
            typer.echo(f"wrote {output}", err=True)
        return ExitCode.OK

    run_client(run())
