"""The access check of private methods.

Precedence (the first rule that applies decides):

1. The service overrides ``authenticate_request(request)``: its return value decides.
   A truthy value admits the caller and becomes ``handler.identity``; a falsy value (or
   an exception, which is logged) denies. Call ``super().authenticate_request(request)``
   from the override to use the token rules below as well.
2. Otherwise the default ``authenticate_request``. First the client certificate: with
   ``ssl_allowed_clients``, a caller whose verified certificate (mutual TLS) names one
   of them is admitted, its :class:`~gemstone_aio.tls.CertificateIdentity` the
   identity. Then the token rules: the service's
   ``validation_strategies`` are tried in order until one returns a token; no token
   denies. The token is then judged by ``api_token_is_valid(token)`` when the service
   overrides it (deprecated since gemstone 0.10; a truthy answer admits, ``True`` gives a
   :class:`TokenIdentity`, another truthy value is the identity), else by ``api_tokens``,
   compared in constant time (a mapping's value is the identity).
3. Nothing configured (no override, no ``api_tokens``, no ``ssl_allowed_clients``): every
   caller is denied, and the service logs once at start how to configure access.

Tokens are never logged. A denied attempt is logged with the caller's address and the
reason, without the token: WARNING when a token was presented and rejected, INFO when
there was none or ``authenticate_request`` refused, ERROR when it raised.

The check runs once per HTTP request, whoever asks first. The self-description asks
*quietly* (:func:`authenticate` with ``quiet=True``): an anonymous caller of
``rpc.discover`` simply gets the public document, and nothing is logged unless a private
method of the same request is then denied.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..auth._strategies import BaseValidationStrategy, extract_token
from ..auth._tokens import TokenIdentity, check_accepted_tokens, find_token
from ..errors import ServiceConfigurationError
from ..tls import CertificateIdentity, peer_certificate

if TYPE_CHECKING:
    from aiohttp import web

    from ._microservice import MicroService

__all__ = [
    "authenticate",
    "authenticate_with_tokens",
    "check_access_setup",
    "check_allowed_clients",
    "log_access_setup",
    "nothing_admits",
    "overrides",
]

DOCS_HINT = "see docs/access-control.md"


@dataclass(slots=True)
class _Decision:
    """The outcome of one request's access check, with its denial lines not yet logged."""

    identity: Any
    denials: list[tuple[int, str, tuple[Any, ...]]] = field(default_factory=list)
    reported: bool = False


def _decision_key() -> Any:
    from aiohttp import web

    # RequestKey (aiohttp >= 3.14) keeps the request's mapping typed; a string before.
    maker = getattr(web, "RequestKey", None)
    return maker("gemstone_aio.access_decision", _Decision) if maker else "gemstone_aio.access"


_DECISION_KEY: Any = _decision_key()

# While the access check runs, denial lines are collected here instead of logged.
_denials: contextvars.ContextVar[list[tuple[int, str, tuple[Any, ...]]] | None] = (
    contextvars.ContextVar("gemstone_aio_denials", default=None)
)


def _deny(service: MicroService, level: int, message: str, *args: Any) -> None:
    collected = _denials.get()
    if collected is not None:
        collected.append((level, message, args))
    else:
        service.logger.log(level, message, *args)


@functools.cache
def _base_class() -> type[MicroService]:
    # Imported late: core.microservice imports this module.
    from ._microservice import MicroService

    return MicroService


def overrides(service: MicroService, name: str) -> bool:
    """Return True when the service's class overrides the base class's method ``name``."""
    return getattr(type(service), name) is not getattr(_base_class(), name)


async def _resolve(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


def _remote(request: web.Request) -> str:
    return request.remote or "an unknown address"


def _certificate_admits(service: MicroService, request: web.Request) -> CertificateIdentity | None:
    """The caller's verified certificate if it names one of ``ssl_allowed_clients``."""
    allowed = service.ssl_allowed_clients
    if not allowed:
        return None
    certificate = peer_certificate(request)
    if certificate is None:
        return None
    if certificate.matches(allowed):
        return certificate
    _deny(
        service,
        logging.INFO,
        "access denied to %s: its certificate (%s) names none of ssl_allowed_clients",
        _remote(request),
        certificate,
    )
    return None


async def authenticate_with_tokens(service: MicroService, request: web.Request) -> Any:
    """The default ``authenticate_request``: certificate, then tokens (rule 2 of the module docs).

    Returns:
        The caller's identity, or ``None`` to deny.
    """
    certified = _certificate_admits(service, request)
    if certified is not None:
        return certified
    strategies = list(service.validation_strategies)
    token, strategy = await extract_token(strategies, request)
    if token is None or strategy is None:
        places = ", ".join(s.describe() for s in strategies) or "no validation strategies"
        # INFO: an anonymous caller is common (and public methods may ask who calls).
        _deny(
            service,
            logging.INFO,
            "access denied to %s: no API token found (looked in: %s)",
            _remote(request),
            places,
        )
        return None
    source = strategy.describe()
    if overrides(service, "api_token_is_valid"):
        verdict = await _resolve(service.api_token_is_valid(token))
        identity: Any = TokenIdentity(source) if verdict is True else verdict
    else:
        found, identity = find_token(token, service.api_tokens)
        if found and not identity:
            identity = TokenIdentity(source)
    if not identity:
        _deny(
            service,
            logging.WARNING,
            "access denied to %s: the API token in %s was rejected",
            _remote(request),
            source,
        )
        return None
    return identity


async def _decide(service: MicroService, request: web.Request) -> _Decision:
    collected: list[tuple[int, str, tuple[Any, ...]]] = []
    token = _denials.set(collected)
    try:
        identity = await _resolve(service.authenticate_request(request))
    except Exception:
        service.logger.exception(
            "authenticate_request raised: access denied to %s", _remote(request)
        )
        identity = None
    finally:
        _denials.reset(token)
    if identity:
        collected.clear()  # admitted by a later rule: the earlier ones' lines do not matter
    elif overrides(service, "authenticate_request"):
        collected.append(
            (
                logging.INFO,
                "access denied to %s: authenticate_request refused the request",
                (_remote(request),),
            )
        )
    return _Decision(identity, collected)


async def authenticate(service: MicroService, request: web.Request, *, quiet: bool = False) -> Any:
    """Run the service's access check for one HTTP request (once, whoever asks first).

    Args:
        service: The service whose ``authenticate_request`` decides.
        request: The HTTP request.
        quiet: Log nothing about a denial now (the self-description asks this way);
            the lines are logged if a later, non-quiet ask of the same request is denied.

    Returns:
        The identity (truthy) of an admitted caller, or a falsy value.
    """
    decision: _Decision | None = request.get(_DECISION_KEY)
    if decision is None:
        decision = await _decide(service, request)
        request[_DECISION_KEY] = decision
    if not quiet and not decision.reported:
        decision.reported = True
        for level, message, args in decision.denials:
            service.logger.log(level, message, *args)
    return decision.identity


def nothing_admits(service: MicroService) -> bool:
    """Return True when no configuration can admit any caller (rule 3)."""
    if overrides(service, "authenticate_request") or service.ssl_allowed_clients:
        return False
    if not service.validation_strategies:
        return True
    return not (overrides(service, "api_token_is_valid") or service.api_tokens)


def check_access_setup(service: MicroService) -> None:
    """Validate the access settings of a new service (called by ``MicroService.__init__``).

    Raises:
        ServiceConfigurationError: A validation strategy or ``api_tokens`` is invalid.
    """
    owner = type(service).__qualname__
    for position, strategy in enumerate(service.validation_strategies):
        if not isinstance(strategy, BaseValidationStrategy):
            raise ServiceConfigurationError(
                f"{owner}.validation_strategies[{position}] is {strategy!r}, not a "
                "BaseValidationStrategy instance"
            )
    check_accepted_tokens(owner, service.api_tokens)
    check_allowed_clients(owner, service.ssl_allowed_clients)
    if overrides(service, "api_token_is_valid"):
        warnings.warn(
            f"{owner} overrides api_token_is_valid(token), deprecated since gemstone 0.10: "
            "override authenticate_request(request) instead, or list the tokens in api_tokens",
            DeprecationWarning,
            stacklevel=3,
        )


def check_allowed_clients(owner: str, allowed: Any) -> None:
    """Reject a misconfigured ``ssl_allowed_clients`` with a clear message.

    Raises:
        ServiceConfigurationError: A single string, or a name that is not a non-empty string.
    """
    if isinstance(allowed, str | bytes):
        raise ServiceConfigurationError(
            f"{owner}.ssl_allowed_clients must be a collection of certificate names, not a "
            f"single string (write ssl_allowed_clients = ({allowed!r},))"
        )
    try:
        names = list(allowed)
    except TypeError:
        raise ServiceConfigurationError(
            f"{owner}.ssl_allowed_clients must be a collection of certificate names, "
            f"got {type(allowed).__name__}"
        ) from None
    for name in names:
        if not isinstance(name, str) or not name:
            raise ServiceConfigurationError(
                f"{owner}.ssl_allowed_clients holds {name!r}; certificate names are non-empty "
                "strings"
            )


def log_access_setup(service: MicroService, private_methods: list[str]) -> None:
    """Log once, when the app is built, how private methods are protected."""
    if not private_methods:
        return
    check_accepted_tokens(type(service).__qualname__, service.api_tokens)
    check_allowed_clients(type(service).__qualname__, service.ssl_allowed_clients)
    if nothing_admits(service):
        service.logger.warning(
            "%s has %d private method(s) and nothing admits callers, so they answer "
            "-32001 Access denied. To allow access, set api_tokens (the tokens callers send "
            "in: %s) or override authenticate_request(request); %s",
            service.name,
            len(private_methods),
            ", ".join(s.describe() for s in service.validation_strategies) or "nowhere",
            DOCS_HINT,
        )
    elif overrides(service, "authenticate_request"):
        service.logger.info("private methods are guarded by authenticate_request")
    elif service.ssl_allowed_clients:
        service.logger.info(
            "private methods are guarded by client certificates (%d name(s) in "
            "ssl_allowed_clients)%s",
            len(service.ssl_allowed_clients),
            " and API tokens" if service.api_tokens else "",
        )
    else:
        service.logger.info(
            "private methods are guarded by API tokens found in: %s",
            ", ".join(s.describe() for s in service.validation_strategies),
        )
