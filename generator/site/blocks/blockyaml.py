"""The YAML of the site's fenced blocks (```` ```atlas ````, ```` ```atlas-layers ````,
```` ```patch-results ````): loaded safely, with the source line of every key and list item so
errors can name ``file:line`` exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from generator.errors import ContentError, closest, shown
from generator.site.yamldoc import KeyPath, YamlProblem, load_yaml


@dataclass(frozen=True)
class BlockYaml:
    """A block's YAML: ``data`` as loaded, ``source`` (the page) and ``line`` (the fence's line);
    ``lines`` maps a key path (``("tour", 2, "rect")``) to its line in the page."""

    data: Any
    source: str
    line: int
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def where(self, *path: str | int) -> str:
        """``file:line`` of the deepest known prefix of ``path`` (the fence line if none)."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.lines:
                return f"{self.source}:{self.lines[path[:end]]}"
        return f"{self.source}:{self.line}"


def load_block(text: str, *, source: str, line: int, kind: str, keys: str) -> BlockYaml:
    """Parse a block's YAML (``line``: the fence line; the YAML starts on the next line) with
    the site's YAML loader (:mod:`generator.site.yamldoc`: no aliases, bounded nesting).

    Raises ContentError for invalid YAML (at its line) and for anything but a mapping.
    """
    try:
        doc = load_yaml(text)
    except YamlProblem as err:
        raise ContentError(
            f"invalid YAML in an {kind} block: {err.problem}",
            where=f"{source}:{line + 1 + err.line}",
            expected=f"'key: value' lines ({keys})",
            fix=err.fix or "fix the YAML; quote captions that contain ':' or start with '*'",
        ) from None
    data = doc.data
    if not isinstance(data, dict):
        raise ContentError(
            f"an {kind} block must hold YAML keys",
            where=f"{source}:{line}",
            expected=keys,
            got=shown(data),
            fix=f"write 'key: value' lines inside the {kind} block",
        )
    lines = {path: line + 1 + at for path, at in doc.lines.items()}
    return BlockYaml(data, source, line, lines)


def check_keys(
    mapping: Mapping[Any, Any], allowed: Mapping[str, str], where: str, what: str
) -> None:
    """Raise a ContentError for the first key of ``mapping`` not in ``allowed`` (did you mean)."""
    for key in mapping:
        if key not in allowed:
            guess = closest(str(key), allowed)
            raise ContentError(
                f"unknown {what} key {shown(key)}"
                + (f" (did you mean {guess!r}?)" if guess else ""),
                where=where,
                expected="one of " + ", ".join(allowed),
                fix=f"rename it to {guess!r}" if guess else "remove it",
            )
