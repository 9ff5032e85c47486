"""The version of gemstone-aio."""

__version__ = "0.1.0"
