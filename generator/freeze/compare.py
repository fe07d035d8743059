"""Recipes compared: plain JSON data, and what changed between two (their key:
:func:`generator.keys.recipe_key`).

Free of the compute engine's modules, so the compute engine may use it
(:mod:`generator.freeze.resolve`) without an import cycle.
"""

from __future__ import annotations

import json
from typing import Any

#: Longest excerpt of a value :func:`changes` prints.
EXCERPT = 60


def changes(old: Any, new: Any, prefix: str = "") -> list[str]:
    """What differs between two recipes, as ``dotted.key: old -> new`` lines (values cut to a
    short excerpt; a key present on one side only shows ``(none)`` on the other)."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old:
                found.append(f"{path}: (none) -> {_excerpt(new[key])}")
            elif key not in new:
                found.append(f"{path}: {_excerpt(old[key])} -> (none)")
            else:
                found.extend(changes(old[key], new[key], path))
        return found
    if old == new:
        return []
    return [f"{prefix or '(recipe)'}: {_excerpt(old)} -> {_excerpt(new)}"]


def plain(value: Any) -> Any:
    """``value`` as plain JSON data (tuples as lists, paths as strings), as a manifest holds it."""
    return json.loads(json.dumps(value, default=_json_default, sort_keys=True))


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    return str(value)  # paths


def _excerpt(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= EXCERPT else text[: EXCERPT - 3] + "..."
