"""Shared test configuration.

Fixture modules live in ``tests/fixtures/<area>.py`` and are loaded as pytest plugins
automatically, so each area (RabbitMQ node, Redis server, ...) owns its own file.
"""

from pathlib import Path

# ``services`` first: other fixture modules import its shared services, and a module
# must be loaded as a plugin before anything imports it (so pytest rewrites its asserts).
pytest_plugins = sorted(
    (
        f"tests.fixtures.{path.stem}"
        for path in (Path(__file__).parent / "fixtures").glob("*.py")
        if path.stem != "__init__"
    ),
    key=lambda name: (name != "tests.fixtures.services", name),
)
