"""Value checks shared by every schema of the project (``atlas.toml``, atlas and experiment
tables): each takes a parsed TOML value and returns it (converted) or raises
``ValueError(expected)``, the expectation a message shows after "expected"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _bound(value: float) -> str:
    return f"{value:_}" if isinstance(value, int) and abs(value) >= 10_000 else f"{value}"


def integer(low: int, high: int | None = None) -> Callable[[Any], int]:
    """An integer (not a bool) in ``[low, high]`` (no upper bound when ``high`` is None)."""
    expected = (
        f"an integer >= {_bound(low)}"
        if high is None
        else f"an integer from {_bound(low)} to {_bound(high)}"
    )

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(expected)
        if value < low or (high is not None and value > high):
            raise ValueError(expected)
        return value

    return check


def number(low: float | None = None, high: float | None = None) -> Callable[[Any], float]:
    """A number (int or float, not a bool) in ``[low, high]``, as a float."""
    if low is None and high is None:
        expected = "a number"
    elif high is None:
        expected = f"a number >= {_bound(low)}"  # type: ignore[arg-type]
    elif low is None:
        expected = f"a number <= {_bound(high)}"
    else:
        expected = f"a number from {_bound(low)} to {_bound(high)}"

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(expected)
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(expected)
        return float(value)

    return check


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("true or false")
    return value


def string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a string")
    return value


def text(value: Any) -> str:
    """A string with something in it besides white space."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a non-empty string")
    return value


def choice(*choices: str) -> Callable[[Any], str]:
    """One of ``choices``."""
    expected = " | ".join(f'"{c}"' for c in choices)

    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            raise ValueError(expected)
        return value

    return check
