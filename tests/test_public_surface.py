"""The public surface: one ``__all__`` per public package, complete, sorted and documented.

Public packages are the top level and the documented subpackages; every other module is
private (``_name.py``). As httpx does, each package's ``vars()`` is compared with its
``__all__``, so a name cannot become public by accident; griffe (the library the docs
build uses) reads every exported name's docstring, constants included.
"""

from __future__ import annotations
import __future__

import importlib
import pkgutil
import types
from pathlib import Path

import griffe
import pytest

import gemstone_aio
from gemstone_aio._compat import LEGACY_MODULES

ROOT = Path(__file__).resolve().parents[1]

PUBLIC = [
    "gemstone_aio",
    "gemstone_aio.auth",
    "gemstone_aio.cli",
    "gemstone_aio.client",
    "gemstone_aio.cluster",
    "gemstone_aio.config",
    "gemstone_aio.discovery",
    "gemstone_aio.errors",
    "gemstone_aio.event",
    "gemstone_aio.observability",
    "gemstone_aio.protocol",
    "gemstone_aio.registry",
    "gemstone_aio.selfdescription",
    "gemstone_aio.server",
    "gemstone_aio.testing",
    "gemstone_aio.tls",
]


def _all_modules() -> list[str]:
    found = ["gemstone_aio"]
    for info in pkgutil.walk_packages(gemstone_aio.__path__, "gemstone_aio."):
        found.append(info.name)
    return found


def test_every_module_is_public_or_private() -> None:
    """A module is either a public package listed here or private (a ``_`` in its path)."""
    for name in _all_modules():
        if name in PUBLIC or name == "gemstone_aio.__main__":
            continue
        assert any(part.startswith("_") for part in name.split(".")[1:]), (
            f"{name} is neither private (_name.py) nor a documented public package"
        )


def _isort_key(name: str) -> tuple[int, str]:
    # The order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions.
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


def _ours(value: object) -> bool:
    # Names imported from elsewhere (typing.Any, ...) are not part of the surface, nor
    # are the public packages and the old paths (attributes of their parent once imported).
    if isinstance(value, types.ModuleType):  # old paths, once imported, are attributes too
        return value.__name__ not in PUBLIC and value.__name__ not in LEGACY_MODULES
    origin = getattr(value, "__module__", None)
    return not isinstance(origin, str) or origin.startswith("gemstone_aio")


@pytest.mark.parametrize("name", PUBLIC)
def test_all_is_sorted_and_matches_vars(name: str, package: griffe.Module) -> None:
    """Every public attribute is exported and every exported name exists."""
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported, key=_isort_key), f"{name}.__all__ is not sorted"
    assert len(set(exported)) == len(exported)
    for member in exported:
        assert hasattr(module, member), f"{name}.{member} is exported but missing"
    if hasattr(module, "__path__"):  # a package re-exports from its private modules
        public = {
            key
            for key, value in vars(module).items()
            if not key.startswith("_") and value is not __future__.annotations and _ours(value)
        }
    else:  # a plain module: what it defines itself (its imports are not its surface)
        node = _griffe_node(package, name)
        public = {
            key
            for key, member in node.members.items()
            if not key.startswith("_") and not isinstance(member, griffe.Alias)
        }
    assert public <= set(exported), f"{name} has public names not in __all__: " + ", ".join(
        sorted(public - set(exported))
    )


@pytest.fixture(scope="module")
def package() -> griffe.Module:
    """The package as griffe (the docs' reader) sees it."""
    loaded = griffe.load("gemstone_aio", search_paths=[str(ROOT / "src")], resolve_aliases=True)
    assert isinstance(loaded, griffe.Module)
    return loaded


def _griffe_node(package: griffe.Module, name: str) -> griffe.Object | griffe.Alias:
    node: griffe.Object | griffe.Alias = package
    for part in name.split(".")[1:]:
        node = node.members[part]
    return node


@pytest.mark.parametrize("name", PUBLIC)
def test_every_exported_name_has_a_docstring(name: str, package: griffe.Module) -> None:
    """Classes, functions and constants alike: what the reference page shows is written."""
    module = importlib.import_module(name)
    node = _griffe_node(package, name)
    missing = []
    for member in module.__all__:
        if member.startswith("__"):
            continue
        found = node.members.get(member)
        target = found.final_target if isinstance(found, griffe.Alias) else found
        if target is None or target.docstring is None or not target.docstring.value.strip():
            missing.append(member)
    assert not missing, f"{name}: no docstring for " + ", ".join(missing)


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_package_is_in_the_reference(name: str) -> None:
    """docs/reference.md renders each public package (mkdocstrings ``:::`` blocks)."""
    reference = (ROOT / "docs" / "reference.md").read_text()
    assert f"::: {name}\n" in reference, f"docs/reference.md lacks '::: {name}'"


def test_version() -> None:
    """The version is a string that pyproject reads too."""
    assert isinstance(gemstone_aio.__version__, str)
    assert gemstone_aio.__version__.count(".") >= 2
