"""The options commands share: credentials, headers, timeout, TLS (client and server side)."""

from __future__ import annotations

from typing import Annotated

import typer

from ._client import ClientOptions, parse_headers
from ._output import ExitCode, fail

__all__ = [
    "BearerOpt",
    "CaCertsOpt",
    "CertfileOpt",
    "HeaderOpt",
    "KeyfileOpt",
    "NoVerifyOpt",
    "ServeCaCertsOpt",
    "ServeCertReqsOpt",
    "ServeCertfileOpt",
    "ServeKeyfileOpt",
    "ServeKeyfilePasswordOpt",
    "TimeoutOpt",
    "TokenHeaderOpt",
    "TokenOpt",
    "client_options",
    "serve_tls_args",
]

TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="API token for private methods (sent in --token-header).",
        show_default=False,
    ),
]
TokenHeaderOpt = Annotated[
    str, typer.Option("--token-header", help="The header that carries --token.")
]
BearerOpt = Annotated[
    str | None,
    typer.Option(
        "--bearer",
        help="Send 'Authorization: Bearer TOKEN' (services using a bearer strategy).",
        show_default=False,
    ),
]
HeaderOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--header",
        "-H",
        help="An extra HTTP header NAME:VALUE (repeatable).",
        show_default=False,
    ),
]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds to wait for each answer.")]

# Calling a service over HTTPS.
CaCertsOpt = Annotated[
    str | None,
    typer.Option(
        "--ssl-ca-certs",
        envvar="GEMSTONE_SSL_CA_CERTS",
        help="CA bundle (PEM) that https:// services and registries are verified against, "
        "instead of the system store (or $GEMSTONE_SSL_CA_CERTS).",
        show_default=False,
    ),
]
CertfileOpt = Annotated[
    str | None,
    typer.Option(
        "--ssl-certfile",
        envvar="GEMSTONE_SSL_CERTFILE",
        help="Client certificate (PEM) for services that ask for one, mutual TLS "
        "(or $GEMSTONE_SSL_CERTFILE).",
        show_default=False,
    ),
]
KeyfileOpt = Annotated[
    str | None,
    typer.Option(
        "--ssl-keyfile",
        envvar="GEMSTONE_SSL_KEYFILE",
        help="The client certificate's private key (or $GEMSTONE_SSL_KEYFILE).",
        show_default=False,
    ),
]
NoVerifyOpt = Annotated[
    bool,
    typer.Option(
        "--no-ssl-verify",
        help="Accept any server certificate (insecure: anyone on the way can read and "
        "change the calls).",
    ),
]

# Serving HTTPS (gemstone run, gemstone registry): the service's ssl_* settings.
ServeCertfileOpt = Annotated[
    str | None,
    typer.Option(
        "--ssl-certfile",
        help="Serve HTTPS with this certificate chain (PEM).",
        show_default=False,
    ),
]
ServeKeyfileOpt = Annotated[
    str | None,
    typer.Option(
        "--ssl-keyfile",
        help="The certificate's private key (PEM; refused if other users can read it).",
        show_default=False,
    ),
]
ServeKeyfilePasswordOpt = Annotated[
    str | None,
    typer.Option(
        "--ssl-keyfile-password",
        help="The password of an encrypted --ssl-keyfile.",
        show_default=False,
    ),
]
ServeCaCertsOpt = Annotated[
    str | None,
    typer.Option(
        "--ssl-ca-certs",
        help="CA bundle (PEM) client certificates are verified against (mutual TLS).",
        show_default=False,
    ),
]
ServeCertReqsOpt = Annotated[
    str | None,
    typer.Option(
        "--ssl-cert-reqs",
        help="Client certificates: none, optional or required "
        "[default: required with --ssl-ca-certs, else none].",
        show_default=False,
    ),
]

_TLS_NAMES = {
    "ssl_ca_certs": "--ssl-ca-certs",
    "ssl_certfile": "--ssl-certfile",
    "ssl_keyfile": "--ssl-keyfile",
}


def serve_tls_args(
    certfile: str | None,
    keyfile: str | None,
    keyfile_password: str | None,
    ca_certs: str | None,
    cert_reqs: str | None,
) -> list[str]:
    """The ``--ssl-*`` options given, as arguments for the service's configuration."""
    given = {
        "--ssl-certfile": certfile,
        "--ssl-keyfile": keyfile,
        "--ssl-keyfile-password": keyfile_password,
        "--ssl-ca-certs": ca_certs,
        "--ssl-cert-reqs": cert_reqs,
    }
    return [part for flag, value in given.items() if value is not None for part in (flag, value)]


def client_options(
    token: str | None,
    token_header: str,
    header: list[str] | None,
    bearer: str | None,
    timeout: float,
    *,
    ssl_ca_certs: str | None = None,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    no_ssl_verify: bool = False,
) -> ClientOptions:
    """Check the shared options and turn them into :class:`ClientOptions`.

    A TLS file that cannot be used is a usage error naming the option and the file.
    """
    if timeout <= 0:
        fail(f"--timeout must be positive, got {timeout}", ExitCode.USAGE)
    headers = parse_headers(header or [])
    if bearer is not None:
        if not bearer.strip():
            fail("--bearer needs a token", ExitCode.USAGE)
        headers["Authorization"] = f"Bearer {bearer.strip()}"
    ssl_context = None
    if ssl_ca_certs or ssl_certfile or ssl_keyfile or no_ssl_verify:
        from ..errors import ServiceConfigurationError
        from ..tls import client_context

        try:
            ssl_context = client_context(
                ssl_ca_certs, ssl_certfile, ssl_keyfile, verify=not no_ssl_verify
            )
        except ServiceConfigurationError as exc:
            message = str(exc)
            for setting, option in _TLS_NAMES.items():
                message = message.replace(setting, option)
            fail(message, ExitCode.USAGE)
    return ClientOptions(timeout, token, token_header, headers, ssl_context)
