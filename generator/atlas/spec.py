"""A computed atlas, as declared by an ``[atlas.<id>]`` table of ``content/<pub>/atlases.toml``.

::

    [atlas.mixed4c]
    title = "InceptionV1 mixed4c"
    model = "inceptionv1"          # a built-in model or a [models.<name>] of atlas.toml
    layer = "mixed4c"
    dataset = "imagenet"           # a built-in data set or a [datasets.<name>] of atlas.toml
    samples = 100000               # images drawn from the data set (METHOD.md 1)
    positions = 1                  # random spatial positions per image
    seed = 0                       # images, positions, layout
    grids = [20, 40, 80, 160]      # cells per side of each level (METHOD.md 4)
    min_count = 5                  # a cell is kept when it holds more samples than this
    whiten = true                  # default: true except for mixed3a/mixed3b (METHOD.md 5)
    top_classes = 5                # classes listed per cell
    float16 = false                # store activations in half precision

    [atlas.mixed4c.layout]         # defaults: the article's settings for the layer (METHOD.md 3)
    method = "umap"                # or "tsne"
    n_neighbors = 50
    min_dist = 0.05
    metric = "cosine"
    perplexity = 50                # t-SNE only
    learning_rate = 10             # t-SNE only
    backend = "auto"               # or "umap-learn", "landmarks", "cuml", "torchdr" (UMAP only;
                                   # generator.atlas.layout_backends)
    landmarks = 20000              # vectors UMAP lays out when the landmarks back end runs

    [atlas.mixed4c.attribution]
    enabled = true
    smooth_maxpool = true          # the article's relaxation (METHOD.md 2)
    measure = "gradient"           # activation x gradient (the article's), or "readout": the
                                   # logits of the layer's map filled with the vector, minus
                                   # those of the zero map (generator.atlas.attribute)

    [atlas.mixed4c.render]         # icon rendering options, passed through to the renderer
    icon_size = 80

Class activation atlases and two-class comparisons (METHOD.md 6) are computed from the same
samples as the layer's atlas (same model, layer, data set and sampling: the same cached
activations and attributions), filtered by attribution::

    [atlas.snorkel]
    kind = "class"
    class = "snorkel"              # a label of the model
    model = "inceptionv1"
    layer = "mixed5b"
    dataset = "imagenet"
    filter = { winners = true, top = 2000 }   # the defaults (the article's)
    # grids = [8], min_count = 4, layout UMAP(20, 0.01, cosine) by default

    [atlas.snorkel-scuba]
    kind = "comparison"
    classes = ["snorkel", "scuba diver"]      # [left, right] of the x axis
    model = "inceptionv1"
    layer = "mixed5b"
    dataset = "imagenet"
    # grids = [10], min_count = 4, y = 1-D t-SNE (cosine, perplexity 50, lr 10) by default

``filter.winners``: keep the samples whose top attributed class is the class (each class of a
comparison); ``filter.top``: also keep the ``top`` samples with the largest positive attribution
to it (0: none). See :mod:`generator.atlas.classes` and :mod:`generator.atlas.compare`.

Parsing needs neither torch nor umap. Every problem is reported with its key, the value found
and what was expected, all at once; unknown keys are problems too (with a "did you mean").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from generator.atlas.collect import Sampling
from generator.atlas.compose import (
    COMPOSE_KEYS,
    ComposeSettings,
    compose_settings,
    semantic_zoom_problem,
)
from generator.atlas.layout import EARLY_LAYERS, METHODS, LayoutParams, default_layout_params
from generator.atlas.layout_backends import BACKENDS, MIN_LANDMARKS, BackendSettings
from generator.checks import boolean, choice, integer, number, text
from generator.errors import ConfigError, closest
from generator.icons.settings import RENDER_KEYS, RenderSettings, render_settings

if TYPE_CHECKING:
    from generator.config import Config

#: Kinds of computed atlas: a layer's atlas, a class activation atlas, a two-class comparison.
KINDS = ("layer", "class", "comparison")

#: Samples kept per class by attribution (METHOD.md 6: "the top-n samples by attribution to
#: c, n = 2000..3000, positive only").
DEFAULT_TOP = 2000

#: Per kind: default grids and minimum count (METHOD.md 4 and 6: layer atlases 20..160 with the
#: recipe's threshold 5; class atlases 8x8 and comparisons 10x10, both with 4).
KIND_DEFAULTS: dict[str, tuple[tuple[int, ...], int]] = {
    "layer": ((20, 40, 80, 160), 5),
    "class": ((8,), 4),
    "comparison": ((10,), 4),
}

#: Default number of images: the article found 100k "often sufficient" (METHOD.md 1).
DEFAULT_SAMPLES = 100_000

#: Largest grid side accepted (the article's finest was 320).
MAX_GRID = 1024


@dataclass(frozen=True)
class AttributionSpec:
    """``[atlas.<id>.attribution]``: whether and how samples are attributed to classes."""

    enabled: bool = True
    smooth_maxpool: bool = True
    measure: str = "gradient"


@dataclass(frozen=True)
class ComputedAtlasSpec:
    """A validated computed-atlas declaration (see the module docstring for the keys).

    Attributes:
        id: the atlas id; ``where``: ``file:line`` of its table, for messages.
        classes: ``()`` for a layer atlas, ``(class,)`` for a class atlas, ``(left, right)``
            for a comparison (names of the model's labels, checked when computing).
        winners, top: the class filter (``filter`` table) of class atlases and comparisons.
        layout: the layout settings, the article's defaults for ``layer`` filled in.
        layout_backend: which program computes a UMAP layout (``layout.backend`` and
            ``layout.landmarks``).
        render: the ``render`` sub-table, loosely checked, for the icon renderer.
    """

    id: str
    where: str
    title: str
    model: str
    layer: str
    dataset: str
    kind: str = "layer"
    samples: int = DEFAULT_SAMPLES
    positions: int = 1
    seed: int = 0
    grids: tuple[int, ...] = (20, 40, 80, 160)
    min_count: int = 5
    whiten: bool = True
    top_classes: int = 5
    float16: bool = False
    classes: tuple[str, ...] = ()
    winners: bool = True
    top: int = DEFAULT_TOP
    layout: LayoutParams = field(default_factory=LayoutParams)
    attribution: AttributionSpec = field(default_factory=AttributionSpec)
    render: dict[str, Any] = field(default_factory=dict)
    layout_backend: BackendSettings = field(default_factory=BackendSettings)

    def described(self) -> dict[str, Any]:
        """Every setting as plain data, without ``where`` (the file:line) and without
        ``layout_backend`` when it is the default (so keys and recipes of atlases that do not
        set it stay as they were before back ends existed)."""
        described = asdict(self)
        described.pop("where")
        if self.layout_backend.is_default():
            described.pop("layout_backend")
        return described

    def sampling(self) -> Sampling:
        """How the atlas's activation vectors are sampled, attributed and stored."""
        return Sampling(
            positions=self.positions,
            seed=self.seed,
            attribution=self.attribution.enabled,
            smooth_maxpool=self.attribution.smooth_maxpool,
            attribution_measure=self.attribution.measure,
            float16=self.float16,
        )


class SpecProblems(ConfigError):
    """Every problem of one atlas table; ``problems`` lists ``(key, value, expected)``."""

    def __init__(self, atlas_id: str, where: str, problems: list[tuple[str, Any, str]]) -> None:
        self.problems = problems
        lines = [
            f"atlas.{atlas_id}.{key} = {value!r}: expected {exp}" for key, value, exp in problems
        ]
        what = (
            lines[0]
            if len(lines) == 1
            else f"{len(lines)} problems in [atlas.{atlas_id}]:\n"
            + "\n".join(f"  - {x}" for x in lines)
        )
        super().__init__(what, where=where, fix="edit the [atlas.<id>] table named above")


# -- value checks of this schema (the shared ones: generator.checks) -------------------------


def _two_classes(value: Any) -> tuple[str, ...]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, str) and v.strip() for v in value)
        or value[0] == value[1]
    ):
        raise ValueError('two different class names [left, right], e.g. ["snorkel", "scuba diver"]')
    return (value[0], value[1])


def _grids(value: Any) -> tuple[int, ...]:
    expected = f"a list of distinct integers in [1, {MAX_GRID}], e.g. [20, 40, 80, 160]"
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if (
        not isinstance(value, list)
        or not value
        or not all(
            isinstance(g, int) and not isinstance(g, bool) and 1 <= g <= MAX_GRID for g in value
        )
        or len(set(value)) != len(value)
    ):
        raise ValueError(expected)
    return tuple(sorted(value))


#: Top-level keys: name -> check (sub-tables are handled separately).
_TOP: dict[str, Callable[[Any], Any]] = {
    "title": text,
    "kind": text,
    "model": text,
    "layer": text,
    "dataset": text,
    "samples": integer(1),
    "positions": integer(1),
    "seed": integer(0),
    "grids": _grids,
    "min_count": integer(0),
    "whiten": boolean,
    "top_classes": integer(1, 1000),
    "float16": boolean,
    "class": text,
    "classes": _two_classes,
}
_REQUIRED = ("model", "layer", "dataset")
_LAYOUT: dict[str, Callable[[Any], Any]] = {
    "method": choice(*METHODS),
    "n_neighbors": integer(2),
    "min_dist": number(0.0, 10.0),
    "metric": text,
    "perplexity": number(1.0),
    "learning_rate": number(1e-6),
    "backend": choice(*BACKENDS),
    "landmarks": integer(MIN_LANDMARKS),
}
#: Keys of the layout table that choose the back end (the others are LayoutParams').
_BACKEND_KEYS = ("backend", "landmarks")
_ATTRIBUTION: dict[str, Callable[[Any], Any]] = {
    "enabled": boolean,
    "smooth_maxpool": boolean,
    "measure": choice("gradient", "readout"),
}
_FILTER: dict[str, Callable[[Any], Any]] = {"winners": boolean, "top": integer(0)}
_SUBTABLES = ("layout", "attribution", "render", "filter")


def _check_table(
    table: dict[str, Any],
    checks: dict[str, Callable[[Any], Any]],
    prefix: str,
    problems: list[tuple[str, Any, str]],
    *,
    extra: tuple[str, ...] = (),
    strict: bool = True,
) -> dict[str, Any]:
    """Checked values of ``table``'s known keys; problems (and unknown keys) appended."""
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key in checks:
            try:
                values[key] = checks[key](value)
            except ValueError as err:
                problems.append((prefix + key, value, str(err)))
        elif key not in extra:
            if strict:
                guess = closest(key, [*checks, *extra])
                hint = f" (did you mean {guess!r}?)" if guess else ""
                known = ", ".join([*checks, *extra])
                problems.append((prefix + key, value, f"a known key{hint}: {known}"))
            else:
                values[key] = value
    return values


def _subtable(
    table: dict[str, Any], key: str, problems: list[tuple[str, Any, str]]
) -> dict[str, Any]:
    value = table.get(key, {})
    if not isinstance(value, dict):
        problems.append((key, value, f"a table ([atlas.<id>.{key}])"))
        return {}
    return value


def parse_computed_atlas(
    atlas_id: str, table: dict[str, Any], where: str, config: Config | None = None
) -> ComputedAtlasSpec:
    """Validate one ``[atlas.<id>]`` table of a computed atlas.

    Args:
        atlas_id: the table's id.
        table: the parsed TOML table.
        where: ``file:line`` for messages.
        config: the project's :class:`generator.config.Config`, if loaded; then ``model`` and
            ``dataset`` are also checked against atlas.toml's ``[models]``/``[datasets]``.

    Raises:
        SpecProblems: (a :class:`ConfigError`) listing every problem.
    """
    problems: list[tuple[str, Any, str]] = []
    top = _check_table(table, _TOP, "", problems, extra=_SUBTABLES)
    for key in _REQUIRED:
        if key not in table:
            problems.append((key, None, f"{key} = ... (required for a computed atlas)"))
    kind = top.get("kind", "layer")
    if "kind" in top and kind not in KINDS:
        problems.append(("kind", kind, " | ".join(f'"{k}"' for k in KINDS)))
        kind = "layer"
    classes = _kind_classes(kind, table, top, problems)
    filters = _check_table(_subtable(table, "filter", problems), _FILTER, "filter.", problems)
    if kind == "layer" and "filter" in table:
        problems.append(
            ("filter", table["filter"], 'no filter (only kind = "class" or "comparison")')
        )
    layout_table = _check_table(_subtable(table, "layout", problems), _LAYOUT, "layout.", problems)
    attribution = _check_table(
        _subtable(table, "attribution", problems), _ATTRIBUTION, "attribution.", problems
    )
    render = _subtable(table, "render", problems)
    default_grids, default_min_count = KIND_DEFAULTS[kind]
    check_render_table(
        render, seed=top.get("seed", 0), grids=top.get("grids", default_grids), problems=problems
    )
    if kind != "layer" and attribution.get("enabled") is False:
        problems.append(
            ("attribution.enabled", False, f"true ({kind} atlases select samples by attribution)")
        )
    if config is not None:
        _check_names(top, config, problems)
    if problems:
        raise SpecProblems(atlas_id, where, problems)
    layer = top["layer"]
    defaults = default_layout_params(layer, kind)
    backend = {key: layout_table.pop(key) for key in _BACKEND_KEYS if key in layout_table}
    layout = LayoutParams(**{**defaults.as_dict(), **layout_table})
    return ComputedAtlasSpec(
        id=atlas_id,
        where=where,
        title=top.get("title", atlas_id),
        model=top["model"],
        layer=layer,
        dataset=top["dataset"],
        kind=kind,
        samples=top.get("samples", DEFAULT_SAMPLES),
        positions=top.get("positions", 1),
        seed=top.get("seed", 0),
        grids=top.get("grids", default_grids),
        min_count=top.get("min_count", default_min_count),
        whiten=top.get("whiten", layer not in EARLY_LAYERS),
        top_classes=top.get("top_classes", 5),
        float16=top.get("float16", False),
        classes=classes,
        winners=filters.get("winners", True),
        top=filters.get("top", DEFAULT_TOP),
        layout=layout,
        attribution=AttributionSpec(**attribution),
        render=dict(render),
        layout_backend=BackendSettings(**backend),
    )


def check_render_table(
    table: dict[str, Any],
    *,
    seed: int,
    grids: Sequence[int],
    problems: list[tuple[str, Any, str]],
) -> tuple[RenderSettings, ComposeSettings]:
    """The render and compose settings of an ``[atlas.<id>.render]`` table, every rule of it
    in one place: each bad value (:func:`generator.icons.settings.render_settings`,
    :func:`generator.atlas.compose.compose_settings`), each unknown key, and grids that cannot
    zoom semantically (``grids``: checked sizes) are appended to ``problems``; bad values get
    their defaults."""
    render = render_settings(table, seed=seed, problems=problems)
    looks = compose_settings(table, problems)
    known = (*RENDER_KEYS, *COMPOSE_KEYS)
    for key in sorted(set(table) - set(known)):
        guess = closest(key, list(known))
        hint = f" (did you mean {guess!r}?)" if guess else ""
        problems.append((f"render.{key}", table[key], f"a known key{hint}: {', '.join(known)}"))
    zoom = semantic_zoom_problem(tuple(grids))
    if zoom:
        problems.append(("grids", list(grids), f"sizes that halve level by level; {zoom}"))
    return render, looks


def _kind_classes(
    kind: str, table: dict[str, Any], top: dict[str, Any], problems: list[tuple[str, Any, str]]
) -> tuple[str, ...]:
    """The class names a kind needs (``class`` for "class", ``classes`` for "comparison")."""
    needs = {"layer": None, "class": "class", "comparison": "classes"}[kind]
    for key in ("class", "classes"):
        if key in table and key != needs:
            expected = "no such key for a layer atlas" if needs is None else f"{needs} = ..."
            problems.append((key, table[key], f'{expected} (kind = "{kind}")'))
    if needs is None:
        return ()
    if needs not in table:
        example = '"snorkel"' if kind == "class" else '["snorkel", "scuba diver"]'
        problems.append((needs, None, f'{needs} = {example} (required for kind = "{kind}")'))
        return ()
    value = top.get(needs)
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _check_names(top: dict[str, Any], config: Config, problems: list[tuple[str, Any, str]]) -> None:
    """Model and data set names against atlas.toml (torch-free parsers of those tables)."""
    from generator.data.registry import BUILTINS as DATASETS
    from generator.models.model_spec import BUILTINS as MODELS
    from generator.models.model_spec import TORCHVISION_PREFIX

    def check(key: str, known: list[str], expected: str, prefix: str | None = None) -> None:
        name = top.get(key)
        if not name or name in known or (prefix and name.startswith(prefix)):
            return
        guess = closest(name, known)
        hint = f" (did you mean {guess!r}?)" if guess else ""
        problems.append((key, name, f"{expected}{hint}: " + ", ".join(known)))

    models = [*MODELS, *getattr(config, "models", {})]
    check(
        "model", models, "a built-in model or a [models.<name>] of atlas.toml", TORCHVISION_PREFIX
    )
    data_sets = [*DATASETS, *getattr(config, "datasets", {})]
    check("dataset", data_sets, "a built-in data set or a [datasets.<name>] of atlas.toml")
