"""Class activation atlases and two-class comparisons (METHOD.md 6): which samples they keep,
where a comparison puts them, and how their specs read."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from generator.atlas.classes import (
    class_index,
    select_samples,
    top_classes_of_samples,
    top_positive,
    valid_classes,
)
from generator.atlas.compare import comparison_layout, comparison_x
from generator.atlas.layout import LayoutParams
from generator.atlas.spec import SpecProblems, parse_computed_atlas
from generator.errors import UnknownNameError

WHERE = "content/demo/atlases.toml:3"
BASE: dict[str, Any] = {"model": "inceptionv1", "layer": "mixed5b", "dataset": "imagenet"}


def attributions() -> np.ndarray:
    """8 samples x 4 classes; class 3 is a placeholder logit ("dummy")."""
    return np.array(
        [
            [0.9, 0.1, 0.0, 5.0],  # 0: wins 0 (3 is not a real class)
            [0.2, 0.8, 0.1, 0.0],  # 1: wins 1
            [0.5, 0.6, 0.0, 0.0],  # 2: wins 1, second largest attribution to 0
            [-0.3, -0.1, -0.2, 0.0],  # 3: wins 1 (-0.1 is its largest), negative for 0
            [0.5, 0.0, 0.7, 0.0],  # 4: wins 2, ties sample 2 on class 0
            [0.0, 0.0, 0.0, 0.0],  # 5: all zero: wins 0 (argmax takes the first)
            [0.1, 0.05, 0.3, 0.0],  # 6: wins 2
            [0.05, 0.0, 0.02, 0.0],  # 7: wins 0
        ],
        dtype=np.float32,
    )


VALID = np.array([True, True, True, False])


def test_winners_are_the_samples_whose_top_real_class_it_is() -> None:
    best = top_classes_of_samples(attributions(), VALID)
    assert best.tolist() == [0, 1, 1, 1, 2, 0, 2, 0]
    assert top_classes_of_samples(attributions())[0] == 3  # placeholders win when allowed
    assert valid_classes(("dummy", "kit fox", "unused 1001")).tolist() == [False, True, False]


def test_top_n_takes_the_largest_positive_attributions_only() -> None:
    column = attributions()[:, 0]
    assert top_positive(column, 3).tolist() == [0, 2, 4]  # 0.9, then the tie 0.5/0.5 by index
    assert top_positive(column, 100).tolist() == [0, 2, 4, 1, 6, 7]  # never <= 0 (3 and 5)
    assert top_positive(column, 0).tolist() == []


def test_a_class_keeps_its_winners_and_its_top_n_once_each() -> None:
    rows, won, taken = select_samples(attributions(), [0], winners=True, top=2, valid=VALID)
    assert rows.tolist() == [0, 2, 5, 7]  # winners 0, 5, 7 + top-2 {0, 2}: 0 only once
    assert (won, taken) == ((3,), (2,))
    rows, won, taken = select_samples(attributions(), [0], winners=False, top=2, valid=VALID)
    assert rows.tolist() == [0, 2] and won == (0,)
    rows, _, taken = select_samples(attributions(), [0], winners=True, top=0, valid=VALID)
    assert rows.tolist() == [0, 5, 7] and taken == (0,)


def test_a_comparison_keeps_the_union_of_both_classes() -> None:
    rows, won, taken = select_samples(attributions(), [0, 2], winners=True, top=1, valid=VALID)
    # class 0: winners {0, 5, 7}, top-1 {0}; class 2: winners {4, 6}, top-1 {4}
    assert rows.tolist() == [0, 4, 5, 6, 7]
    assert rows.dtype == np.int64 and won == (3, 2) and taken == (1, 1)


def test_unknown_class_names_list_the_closest() -> None:
    assert class_index(("snorkel", "scuba diver"), "scuba diver", where=WHERE) == 1
    with pytest.raises(UnknownNameError, match="did you mean 'scuba diver'"):
        class_index(("snorkel", "scuba diver"), "scuba-diver", where=WHERE)


def test_comparison_x_follows_the_formula() -> None:
    rng = np.random.default_rng(3)
    attr = rng.normal(size=(500, 5)).astype(np.float32)
    x, scale = comparison_x(attr, left=1, right=4)
    d = attr[:, 4].astype(np.float64) - attr[:, 1].astype(np.float64)
    p99 = np.sort(np.abs(d))[[494, 495]]  # numpy's linear percentile: 0.99 * 499 = 494.01
    assert scale == pytest.approx(p99[0] + 0.01 * (p99[1] - p99[0]), rel=1e-12)
    expected = (np.clip(d / scale, -1, 1) + 1) / 2
    np.testing.assert_array_equal(x, expected.astype(np.float32))
    assert x.dtype == np.float32 and x.min() == 0.0 and x.max() == 1.0
    assert (np.abs(d) >= scale).sum() == (x == 0).sum() + (x == 1).sum()  # clipped: the 1%
    more_right = attr[:, 4] > attr[:, 1]
    assert (x[more_right] > 0.5).all() and (x[~more_right] <= 0.5).all()


def test_comparison_x_without_spread_is_the_centre() -> None:
    attr = np.ones((6, 3), dtype=np.float32)
    x, scale = comparison_x(attr, 0, 2)
    assert scale == 0.0 and x.tolist() == [0.5] * 6


def test_comparison_layout_is_x_by_formula_and_a_normalized_1d_y() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.random((60, 8)).astype(np.float32)
    attr = rng.normal(size=(60, 4)).astype(np.float32)
    params = LayoutParams("tsne", perplexity=5.0, learning_rate=10.0, metric="cosine")
    with threadpool_limits(1):  # t-SNE's OpenMP threads crawl on a busy 2-core machine
        layout = comparison_layout(vectors, attr, 0, 3, params, seed=2)
        again = comparison_layout(vectors, attr, 0, 3, params, seed=2)
    x, scale = comparison_x(attr, 0, 3)
    np.testing.assert_array_equal(layout.xy[:, 0], x)
    assert layout.method == "comparison" and layout.params["x_scale"] == scale
    assert layout.params["y"]["method"] == "tsne" and layout.params["y"]["n_components"] == 1
    y = layout.xy[:, 1]
    assert y.min() >= 0.0 and y.max() <= 1.0 and y.std() > 0.1
    np.testing.assert_array_equal(again.xy, layout.xy)


def test_class_and_comparison_specs_take_the_article_defaults() -> None:
    spec = parse_computed_atlas("s", {**BASE, "kind": "class", "class": "snorkel"}, WHERE)
    assert spec.classes == ("snorkel",) and spec.winners and spec.top == 2000
    assert spec.grids == (8,) and spec.min_count == 4 and spec.whiten
    assert (spec.layout.method, spec.layout.n_neighbors, spec.layout.min_dist) == ("umap", 20, 0.01)
    table: dict[str, Any] = {**BASE, "kind": "comparison", "classes": ["snorkel", "scuba diver"]}
    spec = parse_computed_atlas("c", table, WHERE)
    assert spec.classes == ("snorkel", "scuba diver") and spec.grids == (10,)
    assert spec.min_count == 4 and spec.layout.method == "tsne"
    assert (spec.layout.perplexity, spec.layout.learning_rate) == (50.0, 10.0)
    table = {**table, "filter": {"winners": False, "top": 3000}, "grids": [5, 10]}
    spec = parse_computed_atlas("c", {**table, "layout": {"method": "umap"}}, WHERE)
    assert (spec.winners, spec.top, spec.grids, spec.layout.method) == (
        False,
        3000,
        (5, 10),
        "umap",
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"kind": "class"}, 'class = None: expected class = "snorkel" (required'),
        (
            {"kind": "class", "class": "a", "classes": ["a", "b"]},
            "classes = ['a', 'b']: expected class = ...",
        ),
        ({"kind": "comparison", "classes": ["a"]}, "expected two different class names"),
        ({"kind": "comparison", "classes": ["a", "a"]}, "expected two different class names"),
        ({"class": "a"}, "expected no such key for a layer atlas"),
        ({"filter": {"top": 5}}, 'expected no filter (only kind = "class"'),
        (
            {"kind": "class", "class": "a", "filter": {"top": -1}},
            "filter.top = -1: expected an integer >= 0",
        ),
        ({"kind": "class", "class": "a", "filter": {"n": 1}}, "filter.n = 1: expected a known key"),
        (
            {"kind": "class", "class": "a", "attribution": {"enabled": False}},
            "attribution.enabled = False: expected true (class atlases select",
        ),
    ],
)
def test_bad_class_tables_name_the_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(SpecProblems) as info:
        parse_computed_atlas("bad", {**BASE, **table}, WHERE)
    assert message in info.value.message()
