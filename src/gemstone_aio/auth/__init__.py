"""Access control: validation strategies, token comparison and the access check.

See :mod:`gemstone_aio.auth.access` for the precedence of ``authenticate_request``,
``validation_strategies``, ``api_token_is_valid`` and ``api_tokens``.
"""

from .access import authenticate, authenticate_with_tokens
from .strategies import BaseValidationStrategy, BasicCookieStrategy, HeaderValidationStrategy
from .tokens import TokenIdentity, find_token, tokens_equal

__all__ = [
    "BaseValidationStrategy",
    "BasicCookieStrategy",
    "HeaderValidationStrategy",
    "TokenIdentity",
    "authenticate",
    "authenticate_with_tokens",
    "find_token",
    "tokens_equal",
]
