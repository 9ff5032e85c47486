"""The gemstone 0.9 import path of the validation strategy base class."""

from ..strategies import BaseValidationStrategy

__all__ = ["BaseValidationStrategy"]
