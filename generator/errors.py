"""Errors that say what went wrong, where, what was expected, and how to fix it.

Every failure a user can cause (a broken config, an unknown layer, missing weights, a bad
Markdown directive, a corrupt image) is raised as an :class:`AtlasError`. The CLI prints its
message and exits with its ``exit_code``; nothing else in the package prints tracebacks at users.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable


class AtlasError(Exception):
    """A user-facing failure.

    Attributes:
        what: one sentence saying what is wrong.
        where: the file (``path:line``), config key or object the problem is in.
        expected: what would have been valid.
        got: the offending value, as the user wrote it.
        fix: the exact action (command, option, edit) that resolves it.
        exit_code: the process exit status the CLI uses (1 = bad content, 2 = bad setup/usage).
    """

    exit_code: int = 1

    def __init__(
        self,
        what: str,
        *,
        where: str | None = None,
        expected: str | None = None,
        got: str | None = None,
        fix: str | None = None,
        exit_code: int | None = None,
    ) -> None:
        self.what = what
        self.where = where
        self.expected = expected
        self.got = got
        self.fix = fix
        if exit_code is not None:
            self.exit_code = exit_code
        super().__init__(self.message())

    def message(self) -> str:
        head = f"{self.where}: {self.what}" if self.where else self.what
        lines = [head]
        if self.expected is not None:
            lines.append(f"  expected: {self.expected}")
        if self.got is not None:
            lines.append(f"  got: {self.got}")
        if self.fix is not None:
            lines.append(f"  fix: {self.fix}")
        return "\n".join(lines)


def where_at(file: str | os.PathLike[str], line: int | None) -> str:
    """An error's ``where`` in a file: ``path:line``, or the path when the line is unknown."""
    return f"{os.fspath(file)}:{line}" if line else os.fspath(file)


class ConfigError(AtlasError):
    """A problem in atlas.toml or an atlas spec file."""


class ContentError(AtlasError):
    """A problem in a publication's content: front matter, directives, links, assets."""


class SetupError(AtlasError):
    """Something the machine lacks: weights, a data set, a tool. Exit code 2."""

    exit_code = 2


class WeightsError(SetupError):
    """Model weights are missing or do not fit the architecture."""


class UnknownNameError(AtlasError):
    """An unknown model, layer, class or atlas id. Exit code 2."""

    exit_code = 2


class BudgetError(AtlasError):
    """The built site exceeds its configured byte or file budget."""


class DeployError(AtlasError):
    """``atlas deploy`` cannot publish: no git repository, no such remote, a refused push.
    Exit code 2."""

    exit_code = 2


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The choice most similar to ``name`` (for "did you mean"), or None if none is close."""
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return matches[0] if matches else None


def unknown_name(
    kind: str,
    name: str,
    choices: Iterable[str],
    *,
    where: str | None = None,
    fix: str | None = None,
) -> UnknownNameError:
    """An :class:`UnknownNameError` listing the valid names and suggesting the closest one."""
    valid = list(choices)
    guess = closest(name, valid)
    hint = f"did you mean {guess!r}?" if guess else None
    shown = ", ".join(valid[:60]) + (", ..." if len(valid) > 60 else "")
    return UnknownNameError(
        f"unknown {kind} {name!r}" + (f" ({hint})" if hint else ""),
        where=where,
        expected=f"one of: {shown}",
        got=name,
        fix=fix or (f"use {guess!r}" if guess else None),
    )
