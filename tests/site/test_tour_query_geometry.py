"""Tour query answers at their edges (issue 17, mutation testing of generator/site/blocks/tourquery.py):
rectangles of a coarse grid with a fractional margin, clipped to the image, rounded to 1/1000 px;
rankings with ties over more cells than a short sort sees, zero scores, the last channel.

Every expected rectangle is worked out by hand in the comments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tourkit import full_grid, make_bundle

from generator.errors import ContentError
from generator.site.blocks.tourquery import QueryResult, TourQueries, parse_query

LABELS = ["background", "lion", "tiger"]
BG, LION, TIGER = range(3)
WHERE = "tour.md:3"


def ask(queries: TourQueries, atlas: str, **query: object) -> QueryResult:
    return queries.resolve(atlas, parse_query(query, WHERE), WHERE)


@pytest.fixture
def corners(tmp_path: Path) -> TourQueries:
    """Grids 4 and 8 of 20 px cells (finest image 160 px; a grid-4 cell is 40 px). At grid 4 a
    lion at (1, 1) and tigers at the corners (0, 0) and (3, 3); grid 8 has no lion or tiger."""

    def coarse(col: int, row: int) -> int:
        if (col, row) == (1, 1):
            return LION
        return TIGER if (col, row) in {(0, 0), (3, 3)} else BG

    bundle = make_bundle(
        tmp_path / "corners",
        "corners",
        {4: full_grid(4, coarse), 8: full_grid(8, lambda c, r: BG)},
        LABELS,
        cell_px=20,
    )
    return TourQueries({"corners": bundle})


def test_a_coarse_cell_with_a_third_of_a_cell_of_margin(corners: TourQueries) -> None:
    # the lion's cell (1, 1) of grid 4 covers x, y in [40, 80); a third of 40 px is 13.333...:
    # x0 = 40 - 13.333... = 26.667, width 40 + 2 x 13.333... = 66.667 (rounded to 1/1000 px)
    got = ask(corners, "corners", top_class="lion", margin=1 / 3)
    assert got.grid == 4 and got.cells == ((1, 1),)
    assert got.box == (40.0, 40.0, 40.0, 40.0)
    assert got.rect == (26.667, 26.667, 66.667, 66.667)


def test_the_margin_stops_at_the_image_edges(corners: TourQueries) -> None:
    # tigers at (0, 0) and (3, 3) are two regions of one cell; the first in row-major order
    # wins: x0 = max(0, 0 - 13.333) = 0, x1 = 40 + 13.333 = 53.333
    got = ask(corners, "corners", top_class="tiger", margin=1 / 3, grid=4)
    assert got.cells == ((0, 0),) and got.rect == (0.0, 0.0, 53.333, 53.333)
    # the whole image with a huge margin: clipped to [0, 160] on both axes
    got = ask(corners, "corners", top_class="lion", margin=10)
    assert got.rect == (0.0, 0.0, 160.0, 160.0) and got.box == (40.0, 40.0, 40.0, 40.0)


def ranked_bundle(tmp_path: Path, lion: np.ndarray, directions: np.ndarray) -> TourQueries:
    cells = full_grid(8, lambda c, r: BG)  # 64 cells, row-major
    attributions = np.zeros((64, len(LABELS)), np.float32)
    attributions[:, LION] = lion
    bundle = make_bundle(
        tmp_path / "ranked",
        "ranked",
        {8: cells},
        LABELS,
        cell_px=10,
        attributions={8: attributions},
        directions={8: directions.astype(np.float32)},
        info={"model": "demo", "layer": "mixed4c"},
    )
    return TourQueries({"ranked": bundle})


def test_equal_attributions_rank_in_row_major_order(tmp_path: Path) -> None:
    # scores 1 or 2 on 64 cells: the 2s in cell order, then the 1s (a sort that is not stable
    # shuffles equal scores of a row this long)
    scores = np.random.default_rng(4).integers(1, 3, size=64).astype(np.float32)
    queries = ranked_bundle(tmp_path, scores, np.ones((64, 3)))
    got = ask(queries, "ranked", attributed_to="lion", n=20)
    order = [i for level in (2, 1) for i in range(64) if scores[i] == level][:20]
    assert got.cells == tuple((i % 8, i // 8) for i in order)


def test_cells_attributing_zero_are_not_found(tmp_path: Path) -> None:
    lion = np.zeros(64, np.float32)
    lion[[9, 30]] = [0.25, 0.5]  # cells (1, 1) and (6, 3); every other cell exactly 0
    queries = ranked_bundle(tmp_path, lion, np.ones((64, 3)))
    got = ask(queries, "ranked", attributed_to="lion", margin=0)
    assert got.cells == ((6, 3), (1, 1))
    # bounding box of the two cells of 10 px: x 10..70, y 10..40
    assert got.rect == (10.0, 10.0, 60.0, 30.0)
    with pytest.raises(ContentError, match="no cell attributes positively to 'tiger'"):
        ask(queries, "ranked", attributed_to="tiger")


def test_the_last_channel_exists_and_the_next_does_not(tmp_path: Path) -> None:
    directions = np.zeros((64, 3))
    directions[5] = [0, 0, 1]  # cell (5, 0): cosine 1 with channel 2
    directions[12] = [1, 0, 1]  # cell (4, 1): cosine 0.71 with channel 2
    directions[20] = [1, 1, 0]  # cell (4, 2): cosine 0 with channel 2: not found
    queries = ranked_bundle(tmp_path, np.ones(64), directions)
    got = ask(queries, "ranked", channel=2, margin=0)
    assert got.cells == ((5, 0), (4, 1)) and got.grid == 8
    with pytest.raises(ContentError, match="channel 3 does not exist") as info:
        ask(queries, "ranked", channel=3)
    assert "a channel from 0 to 2" in str(info.value.expected)


def test_nearest_cells_skip_cells_without_a_direction(tmp_path: Path) -> None:
    directions = np.zeros((64, 3))  # zero rows: no direction (cosine -inf)
    directions[0] = [1, 0, 0]
    directions[63] = [1, 1, 0]
    directions[10] = [0, -1, 0]  # cosine -0.71 with cell 63: still a direction, ranked last
    queries = ranked_bundle(tmp_path, np.ones(64), directions)
    spec = {"atlas": "ranked", "cell": [7, 7], "grid": 8}
    got = ask(queries, "ranked", nearest_cell=spec, n=10, margin=0)
    assert got.cells == ((7, 7), (0, 0), (2, 1))
