"""The gemstone 0.9 import path of :class:`BasicCookieStrategy`."""

from ..strategies import BasicCookieStrategy

__all__ = ["BasicCookieStrategy"]
