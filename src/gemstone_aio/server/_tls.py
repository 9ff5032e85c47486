"""A service's TLS: its server context (checked at start-up), its reload, its client context.

``serve()`` builds the server context from the ``ssl_*`` settings before anything else
starts, so a bad file stops start-up with one line naming the setting and the file, and
reloads it on SIGHUP (certificate rotation). The heartbeat and ``get_service`` call
other services with the context of the ``client_ssl_*`` settings, reloaded on SIGHUP too.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

from ..errors import ServiceConfigurationError
from ..tls import check_client_files, client_context, reload_server_context, server_context

if TYPE_CHECKING:
    from ._microservice import MicroService

__all__ = ["client_ssl_context", "reload_ssl_context", "reloads_tls", "server_ssl_context"]

_NEED_CERTFILE = ("ssl_keyfile", "ssl_keyfile_password", "ssl_ca_certs", "ssl_cert_reqs")


def server_ssl_context(service: MicroService) -> ssl.SSLContext | None:
    """The TLS context the service listens with, or ``None`` for plain HTTP.

    Raises:
        ServiceConfigurationError: A file is missing or unfit (a private key other
            users can read, a key that is not the certificate's, ...), a TLS setting is
            given without ``ssl_certfile``, or ``ssl_allowed_clients`` is set while
            client certificates are not verified.
    """
    certfile = service.ssl_certfile
    if not certfile:
        given = [name for name in _NEED_CERTFILE if getattr(service, name, None) is not None]
        if service.ssl_allowed_clients:
            given.append("ssl_allowed_clients")
        if given:
            raise ServiceConfigurationError(
                f"{', '.join(given)} set without ssl_certfile: the service serves plain "
                "HTTP until it has a certificate"
            )
        return None
    context = server_context(
        certfile,
        service.ssl_keyfile,
        password=service.ssl_keyfile_password,
        ca_certs=service.ssl_ca_certs,
        cert_reqs=service.ssl_cert_reqs,
    )
    if service.ssl_allowed_clients and context.verify_mode == ssl.CERT_NONE:
        raise ServiceConfigurationError(
            "ssl_allowed_clients needs client certificates verified: set ssl_ca_certs "
            "(with ssl_cert_reqs unset, 'optional' or 'required')"
        )
    return context


def reloads_tls(service: MicroService) -> bool:
    """Whether SIGHUP reloads TLS files (the service serves TLS or has a client certificate)."""
    return bool(service.ssl_certfile or service.client_ssl_certfile)


def reload_ssl_context(service: MicroService, context: ssl.SSLContext | None) -> bool:
    """Load the service's TLS files again (certificate rotation, on SIGHUP).

    The server's certificate, key and CA bundle go into its live ``context``; the client
    certificate (``client_ssl_*``) into the context the heartbeat and ``get_service``
    use. A file that cannot be loaded is logged (ERROR) and the previous certificate
    stays. Returns whether everything was loaded.
    """
    loaded = _reload_client(service)
    if context is None:
        return loaded
    try:
        reload_server_context(
            context,
            service.ssl_certfile,
            service.ssl_keyfile,
            password=service.ssl_keyfile_password,
            ca_certs=service.ssl_ca_certs,
            cert_reqs=service.ssl_cert_reqs,
        )
    except ServiceConfigurationError as exc:
        service.logger.error(
            "%s: TLS files not reloaded, still serving the previous certificate: %s",
            service.name,
            exc,
        )
        return False
    service.logger.info("%s: TLS certificate reloaded from %s", service.name, service.ssl_certfile)
    return loaded


def _reload_client(service: MicroService) -> bool:
    discovery = service._discovery
    context = None if discovery is None else discovery.ssl_context
    certfile = service.client_ssl_certfile
    if context is None or not certfile:
        return True
    try:
        check_client_files(
            service.client_ssl_ca_certs, certfile, service.client_ssl_keyfile, prefix="client_ssl_"
        )
        context.load_cert_chain(certfile, service.client_ssl_keyfile or None)
        if service.client_ssl_ca_certs:
            context.load_verify_locations(service.client_ssl_ca_certs)
    except (ServiceConfigurationError, ssl.SSLError, OSError) as exc:
        service.logger.error(
            "%s: client TLS files not reloaded, still using the previous certificate: %s",
            service.name,
            exc,
        )
        return False
    service.logger.info("%s: client TLS certificate reloaded from %s", service.name, certfile)
    return True


def client_ssl_context(service: MicroService) -> ssl.SSLContext | None:
    """The context the service calls registries and services with (``client_ssl_*``).

    ``None`` without those settings: HTTPS peers are then verified against the system
    store (aiohttp's default).

    Raises:
        ServiceConfigurationError: A file is missing or unfit.
    """
    ca_certs = service.client_ssl_ca_certs
    certfile = service.client_ssl_certfile
    keyfile = service.client_ssl_keyfile
    if not (ca_certs or certfile or keyfile):
        return None
    return client_context(ca_certs, certfile, keyfile, prefix="client_ssl_")
