"""Comparing API tokens without leaking them through timing.

:func:`tokens_equal` compares two tokens in constant time (``hmac.compare_digest`` on
their UTF-8 bytes). :func:`find_token` checks a token against a whole set of accepted
tokens, comparing with every one of them, so the time taken says nothing about which
one matched or how close a guess came. This is what ``MicroService.api_tokens`` uses.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from ..errors import ServiceConfigurationError

__all__ = ["AcceptedTokens", "TokenIdentity", "check_accepted_tokens", "find_token", "tokens_equal"]

AcceptedTokens: TypeAlias = Collection[str] | Mapping[str, Any]
"""Accepted tokens: a collection, or a mapping of token → identity given to methods."""


@dataclass(frozen=True, slots=True)
class TokenIdentity:
    """The identity of a caller admitted by an API token (the token itself is not kept).

    Attributes:
        source: Where the token was found, such as ``"header X-Api-Token"``.
    """

    source: str


def _as_bytes(token: str | bytes) -> bytes:
    return token.encode("utf-8") if isinstance(token, str) else bytes(token)


def tokens_equal(given: str | bytes, expected: str | bytes) -> bool:
    """Compare two tokens in constant time.

    Args:
        given: The token the caller sent.
        expected: A token the service accepts.

    Returns:
        True when they are equal. The comparison takes the same time wherever they differ.
    """
    return hmac.compare_digest(_as_bytes(given), _as_bytes(expected))


def find_token(token: str, accepted: AcceptedTokens) -> tuple[bool, Any]:
    """Look ``token`` up among ``accepted``, comparing with every entry in constant time.

    Args:
        token: The token the caller sent.
        accepted: The accepted tokens; a mapping gives each one an identity.

    Returns:
        ``(found, identity)``: the mapped identity when ``accepted`` is a mapping,
        else ``None``.
    """
    found = False
    identity: Any = None
    given = _as_bytes(token)
    # No early exit: every accepted token is compared, whatever matched first.
    for candidate in accepted:
        if hmac.compare_digest(given, _as_bytes(candidate)) and not found:
            found = True
            if isinstance(accepted, Mapping):
                identity = accepted[candidate]
    return found, identity


def check_accepted_tokens(owner: str, accepted: Any) -> None:
    """Reject a misconfigured ``api_tokens`` value with a clear message.

    Raises:
        ServiceConfigurationError: ``accepted`` is a single string, not a collection, or
            holds a non-string or empty token (the value is not shown: it may be a secret).
    """
    if isinstance(accepted, str | bytes):
        raise ServiceConfigurationError(
            f"{owner}.api_tokens must be a collection of tokens, not a single string "
            "(write api_tokens = {'...'})"
        )
    if not isinstance(accepted, Collection):
        raise ServiceConfigurationError(
            f"{owner}.api_tokens must be a collection of tokens, got {type(accepted).__name__}"
        )
    for position, token in enumerate(accepted):
        if not isinstance(token, str) or not token:
            raise ServiceConfigurationError(
                f"{owner}.api_tokens holds an invalid token at position {position} "
                f"(a {type(token).__name__}; tokens are non-empty strings)"
            )
