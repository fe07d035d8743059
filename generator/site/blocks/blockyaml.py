"""The YAML of the site's fenced blocks (```` ```atlas ````, ```` ```atlas-layers ````,
```` ```patch-results ````): loaded safely, with the source line of every key and list item so
errors can name ``file:line`` exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from generator.errors import ContentError, closest

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class BlockYaml:
    """A block's YAML: ``data`` as loaded, ``source`` (the page) and ``line`` (the fence's line);
    ``lines`` maps a key path (``("tour", 2, "rect")``) to its line in the page."""

    data: Any
    source: str
    line: int
    lines: dict[Path_, int] = field(default_factory=dict)

    def where(self, *path: str | int) -> str:
        """``file:line`` of the deepest known prefix of ``path`` (the fence line if none)."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.lines:
                return f"{self.source}:{self.lines[path[:end]]}"
        return f"{self.source}:{self.line}"


def load_block(text: str, *, source: str, line: int, kind: str, keys: str) -> BlockYaml:
    """Parse a block's YAML (``line``: the fence line; the YAML starts on the next line).

    Raises ContentError for invalid YAML (at its line) and for anything but a mapping.
    """
    try:
        data = yaml.load(text, Loader=_Loader)  # a safe loader (C if available)
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = line + 1 + (mark.line if mark is not None else 0)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ContentError(
            f"invalid YAML in an {kind} block: {problem}",
            where=f"{source}:{at}",
            expected=f"'key: value' lines ({keys})",
            fix="fix the YAML; quote captions that contain ':' or start with '*'",
        ) from err
    if not isinstance(data, dict):
        raise ContentError(
            f"an {kind} block must hold YAML keys",
            where=f"{source}:{line}",
            expected=keys,
            got=repr(data),
            fix=f"write 'key: value' lines inside the {kind} block",
        )
    lines: dict[Path_, int] = {}
    _collect(node, (), line + 1, lines)
    return BlockYaml(data, source, line, lines)


def _collect(node: Any, path: Path_, first: int, lines: dict[Path_, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                lines[(*path, key.value)] = first + key.start_mark.line
                _collect(value, (*path, key.value), first, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = first + item.start_mark.line
            _collect(item, (*path, index), first, lines)


def check_keys(
    mapping: Mapping[Any, Any], allowed: Mapping[str, str], where: str, what: str
) -> None:
    """Raise a ContentError for the first key of ``mapping`` not in ``allowed`` (did you mean)."""
    for key in mapping:
        if key not in allowed:
            guess = closest(str(key), allowed)
            raise ContentError(
                f"unknown {what} key {key!r}" + (f" (did you mean {guess!r}?)" if guess else ""),
                where=where,
                expected="one of " + ", ".join(allowed),
                fix=f"rename it to {guess!r}" if guess else "remove it",
            )
