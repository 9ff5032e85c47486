"""Shared test configuration.

Fixture modules live in ``tests/fixtures/<area>.py`` and are loaded as pytest plugins
automatically, so each area (RabbitMQ node, Redis server, ...) owns its own file.
"""

from pathlib import Path

pytest_plugins = sorted(
    f"tests.fixtures.{path.stem}"
    for path in (Path(__file__).parent / "fixtures").glob("*.py")
    if path.stem != "__init__"
)
