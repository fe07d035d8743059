"""Tour queries answered on synthetic grids whose right answer is known by construction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tourkit import full_grid, make_bundle

from generator.errors import ContentError
from generator.site.blocks.tourquery import Query, TourQueries, parse_query

LABELS = ["background", "lion", "tiger", "cabbage", "broccoli", "wok"]
BG, LION, TIGER, CABBAGE, BROCCOLI, WOK = range(6)
WHERE = "page.md:12"

# An 8 x 8 grid of 20 px cells (160 px). Lions: region A = (1,1), (1,2) and (2,3) (touching at
# a corner), 10 samples each; region B = (5,5), (6,5), 50 samples each. Tigers: one cell (7,7).
LIONS_A = {(1, 1), (1, 2), (2, 3)}
LIONS_B = {(5, 5), (6, 5)}


def _top(col: int, row: int) -> int:
    if (col, row) in LIONS_A | LIONS_B:
        return LION
    if (col, row) == (7, 7):
        return TIGER
    if (col, row) in {(3, 3), (3, 4)}:
        return CABBAGE
    return BG


def _count(col: int, row: int) -> int:
    return 50 if (col, row) in LIONS_B else 10


def _resolve(queries: TourQueries, atlas: str, **query: object) -> tuple[object, ...]:
    result = queries.resolve(atlas, parse_query(query, WHERE), WHERE)
    return result.rect, result.grid, result.cells, result.box


@pytest.fixture
def lions(tmp_path: Path) -> TourQueries:
    cells = full_grid(8, _top, _count)
    order = [(c, r) for c, r, _, _ in cells]
    attributions = np.full((len(cells), len(LABELS)), -0.1, np.float32)
    for cell, value in {(3, 4): 0.9, (6, 1): 0.8, (0, 0): 0.7}.items():
        attributions[order.index(cell), LION] = value
    directions = np.zeros((len(cells), 4), np.float32)
    directions[:, 3] = 1.0  # every cell points to channel 3 ...
    directions[order.index((2, 6))] = [10, 10, 0, 0]  # cos 0.71 with channel 0, large value
    directions[order.index((4, 0))] = [1, 0, 0, 0]  # cos 1 with channel 0, small value
    directions[order.index((5, 2))] = [0, 0, 3, 0.1]  # nearest to the other atlas's cell
    coarse = full_grid(4, lambda c, r: BG)  # no lion at the coarse grid
    bundle = make_bundle(
        tmp_path / "lions",
        "lions",
        {4: coarse, 8: cells},
        LABELS,
        cell_px=20,
        attributions={8: attributions},
        directions={8: directions},
        info={"model": "demo", "layer": "mixed4c"},
    )
    other_cells = full_grid(4, lambda c, r: BG)
    other_dirs = np.ones((len(other_cells), 4), np.float32)
    other_dirs[[(c, r) for c, r, _, _ in other_cells].index((2, 3))] = [0, 0, 1, 0]
    same_layer = make_bundle(
        tmp_path / "other",
        "other",
        {4: other_cells},
        LABELS,
        directions={4: other_dirs},
        info={"model": "demo", "layer": "mixed4c"},
    )
    deeper = make_bundle(
        tmp_path / "deeper",
        "deeper",
        {4: other_cells},
        LABELS,
        directions={4: other_dirs},
        info={"model": "demo", "layer": "mixed5b"},
    )
    plain = make_bundle(tmp_path / "plain", "plain", {4: other_cells}, LABELS)
    return TourQueries({b.id: b for b in (bundle, same_layer, deeper, plain)})


def test_top_class_finds_the_region_with_most_samples(lions: TourQueries) -> None:
    # B (2 cells x 50) beats A (3 cells x 10); the coarse grid has no lion, so grid 8 is used
    rect, grid, cells, box = _resolve(lions, "lions", top_class="lion")
    assert grid == 8 and set(cells) == LIONS_B  # type: ignore[arg-type]
    assert box == (100, 100, 40, 20)
    assert rect == (80, 80, 80, 60)  # one 20 px cell of margin on each side


def test_top_class_regions_are_8_connected_and_names_combine(lions: TourQueries) -> None:
    rect, _, cells, _ = _resolve(lions, "lions", top_class=["lion"], grid=8, margin=0)
    assert rect == (100, 100, 40, 20)
    # lions and cabbages: A + the cabbages (3,3), (3,4) touch (2,3): 5 cells, 50 samples, vs
    # B's 100 samples: B still wins; with the tigers nothing joins B
    _, _, cells, _ = _resolve(lions, "lions", top_class=["lion", "cabbage"], margin=0)
    assert set(cells) == LIONS_B  # type: ignore[arg-type]
    # cabbages alone: one region of two cells, x 60..80, y 60..100
    rect, _, cells, _ = _resolve(lions, "lions", top_class="Cabbage", margin=0.5)
    assert cells == ((3, 3), (3, 4)) and rect == (50, 50, 40, 60)


def test_top_class_ties_go_to_more_cells_then_row_major(tmp_path: Path) -> None:
    # two regions of 20 samples: (0,0)+(1,0) (2 cells) and (5,5) (1 cell of 20)
    cells = [(0, 0, 10, [LION]), (1, 0, 10, [LION]), (5, 5, 20, [LION]), (6, 6, 10, [BG])]
    bundle = make_bundle(tmp_path / "a", "a", {8: cells}, LABELS)
    got = TourQueries({"a": bundle}).resolve("a", parse_query({"top_class": "lion"}, WHERE), WHERE)
    assert got.cells == ((0, 0), (1, 0))
    # equal samples and cells: the first in row-major order ((5,1) comes before (0,4))
    cells = [(0, 4, 10, [LION]), (5, 1, 10, [LION])]
    bundle = make_bundle(tmp_path / "b", "b", {8: cells}, LABELS)
    got = TourQueries({"b": bundle}).resolve("b", parse_query({"top_class": "lion"}, WHERE), WHERE)
    assert got.cells == ((5, 1),)


def test_margin_is_clipped_to_the_image(lions: TourQueries) -> None:
    rect, _, cells, _ = _resolve(lions, "lions", top_class="tiger", margin=2)
    assert cells == ((7, 7),) and rect == (100, 100, 60, 60)


def test_attributed_to_ranks_cells_by_positive_attribution(lions: TourQueries) -> None:
    rect, grid, cells, _ = _resolve(lions, "lions", attributed_to="lion", n=1, margin=0)
    assert (grid, cells, rect) == (8, ((3, 4),), (60, 80, 20, 20))
    rect, _, cells, box = _resolve(lions, "lions", attributed_to="lion", n=2)
    assert cells == ((3, 4), (6, 1))
    assert box == (60, 20, 80, 80) and rect == (40, 0, 120, 120)
    _, _, cells, _ = _resolve(lions, "lions", attributed_to="lion")  # n = 5, only 3 positive
    assert cells == ((3, 4), (6, 1), (0, 0))


def test_channel_ranks_by_cosine_not_by_value(lions: TourQueries) -> None:
    _, _, cells, _ = _resolve(lions, "lions", channel=0, n=2)
    assert cells == ((4, 0), (2, 6))  # cosine 1, then 0.71 (the larger raw value comes second)


def test_nearest_cell_of_another_atlas_of_the_same_layer(lions: TourQueries) -> None:
    spec = {"atlas": "other", "cell": [2, 3], "grid": 4}
    rect, _, cells, _ = _resolve(lions, "lions", nearest_cell=spec, n=1, margin=0)
    assert cells == ((5, 2),) and rect == (100, 40, 20, 20)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"top_class": "lino"}, "unknown class 'lino' in atlas 'lions' (did you mean 'lion'?)"),
        ({"top_class": "wok"}, "no cell of atlas 'lions' has wok as its top class at any grid"),
        ({"top_class": "lion", "grid": 4}, "has lion as its top class at grid 4"),
        ({"top_class": "lion", "grid": 12}, "atlas 'lions' has no 12x12 grid"),
        ({"attributed_to": "tiger"}, "no cell attributes positively to 'tiger'"),
        ({"attributed_to": "lion", "grid": 4}, "needs attributions per cell"),
        ({"channel": 9}, "channel 9 does not exist"),
        (
            {"nearest_cell": {"atlas": "deeper", "cell": [2, 3], "grid": 4}},
            "not known to be the same layer",
        ),
        (
            {"nearest_cell": {"atlas": "plain", "cell": [2, 3], "grid": 4}},
            "not known to be the same layer",
        ),
        (
            {"nearest_cell": {"atlas": "othr", "cell": [2, 3], "grid": 4}},
            "unknown atlas 'othr' (did you mean 'other'?)",
        ),
        (
            {"nearest_cell": {"atlas": "other", "cell": [2, 3], "grid": 8}},
            "atlas 'other' has no 8x8 grid",
        ),
    ],
)
def test_unanswerable_queries_are_content_errors(
    lions: TourQueries, query: dict[str, object], message: str
) -> None:
    with pytest.raises(ContentError) as info:
        lions.resolve("lions", parse_query(query, WHERE), WHERE)
    assert message in info.value.message()
    assert info.value.where == WHERE and info.value.fix


def test_a_missing_array_names_the_file_to_write(lions: TourQueries) -> None:
    with pytest.raises(ContentError) as info:
        lions.resolve("plain", parse_query({"channel": 1}, WHERE), WHERE)
    assert "directions-4.npy" in str(info.value.expected)
    assert "recompute the atlas" in str(info.value.fix)


def test_an_empty_cell_of_the_other_atlas_is_reported(tmp_path: Path) -> None:
    cells = [(0, 0, 5, [BG]), (1, 1, 5, [BG])]
    dirs = np.eye(2, 3, dtype=np.float32)
    bundle = make_bundle(
        tmp_path / "x", "x", {4: cells}, LABELS, directions={4: dirs}, info={"layer": "l"}
    )
    queries = TourQueries({"x": bundle})
    spec = {"nearest_cell": {"atlas": "x", "cell": [3, 3], "grid": 4}}
    with pytest.raises(ContentError, match=r"cell \(3, 3\) of grid 4 \(the cell is empty\)"):
        queries.resolve("x", parse_query(spec, WHERE), WHERE)
    spec = {"nearest_cell": {"atlas": "x", "cell": [1, 1], "grid": 4}, "n": 1}
    assert queries.resolve("x", parse_query(spec, WHERE), WHERE).cells == ((1, 1),)


def test_a_wrongly_shaped_array_is_a_config_error(tmp_path: Path) -> None:
    from generator.errors import ConfigError

    cells = [(0, 0, 5, [BG]), (1, 1, 5, [BG])]
    bundle = make_bundle(
        tmp_path / "x", "x", {4: cells}, LABELS, attributions={4: np.zeros((3, 6), np.float32)}
    )
    with pytest.raises(ConfigError, match="does not fit the level's cells"):
        TourQueries({"x": bundle}).resolve(
            "x", parse_query({"attributed_to": "lion"}, WHERE), WHERE
        )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("lion", "a tour query must be a mapping"),
        ({"top_clas": "lion"}, "unknown tour query key 'top_clas' (did you mean 'top_class'?)"),
        ({"top_class": "lion", "channel": 2}, "exactly one kind"),
        ({"grid": 8}, "exactly one kind"),
        ({"top_class": []}, "the tour query 'top_class' is invalid"),
        ({"channel": -1}, "the tour query 'channel' is invalid"),
        ({"channel": True}, "the tour query 'channel' is invalid"),
        ({"nearest_cell": {"atlas": "a", "cell": [1]}}, "the tour query 'nearest_cell' is invalid"),
        ({"top_class": "lion", "n": 3}, "top_class finds a region"),
        ({"attributed_to": "lion", "n": 0}, "the query's n is invalid"),
        ({"channel": 1, "grid": "20"}, "the query's grid is invalid"),
        ({"channel": 1, "margin": -1}, "the query's margin is invalid"),
    ],
)
def test_query_syntax_errors(value: object, message: str) -> None:
    with pytest.raises(ContentError) as info:
        parse_query(value, WHERE)
    assert message in info.value.message() and info.value.where == WHERE


def test_parsed_queries_keep_defaults() -> None:
    assert parse_query({"top_class": "lion"}, WHERE) == Query("top_class", ["lion"], None, 5, 1.0)
    assert parse_query({"channel": 3, "n": 2, "grid": 8, "margin": 0}, WHERE) == Query(
        "channel", 3, 8, 2, 0.0
    )
