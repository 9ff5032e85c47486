"""``gemstone registry``: run the reference service registry (``gemstone_aio.registry``)."""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from ._options import (
    ServeCaCertsOpt,
    ServeCertfileOpt,
    ServeCertReqsOpt,
    ServeKeyfileOpt,
    ServeKeyfilePasswordOpt,
    serve_tls_args,
)
from ._output import ExitCode, fail

__all__ = ["registry"]


def registry(
    host: Annotated[
        str | None,
        typer.Option(
            "--host", help="Address to listen on [default: 127.0.0.1].", show_default=False
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port", help="TCP port; 0 picks a free one [default: 5000].", show_default=False
        ),
    ] = None,
    expiry: Annotated[
        float | None,
        typer.Option(
            "--expiry",
            "--expire-after",
            help="Seconds after its last ping that an instance is forgotten [default: 90].",
            show_default=False,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="GEMSTONE_REGISTRY_TOKEN",
            help="Require this API token (X-Api-Token) on ping and unregister "
            "(or $GEMSTONE_REGISTRY_TOKEN).",
            show_default=False,
        ),
    ] = None,
    lookups_require_token: Annotated[
        bool,
        typer.Option(
            "--lookups-require-token",
            help="Require the token for locate_service, lookup and list_services too.",
        ),
    ] = False,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Serve without a token on an address other than loopback (development only).",
        ),
    ] = False,
    allowed_networks: Annotated[
        str | None,
        typer.Option(
            "--allowed-networks",
            help="Comma-separated networks an announced URL's host must be in (10.0.0.0/8).",
            show_default=False,
        ),
    ] = None,
    warmup: Annotated[
        float | None,
        typer.Option(
            "--warmup",
            help="Seconds after start during which lookups are marked incomplete "
            "[default: a third of --expiry].",
            show_default=False,
        ),
    ] = None,
    ssl_certfile: ServeCertfileOpt = None,
    ssl_keyfile: ServeKeyfileOpt = None,
    ssl_keyfile_password: ServeKeyfilePasswordOpt = None,
    ssl_ca_certs: ServeCaCertsOpt = None,
    ssl_cert_reqs: ServeCertReqsOpt = None,
    ssl_allowed_clients: Annotated[
        str | None,
        typer.Option(
            "--ssl-allowed-clients",
            help="Comma-separated client certificate names that may ping and unregister.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the reference service registry until Ctrl-C or SIGTERM.

    Services ping it (service_registry_urls) and find each other through it. Without
    --token it serves on loopback only (unless --insecure, or client certificates are
    required: --ssl-ca-certs); with it, ping and unregister need the token, and lookups
    too with --lookups-require-token. With --ssl-certfile it serves HTTPS.

    Example (shell):

        gemstone registry --host 127.0.0.1 --port 5000 --expiry 90
    """
    from ._run import serve_target

    try:
        importlib.import_module("gemstone_aio.registry")
    except ImportError:
        fail(
            "the reference registry (gemstone_aio.registry) is not part of this installation",
            ExitCode.USAGE,
        )
    if expiry is not None and not expiry > 0:
        fail(f"--expiry must be a positive number of seconds, got {expiry}", ExitCode.USAGE)
    if warmup is not None and warmup < 0:
        fail(f"--warmup must be zero or a positive number of seconds, got {warmup}", ExitCode.USAGE)
    settings = [
        *(["--expire-after", repr(expiry)] if expiry is not None else []),
        *(["--token", token] if token else []),
        *(["--lookups-require-token"] if lookups_require_token else []),
        *(["--insecure"] if insecure else []),
        *(["--allowed-networks", allowed_networks] if allowed_networks else []),
        *(["--warmup", repr(warmup)] if warmup is not None else []),
        *serve_tls_args(
            ssl_certfile, ssl_keyfile, ssl_keyfile_password, ssl_ca_certs, ssl_cert_reqs
        ),
        *(["--ssl-allowed-clients", ssl_allowed_clients] if ssl_allowed_clients else []),
    ]
    serve_target("gemstone_aio.registry", host, port, settings)
