"""Runnable examples; tests import them as ``examples.<name>``."""
