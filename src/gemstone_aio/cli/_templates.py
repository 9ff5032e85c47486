"""The files of a project made by ``gemstone new`` (``string.Template`` texts)."""

from __future__ import annotations

from typing import Final

__all__ = ["FILES"]

PYPROJECT: Final = """\
[build-system]
requires = ["hatchling>=1.21"]
build-backend = "hatchling.build"

[project]
name = "$name"
version = "0.1.0"
description = "The $name service."
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["gemstone-aio>=$gemstone_version"]

[project.optional-dependencies]
test = ["pytest>=8", "pytest-aiohttp>=1.1"]

[project.scripts]
$name = "$package.__main__:main"

[tool.hatch.build.targets.wheel]
packages = ["src/$package"]

[tool.pytest.ini_options]
pythonpath = ["src"]
testpaths = ["tests"]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
filterwarnings = ["error"]
"""

README: Final = """\
# $name

A gemstone-aio service: JSON-RPC 2.0 over HTTP at `/api`.

## Install

In a virtual environment (Debian and Ubuntu refuse `pip install` into the system Python;
there, `sudo apt-get install python3-venv` first if `python3 -m venv` is missing):

```sh
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -e '.[test]'
```

If your package index has no gemstone-aio (a checkout, a private build), point pip at the
folder holding its wheel: `export PIP_FIND_LINKS=/path/to/wheels` before installing.

## Test it

```sh
python -m pytest
```

The tests use gemstone-aio's pytest plugin: `gemstone_services` serves the service on a free
port for one test, `gemstone_events` records the events it publishes and handles.

## Run it

```sh
gemstone run $package.service:$cls --port 8000
```

To restart on every code change while you work on it, install watchfiles
(`python -m pip install 'gemstone-aio[reload]'`) and add `--reload`.

## Call it

```sh
gemstone call-raw http://127.0.0.1:8000/api say_hello name=world
gemstone call-raw http://127.0.0.1:8000/api add a:=2 b:=3
gemstone describe http://127.0.0.1:8000/api
gemstone shell http://127.0.0.1:8000/api
```
"""

GITIGNORE: Final = """\
__pycache__/
*.egg-info/
.pytest_cache/
dist/
"""

INIT: Final = '''\
"""The $name service."""

from .service import $cls

__all__ = ["$cls"]
'''

MAIN: Final = '''\
"""`python -m $package` (and the `$name` script) run the service."""

from __future__ import annotations

from .service import $cls


def main() -> None:
    """Serve until Ctrl-C or SIGTERM."""
    $cls().start()


if __name__ == "__main__":
    main()
'''

SERVICE: Final = '''\
"""The $name service: its exposed methods are its JSON-RPC API."""

from __future__ import annotations

import gemstone_aio as gemstone


class $cls(gemstone.MicroService):
    """$name: add your methods here."""

    name = "$name"
    port = 8000

    @gemstone.exposed_method()
    async def say_hello(self, name: str = "world") -> str:
        """Greet ``name``."""
        return f"hello {name}"

    @gemstone.exposed_method()
    def add(self, a: int, b: int) -> int:
        """Add two integers (a plain ``def`` method runs in the service's thread pool)."""
        return a + b
'''

TESTS: Final = '''\
"""Tests of the $name service: direct calls, and calls over real HTTP."""

from __future__ import annotations

import pytest

from gemstone_aio.client import InvalidParamsError
from gemstone_aio.testing import ServiceKit
from $package.service import $cls


async def test_say_hello_called_directly() -> None:
    assert await $cls().say_hello("ann") == "hello ann"


async def test_methods_over_http(gemstone_services: ServiceKit) -> None:
    (service,) = await gemstone_services.serve($cls())
    client = gemstone_services.client(service)
    assert await client.call("say_hello", name="bob") == "hello bob"
    assert await client.call("say_hello") == "hello world"
    assert await client.call("add", 2, 3) == 5


async def test_bad_params_are_rejected(gemstone_services: ServiceKit) -> None:
    (service,) = await gemstone_services.serve($cls())
    with pytest.raises(InvalidParamsError):
        await gemstone_services.client(service).call("add", a="two", b=3)
'''

FILES: Final = {
    "pyproject.toml": PYPROJECT,
    "README.md": README,
    ".gitignore": GITIGNORE,
    "src/$package/__init__.py": INIT,
    "src/$package/__main__.py": MAIN,
    "src/$package/service.py": SERVICE,
    "tests/test_service.py": TESTS,
}
"""Relative path template → content template."""
