"""TOML text for spec tables that a program writes (tomli-w is not a dependency).

Used where atlas specs are generated rather than written by hand: the scaled-down demo build of
the tests (tests/site/demokit.py) and the class-atlas benchmark (bench/class_atlases.py).
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any


def dump_toml(tables: dict[str, Any]) -> str:
    """``tables`` (two levels: ``[kind.<id>]`` tables, as atlases.toml holds) as TOML: scalars,
    arrays and inline tables, lists of tables as ``[[kind.<id>.<key>]]``.

    Raises ValueError when the text does not parse back to ``tables`` (a value TOML cannot
    hold, e.g. None).
    """
    lines: list[str] = []
    for kind, entries in tables.items():
        for name, table in entries.items():
            head = f"{_key(kind)}.{_key(name)}"
            arrays = {k: v for k, v in table.items() if _is_table_array(v)}
            lines.append(f"[{head}]")
            lines += [f"{_key(k)} = {_value(v)}" for k, v in table.items() if k not in arrays]
            lines.append("")
            for key, items in arrays.items():
                for item in items:
                    lines.append(f"[[{head}.{_key(key)}]]")
                    lines += [f"{_key(k)} = {_value(v)}" for k, v in item.items()]
                    lines.append("")
    text = "\n".join(lines)
    if tomllib.loads(text) != tables:
        raise ValueError("dump_toml: the TOML written does not parse back to the tables given")
    return text


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string (\uXXXX escapes included)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise ValueError(f"no TOML for {value!r}")
