"""Running a service's configurators and reporting the effective configuration."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ..config._configurable import Configurable, as_endpoint, as_port, comma_list
from ..config._configurator import CommandLineConfigurator
from ..errors import ServiceConfigurationError
from ..tls import as_cert_reqs

if TYPE_CHECKING:
    from ._microservice import MicroService

__all__ = [
    "MASK",
    "configure_service",
    "current_configuration",
    "default_configurables",
    "effective_configurables",
]

MASK = "********"
"""What :func:`current_configuration` shows instead of a secret."""


def default_configurables() -> list[Configurable]:
    """Return fresh copies of the configurables every service has."""
    return [
        Configurable("port", template=as_port, help="TCP port; 0 or 'random' picks a free one"),
        Configurable("host", help="address to listen on"),
        Configurable("accessible_at", help="URL others reach this service at"),
        Configurable("endpoint", template=as_endpoint, help="path of the JSON-RPC endpoint"),
        Configurable(
            "service_registry_urls",
            template=comma_list,
            help="comma-separated URLs of service registries",
        ),
        Configurable("ssl_certfile", help="serve HTTPS with this certificate chain (PEM)"),
        Configurable("ssl_keyfile", help="the certificate's private key (PEM, mode 600)"),
        Configurable("ssl_keyfile_password", help="the password of an encrypted ssl_keyfile"),
        Configurable(
            "ssl_ca_certs", help="CA bundle client certificates are verified against (mTLS)"
        ),
        Configurable(
            "ssl_cert_reqs",
            template=as_cert_reqs,
            help="client certificates: none, optional or required "
            "(default: required with ssl_ca_certs)",
        ),
        Configurable(
            "ssl_allowed_clients",
            template=comma_list,
            help="certificate names admitted to private methods, comma-separated",
        ),
        Configurable(
            "client_ssl_ca_certs",
            help="CA bundle the registries and services this one calls are verified against "
            "(default: the system store)",
        ),
        Configurable(
            "client_ssl_certfile", help="client certificate presented to them (mutual TLS)"
        ),
        Configurable("client_ssl_keyfile", help="the client certificate's private key"),
    ]


def effective_configurables(service: MicroService) -> list[Configurable]:
    """Return the default configurables followed by the service's own.

    A service configurable with the name of a default one replaces it (to give ``port``
    another template, say).
    """
    own = list(service.configurables)
    own_names = {c.name for c in own}
    defaults = [c for c in default_configurables() if c.name not in own_names]
    return defaults + own


def configure_service(service: MicroService, argv: Sequence[str] | None = None) -> None:
    """Apply the service's configurators in order (a later one wins) to the service.

    Every value found is converted by its configurable's template before any attribute
    changes, so a bad value leaves the service untouched. Then the converted values are
    set as attributes of the service and ``accessible_at`` is derived again (unless it
    was configured or set on the class).

    Args:
        service: The service.
        argv: Arguments for the command-line configurators (instead of ``sys.argv[1:]``).

    Raises:
        ServiceConfigurationError: A source is unusable or a value is invalid; the message
            names the configurable, the value and where it came from.
    """
    configurables = effective_configurables(service)
    names = [c.name for c in configurables]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ServiceConfigurationError(
            f"{service.name}: configurable(s) {', '.join(map(repr, duplicates))} declared twice"
        )
    defaults = {c.name: getattr(service, c.name, None) for c in configurables}
    values: dict[str, Any] = {}
    for configurator in service.configurators:
        bound = configurator.bind(configurables, service_name=str(service.name), defaults=defaults)
        if argv is not None and isinstance(bound, CommandLineConfigurator):
            bound.argv = list(argv)
        bound.load()
        for configurable in configurables:
            raw = bound.get(configurable.name)
            if raw is None:
                continue
            try:
                values[configurable.name] = configurable.convert(raw)
            except ServiceConfigurationError as exc:
                raise ServiceConfigurationError(
                    f"{exc} (from {bound.describe(configurable.name)})"
                ) from None
    for configurable in configurables:
        if configurable.name in values:
            setattr(service, configurable.name, values[configurable.name])
        elif not hasattr(service, configurable.name):
            setattr(service, configurable.name, None)
    if "accessible_at" in values:
        service._explicit_accessible_at = True
    service.refresh_accessible_at()


def _mask_url(value: str) -> str:
    """Hide the password of a URL such as ``amqp://user:pw@host/``."""
    if "@" not in value or "://" not in value:
        return value
    try:
        parts = urlsplit(value)
        if parts.password is None:
            return value
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        netloc = f"{parts.username or ''}:{MASK}@{host}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    except ValueError:
        return value


def _masked(configurable: Configurable, value: Any) -> Any:
    if configurable.secret and value is not None:
        return MASK
    if isinstance(value, str):
        return _mask_url(value)
    if isinstance(value, list | tuple):
        return [_mask_url(v) if isinstance(v, str) else v for v in value]
    return value


def current_configuration(service: MicroService) -> dict[str, Any]:
    """Return the service's name and the current value of each configurable, secrets masked.

    A value is masked (shown as :data:`MASK`) when its configurable is secret
    (``Configurable(..., secret=True)``, or a name containing ``password``, ``secret``,
    ``token``, ...); passwords inside URLs (``amqp://user:pw@host``) are masked always.
    """
    result: dict[str, Any] = {"name": service.name}
    for configurable in effective_configurables(service):
        result[configurable.name] = _masked(configurable, getattr(service, configurable.name, None))
    return result
