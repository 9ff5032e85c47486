"""Example services (each one is run by a test)."""
