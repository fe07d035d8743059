"""``content/<publication>/atlases.toml``: the one reader of its ``[atlas.<id>]`` and
``[experiment.<id>]`` tables.

Every command that needs a publication's atlases or experiments (``build``, ``check``,
``compute``, ``quality``, experiments) reads them here: :func:`read_id_tables` opens and parses
one file and lists its ``[<kind>.<id>]`` tables with their lines; :func:`read_atlas_entries`
applies the rules every atlas table obeys wherever it is read (an id that can name a folder and
a URL, a table, ids unique across the site, no unknown top-level keys) and says whether each
atlas is a precomputed image or computed. What the keys of each kind mean is parsed by its own
spec module: :mod:`generator.site.atlases` (images), :mod:`generator.atlas.spec` (computed
atlases), :mod:`generator.experiments.spec` (experiments).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.config import key_lines
from generator.errors import ConfigError, shown
from generator.textfiles import load_toml

#: The file of a publication that declares its atlases and experiments.
SPEC_FILE = "atlases.toml"

#: An atlas id names a folder (``site/atlases/<id>/``) and appears in URLs.
ATLAS_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")

#: An experiment id names a folder (``<publication>/experiments/<id>/``).
EXPERIMENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

#: The top-level tables of an atlases.toml.
KINDS = ("atlas", "experiment")


@dataclass(frozen=True)
class IdTable:
    """One ``[<kind>.<id>]`` table of a TOML file, with the line of its header."""

    id: str
    table: Any  # a dict when well formed; callers check
    line: int | None
    where: str  # "file:line", or the file when the header's line is unknown


def read_id_tables(path: Path, kind: str) -> tuple[dict[str, Any], list[IdTable]]:
    """Parse ``path`` (an ``atlases.toml``) and list its ``[<kind>.<id>]`` tables in file
    order: ``(the whole document, the tables)``. Raises :class:`ConfigError` for invalid TOML
    or a ``kind`` key that is not a table of tables."""
    text, raw = load_toml(path)  # size, encoding and nesting limits: generator.textfiles
    tables = raw.get(kind, {})
    if not isinstance(tables, dict):
        raise ConfigError(f"'{kind}' must be a table of [{kind}.<id>] tables", where=str(path))
    lines = key_lines(text)
    found = []
    for table_id, table in tables.items():
        line = lines.get((f"{kind}.{table_id}", ""))
        found.append(IdTable(table_id, table, line, f"{path}:{line}" if line else str(path)))
    return raw, found


@dataclass(frozen=True)
class AtlasEntry:
    """One ``[atlas.<id>]`` table, checked by the rules every atlas obeys.

    Attributes:
        id: the atlas id; source: its atlases.toml; line: the table header's line there.
        table: the raw table (its keys are parsed by the spec module of its kind).
    """

    id: str
    source: Path
    line: int | None
    table: dict[str, Any]

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.line else str(self.source)

    @property
    def is_image(self) -> bool:
        """A precomputed atlas (published from its ``image``), else a computed one."""
        return "image" in self.table


def spec_files(content: Path) -> list[Path]:
    """Every publication's atlases.toml under the content folder, in name order."""
    return sorted(content.glob(f"*/{SPEC_FILE}"))


def read_atlas_entries(files: Iterable[Path]) -> tuple[dict[str, AtlasEntry], list[str]]:
    """The ``[atlas.<id>]`` tables of ``files`` by id, in file order, and warnings (unknown
    top-level keys). Raises :class:`ConfigError` for a bad id, a table that is not a table,
    or an id declared twice (ids are unique across the whole site)."""
    entries: dict[str, AtlasEntry] = {}
    warnings: list[str] = []
    for path in files:
        raw, tables = read_id_tables(path, "atlas")
        for key in sorted(set(raw) - set(KINDS)):
            warnings.append(
                f"{path}: unknown table or key {shown(key)} (atlases are [atlas.<id>] tables,"
                " patch experiments [experiment.<id>] tables)"
            )
        for found in tables:
            if not ATLAS_ID.fullmatch(found.id):
                raise ConfigError(
                    "an atlas id becomes a folder name and URL",
                    where=found.where,
                    expected="letters, digits, '-' and '_' (starting with a letter or digit)",
                    got=shown(found.id),
                    fix="rename the [atlas.<id>] table",
                )
            if not isinstance(found.table, dict):
                raise ConfigError(f"[atlas.{found.id}] must be a table", where=found.where)
            entry = AtlasEntry(found.id, path, found.line, dict(found.table))
            if entry.id in entries:
                raise ConfigError(
                    f"atlas id {entry.id!r} is declared twice",
                    where=entry.where,
                    expected="ids unique across the whole site",
                    got=f"also declared at {entries[entry.id].where}",
                    fix="rename one of the two [atlas.<id>] tables",
                )
            entries[entry.id] = entry
    return entries, warnings


def read_experiment_entries(path: Path) -> list[IdTable]:
    """The ``[experiment.<id>]`` tables of one atlases.toml, in file order (their keys are
    parsed by :mod:`generator.experiments.spec`). Raises :class:`ConfigError` for an id
    that cannot name a folder or a table that is not a table."""
    entries = read_id_tables(path, "experiment")[1]
    for entry in entries:
        if not EXPERIMENT_ID.fullmatch(entry.id) or not isinstance(entry.table, dict):
            raise ConfigError(
                "an experiment id names a folder and its table holds the experiment",
                where=entry.where,
                expected="[experiment.<id>] with letters, digits, '-', '_' or '.' in the id",
                got=shown(entry.id),
                fix="rename the table",
            )
    return entries
