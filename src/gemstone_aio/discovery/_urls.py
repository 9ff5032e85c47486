"""The rules an announced instance URL must follow, shared by the registry and the strategies.

An instance URL is an absolute ``http``/``https`` URL of at most :data:`MAX_URL_LENGTH`
characters, with a host and without user information (``user:pass@``). An address
that cannot be a service's is refused: the unspecified address (``0.0.0.0``, ``::``),
link-local addresses (``169.254.0.0/16``, where cloud metadata services answer, and
``fe80::/10``) and multicast. With an allow-list of networks, the host must be an IP
address inside one of them (a host name could resolve anywhere).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

import yarl

__all__ = [
    "MAX_URL_LENGTH",
    "Network",
    "check_instance_url",
    "is_loopback_host",
    "parse_networks",
]

MAX_URL_LENGTH = 2048

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _shown(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:80] + "...")


def parse_networks(value: str | Iterable[str], setting: str = "allowed_networks") -> list[Network]:
    """Parse CIDR networks (a comma-separated string or an iterable); errors name ``setting``.

    Raises:
        ValueError: A network is not valid.
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    networks: list[Network] = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(
                f"{setting} must hold networks such as 10.0.0.0/8, got {text!r}"
            ) from None
    return networks


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only reaches this machine."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_instance_url(url: object, allowed_networks: Sequence[Network] = ()) -> str:
    """Return ``url`` if an instance may announce it, else raise :class:`ValueError` saying why.

    Args:
        url: The announced URL.
        allowed_networks: When not empty, the URL's host must be an IP address in one of them.
    """
    if not isinstance(url, str):
        raise ValueError(f"url must be a string, got {type(url).__name__}")
    try:
        parsed: yarl.URL | None = yarl.URL(url)
    except ValueError:
        parsed = None
    if (
        parsed is None
        or len(url) > MAX_URL_LENGTH
        or parsed.scheme not in ("http", "https")
        or not parsed.host
    ):
        raise ValueError(f"url must be an absolute http(s) URL, got {_shown(url)}")
    if parsed.user is not None or parsed.password is not None or "@" in (parsed.authority or ""):
        raise ValueError(f"url must not hold user information (user:password@), got {_shown(url)}")
    host = parsed.host
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(
            host.strip("[]")
        )
    except ValueError:
        address = None
    if address is not None and (
        address.is_unspecified or address.is_link_local or address.is_multicast
    ):
        raise ValueError(
            f"url must name a reachable service address (not unspecified, link-local or "
            f"multicast), got {_shown(url)}"
        )
    if allowed_networks:
        if address is None:
            raise ValueError(
                f"url must have an IP address as host when allowed_networks is set, "
                f"got {_shown(url)}"
            )
        if not any(address in network for network in allowed_networks):
            raise ValueError(f"url is outside allowed_networks, got {_shown(url)}")
    return url
