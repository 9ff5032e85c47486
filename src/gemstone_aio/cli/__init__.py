"""The ``gemstone`` command line (typer).

``gemstone_aio.cli:main`` is the console-script entry point; ``python -m gemstone_aio``
runs it too. Each command lives in its own module; this package only assembles them.
"""

from __future__ import annotations

from ._app import app, main
from ._output import ExitCode

__all__ = ["ExitCode", "app", "main"]
