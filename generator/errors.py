"""Errors that say what went wrong, where, what was expected, and how to fix it.

Every failure a user can cause (a broken config, an unknown layer, missing weights, a bad
Markdown directive, a corrupt image) is raised as an :class:`AtlasError`. The CLI prints its
message and exits with its ``exit_code``; nothing else in the package prints tracebacks at users.
"""

from __future__ import annotations

import contextlib
import difflib
import itertools
import os
import reprlib
from collections.abc import Iterable

#: The most characters of a value an error shows (:func:`shown`: ``got`` and values quoted in
#: messages): a value as long as a whole file (a 2 GB expanded YAML alias once) must not
#: become the message.
VALUE_LIMIT = 80

#: The most characters of any ``got`` (a value already shown, or a description that names
#: files: "also declared at <path>:3"): the cap every error applies, whatever its caller did.
GOT_LIMIT = 240

#: The most characters of any one line of a message (paths and lists of names included).
LINE_LIMIT = 1000


def excerpt(text: str, limit: int = VALUE_LIMIT) -> str:
    """``text`` when it has at most ``limit`` characters, else its start and end around
    ``...`` and its length (``'aaaa ... aa' (12,345 characters)``)."""
    if len(text) <= limit:
        return text
    head, tail = text[: limit * 2 // 3], text[-(limit // 4) :]
    return f"{head} ... {tail} ({len(text):,} characters)"


_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = VALUE_LIMIT
_SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxdict = _SHOWN.maxset = _SHOWN.maxfrozenset = 6
_SHOWN.maxlevel = 2


def shown(value: object) -> str:
    """A value as an error shows it: its ``repr``, cut to :data:`VALUE_LIMIT` characters. A
    big value (a long text, a large or deep nesting) is abbreviated by :mod:`reprlib` before
    anything is built, so showing it costs little whatever its size."""
    if _size(value, 10_000) < 10_000:
        return excerpt(repr(value))
    return excerpt(_SHOWN.repr(value))


def _size(value: object, budget: int) -> int:
    """Characters and items in ``value``, counted up to ``budget`` (no recursion)."""
    count, stack = 0, [value]
    while stack and count < budget:
        item = stack.pop()
        if isinstance(item, str | bytes):
            count += len(item) + 1
        elif isinstance(item, dict):
            count += 1
            stack.extend(itertools.islice(item.items(), budget))
        elif isinstance(item, list | tuple | set | frozenset):
            count += 1
            stack.extend(itertools.islice(item, budget))
        else:
            count += 1
    return count


class AtlasError(Exception):
    """A user-facing failure.

    Attributes:
        what: one sentence saying what is wrong.
        where: the file (``path:line``), config key or object the problem is in.
        expected: what would have been valid.
        got: the offending value, as the user wrote it (callers format values with
            :func:`shown`; at most :data:`GOT_LIMIT` characters are kept in any case).
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
        self.got = None if got is None else excerpt(got, GOT_LIMIT)
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
        return "\n".join(excerpt(line, LINE_LIMIT) for line in "\n".join(lines).split("\n"))


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
    listed = ", ".join(valid[:60]) + (", ..." if len(valid) > 60 else "")
    return UnknownNameError(
        f"unknown {kind} {shown(name)}" + (f" ({hint})" if hint else ""),
        where=where,
        expected=f"one of: {listed}",
        got=name,
        fix=fix or (f"use {guess!r}" if guess else None),
    )


#: ``errno`` values of a file system that cannot take what is written: full, over quota,
#: read-only, or not writable by this user.
STORAGE_ERRNOS = {28: "no space left", 122: "over the disk quota", 30: "a read-only file system"}
PERMISSION_ERRNOS = {13: "permission denied", 1: "operation not permitted"}


def storage_error(err: OSError) -> SetupError | None:
    """The :class:`SetupError` of an ``OSError`` from a full, read-only or unwritable folder
    (naming the folder, its free space and the fix), or None for other errors."""
    import os
    import shutil

    reason = STORAGE_ERRNOS.get(err.errno or 0) or PERMISSION_ERRNOS.get(err.errno or 0)
    if reason is None:
        return None
    path = err.filename2 if err.filename2 is not None else err.filename
    folder = os.path.dirname(os.fsdecode(path)) if path is not None else None
    folder = _kept_folder(folder)
    facts = []
    if err.filename2 is not None and os.path.isfile(err.filename):
        facts.append(f"{os.path.getsize(err.filename) / 1e6:.1f} MB needed for {err.filename}")
    if folder:
        with contextlib.suppress(OSError):
            facts.append(f"{shutil.disk_usage(folder).free / 1e6:.1f} MB free there now")
    shown = f" ({'; '.join(facts)})" if facts else ""
    return no_room(folder, reason + shown, full=err.errno in (28, 122))


def _kept_folder(folder: str | None) -> str | None:
    """The nearest existing folder at or above ``folder`` that is not a writer's temporary
    (``.name.tmp``, ``.cut-...``: gone once the write failed)."""
    import os

    while folder and (not os.path.isdir(folder) or os.path.basename(folder).startswith(".")):
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return folder


def no_room(folder: str | None, reason: str, *, full: bool) -> SetupError:
    """A write that failed for lack of space or permission in ``folder``."""
    folder = _kept_folder(folder)
    return SetupError(
        f"cannot write: {reason}",
        where=folder,
        fix=(
            "free some space on that disk, or set [paths] cache / output in atlas.toml to a"
            " folder on a larger one"
            if full
            else "make the folder writable, or set [paths] cache / output to a writable folder"
        )
        + "; nothing was replaced (the previous site and cache are intact) and the next run"
        " resumes",
    )
