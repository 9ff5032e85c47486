"""The broker address of the RabbitMQ transport: an AMQP URL, or gemstone 0.10's parts.

gemstone 0.10 passed ``**connection_options`` to pika; the two with an aio-pika
counterpart are renamed, the ones aio-pika would silently ignore are refused.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import quote

from yarl import URL

from ..errors import ServiceConfigurationError

__all__ = ["checked_url", "mask", "translate_pika_options", "url_from_parts"]

_DEFAULT_HOST: Final = "127.0.0.1"
_DEFAULT_USER: Final = "guest"  # RabbitMQ's default user; its password is "guest" too
_DEFAULT_PORTS: Final = {"amqp": 5672, "amqps": 5671}

# gemstone 0.10 passed **connection_options to pika's ConnectionParameters. Two of pika's
# names have an aio-pika counterpart; the others, and aio-pika's own login= (which it
# ignores when given a URL, as this transport always does), would be silently ignored,
# so they are refused, with what to do instead.
_PIKA_RENAMED: Final = {"virtual_host": "virtualhost", "heartbeat_interval": "heartbeat"}
_PIKA_ONLY: Final = {
    "credentials": "give username= and password=",
    "connection_attempts": "the transport keeps reconnecting by itself",
    "socket_timeout": "give timeout= (seconds to connect)",
    "blocked_connection_timeout": "aio-pika has no such limit",
    "backpressure_detection": "aio-pika has no such setting",
    "locale": "aio-pika has no such setting",
    "login": "give the user as username=",
}


def mask(url: URL) -> str:
    """``url`` as text with its password (if any) replaced by ``***``."""
    return str(url.with_password("***")) if url.password else str(url)


def translate_pika_options(options: dict[str, Any]) -> dict[str, Any]:
    """Rename pika's connection options to aio-pika's; refuse those aio-pika would ignore."""
    for old, new in _PIKA_RENAMED.items():
        if old in options and new in options:
            raise ServiceConfigurationError(
                f"connection options {new}= and pika's {old}= say the same thing: give one"
            )
    translated: dict[str, Any] = {}
    for name, value in options.items():
        if name in _PIKA_ONLY:
            raise ServiceConfigurationError(
                f"connection option {name}= is not understood by aio-pika: {_PIKA_ONLY[name]}"
            )
        translated[_PIKA_RENAMED.get(name, name)] = value
    return translated


def checked_url(
    url: str | URL,
    port: int | None,
    username: str | None,
    password: str | None,
    host: str | None,
    options: dict[str, Any],
) -> str:
    """Check an AMQP URL given with the options of the transport; return it as text."""
    try:
        parsed = URL(url)
    except (TypeError, ValueError) as exc:
        raise ServiceConfigurationError(f"invalid AMQP URL: {exc}") from None
    safe = mask(parsed)
    parts = {"host": host, "port": port, "username": username, "password": password}
    mixed = [f"{name}=" for name, value in parts.items() if value is not None]
    if mixed:
        raise ServiceConfigurationError(
            "give either an AMQP URL or host, port, username and password, not both: got "
            f"the URL {safe!r} and {', '.join(mixed)}"
        )
    if parsed.scheme not in _DEFAULT_PORTS or not parsed.host:
        raise ServiceConfigurationError(
            f"not an AMQP URL (amqp://user:password@host:port/vhost): {safe!r}"
        )
    ignored = [f"{name}=" for name in ("virtualhost", "ssl") if name in options]
    if ignored:
        raise ServiceConfigurationError(
            f"with a URL, aio-pika ignores {', '.join(ignored)}: put the virtual host in the "
            f"URL's path and use amqps:// for TLS (URL {safe!r})"
        )
    return str(url)


def url_from_parts(
    host: str | None,
    port: int | None,
    username: str | None,
    password: str | None,
    options: dict[str, Any],
) -> str:
    """Build the AMQP URL from gemstone 0.10's parts; ``options`` loses ``ssl``/``virtualhost``."""
    host = _DEFAULT_HOST if host is None else host
    if not isinstance(host, str) or not host:
        raise ServiceConfigurationError(f"host must be a non-empty string, got {host!r}")
    ssl = options.pop("ssl", False)
    if not isinstance(ssl, bool):
        raise ServiceConfigurationError(f"ssl must be True or False, got {ssl!r}")
    scheme = "amqps" if ssl else "amqp"
    if port is None:
        port = _DEFAULT_PORTS[scheme]
    elif isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ServiceConfigurationError(f"port must be an integer from 1 to 65535, got {port!r}")
    for label, value in (("username", username), ("password", password)):
        if value is not None and not isinstance(value, str):
            raise ServiceConfigurationError(f"{label} must be a string, got {type(value).__name__}")
    if not username:
        if password:
            raise ServiceConfigurationError(
                "a password is given without a username: give username= too (no username "
                f"means RabbitMQ's default user {_DEFAULT_USER!r} with its default password)"
            )
        username = password = _DEFAULT_USER
    elif not password:
        # aio-pika would send "guest" in place of an empty password.
        raise ServiceConfigurationError(f"username {username!r} needs a password=")
    vhost = options.pop("virtualhost", "/")
    if not isinstance(vhost, str) or not vhost:
        raise ServiceConfigurationError(f"virtualhost must be a non-empty string, got {vhost!r}")
    try:
        built = URL.build(
            scheme=scheme, host=host, port=port, user=username, password=password, path="/"
        )
    except ValueError as exc:
        raise ServiceConfigurationError(f"host {host!r} is not a valid host name: {exc}") from None
    if vhost != "/":
        # The path holds the virtual host quoted whole: a "/" in its name becomes %2F.
        built = built.with_path("/" + quote(vhost, safe=""), encoded=True)
    return str(built)
