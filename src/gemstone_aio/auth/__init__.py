"""Access control: validation strategies that find a caller's token, and token comparison.

How a service decides who may call its private methods (``authenticate_request``,
``validation_strategies``, ``api_tokens``) is described in ``docs/access-control.md``.
"""

from ._strategies import (
    BaseValidationStrategy,
    BasicCookieStrategy,
    HeaderValidationStrategy,
    extract_token,
)
from ._tokens import TokenIdentity, find_token, tokens_equal

__all__ = [
    "BaseValidationStrategy",
    "BasicCookieStrategy",
    "HeaderValidationStrategy",
    "TokenIdentity",
    "extract_token",
    "find_token",
    "tokens_equal",
]
