"""``gemstone new``: create a service project whose tests pass out of the box."""

from __future__ import annotations

import keyword
import re
import sys
from pathlib import Path
from string import Template
from typing import Annotated

import typer

from ._output import ExitCode, fail, stdout

__all__ = ["new", "project_names"]

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def project_names(name: str) -> dict[str, str]:
    """The names used in the templates: project, package and class.

    Raises:
        ValueError: ``name`` cannot name a Python package.
    """
    if not _NAME.match(name):
        raise ValueError(
            f"project name {name!r} must start with a letter and hold only letters, "
            "digits, '_' and '-'"
        )
    package = name.replace("-", "_").lower()
    if (
        keyword.iskeyword(package)
        or package in sys.stdlib_module_names
        or package.startswith("gemstone")
    ):
        raise ValueError(f"project name {name!r} would shadow the module {package!r}")
    words = [w for w in re.split(r"[_-]+", name) if w]
    cls = "".join(w[:1].upper() + w[1:] for w in words)
    if not cls.lower().endswith("service"):
        cls += "Service"
    return {"name": name, "package": package, "cls": cls}


def new(
    name: Annotated[str, typer.Argument(help="The project (and service) name, e.g. orders.")],
    directory: Annotated[
        Path, typer.Option("--directory", "-d", help="Where to create the project folder.")
    ] = Path("."),
) -> None:
    """Create a new service project: package, service, tests, README and pyproject.

    Example:
        gemstone new orders (then follow orders/README.md)
    """
    from .._version import __version__

    try:
        names = project_names(name)
    except ValueError as exc:
        fail(str(exc), ExitCode.USAGE)
    root = directory / name
    if root.exists():
        fail(f"{root} already exists", ExitCode.USAGE)
    from ._templates import FILES

    values = {**names, "gemstone_version": __version__}
    for path_template, text in FILES.items():
        path = root / Template(path_template).substitute(values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(text).substitute(values), encoding="utf-8")
    console = stdout()
    console.print(
        f"Created {root} (service class {names['package']}.service.{names['cls']})", markup=False
    )
    console.print(
        f"Next: cd {root} && python3 -m venv .venv && . .venv/bin/activate && "
        "python -m pip install -e '.[test]' && python -m pytest",
        markup=False,
    )
