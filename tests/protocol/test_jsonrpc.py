"""Serialising answers: ``success_answer`` never lets a non-finite number through."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from gemstone_aio.protocol import _jsonrpc as jsonrpc


class Measure(float):
    """A float subclass (as numpy's float64 is): looked at like any other value."""


@pytest.mark.parametrize(
    "result",
    [
        "hello",
        "Infinity and NaN, as words",
        0,
        10**40,
        True,
        None,
        1.5,
        -0.0,
        Measure(2.5),
        {"values": [1.0, 2.0], "label": "NaN"},
        [1, "x", None],
    ],
)
def test_finite_results_are_answered(result: Any) -> None:
    answer = jsonrpc.success_answer(7, result)
    decoded = json.loads(answer)
    assert decoded == {"jsonrpc": "2.0", "result": result, "id": 7}


@pytest.mark.parametrize(
    "result",
    [
        math.inf,
        -math.inf,
        math.nan,
        Measure("inf"),
        {"nested": [1.0, math.nan]},
        [math.inf],
        ("tuple", -math.inf),
    ],
)
def test_non_finite_results_are_refused(result: Any) -> None:
    with pytest.raises(ValueError, match="infinite or NaN"):
        jsonrpc.success_answer(7, result)


@pytest.mark.parametrize(
    ("max_depth", "expected"),
    [(None, math.inf), (0, 0), (128, 256)],
)
def test_walk_above_is_twice_the_depth(max_depth: int | None, expected: float) -> None:
    assert jsonrpc.walk_above(max_depth) == expected
    # Bodies up to the threshold are never walked; one byte more is.
    if max_depth is not None:
        assert jsonrpc.depth_to_check(int(expected), max_depth) is None
        assert jsonrpc.depth_to_check(int(expected) + 1, max_depth) == max_depth
