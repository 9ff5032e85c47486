"""The public surface: everything in ``__all__`` exists, is documented, and is sorted."""

from __future__ import annotations

import gemstone_aio


def test_all_is_sorted_and_complete() -> None:
    """``__all__`` is sorted, has no duplicates, and every name resolves."""
    names = gemstone_aio.__all__
    assert list(names) == sorted(names)
    assert len(set(names)) == len(names)
    for name in names:
        assert hasattr(gemstone_aio, name), name


def test_public_names_have_docstrings() -> None:
    """Every exported class and function has a docstring."""
    for name in gemstone_aio.__all__:
        if name.startswith("__"):
            continue
        member = getattr(gemstone_aio, name)
        assert (member.__doc__ or "").strip(), name


def test_version() -> None:
    """The version is a string that pyproject reads too."""
    assert isinstance(gemstone_aio.__version__, str)
    assert gemstone_aio.__version__.count(".") >= 2
