"""The reference service registry: a small :class:`MicroService` services heartbeat into.

Run it with ``python -m gemstone_aio.registry --host 127.0.0.1 --port 5000`` and point
services at it with ``service_registry_urls = ["http://127.0.0.1:5000/api"]``.

Methods (the gemstone registry protocol, plus three of ours):

- ``ping(name, url)``: the instance of ``name`` at ``url`` is alive (one entry per URL).
- ``locate_service(name)``: the URLs of live instances whose name matches the glob
  ``name`` (``*`` and ``?`` are the only wildcards; ``_``, ``%`` and ``[`` are literal).
- ``lookup(name)``: the same as ``{"urls": [...], "complete": bool}``; ``complete`` is
  false while the registry warms up after a start, when instances that were alive
  before it may not have pinged yet.
- ``unregister(name, url)``: forget that instance (sent on graceful shutdown).
- ``list_services()``: every live instance, as ``{name: [url, ...]}``.

Secure by default: without a ``token`` the registry serves only on a loopback address
(another ``host`` refuses to start unless ``insecure`` is set, or client certificates
are required: ``ssl_ca_certs``), a URL never moves from
one name to another, and new instances are capped (``max_instances``,
``max_instances_per_name``) in a way a one-off flood cannot use to lock real instances
out. With a ``token``, ``ping`` and ``unregister`` need it in ``X-Api-Token`` (and
``locate_service``, ``lookup`` and ``list_services`` too with
``lookups_require_token``); token holders are not capped. Announced URLs are validated
(http(s), no user information, no link-local address; ``allowed_networks``). Served over
TLS (``ssl_certfile``), with ``ssl_allowed_clients`` the instances whose client
certificate names one of them may ``ping`` and ``unregister`` (besides token holders).

The table is indexed by name, so a lookup costs in proportion to the instances of the
names it matches, and expiry pops silent instances off the front of a list kept in
ping order, never scanning the table. It lives in memory: after a start the registry
answers lookups as incomplete for ``warmup`` seconds (one default ping interval), and
callers keep the instances they knew until then.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import os
import secrets
import ssl
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .discovery._glob import MAX_PATTERN_LENGTH, compile_glob, has_wildcards, literal_prefix
from .discovery._urls import Network, check_instance_url, is_loopback_host, parse_networks
from .errors import AccessDenied, InvalidParams, ServerOverloaded, ServiceConfigurationError
from .protocol import current_call
from .protocol._decorators import exposed_method
from .server._microservice import MicroService
from .tls import as_cert_reqs, effective_cert_reqs, peer_certificate

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["DEFAULT_EXPIRE_AFTER", "ServiceRegistry", "main"]

DEFAULT_EXPIRE_AFTER = 90.0
"""Seconds without a ping after which an instance is no longer located."""

_MAX_NAME = 256


@dataclass(slots=True)
class _Instance:
    name: str
    last_seen: float
    pings: int = 1


def _shown(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:80] + "...")


def _check_name(name: str) -> None:
    if not name or len(name) > _MAX_NAME or not name.isprintable():
        raise InvalidParams(
            f"name must be 1 to {_MAX_NAME} printable characters, got {_shown(name)}"
        )


def _check_pattern(pattern: str) -> None:
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidParams(
            f"name may be at most {MAX_PATTERN_LENGTH} characters long, got {len(pattern)}"
        )


def _positive(registry: ServiceRegistry, attr: str, value: object) -> float:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ServiceConfigurationError(
            f"{type(registry).__name__}.{attr} must be a positive number of seconds, got {value!r}"
        )
    return float(value)


class ServiceRegistry(MicroService):
    """An in-memory registry with expiry (see the module documentation).

    Attributes:
        expire_after: Seconds without a ping before an instance is forgotten.
        token: When set, ``ping`` and ``unregister`` require it in ``X-Api-Token``.
        lookups_require_token: ``locate_service``, ``lookup`` and ``list_services``
            require the token too (needs ``token``).
        insecure: Serve without a token on an address other than loopback (anyone who
            reaches it can register and remove instances: development networks only).
        allowed_networks: Comma-separated networks (``10.0.0.0/8,fd00::/8``); when set,
            an announced URL's host must be an IP address inside one of them.
        max_instances: Without a token, the most instances listed at once.
        max_instances_per_name: Without a token, the most instances of one name.
            When a cap is reached, a new instance takes the place of the oldest one
            that pinged only once (a flood of one-off pings cannot lock real instances
            out); if every listed instance pinged at least twice, the new one gets
            "Server overloaded" (-32002).
        warmup: Seconds after a start during which lookups are marked incomplete
            (``None``: a third of ``expire_after``, the default ping interval).
    """

    name = "gemstone.registry"
    port = 5000
    expire_after: float = DEFAULT_EXPIRE_AFTER
    token: str | None = None
    lookups_require_token: bool = False
    insecure: bool = False
    allowed_networks: str = ""
    max_instances: int = 10_000
    max_instances_per_name: int = 1_000
    warmup: float | None = None

    def __init__(self) -> None:
        super().__init__()
        self._by_url: dict[str, _Instance] = {}
        self._by_name: dict[str, dict[str, _Instance]] = {}
        self._by_age: OrderedDict[str, None] = OrderedDict()  # least recently pinged first
        self._once: OrderedDict[str, None] = OrderedDict()  # pinged only once, oldest first
        self._networks: list[Network] = []
        self._warm_at = 0.0
        self.epoch = secrets.token_hex(8)
        """A random id of this run of the registry (a restart changes it)."""

    def on_service_start(self) -> None:
        """Check the settings before serving (fail closed: see the module documentation)."""
        cls = type(self).__name__
        self.expire_after = _positive(self, "expire_after", self.expire_after)
        warmup: object = self.warmup
        if isinstance(warmup, str):  # from a command line
            with contextlib.suppress(ValueError):
                warmup = float(warmup)
        if warmup is None:
            warmup = self.expire_after / 3
        self.warmup = 0.0 if warmup == 0 else _positive(self, "warmup", warmup)
        self._warm_at = time.monotonic() + self.warmup
        self.token = self.token or None
        try:
            self._networks = parse_networks(self.allowed_networks, f"{cls}.allowed_networks")
        except ValueError as exc:
            raise ServiceConfigurationError(str(exc)) from None
        if self.token is None and self.lookups_require_token:
            raise ServiceConfigurationError(
                f"{cls}.lookups_require_token is set but no token is: set {cls}.token "
                "(--token or $GEMSTONE_REGISTRY_TOKEN)"
            )
        if (
            self.token is None
            and not self.insecure
            and not self._requires_client_certificates()
            and not is_loopback_host(str(self.host))
        ):
            raise ServiceConfigurationError(
                f"{cls} would serve on {self.host!r} without a token: set {cls}.token "
                "(--token or $GEMSTONE_REGISTRY_TOKEN), require client certificates "
                "(--ssl-ca-certs), listen on 127.0.0.1, or set "
                f"{cls}.insecure (--insecure) to let anyone who reaches it register "
                "and remove instances"
            )

    def _requires_client_certificates(self) -> bool:
        # Served over TLS with client certificates required and verified: only holders
        # of a certificate from ssl_ca_certs can reach it at all.
        return bool(self.ssl_certfile and self.ssl_ca_certs) and (
            effective_cert_reqs(self.ssl_cert_reqs, self.ssl_ca_certs) == ssl.CERT_REQUIRED
        )

    def authenticate_request(self, request: web.Request) -> object:
        """Admit ``ping``/``unregister`` callers.

        Anyone without a token nor ``ssl_allowed_clients``; otherwise those sending the
        token, or whose verified client certificate names one of ``ssl_allowed_clients``.
        """
        if self.ssl_allowed_clients:
            certificate = peer_certificate(request)
            if certificate is not None and certificate.matches(self.ssl_allowed_clients):
                return certificate
        elif self.token is None:
            return "anyone"
        return self._has_token(request.headers.get("X-Api-Token", ""))

    def _has_token(self, supplied: str) -> bool:
        return self.token is not None and hmac.compare_digest(
            supplied.encode(), self.token.encode()
        )

    def _check_lookup_access(self) -> None:
        if not self.lookups_require_token:
            return
        context = current_call.get(None)
        supplied = context.headers.get("X-Api-Token", "") if context is not None else ""
        if not self._has_token(supplied):
            raise AccessDenied("this registry requires its token for lookups")

    # -- the table ---------------------------------------------------------------------

    def _purge(self, now: float) -> None:
        """Forget the instances silent for ``expire_after``: pop them off the front."""
        oldest = now - self.expire_after
        by_age, by_url = self._by_age, self._by_url
        while by_age:
            url = next(iter(by_age))
            if by_url[url].last_seen >= oldest:
                break
            self._remove(url)

    def _remove(self, url: str) -> None:
        instance = self._by_url.pop(url)
        self._by_age.pop(url, None)
        self._once.pop(url, None)
        same_name = self._by_name.get(instance.name)
        if same_name is not None:
            same_name.pop(url, None)
            if not same_name:
                del self._by_name[instance.name]

    def _make_room(self, name: str) -> None:
        """Without a token, apply the caps before a new instance of ``name`` is added."""
        same_name = self._by_name.get(name, {})
        if len(same_name) >= self.max_instances_per_name:
            once = next((url for url, i in same_name.items() if i.pings == 1), None)
            if once is None:
                raise ServerOverloaded(
                    f"the registry holds max_instances_per_name ({self.max_instances_per_name}) "
                    f"instances of {_shown(name)}"
                )
            self._remove(once)
        if len(self._by_url) >= self.max_instances:
            if not self._once:
                raise ServerOverloaded(
                    f"the registry holds max_instances ({self.max_instances}) instances"
                )
            self._remove(next(iter(self._once)))

    def _matching(self, pattern: str) -> list[tuple[str, dict[str, _Instance]]]:
        """The live names matching ``pattern`` (a dict look-up for an exact name)."""
        self._purge(time.monotonic())
        if not has_wildcards(pattern):
            instances = self._by_name.get(pattern)
            return [(pattern, instances)] if instances else []
        glob, prefix = compile_glob(pattern), literal_prefix(pattern)
        return [
            (name, instances)
            for name, instances in self._by_name.items()
            if name.startswith(prefix) and glob.matches(name)
        ]

    def _located(self, pattern: str) -> list[str]:
        _check_pattern(pattern)
        self._check_lookup_access()
        found = self._matching(pattern)
        if len(found) == 1:
            return list(found[0][1])
        return [url for _, instances in found for url in instances]

    @property
    def warming_up(self) -> bool:
        """Whether instances alive before this start may not have pinged yet."""
        return time.monotonic() < self._warm_at

    # -- the protocol ------------------------------------------------------------------

    @exposed_method(private=True)
    async def ping(self, name: str, url: str) -> bool:
        """Record that the instance of ``name`` at ``url`` is alive; returns ``true``."""
        _check_name(name)
        try:
            check_instance_url(url, self._networks)
        except ValueError as exc:
            raise InvalidParams(str(exc)) from None
        now = time.monotonic()
        self._purge(now)
        instance = self._by_url.get(url)
        if instance is not None and instance.name == name:
            instance.last_seen = now
            instance.pings += 1
            self._by_age.move_to_end(url)
            self._once.pop(url, None)
            return True
        if instance is not None:
            if self.token is None:
                raise AccessDenied(
                    f"{_shown(url)} is registered as {_shown(instance.name)}: it can move to "
                    "another name once that instance unregisters or expires (or with a token)"
                )
            self._remove(url)
        elif self.token is None:
            self._make_room(name)
        instance = _Instance(name, now)
        self._by_url[url] = instance
        self._by_name.setdefault(name, {})[url] = instance
        self._by_age[url] = None
        self._once[url] = None
        return True

    @exposed_method()
    async def locate_service(self, name: str) -> list[str]:
        """Return the URLs of live instances whose name matches the glob ``name``."""
        return self._located(name)

    @exposed_method()
    async def lookup(self, name: str) -> dict[str, Any]:
        """Return ``{"urls": locate_service(name), "complete": not warming up, "epoch": id}``."""
        return {"urls": self._located(name), "complete": not self.warming_up, "epoch": self.epoch}

    @exposed_method(private=True)
    async def unregister(self, name: str, url: str) -> bool:
        """Forget the instance of ``name`` at ``url``; returns whether it was listed."""
        instance = self._by_url.get(url)
        if instance is None or instance.name != name:
            return False
        self._remove(url)
        return True

    @exposed_method()
    async def list_services(self) -> dict[str, list[str]]:
        """Return every live instance as ``{name: [url, ...]}``, names sorted."""
        self._check_lookup_access()
        self._purge(time.monotonic())
        return {name: list(self._by_name[name]) for name in sorted(self._by_name)}


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> None:
    """Run the registry from the command line (``python -m gemstone_aio.registry``)."""
    parser = argparse.ArgumentParser(
        prog="python -m gemstone_aio.registry", description="Run the gemstone service registry."
    )
    parser.add_argument("--host", default=ServiceRegistry.host, help="address to listen on")
    parser.add_argument("--port", type=int, default=ServiceRegistry.port, help="TCP port")
    parser.add_argument(
        "--expire-after",
        type=_positive_float,
        default=DEFAULT_EXPIRE_AFTER,
        help="seconds without a ping before an instance is forgotten",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("GEMSTONE_REGISTRY_TOKEN"),
        help="require this X-Api-Token for ping/unregister (default: $GEMSTONE_REGISTRY_TOKEN)",
    )
    parser.add_argument(
        "--lookups-require-token",
        action="store_true",
        help="require the token for locate_service, lookup and list_services too",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="serve without a token on an address other than loopback (development only)",
    )
    parser.add_argument(
        "--allowed-networks",
        default="",
        help="comma-separated networks an announced URL's host must be in (e.g. 10.0.0.0/8)",
    )
    parser.add_argument(
        "--warmup",
        type=_positive_float,
        default=None,
        help="seconds after start during which lookups are incomplete (default: expiry / 3)",
    )
    parser.add_argument("--ssl-certfile", help="serve HTTPS with this certificate chain (PEM)")
    parser.add_argument("--ssl-keyfile", help="the certificate's private key (PEM, mode 600)")
    parser.add_argument("--ssl-keyfile-password", help="the password of an encrypted key")
    parser.add_argument(
        "--ssl-ca-certs", help="CA bundle client certificates are verified against (mTLS)"
    )
    parser.add_argument(
        "--ssl-cert-reqs",
        help="client certificates: none, optional or required (default: required with "
        "--ssl-ca-certs)",
    )
    parser.add_argument(
        "--ssl-allowed-clients",
        default="",
        help="comma-separated certificate names that may ping and unregister",
    )
    args = parser.parse_args(argv)
    registry = ServiceRegistry()
    registry.skip_configuration = True  # the flags above are its whole configuration
    registry.host, registry.port = args.host, args.port
    registry.expire_after = args.expire_after
    registry.token = args.token or None
    registry.lookups_require_token = args.lookups_require_token
    registry.insecure = args.insecure
    registry.allowed_networks = args.allowed_networks
    registry.warmup = args.warmup
    registry.ssl_certfile, registry.ssl_keyfile = args.ssl_certfile, args.ssl_keyfile
    registry.ssl_keyfile_password = args.ssl_keyfile_password
    registry.ssl_ca_certs = args.ssl_ca_certs
    if args.ssl_cert_reqs is not None:
        try:
            registry.ssl_cert_reqs = as_cert_reqs(args.ssl_cert_reqs)
        except ValueError as exc:
            parser.exit(2, f"error: --ssl-cert-reqs {args.ssl_cert_reqs!r}: {exc}\n")
    registry.ssl_allowed_clients = [
        name.strip() for name in args.ssl_allowed_clients.split(",") if name.strip()
    ]
    registry.refresh_accessible_at()
    try:
        registry.start()
    except ServiceConfigurationError as exc:
        parser.exit(2, f"error: {exc}\n")


if __name__ == "__main__":
    main()
