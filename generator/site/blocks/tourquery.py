"""Tour stops as data queries, resolved when the page is built (so a tour survives a new layout).

A tour stop (see :mod:`generator.site.blocks.embeds`) is either ``rect: [x, y, w, h]`` or
``query:`` one of the mappings below, answered from the atlas bundle's cell data
(:mod:`generator.bundle`): ``cells-<G>.json`` (top classes, counts) and the optional
``attributions-<G>.npy`` float32 [M, K] and ``directions-<G>.npy`` float32 [M, C], rows in the
cells document's order. Every query may add ``grid: G`` (which level's cells to search) and
``margin: m`` (cells of that grid added around the result on each side; default 1)::

    query: {top_class: [cabbage, broccoli]}     # the densest region of these top classes
    query: {attributed_to: lion, n: 5}          # the n cells most attributed to a class
    query: {channel: 42, n: 5}                  # the n cells nearest channel 42's direction
    query: {nearest_cell: {atlas: mixed4c, cell: [3, 4], grid: 20}, n: 5}

Semantics, on the cells of one grid G (cell (col, row) covers finest-level image pixels
``[col, col+1) x [row, row+1)`` times ``finest side / G``):

- ``top_class``: the cells whose first top class is one of the names, grouped into
  8-connected regions (cells touching at a side or a corner); the region holding the most
  samples (sum of counts; cells when counts are 0) wins, ties going to the one with more
  cells, then to the one whose first cell comes first in row-major order. Without ``grid``,
  the coarsest grid where any cell matches.
- ``attributed_to``: the ``n`` (default 5) cells with the largest positive mean attribution to
  the class (``attributions-<G>.npy``); ``n: 1`` is the best cell alone.
- ``channel``: the ``n`` cells whose direction has the largest positive cosine with channel
  k's one-hot direction (``d[k] / |d|``, ``directions-<G>.npy``).
- ``nearest_cell``: the ``n`` cells whose direction has the largest cosine with the direction
  of cell (col, row) of the named atlas's grid; both atlases must record the same
  ``info.layer`` (and ``info.model``): directions of different layers are not comparable.

Ties among ranked cells go to row-major order. Without ``grid`` the ranked queries use the
coarsest grid that has the array they need. The result's rectangle is the bounding box of
the cells found, grown by ``margin`` cells, clipped to the image, in finest-level image pixels.
A query that cannot be answered (an unknown class, with the closest name; a missing array; no
cell matching) raises a :class:`~generator.errors.ContentError` naming the page and line.
Pure numpy; the data of each atlas is read once per build.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from generator.bundle import AtlasBundle, cell_array_name
from generator.errors import ContentError, closest, shown
from generator.site.celldata import AtlasData, class_index, cosine, densest_region, one_hot

Rect = tuple[float, float, float, float]

#: The kinds of query and what each holds.
QUERY_KINDS = {
    "top_class": "a class name or a list of class names",
    "attributed_to": "a class name",
    "channel": "a channel index (an integer >= 0)",
    "nearest_cell": "{atlas: <atlas id>, cell: [col, row], grid: <G>}",
}
#: Options every query may add.
QUERY_OPTIONS = {
    "grid": "the grid (cells per side) whose cells are searched",
    "margin": "cells added around the result on each side (a number >= 0)",
    "n": "how many of the best cells to keep (an integer >= 1; ranked queries only)",
}
DEFAULT_N = 5
DEFAULT_MARGIN = 1.0


@dataclass(frozen=True)
class Query:
    """A validated query: its kind, its argument and options (``grid`` None: the default)."""

    kind: str
    value: Any
    grid: int | None = None
    n: int = DEFAULT_N
    margin: float = DEFAULT_MARGIN


@dataclass(frozen=True)
class QueryResult:
    """What a query found: ``rect`` (finest image px), the ``grid`` searched and its ``cells``
    ((col, row), best first for ranked queries); ``box`` is the cells' bounding box without
    the margin (finest image px)."""

    rect: Rect
    grid: int
    cells: tuple[tuple[int, int], ...]
    box: Rect


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_query(value: Any, where: str) -> Query:
    """Validate a stop's ``query:`` mapping (the YAML as loaded); ``where`` is ``file:line``."""

    def bad(what: str, got: Any, expected: str, fix: str) -> ContentError:
        return ContentError(what, where=where, expected=expected, got=shown(got), fix=fix)

    if not isinstance(value, dict):
        raise bad(
            "a tour query must be a mapping",
            value,
            "{<kind>: <value>} with kind one of " + ", ".join(QUERY_KINDS),
            "write e.g. 'query: {top_class: [lion]}'",
        )
    kinds = [key for key in value if key in QUERY_KINDS]
    for key in value:
        if key not in QUERY_KINDS and key not in QUERY_OPTIONS:
            guess = closest(str(key), [*QUERY_KINDS, *QUERY_OPTIONS])
            raise bad(
                f"unknown tour query key {shown(key)}"
                + (f" (did you mean {guess!r}?)" if guess else ""),
                key,
                "one of " + ", ".join([*QUERY_KINDS, *QUERY_OPTIONS]),
                f"rename it to {guess!r}" if guess else "remove it",
            )
    if len(kinds) != 1:
        raise bad(
            "a tour query needs exactly one kind",
            sorted(value),
            "one of " + ", ".join(QUERY_KINDS),
            "keep one of them (write several stops for several queries)",
        )
    kind = kinds[0]
    arg = value[kind]
    ok = {
        "top_class": isinstance(arg, str)
        or (isinstance(arg, list) and arg and all(isinstance(a, str) for a in arg)),
        "attributed_to": isinstance(arg, str),
        "channel": _is_int(arg) and arg >= 0,
        "nearest_cell": isinstance(arg, dict)
        and set(arg) == {"atlas", "cell", "grid"}
        and isinstance(arg["atlas"], str)
        and isinstance(arg["cell"], list)
        and len(arg["cell"]) == 2
        and all(_is_int(v) and v >= 0 for v in arg["cell"])
        and _is_int(arg["grid"]),
    }[kind]
    if not ok:
        raise bad(
            f"the tour query {shown(kind)} is invalid",
            arg,
            QUERY_KINDS[kind],
            f"write '{kind}: ' followed by {QUERY_KINDS[kind]}",
        )
    grid, n, margin = value.get("grid"), value.get("n", DEFAULT_N), value.get("margin")
    if grid is not None and not (_is_int(grid) and grid >= 1):
        raise bad("the query's grid is invalid", grid, QUERY_OPTIONS["grid"], "e.g. 'grid: 20'")
    if "n" in value and (kind == "top_class" or not (_is_int(n) and n >= 1)):
        raise bad(
            "the query's n is invalid"
            + (" (top_class finds a region)" if kind == "top_class" else ""),
            n,
            QUERY_OPTIONS["n"] + " for attributed_to, channel and nearest_cell",
            "remove 'n'" if kind == "top_class" else "e.g. 'n: 5'",
        )
    ok_margin = margin is None or (
        isinstance(margin, int | float) and not isinstance(margin, bool) and 0 <= margin < 1e6
    )
    if not ok_margin:
        raise bad(
            "the query's margin is invalid", margin, QUERY_OPTIONS["margin"], "e.g. 'margin: 1'"
        )
    top = [arg] if kind == "top_class" and isinstance(arg, str) else arg
    return Query(
        kind,
        top,
        grid,
        int(n),
        DEFAULT_MARGIN if margin is None else float(margin),
    )


class TourQueries:
    """Answers tour queries against the site's bundles (data read once per build)."""

    def __init__(self, bundles: Mapping[str, AtlasBundle]) -> None:
        self.bundles = bundles
        self._data: dict[str, AtlasData] = {}

    def data(self, atlas_id: str) -> AtlasData:
        if atlas_id not in self._data:
            self._data[atlas_id] = AtlasData(self.bundles[atlas_id])
        return self._data[atlas_id]

    def resolve(self, atlas_id: str, query: Query, where: str) -> QueryResult:
        """The rectangle (and cells) answering ``query`` on atlas ``atlas_id``."""
        data = self.data(atlas_id)
        if query.grid is not None and data.level(query.grid) is None:
            raise ContentError(
                f"atlas {atlas_id!r} has no {query.grid}x{query.grid} grid",
                where=where,
                expected="one of its grids: " + ", ".join(map(str, data.bundle.grids)),
                got=str(query.grid),
                fix="change the query's 'grid' or remove it (the default picks one)",
            )
        if query.kind == "top_class":
            grid, cells = self._top_class(data, query, where)
        else:
            grid, cells = self._ranked(data, query, where)
        return _result(data, grid, cells, query.margin)

    # --- top_class --------------------------------------------------------------------------

    def _top_class(
        self, data: AtlasData, query: Query, where: str
    ) -> tuple[int, list[tuple[int, int]]]:
        classes = {class_index(data.bundle, name, where) for name in query.value}
        grids = [query.grid] if query.grid is not None else list(data.bundle.grids)
        for grid in grids:
            table = data.cells(grid)
            match = np.isin(table.top, list(classes))
            if match.any():
                return grid, densest_region(table, match)
        names = ", ".join(query.value)
        raise ContentError(
            f"no cell of atlas {data.bundle.id!r} has {names} as its top class"
            + (f" at grid {query.grid}" if query.grid is not None else " at any grid"),
            where=where,
            expected="a class that is the top class of some cells",
            got=names,
            fix="choose another class (hover the atlas to see top classes), another grid,"
            " or give the stop a 'rect' instead",
        )

    # --- ranked queries ---------------------------------------------------------------------

    def _ranked(
        self, data: AtlasData, query: Query, where: str
    ) -> tuple[int, list[tuple[int, int]]]:
        kind = "attributions" if query.kind == "attributed_to" else "directions"
        grid = query.grid if query.grid is not None else self._grid_with(data, kind)
        values = data.array(kind, grid) if grid is not None else None
        if grid is None or values is None:
            name = cell_array_name(kind, grid or data.bundle.grids[0])
            raise ContentError(
                f"the tour query {query.kind!r} needs {kind} per cell, which atlas"
                f" {data.bundle.id!r} lacks" + (f" at grid {grid}" if grid is not None else ""),
                where=where,
                expected=f"{data.bundle.root / name} (float32 [cells, columns], see"
                " generator/bundle.py)",
                fix="recompute the atlas so the compose stage writes it, use a top_class query,"
                " or give the stop a 'rect'",
            )
        if query.kind == "attributed_to":
            k = class_index(data.bundle, query.value, where)
            scores = values[:, k].astype(np.float64)
            keep = scores > 0
            what = f"no cell attributes positively to {shown(query.value)}"
        elif query.kind == "channel":
            if query.value >= values.shape[1]:
                raise ContentError(
                    f"channel {query.value} does not exist in atlas {data.bundle.id!r}",
                    where=where,
                    expected=f"a channel from 0 to {values.shape[1] - 1}",
                    got=str(query.value),
                    fix="use a channel index of the atlas's layer",
                )
            scores = cosine(values, one_hot(values.shape[1], query.value))
            keep = scores > 0
            what = f"no cell's direction points towards channel {query.value}"
        else:
            source = self._source_direction(data, query.value, values.shape[1], where)
            scores = cosine(values, source)
            keep = np.isfinite(scores)
            what = "no cell has a direction"
        order = [int(i) for i in np.argsort(-scores, kind="stable") if keep[i]][: query.n]
        if not order:
            raise ContentError(
                f"the tour query found nothing: {what} at grid {grid}",
                where=where,
                fix="choose another class, channel or cell, or give the stop a 'rect'",
            )
        table = data.cells(grid)
        return grid, [(int(table.cols[i]), int(table.rows[i])) for i in order]

    @staticmethod
    def _grid_with(data: AtlasData, kind: str) -> int | None:
        for grid in data.bundle.grids:
            if (data.bundle.root / cell_array_name(kind, grid)).is_file():
                return grid
        return None

    def _source_direction(
        self, data: AtlasData, spec: dict[str, Any], channels: int, where: str
    ) -> np.ndarray:
        other_id = spec["atlas"]
        if other_id not in self.bundles:
            guess = closest(other_id, self.bundles)
            raise ContentError(
                f"nearest_cell names an unknown atlas {shown(other_id)}"
                + (f" (did you mean {guess!r}?)" if guess else ""),
                where=where,
                expected="an atlas id declared in an atlases.toml",
                fix=f"use {guess!r}" if guess else "declare the atlas, or fix the id",
            )
        other = self.data(other_id)
        mine, theirs = _layer_of(data.bundle), _layer_of(other.bundle)
        if other_id != data.bundle.id and (None in mine or mine != theirs):
            raise ContentError(
                f"nearest_cell compares directions of atlas {data.bundle.id!r} with those of"
                f" {other_id!r}, which is not known to be the same layer",
                where=where,
                expected="two atlases of one model and layer (bundle info 'model' and 'layer')",
                got=f"{data.bundle.id}: {_layer_text(mine)}; {other_id}: {_layer_text(theirs)}",
                fix="compare with an atlas of the same layer (use a top_class or attributed_to"
                " query across layers)",
            )
        grid = spec["grid"]
        if other.level(grid) is None:
            raise ContentError(
                f"atlas {other_id!r} has no {grid}x{grid} grid",
                where=where,
                expected="one of " + ", ".join(map(str, other.bundle.grids)),
                got=str(grid),
                fix="fix nearest_cell's grid",
            )
        directions = other.array("directions", grid)
        col, row = spec["cell"]
        index = other.cells(grid).index_of(col, row)
        if directions is None or index is None:
            missing = cell_array_name("directions", grid)
            raise ContentError(
                f"atlas {other_id!r} has no direction for cell ({col}, {row}) of grid {grid}"
                + (f" (no {missing})" if directions is None else " (the cell is empty)"),
                where=where,
                expected="an occupied cell of an atlas whose bundle has directions",
                fix="pick an occupied cell (hover the atlas to see its cells)"
                if directions is not None
                else "recompute that atlas so the compose stage writes its directions",
            )
        if directions.shape[1] != channels:
            raise ContentError(
                f"the directions of {other_id!r} and {data.bundle.id!r} differ in size",
                where=where,
                expected=f"{channels} channels",
                got=str(directions.shape[1]),
                fix="compare atlases of the same layer",
            )
        source: np.ndarray = directions[index].astype(np.float64)
        return source


def _layer_of(bundle: AtlasBundle) -> tuple[Any, Any]:
    return (bundle.info.get("model"), bundle.info.get("layer"))


def _layer_text(layer: tuple[Any, Any]) -> str:
    model, name = layer
    return f"model {model!r}, layer {name!r}" if name is not None else "no layer recorded"


def _result(data: AtlasData, grid: int, cells: list[tuple[int, int]], margin: float) -> QueryResult:
    size = data.cell_size(grid)
    side = float(data.bundle.finest.side_px)
    cols = [c for c, _ in cells]
    rows = [r for _, r in cells]
    box = (
        min(cols) * size,
        min(rows) * size,
        (max(cols) - min(cols) + 1) * size,
        (max(rows) - min(rows) + 1) * size,
    )
    x0 = max(0.0, box[0] - margin * size)
    y0 = max(0.0, box[1] - margin * size)
    x1 = min(side, box[0] + box[2] + margin * size)
    y1 = min(side, box[1] + box[3] + margin * size)
    rect: Rect = (_tidy(x0), _tidy(y0), _tidy(x1 - x0), _tidy(y1 - y0))
    tidy_box: Rect = (_tidy(box[0]), _tidy(box[1]), _tidy(box[2]), _tidy(box[3]))
    return QueryResult(rect, grid, tuple(cells), tidy_box)


def _tidy(value: float) -> float:
    """Round to 1/1000 px (floating noise out of the published JSON)."""
    rounded = round(value, 3)
    return float(int(rounded)) if math.isclose(rounded, round(rounded)) else rounded
