"""Reading Google-style docstrings (with griffe) for the self-description."""

from __future__ import annotations

import pytest

from gemstone_aio.selfdescription._docstrings import Docstring, parse_docstring


@pytest.mark.parametrize("doc", [None, "", "   \n  "])
def test_no_docstring_gives_empty_parts(doc: str | None) -> None:
    """No docstring: nothing to say."""
    assert parse_docstring(doc) == Docstring()


def test_a_full_google_docstring() -> None:
    """Summary, prose, Args: (with types, continuations, stars) and Returns: are split;
    other sections stay in the description."""

    def f() -> None:
        """Do the thing
        in two lines.

        More about it.

        Args:
            name (str): The name.
            count: How many,
                at most ten.

                Still about count.
            *values: Extra values.
            **options (int): Tuning knobs.

        Returns:
            int: The total,
            rounded.

        Raises:
            ValueError: When it cannot.

        Example:
            f(1)
        """

    parsed = parse_docstring(f.__doc__)
    assert parsed.summary == "Do the thing in two lines."
    assert parsed.description == (
        "Do the thing\nin two lines.\n\nMore about it.\n\n"
        "Raises:\n    ValueError: When it cannot.\n\nExample:\n    f(1)"
    )
    assert parsed.params == {
        "name": "The name.",
        "count": "How many, at most ten. Still about count.",
        "values": "Extra values.",
        "options": "Tuning knobs.",
    }
    assert parsed.returns == "The total, rounded."  # the type is in the result's schema


def test_other_spellings_of_the_args_header() -> None:
    """Arguments:, Parameters: and Keyword Args: are read like Args:."""
    doc = """Summary.

    Arguments:
        a: first.

    Keyword Args:
        b: second.
    """
    assert parse_docstring(doc).params == {"a": "first.", "b": "second."}
    assert parse_docstring(doc).description == "Summary."


def test_a_line_that_only_looks_like_a_header_stays_prose() -> None:
    """A "Word:" line that is no known section header is kept as prose."""
    doc = """Summary.

    Beware:
        this is prose.
    """
    parsed = parse_docstring(doc)
    assert parsed.description == "Summary.\n\nBeware:\n    this is prose."
    assert parsed.params == {}
