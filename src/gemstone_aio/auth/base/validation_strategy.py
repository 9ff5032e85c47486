"""The gemstone 0.9 import path of :class:`BaseValidationStrategy`."""

from ..strategies import BaseValidationStrategy

__all__ = ["BaseValidationStrategy"]
