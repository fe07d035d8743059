"""generator.checks: the value checks every schema shares, with one way of saying what was
expected."""

from __future__ import annotations

from typing import Any

import pytest

from generator.checks import boolean, choice, integer, number, string, text


@pytest.mark.parametrize(
    ("check", "good", "bad", "expected"),
    [
        (integer(1), [1, 10**9], [0, 1.0, True, "1", None], "an integer >= 1"),
        (integer(0, 100), [0, 100], [-1, 101, False], "an integer from 0 to 100"),
        (integer(1, 1 << 20), [5], [0], "an integer from 1 to 1_048_576"),
        (number(), [0, -2.5, 7], [True, "1", None], "a number"),
        (number(0.0, 10.0), [0, 10, 2.5], [-0.1, 10.5], "a number from 0.0 to 10.0"),
        (number(1.0), [1, 3.5], [0.99], "a number >= 1.0"),
        (boolean, [True, False], [1, 0, "true"], "true or false"),
        (string, ["", "x"], [1, None], "a string"),
        (text, ["x", " y "], ["", "   ", 3], "a non-empty string"),
        (choice("jpg", "png"), ["jpg", "png"], ["gif", ["jpg"], None], '"jpg" | "png"'),
    ],
)
def test_checks_accept_convert_and_say_what_they_expect(
    check: Any, good: list[Any], bad: list[Any], expected: str
) -> None:
    for value in good:
        assert check(value) == value
    for value in bad:
        with pytest.raises(ValueError) as info:
            check(value)
        assert str(info.value) == expected


def test_numbers_become_floats_and_integers_stay_integers() -> None:
    assert isinstance(number()(3), float) and number()(3) == 3.0
    assert type(integer(0)(3)) is int
