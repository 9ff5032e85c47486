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
test = ["pytest>=8", "pytest-asyncio>=0.23"]

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

## Run it

```
pip install -e '.[test]'
gemstone run $package.service:$cls --port 8000
# or, restarting on every code change while you work on it:
gemstone run $package.service:$cls --port 8000 --reload
```

## Call it

```
gemstone call_raw http://127.0.0.1:8000/api say_hello name=world
gemstone call_raw http://127.0.0.1:8000/api add a:=2 b:=3
gemstone describe http://127.0.0.1:8000/api
```

## Test it

```
python -m pytest
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

from gemstone_aio.client import InvalidParamsError, RemoteService
from gemstone_aio.testing import serving
from $package.service import $cls


async def test_say_hello_called_directly() -> None:
    assert await $cls().say_hello("ann") == "hello ann"


async def test_methods_over_http() -> None:
    async with serving($cls()) as service, RemoteService(service.accessible_at) as client:
        assert await client.call("say_hello", name="bob") == "hello bob"
        assert await client.call("say_hello") == "hello world"
        assert await client.call("add", 2, 3) == 5


async def test_bad_params_are_rejected() -> None:
    async with serving($cls()) as service, RemoteService(service.accessible_at) as client:
        with pytest.raises(InvalidParamsError):
            await client.call("add", a="two", b=3)
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
