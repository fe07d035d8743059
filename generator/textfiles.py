"""The text files users write (Markdown pages, ``atlas.toml``, ``atlases.toml``, ``.bib``,
a committed ``results.json``), read with limits.

Every one is read by :func:`read_text`: at most a documented number of bytes (so a runaway
file fails at once instead of taking minutes and gigabytes), UTF-8 (a leading byte-order mark,
which some editors write, is dropped), and no NUL character (never meaningful in text; it would
be copied into the pages). TOML is parsed by :func:`load_toml`: the same reading, then
``tomllib``, with arrays and inline tables nested at most :data:`MAX_NESTING` deep. Each
problem is an :class:`~generator.errors.AtlasError` of the caller's class naming the file (and
line), the limit and the fix; ``docs/ARCHITECTURE.md`` ("Bad input") lists them.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from generator.errors import AtlasError, ConfigError, excerpt

#: Largest Markdown page: 2 MB, ~20x the source of the longest Distill article (Activation
#: Atlas, ~100 KB); a 2 MB page renders in ~9 s, a 50 MB one took 109 s and 674 MB.
MAX_PAGE_BYTES = 2_000_000

#: Largest ``atlas.toml`` / ``atlases.toml``: specs are a few KB.
MAX_TOML_BYTES = 1_000_000

#: Largest ``.bib`` file: shared bibliographies (an anthology export) reach several MB.
MAX_BIB_BYTES = 20_000_000

#: Largest patch-experiment results file (``results.json``, committed or computed): a few KB
#: per pair of classes.
MAX_RESULTS_BYTES = 10_000_000

#: Deepest nesting of lists and mappings in front matter, blocks and TOML: the deepest the
#: project reads (a tour stop's highlight rectangle, a patch icon's query) is 5 levels.
MAX_NESTING = 32

#: The UTF-8 byte-order mark.
BOM = "\ufeff"


def read_text(
    path: Path,
    *,
    limit: int,
    error: type[AtlasError],
    kind: str = "file",
) -> str:
    """The text of ``path``: at most ``limit`` bytes, UTF-8 (a leading byte-order mark
    dropped), no NUL character. Raises ``error`` (e.g. ContentError) naming the file, and the
    line of the first bad byte; ``kind`` names the file in messages ("page", "bibliography")."""
    try:
        with path.open("rb") as file:
            data = file.read(limit + 1)  # never more, whatever the file claims to be
    except OSError as err:
        raise error(f"cannot read the {kind}: {err.strerror}", where=str(path)) from err
    if len(data) > limit:
        raise error(
            f"the {kind} is too large",
            where=str(path),
            expected=f"at most {limit:,} bytes",
            got=_size_of(path, limit),
            fix=f"split the {kind} into smaller ones (the limit guards against runaway files)",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line, column = _position(data, err.start)
        raise error(
            f"the {kind} is not UTF-8 text",
            where=f"{path}:{line}",
            expected="UTF-8 text",
            got=f"the byte 0x{data[err.start]:02x} at line {line}, column {column}",
            fix="save the file as UTF-8 (most editors: 'Save with encoding')",
        ) from None
    if text.startswith(BOM):
        text = text[1:]
    nul = text.find("\0")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise error(
            f"the {kind} holds a NUL character",
            where=f"{path}:{line}",
            expected="text without NUL (\\0) characters",
            got=excerpt(repr(text[max(0, nul - 20) : nul + 20])),
            fix="delete the NUL character (the file may be binary, or damaged)",
        )
    return text


def _size_of(path: Path, limit: int) -> str:
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    return f"{size:,} bytes" if size > limit else f"more than {limit:,} bytes"


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """(1-based line, 1-based column in bytes) of ``offset`` in ``data``."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, offset - line_start + 1


def load_toml(
    path: Path, *, error: type[AtlasError] = ConfigError, limit: int = MAX_TOML_BYTES
) -> tuple[str, dict[str, Any]]:
    """(text, parsed document) of a TOML file read by :func:`read_text`. Raises ``error`` for
    invalid TOML and for arrays or inline tables nested deeper than :data:`MAX_NESTING`."""
    text = read_text(path, limit=limit, error=error)
    return text, parse_toml(text, where=str(path), error=error)


def parse_toml(text: str, *, where: str, error: type[AtlasError] = ConfigError) -> dict[str, Any]:
    """``text`` parsed as TOML (see :func:`load_toml`); ``where`` names it in errors."""
    try:
        raw = tomllib.loads(text)
    except RecursionError:
        raise _too_deep(where, error) from None
    except tomllib.TOMLDecodeError as err:
        raise error(
            f"not valid TOML: {excerpt(str(err), 200)}",
            where=where,
            expected="TOML (https://toml.io)",
            fix="fix the syntax at the line and column named above",
        ) from None
    except ValueError as err:  # int() of a number over 4300 digits
        raise error(
            f"a value of the TOML cannot be read: {excerpt(str(err), 200)}",
            where=where,
            expected="numbers of at most 4300 digits",
            fix="shorten the number",
        ) from None
    if nesting(raw) > MAX_NESTING:
        raise _too_deep(where, error)
    return raw


def nesting(value: Any) -> int:
    """How deep lists and mappings nest in ``value`` (a scalar: 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list | tuple):
            stack.extend((child, depth + 1) for child in item)
        else:
            continue
        deepest = max(deepest, depth + 1)
    return deepest


def _too_deep(where: str, error: type[AtlasError]) -> AtlasError:
    return error(
        "arrays or tables are nested too deeply",
        where=where,
        expected=f"at most {MAX_NESTING} levels of arrays and inline tables",
        fix="flatten the value (no setting of the project nests more than a few levels)",
    )
