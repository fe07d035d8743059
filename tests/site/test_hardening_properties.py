"""Property tests (Hypothesis): no generated front matter, fenced block (```atlas,
```atlas-layers, ```patch-results), atlases.toml or atlas.toml makes the site fail with anything
but the project's own errors (generator/errors.py), and none runs unbounded (a deadline per
example). Inputs mix raw text over the characters YAML and TOML give meaning to with documents
of the right shape (the real keys, plausible and absurd values), so the validators are reached.
Kept cheap: a few dozen examples per property, one prepared project per module."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sitekit import make_project, write

from generator.config import load_config
from generator.errors import AtlasError
from generator.site.atlases import load_specs
from generator.site.build import Navigation, prepare
from generator.site.build_experiments import load_experiments
from generator.site.content import Page, gather_content, parse_front_matter, split_front_matter
from generator.site.pages import Renderer
from generator.specs import read_atlas_entries, read_spec_file, read_spec_files

CHEAP = settings(
    max_examples=int(os.environ.get("HX", "40")),
    deadline=5000,  # ms per example: generous on a shared machine; a runaway input takes minutes
    database=None,  # nothing written into the repository
    suppress_health_check=[HealthCheck.too_slow],
)

#: Characters YAML and TOML give meaning to, some letters and digits, and troublemakers.
SYNTAX = "-:[]{},&*!|>'\"%@`#?=.\n \t\\0123456789abcxyz_\ufeff\u2028é\x00\x7f"

raw_text = st.text(alphabet=SYNTAX, max_size=120)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        ["grid", "2024-13-45", "2024-02-03", "lion", "x", "", "../x.png", "/etc/passwd"]
    ),
)


def documents(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Mappings over ``keys`` (and some stray keys) whose values nest lists and mappings."""
    names = st.one_of(st.sampled_from(keys), st.text(max_size=6))
    values = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=5) | st.dictionaries(names, inner, max_size=4),
        max_leaves=14,
    )
    return st.dictionaries(names, values, max_size=7)


#: Values written unquoted: what a person types, and what once broke the loader.
UNQUOTED = st.one_of(
    raw_text,
    st.sampled_from(
        [
            "2024-13-45",
            "2024-02-30",
            "2024-02-03",
            "2024-02-03 25:61:00",
            "&a x",
            "*a",
            "!!int x",
            "!!float",
            "!!binary x",
            "!!timestamp 2024-99-99",
            "!!python/object:os.system",
            "[[[[",
            "{a: [1, {b: 2}]}",
            "1e999",
            "0x1F",
            "~",
            "? a",
            "<<: *a",
            "|\n  text",
            "'x",
            "9" * 4400,  # int() refuses over 4300 digits
        ]
    ),
)


def yaml_text(keys: list[str]) -> st.SearchStrategy[str]:
    """Raw text, ``key: value`` lines with unquoted values, or a dumped document."""
    lines = st.lists(st.tuples(st.sampled_from(keys), UNQUOTED), max_size=5).map(
        lambda pairs: "\n".join(f"{key}: {value}" for key, value in pairs)
    )
    return st.one_of(raw_text, lines, documents(keys).map(lambda d: yaml.safe_dump(d)))


def _no_traceback(action: Any) -> None:
    """Run ``action``: success or an AtlasError; any other exception fails the property."""
    try:
        action()
    except AtlasError as err:
        assert err.message()  # and the message can be built


@dataclasses.dataclass(frozen=True)
class Kit:
    """A small project gathered and rendered once: its renderer renders generated pages in
    place of its article (``nav``: the article's navigation)."""

    renderer: Renderer
    article: Page
    nav: dict[str, Any]

    def render(self, page: Page) -> None:
        self.renderer.render(page, self.nav, {})

    def __repr__(self) -> str:  # Hypothesis prints the arguments of a failing example
        return "Kit()"


@pytest.fixture(scope="module")
def kit() -> Iterator[Kit]:
    with tempfile.TemporaryDirectory() as folder:
        root = make_project(Path(folder) / "project")
        prepared = prepare(load_config(root / "atlas.toml"), log=lambda _m: None)
        content = gather_content(prepared.config.paths.content)
        article = content.publications[0].articles[0]
        yield Kit(prepared.renderer, article, Navigation(content).of(article)[0])


FRONT_KEYS = ["title", "description", "date", "authors", "draft", "order", "slug"]


@CHEAP
@given(text=yaml_text(FRONT_KEYS))
def test_front_matter_fails_only_with_the_projects_errors(kit: Kit, text: str) -> None:

    def read() -> None:
        whole = f"---\n{text}\n---\n\nBody.\n"
        data, body, _line = split_front_matter(whole, "pub/a.md")
        meta = parse_front_matter(data, "pub/a.md", [])
        kit.render(dataclasses.replace(kit.article, meta=meta, text=whole, body=body))

    _no_traceback(read)


ATLAS_KEYS = ["id", "height", "view", "caption", "tour", "figure", "width", "scroll"]
STOP_KEYS = ["rect", "query", "title", "caption", "mark", "highlights", "arrows", "label"]
STOP_KEYS += ["from", "to", "grid", "margin", "top_class", "attributed_to", "channel", "n"]
STOP_KEYS += ["nearest_cell", "atlas", "cell"]
LAYERS_KEYS = ["ids", "class", "flip", "views", "titles", "figure", "height", "width", "caption"]
PATCH_KEYS = ["experiment", "figure", "examples", "caption"]


@CHEAP
@given(
    kind=st.sampled_from(["atlas", "atlas-layers", "patch-results"]),
    text=yaml_text(ATLAS_KEYS + STOP_KEYS + LAYERS_KEYS + PATCH_KEYS),
)
def test_fenced_blocks_fail_only_with_the_projects_errors(kit: Kit, kind: str, text: str) -> None:
    body = f"Text.\n\n```{kind}\n{text}\n```\n"
    page = dataclasses.replace(kit.article, text=kit.article.text + body, body=body)
    _no_traceback(lambda: kit.render(page))


IMAGE_KEYS = ["image", "grid", "icon_size", "title", "background"]
COMPUTED_KEYS = ["model", "layer", "dataset", "samples", "grids", "kind", "class", "classes"]
COMPUTED_KEYS += ["filter", "min_count", "layout", "seed", "positions", "render", "icon_size"]
EXPERIMENT_KEYS = ["model", "dataset", "seed", "images_per_class", "sizes", "positions"]
EXPERIMENT_KEYS += ["fixed", "noise_patches", "examples", "batch_size", "pairs", "source"]
EXPERIMENT_KEYS += ["target", "icon", "atlas", "cell", "query", "grid"]


def toml_documents() -> st.SearchStrategy[str]:
    """atlases.toml texts: raw text, or [atlas.<id>] / [experiment.<id>] tables."""
    ids = st.sampled_from(["grid", "a", "b-c", "Bad id", ""])
    values = st.recursive(
        scalars.filter(lambda v: v is not None),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.sampled_from([*EXPERIMENT_KEYS, "x"]), inner, max_size=3)
        ),
        max_leaves=10,
    )
    tables = st.dictionaries(
        st.sampled_from(IMAGE_KEYS + COMPUTED_KEYS + EXPERIMENT_KEYS), values, max_size=6
    )
    document = st.fixed_dictionaries(
        {},
        optional={
            "atlas": st.dictionaries(ids, tables, max_size=2),
            "experiment": st.dictionaries(ids, tables, max_size=2),
            "stray": values,
        },
    )
    return st.one_of(raw_text, document.map(tomli_w.dumps))


@pytest.fixture(scope="module")
def project_root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield make_project(Path(folder) / "project")


@CHEAP
@given(text=toml_documents())
def test_atlases_toml_fails_only_with_the_projects_errors(project_root: Path, text: str) -> None:
    spec = write(project_root / "content/study/atlases.toml", text)
    config = load_config(project_root / "atlas.toml")

    def read() -> None:
        content = gather_content(config.paths.content)
        files = read_spec_files(content.root)
        entries = read_atlas_entries([read_spec_file(spec)])[0]
        load_specs(files, content.root)
        load_experiments(files)
        from generator.atlas.spec import parse_computed_atlas

        for entry in entries.values():
            if not entry.is_image:
                parse_computed_atlas(entry.id, entry.table, entry.where, config=config)

    _no_traceback(read)


CONFIG_TABLES = {
    "site": ["title", "description", "authors", "site_url", "language"],
    "paths": ["content", "output", "templates", "cache"],
    "tiles": ["tile_size", "overlap", "format", "quality"],
    "budget": ["max_bytes", "max_files"],
    "compute": ["device", "threads", "batch_size", "workers"],
    "models": ["demo", "weights"],
    "datasets": ["shapes", "folder", "kind"],
}


def config_documents() -> st.SearchStrategy[str]:
    values = st.recursive(
        scalars.filter(lambda v: v is not None),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(["weights", "folder", "kind", "x"]), inner, max_size=3
            )
        ),
        max_leaves=8,
    )
    tables = {
        name: st.dictionaries(st.sampled_from([*keys, "stray"]), values, max_size=5)
        for name, keys in CONFIG_TABLES.items()
    }
    document = st.fixed_dictionaries({}, optional={**tables, "stray": values})
    return st.one_of(raw_text, document.map(tomli_w.dumps))


@CHEAP
@given(text=config_documents())
def test_atlas_toml_fails_only_with_the_projects_errors(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder) / "atlas.toml", text)
        _no_traceback(lambda: load_config(path))
