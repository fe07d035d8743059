"""Computed-atlas specs: defaults from the article, every problem with key, value, expected."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from generator.atlas.layout import LayoutParams
from generator.atlas.spec import SpecProblems, parse_computed_atlas

WHERE = "content/pub/atlases.toml:3"
MINIMAL = {"model": "inceptionv1", "layer": "mixed4c", "dataset": "imagenet"}


def test_minimal_table_gets_the_articles_defaults() -> None:
    spec = parse_computed_atlas("mixed4c", dict(MINIMAL), WHERE)
    assert (spec.id, spec.title, spec.kind, spec.where) == ("mixed4c", "mixed4c", "layer", WHERE)
    assert spec.samples == 100_000 and spec.positions == 1 and spec.seed == 0
    assert spec.grids == (20, 40, 80, 160) and spec.min_count == 5 and spec.top_classes == 5
    assert spec.whiten is True and spec.float16 is False
    assert spec.layout == LayoutParams("umap", 50, 0.05, "cosine")
    assert spec.attribution.enabled and spec.attribution.smooth_maxpool
    assert spec.render == {}


def test_early_layers_default_to_euclidean_layout_and_no_whitening() -> None:
    spec = parse_computed_atlas("m3b", {**MINIMAL, "layer": "mixed3b"}, WHERE)
    assert spec.layout == LayoutParams("umap", 200, 0.05, "euclidean")
    assert spec.whiten is False


def test_every_option_is_read() -> None:
    table: dict[str, Any] = {
        **MINIMAL,
        "title": "InceptionV1 mixed4c",
        "samples": 1000,
        "positions": 3,
        "seed": 7,
        "grids": [40, 20],
        "min_count": 10,
        "whiten": False,
        "top_classes": 3,
        "float16": True,
        "layout": {"method": "tsne", "metric": "euclidean", "perplexity": 30, "learning_rate": 200},
        "attribution": {"smooth_maxpool": False},
        "render": {"icon_size": 80, "steps": 512, "tries": 2, "preset": "article", "examples": 2},
    }
    spec = parse_computed_atlas("a", table, WHERE)
    assert spec.title == "InceptionV1 mixed4c" and spec.samples == 1000 and spec.positions == 3
    assert spec.grids == (20, 40) and spec.min_count == 10 and not spec.whiten
    assert spec.top_classes == 3 and spec.float16 and spec.seed == 7
    assert spec.layout == LayoutParams("tsne", 50, 0.05, "euclidean", 30.0, 200.0)
    assert not spec.attribution.smooth_maxpool and spec.attribution.enabled
    assert spec.render == table["render"]  # kept raw: the bundle stage makes its settings


@pytest.mark.parametrize(
    ("render", "problem"),
    [
        ({"stesp": 8}, "render.stesp = 8: expected a known key (did you mean 'steps'?)"),
        ({"steps": 0}, "render.steps = 0: expected an integer >= 1"),
        ({"density": 9.0}, "render.density = 9.0: expected a number in"),
        ({"preset": "huge"}, "render.preset = 'huge': expected \"article\""),
    ],
)
def test_render_tables_are_checked_at_parse_time_by_the_renderer_s_rules(
    render: dict[str, Any], problem: str
) -> None:
    """The render table's rules live in one place (spec.check_render_table, the same the bundle
    stage applies): a bad key is reported with the spec's other problems, before anything
    runs."""
    with pytest.raises(SpecProblems) as info:
        parse_computed_atlas("a", {**MINIMAL, "render": render, "samples": 0}, WHERE)
    message = info.value.message()
    assert problem in message and "samples = 0" in message


def test_all_problems_are_reported_at_once_with_key_value_and_expectation() -> None:
    table = {
        "model": "inceptionv1",
        "layer": "",
        "samples": 0,
        "grids": [20, 20],
        "whiten": "yes",
        "smaples": 10,
        "layout": {"method": "pca", "n_neigbors": 5},
        "render": {"icon_size": "big"},
    }
    with pytest.raises(SpecProblems) as info:
        parse_computed_atlas("bad", table, WHERE)
    err = info.value
    keys = [key for key, _, _ in err.problems]
    assert keys == [
        "layer",
        "samples",
        "grids",
        "whiten",
        "smaples",
        "dataset",
        "layout.method",
        "layout.n_neigbors",
        "render.icon_size",
    ]
    text = err.message()
    assert text.startswith(f"{WHERE}: 9 problems in [atlas.bad]")
    assert "atlas.bad.samples = 0: expected an integer >= 1" in text
    assert "atlas.bad.smaples = 10: expected a known key (did you mean 'samples'?)" in text
    assert "layout.n_neigbors = 5: expected a known key (did you mean 'n_neighbors'?)" in text
    assert "atlas.bad.whiten = 'yes': expected true or false" in text
    assert "atlas.bad.dataset = None: expected dataset = ... (required" in text
    assert err.exit_code == 1


def test_unknown_kinds_are_refused() -> None:
    with pytest.raises(SpecProblems, match=re.escape("kind = 'grid': expected \"layer\" |")):
        parse_computed_atlas("c", {**MINIMAL, "kind": "grid"}, WHERE)


def test_sub_tables_must_be_tables() -> None:
    with pytest.raises(SpecProblems, match=r"layout = 'umap': expected a table"):
        parse_computed_atlas("c", {**MINIMAL, "layout": "umap"}, WHERE)


def fake_config() -> SimpleNamespace:
    return SimpleNamespace(
        models={"mine": {"entry": "pkg.mod:make"}}, datasets={"imagenet": {"folder": "/data"}}
    )


def test_names_are_checked_against_the_project_config() -> None:
    spec = parse_computed_atlas("ok", {**MINIMAL, "model": "mine"}, WHERE, config=fake_config())
    assert spec.model == "mine"
    with pytest.raises(SpecProblems) as info:
        parse_computed_atlas(
            "x",
            {**MINIMAL, "model": "inceptionv2", "dataset": "imagenett"},
            WHERE,
            config=fake_config(),
        )
    text = info.value.message()
    assert "did you mean 'inceptionv1'?" in text and "did you mean 'imagenette'?" in text


def test_parsing_imports_neither_torch_nor_umap() -> None:
    code = (
        "import sys, generator.atlas.spec as s;"
        "s.parse_computed_atlas('a', {'model': 'm', 'layer': 'mixed4c', 'dataset': 'd'}, 'x');"
        "print(sorted(m for m in ('torch', 'umap', 'sklearn', 'numba') if m in sys.modules))"
    )
    root = Path(__file__).parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
