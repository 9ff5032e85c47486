"""Loading the service class named by ``gemstone run TARGET``."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["TargetError", "load_service_class", "watch_roots"]


class TargetError(ValueError):
    """``TARGET`` does not name a loadable service class; the message says why."""


def _split(target: str) -> tuple[str, str | None, bool]:
    """``(module or path, class name or None, is_path)``."""
    head, sep, tail = target.rpartition(":")
    if sep and tail and "/" not in tail and not tail.endswith(".py"):
        where, name = head, tail
    else:
        where, name = target, None
    is_path = where.endswith(".py") or "/" in where or "\\" in where
    return where, name, is_path


def _module_name(path: Path, root: Path) -> str | None:
    """``a.b.c`` when ``path`` is ``root/a/b/c.py`` inside packages (``__init__.py``)."""
    try:
        parts = path.relative_to(root).with_suffix("").parts
    except ValueError:
        return None
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        return None
    folder = root
    for part in parts[:-1]:
        folder = folder / part
        if not (folder / "__init__.py").is_file():
            return None
    return ".".join(parts)


def _import_path(path_text: str) -> ModuleType:
    path = Path(path_text).resolve()
    if not path.is_file():
        raise TargetError(f"no such file: {path_text}")
    # As uvicorn does, the working directory is importable: the file's own imports of
    # the project's packages (``from examples.tutorial.settings import ...``) work.
    cwd = Path.cwd().resolve()
    if str(cwd) not in sys.path:
        sys.path.insert(0, str(cwd))
    dotted = _module_name(path, cwd)
    if dotted is not None:  # a module of a package: imported by its name, like python -m
        return importlib.import_module(dotted)
    # Sibling modules of the file import as they would when it runs as a script.
    sys.path.insert(0, str(path.parent))
    name = path.stem if path.stem.isidentifier() else "_gemstone_target"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"cannot import {path_text}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _import_module(name: str) -> ModuleType:
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise TargetError(f"no module named {name!r}") from None
        raise


def load_service_class(target: str) -> type[Any]:
    """Import ``module:Class``, ``module``, ``path/to/file.py`` or ``path/to/file.py:Class``.

    Without a class name, the module must define exactly one MicroService subclass.

    Raises:
        TargetError: The target cannot be found or names no single service class.
    """
    from ..server._microservice import MicroService

    where, name, is_path = _split(target)
    if not where:
        raise TargetError(f"empty module in target {target!r}")
    module = _import_path(where) if is_path else _import_module(where)
    if name is not None:
        found = getattr(module, name, None)
        if not (inspect.isclass(found) and issubclass(found, MicroService)):
            raise TargetError(f"{where} has no MicroService subclass named {name!r}")
        return found
    candidates = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, MicroService)
        and obj.__module__ == module.__name__
        and obj.name
    ]
    if len(candidates) != 1:
        names = ", ".join(sorted(c.__qualname__ for c in candidates)) or "none"
        raise TargetError(
            f"{where} defines {len(candidates)} service classes ({names}): "
            f"name one as {where}:ClassName"
        )
    return candidates[0]


def watch_roots(target: str) -> list[Path]:
    """Directories whose ``.py`` files ``--reload`` watches for ``target``."""
    where, _, is_path = _split(target)
    if is_path:
        return [Path(where).resolve().parent]
    spec = importlib.util.find_spec(where.split(".")[0])
    if spec is not None and spec.submodule_search_locations:
        return [Path(p).resolve() for p in spec.submodule_search_locations]
    if spec is not None and spec.origin:
        return [Path(spec.origin).resolve().parent]
    return [Path.cwd()]
