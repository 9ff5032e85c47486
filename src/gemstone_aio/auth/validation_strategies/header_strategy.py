"""The gemstone 0.9 import path of :class:`HeaderValidationStrategy`."""

from ..strategies import HeaderValidationStrategy

__all__ = ["HeaderValidationStrategy"]
