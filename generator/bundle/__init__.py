"""The hand-over between computing atlases and publishing them: an *atlas bundle* folder.

A bundle is what the compute pipeline writes (or the site makes from a precomputed image) and
what :mod:`generator.tiles` cuts into Deep Zoom pyramids::

    <bundle>/bundle.json        the manifest (:class:`AtlasBundle`, below)
    <bundle>/level-<G>.png      one atlas image per grid level, G cells per side, G*cell_px px
    <bundle>/cells-<G>.json     cell metadata of that level (:func:`cells_document`)
    <bundle>/attributions-<G>.npy   optional: float32 [M, K], each cell's mean attribution to
                                each class (K = len(labels)), rows in the order of the cells
                                document's "cells" (M rows)
    <bundle>/directions-<G>.npy     optional: float32 [M, C], each cell's direction (the mean
                                activation vector over the layer's C channels, as the icon was
                                rendered from), same row order

The two optional arrays (:func:`save_cell_array` / :func:`load_cell_array`) feed the tour
queries resolved when pages are built (:mod:`generator.site.blocks.tourquery`: "the cells most
attributed to a class", "the cells nearest a channel or another atlas's cell"); they stay in
the bundle and are never published. ``info["layer"]`` (and ``info["model"]``) name the layer
the directions live in: queries compare directions of two atlases only within one layer.

Cells are addressed by ``(col, row)`` in the level image: ``col`` = x bin, ``row`` = G-1-y bin
(y points up, as in the article); cell (col, row) covers pixels
``[col*cell_px, (col+1)*cell_px) x [row*cell_px, (row+1)*cell_px)``.
Levels are ordered coarse to fine. For semantic zoom, each level's image side should be the next
finer level's side divided by a power of two (20x80 px -> 40x80 px -> 80x80 px).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator.cache import atomic_write_bytes, atomic_write_json
from generator.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

#: Version of the bundle format; bump when the layout of files changes.
BUNDLE_FORMAT = 1

#: The kinds of atlas a bundle can hold.
KINDS = ("image", "layer", "class", "comparison")

#: Optional per-cell arrays of a level, ``<kind>-<G>.npy``: what their columns are.
CELL_ARRAYS = {
    "attributions": "one column per class of the bundle's labels",
    "directions": "one column per channel of the layer",
}


@dataclass(frozen=True)
class Level:
    """One grid resolution of an atlas.

    Attributes:
        grid: cells per side (G).
        cell_px: pixels per cell side in this level's image.
        image: file name of the level image in the bundle folder (``level-<G>.png``).
        cells: file name of the level's cell metadata (``cells-<G>.json``).
    """

    grid: int
    cell_px: int
    image: str
    cells: str

    @property
    def side_px(self) -> int:
        return self.grid * self.cell_px


@dataclass(frozen=True)
class AtlasBundle:
    """An atlas ready to publish.

    Attributes:
        id: the atlas id used in Markdown (``mixed4c``).
        kind: one of :data:`KINDS`.
        title: human title ("InceptionV1 mixed4c").
        levels: grid levels, coarse to fine.
        labels: class names; cell metadata refers to classes by index into this list.
        background: CSS colour of empty cells (``#ffffff``).
        info: free-form facts shown to readers and used by tours: model, layer, sample count,
            icon fidelity, comparison axes (``{"axes": {"x": [left, right], "y": "..."}}``)...
        root: the bundle folder (not serialized).
    """

    id: str
    kind: str
    title: str
    levels: tuple[Level, ...]
    labels: tuple[str, ...] = ()
    background: str = "#ffffff"
    info: dict[str, Any] = field(default_factory=dict)
    root: Path = Path(".")

    @property
    def finest(self) -> Level:
        return self.levels[-1]

    def level(self, grid: int) -> Level:
        for level in self.levels:
            if level.grid == grid:
                return level
        raise KeyError(f"atlas {self.id!r} has no {grid}x{grid} level (has {self.grids})")

    @property
    def grids(self) -> tuple[int, ...]:
        return tuple(level.grid for level in self.levels)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc.pop("root")
        doc["levels"] = [asdict(level) for level in self.levels]
        doc["labels"] = list(self.labels)
        doc["format"] = BUNDLE_FORMAT
        return doc

    def save(self) -> None:
        """Write ``bundle.json`` into :attr:`root` (the level files must already be there)."""
        atomic_write_json(self.root / "bundle.json", self.to_json())

    @classmethod
    def load(cls, root: str | Path) -> AtlasBundle:
        root = Path(root)
        path = root / "bundle.json"
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError as err:
            raise ConfigError(
                "atlas bundle has no bundle.json",
                where=str(root),
                fix="recompute the atlas (`atlas compute <id>`) or rebuild",
            ) from err
        if doc.get("format") != BUNDLE_FORMAT:
            raise ConfigError(
                "atlas bundle was written by another version of atlas",
                where=str(path),
                expected=f"format {BUNDLE_FORMAT}",
                got=str(doc.get("format")),
                fix="recompute the atlas (`atlas compute <id>`)",
            )
        levels = tuple(Level(**level) for level in doc["levels"])
        bundle = cls(
            id=doc["id"],
            kind=doc["kind"],
            title=doc["title"],
            levels=levels,
            labels=tuple(doc.get("labels", ())),
            background=doc.get("background", "#ffffff"),
            info=doc.get("info", {}),
            root=root,
        )
        bundle.validate()
        return bundle

    def validate(self) -> None:
        """Check the manifest against the files; raise a ConfigError naming the problem."""
        where = str(self.root / "bundle.json")
        if self.kind not in KINDS:
            raise ConfigError(f"unknown atlas kind {self.kind!r}", where=where, expected=str(KINDS))
        if not self.levels:
            raise ConfigError("atlas bundle has no levels", where=where)
        grids = [level.grid for level in self.levels]
        if grids != sorted(set(grids)):
            raise ConfigError(
                "levels must be ordered coarse to fine, one per grid size",
                where=where,
                got=str(grids),
            )
        for level in self.levels:
            for name in (level.image, level.cells):
                if not (self.root / name).is_file():
                    raise ConfigError(f"atlas bundle is missing {name}", where=str(self.root))


def cells_document(
    grid: int,
    cell_px: int,
    cells: Sequence[tuple[int, int, int, Sequence[int], Sequence[float]]],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON document of one level's cells, compact enough to fetch in one request.

    ``cells`` rows are ``(col, row, count, top_class_indices, top_class_values)``; values are
    rounded to 4 significant digits. ``extra`` may add per-level facts (e.g. sample totals).
    """
    rows = [
        [int(c), int(r), int(n), [int(i) for i in top], [float(f"{v:.4g}") for v in vals]]
        for c, r, n, top, vals in cells
    ]
    doc: dict[str, Any] = {
        "grid": int(grid),
        "cell_px": int(cell_px),
        "columns": ["col", "row", "count", "top", "values"],
        "cells": rows,
    }
    if extra:
        doc.update(extra)
    return doc


def cell_array_name(kind: str, grid: int) -> str:
    """File name of an optional per-cell array: ``attributions-<G>.npy``, ``directions-<G>.npy``."""
    if kind not in CELL_ARRAYS:
        raise ValueError(f"unknown cell array {kind!r} (one of {sorted(CELL_ARRAYS)})")
    return f"{kind}-{int(grid)}.npy"


def save_cell_array(root: str | Path, kind: str, grid: int, array: np.ndarray) -> Path:
    """Write ``<root>/<kind>-<G>.npy`` (float32 [M, K or C], rows in the cells document's order)
    atomically; returns its path. For the compose stage."""
    import io

    import numpy as np

    values = np.asarray(array, dtype=np.float32)
    if values.ndim != 2:
        raise ValueError(f"{kind} of grid {grid} must be [M, columns], got shape {values.shape}")
    buffer = io.BytesIO()
    np.save(buffer, values, allow_pickle=False)
    path = Path(root) / cell_array_name(kind, grid)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_cell_array(
    root: str | Path, kind: str, grid: int, *, rows: int | None = None, columns: int | None = None
) -> np.ndarray | None:
    """The optional array ``<root>/<kind>-<G>.npy`` as float32 [M, columns], or None when the
    bundle has none.

    Raises:
        ConfigError: the file is not a 2-D float array, or its rows (cells) / columns (classes
            or channels) are not the ``rows`` / ``columns`` given.
    """
    import numpy as np

    path = Path(root) / cell_array_name(kind, grid)
    if not path.is_file():
        return None
    fix = "recompute the atlas (`atlas compute <id>`): the compose stage writes it"
    try:
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"unreadable {kind} array", where=str(path), got=str(err), fix=fix
        ) from err
    expected = f"float32 [{rows if rows is not None else 'M'}, {columns or 'columns'}]"
    ok = values.ndim == 2 and np.issubdtype(values.dtype, np.floating)
    ok = ok and (rows is None or values.shape[0] == rows)
    ok = ok and (columns is None or values.shape[1] == columns)
    if not ok:
        raise ConfigError(
            f"the {kind} array does not fit the level's cells",
            where=str(path),
            expected=f"{expected}: one row per cell of cells-{grid}.json, {CELL_ARRAYS[kind]}",
            got=f"{values.dtype} {list(values.shape)}",
            fix=fix,
        )
    return values.astype(np.float32, copy=False)
