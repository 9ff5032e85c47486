"""The gemstone 0.9 import path of the built-in validation strategies."""

from ..strategies import BasicCookieStrategy, HeaderValidationStrategy

__all__ = ["BasicCookieStrategy", "HeaderValidationStrategy"]
