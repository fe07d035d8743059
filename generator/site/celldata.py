"""The cell data of atlas bundles as numpy arrays, for the tour queries
(:mod:`generator.site.blocks.tourquery`) and the layers figure: each level's occupied cells and top
classes (``cells-<G>.json``), the optional per-cell arrays (``attributions-<G>.npy``,
``directions-<G>.npy``), and the searches run on them: the densest region of matching cells,
cosine rankings, class names to indices. Pure numpy; each file is read once per build.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass

import numpy as np

from generator.bundle import AtlasBundle, Level, load_cell_array
from generator.errors import ContentError, closest, shown


@dataclass(frozen=True)
class CellTable:
    """One level's occupied cells as arrays, in the cells document's order.

    Attributes:
        cols, rows: int64 [M]; counts: int64 [M] (samples averaged); top: int64 [M], the first
        top class of each cell (-1: none).
    """

    cols: np.ndarray
    rows: np.ndarray
    counts: np.ndarray
    top: np.ndarray

    def index_of(self, col: int, row: int) -> int | None:
        hit = np.flatnonzero((self.cols == col) & (self.rows == row))
        return int(hit[0]) if hit.size else None


class AtlasData:
    """The cell data of one bundle, read lazily and kept for the build."""

    def __init__(self, bundle: AtlasBundle) -> None:
        self.bundle = bundle
        self._cells: dict[int, CellTable] = {}
        self._arrays: dict[tuple[str, int], np.ndarray | None] = {}

    def level(self, grid: int) -> Level | None:
        return next((lv for lv in self.bundle.levels if lv.grid == grid), None)

    def cell_size(self, grid: int) -> float:
        """Finest-level image px per cell side of grid G."""
        return self.bundle.finest.side_px / grid

    def cells(self, grid: int) -> CellTable:
        if grid not in self._cells:
            level = self.level(grid)
            assert level is not None
            doc = json.loads((self.bundle.root / level.cells).read_text(encoding="utf-8"))
            rows = doc.get("cells", [])
            self._cells[grid] = CellTable(
                np.array([r[0] for r in rows], np.int64),
                np.array([r[1] for r in rows], np.int64),
                np.array([r[2] if len(r) > 2 else 0 for r in rows], np.int64),
                np.array([r[3][0] if len(r) > 3 and r[3] else -1 for r in rows], np.int64),
            )
        return self._cells[grid]

    def array(self, kind: str, grid: int) -> np.ndarray | None:
        key = (kind, grid)
        if key not in self._arrays:
            columns = len(self.bundle.labels) if kind == "attributions" else None
            rows = len(self.cells(grid).cols)
            self._arrays[key] = load_cell_array(
                self.bundle.root, kind, grid, rows=rows, columns=columns
            )
        return self._arrays[key]


def class_index(bundle: AtlasBundle, name: str, where: str) -> int:
    """Index of class ``name`` in the bundle's labels (exact, else the only case-insensitive
    match); an unknown name raises a ContentError suggesting the closest label."""
    labels = list(bundle.labels)
    if name in labels:
        return labels.index(name)
    folded = [i for i, label in enumerate(labels) if label.lower() == name.lower()]
    if len(folded) == 1:
        return folded[0]
    guess = closest(name, labels)
    raise ContentError(
        f"unknown class {shown(name)} in atlas {bundle.id!r}"
        + (f" (did you mean {guess!r}?)" if guess else ""),
        where=where,
        expected="a class name of the atlas's labels"
        + ("" if labels else " (this atlas has no class labels)"),
        got=name,
        fix=f"write {guess!r}" if guess else "check the class's spelling in the model's labels",
    )


def densest_region(table: CellTable, match: np.ndarray) -> list[tuple[int, int]]:
    """The 8-connected region of matching cells with the most samples (see the module doc);
    its cells in row-major order."""
    where = {
        (int(c), int(r)): int(n)
        for c, r, n, m in zip(table.cols, table.rows, table.counts, match, strict=True)
        if m
    }
    seen: set[tuple[int, int]] = set()
    best: tuple[tuple[int, int, tuple[int, int]], list[tuple[int, int]]] | None = None
    for start in sorted(where, key=lambda cell: (cell[1], cell[0])):
        if start in seen:
            continue
        region, queue = [], deque([start])
        seen.add(start)
        while queue:
            col, row = queue.popleft()
            region.append((col, row))
            for dc in (-1, 0, 1):
                for dr in (-1, 0, 1):
                    nxt = (col + dc, row + dr)
                    if nxt in where and nxt not in seen:
                        seen.add(nxt)
                        queue.append(nxt)
        samples = sum(where[cell] for cell in region)
        score = (samples, len(region), (-start[1], -start[0]))
        if best is None or score > best[0]:
            best = (score, region)
    assert best is not None
    return sorted(best[1], key=lambda cell: (cell[1], cell[0]))


def cosine(vectors: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Cosine of each row of ``vectors`` [M, C] with ``direction`` [C] (float64 [M]; -inf where
    a row or the direction is zero)."""
    v = vectors.astype(np.float64)
    norms = np.linalg.norm(v, axis=1) * np.linalg.norm(direction)
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = (v @ direction) / norms
    scores[~(norms > 0)] = -np.inf
    out: np.ndarray = scores
    return out


def one_hot(size: int, k: int) -> np.ndarray:
    e = np.zeros(size, np.float64)
    e[k] = 1.0
    return e
