"""A patch experiment, as declared by an ``[experiment.<id>]`` table of ``atlases.toml``.

The article's "human-designed adversarial examples" (METHOD.md 6): paste an icon onto images of
a source class and count how often the model then says the target class::

    [experiment.patches]
    model = "inceptionv1"              # a built-in model or a [models.<name>] of atlas.toml
    dataset = "imagenet"               # images with class labels (class subfolders)
    seed = 0                           # which images, the noise patches
    images_per_class = 1000            # source-class images drawn (METHOD.md 6: 1,000)
    sizes = [0.2, 0.3, 0.4, 0.5]       # patch side / image side
    positions = [[0, 0], [1, 0], [0, 1], [1, 1]]   # [x, y] in [0, 1]: the four corners
    fixed = { size = 0.4, position = [1, 1] }      # the "one fixed placement" (default: the
                                                   # placement with the best flip rate)
    noise_patches = 10                 # random-noise patches of each size, the control
    examples = 4                       # patched example images kept per pair
    batch_size = 64                    # images per forward pass

    [[experiment.patches.pairs]]
    source = "snorkel"
    target = "scuba diver"
    icon = { atlas = "snorkel-scuba", query = { attributed_to = "scuba diver" } }

    [[experiment.patches.pairs]]
    source = "grey whale"
    target = "great white shark"
    icon = { atlas = "mixed5b", cell = [12, 3], grid = 20 }   # or icon = "images/icon.png"

One pair may also be written at the top (``source``, ``target``, ``icon``) instead of
``pairs``. The icon of an atlas cell is that cell of the atlas's level image (its ``grid``,
default the coarsest); a ``query`` is a tour query (``attributed_to``, ``channel``,
``nearest_cell``; see :mod:`generator.site.blocks.tourquery`) whose best cell is taken; a string is an
image file relative to ``atlases.toml``. Class names are checked against the model's labels
when the experiment runs. Parsing needs neither torch nor the model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.checks import integer, number, text
from generator.errors import ConfigError, closest

#: Images of each source class (METHOD.md 6: "over 1,000 training images per source class").
DEFAULT_IMAGES = 1000

#: Patch sides as fractions of the image side; the article's example used 0.4 (METHOD.md 6).
DEFAULT_SIZES = (0.2, 0.3, 0.4, 0.5)

#: The four corners, ``[x, y]`` (METHOD.md 6: "at a corner, position pos x (224 - w)").
CORNERS = ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0))

#: Random-noise patches per size, the control of every pair.
DEFAULT_NOISE = 10

#: Patched example images kept per pair (the block shows 4 by default).
DEFAULT_EXAMPLES = 4

#: Images per forward pass.
DEFAULT_BATCH = 64

#: Ranked tour queries that can choose an icon (a top_class query finds a region, not a cell).
ICON_QUERIES = ("attributed_to", "channel", "nearest_cell")


@dataclass(frozen=True)
class IconSpec:
    """Where a pair's icon comes from: exactly one of ``path`` (an image file; ``written``: the
    path as the table gives it), ``cell`` (a cell ``(col, row)`` of ``atlas``'s grid ``grid``,
    None: the coarsest) or ``query`` (a tour query mapping on ``atlas``, its best cell)."""

    path: Path | None = None
    written: str = ""
    atlas: str | None = None
    cell: tuple[int, int] | None = None
    grid: int | None = None
    query: dict[str, Any] | None = None

    def describe(self) -> str:
        if self.path is not None:
            return self.written or self.path.name
        if self.cell is not None:
            return f"atlas {self.atlas} cell {list(self.cell)} of grid {self.grid or 'coarsest'}"
        return f"atlas {self.atlas} query {self.query}"


@dataclass(frozen=True)
class PairSpec:
    """A source class, a target class and the icon meant to turn one into the other."""

    source: str
    target: str
    icon: IconSpec


@dataclass(frozen=True)
class ExperimentSpec:
    """A validated ``[experiment.<id>]`` (keys: the module docstring).

    Attributes:
        sizes: patch ratios; positions: ``(x, y)`` in [0, 1]^2; every size is tried at every
            position (``len(sizes) * len(positions)`` placements, results' ``n_patches``).
        fixed: ``(size, position)`` of the fixed placement, None: the best one.
    """

    id: str
    where: str
    title: str
    model: str
    dataset: str
    pairs: tuple[PairSpec, ...]
    seed: int = 0
    images_per_class: int = DEFAULT_IMAGES
    sizes: tuple[float, ...] = DEFAULT_SIZES
    positions: tuple[tuple[float, float], ...] = CORNERS
    fixed: tuple[float, tuple[float, float]] | None = None
    noise_patches: int = DEFAULT_NOISE
    examples: int = DEFAULT_EXAMPLES
    batch_size: int = DEFAULT_BATCH
    atlases: tuple[str, ...] = field(default=())

    def placements(self) -> list[tuple[float, tuple[float, float]]]:
        """Every ``(size, position)`` tried, sizes outermost (the results' order)."""
        return [(size, pos) for size in self.sizes for pos in self.positions]


Problems = list[tuple[str, Any, str]]


#: Any number (the checks below add their own ranges).
_any_number = number()


def _sizes(value: Any) -> tuple[float, ...]:
    expected = "a list of distinct numbers in (0, 1], e.g. [0.2, 0.3, 0.4, 0.5]"
    try:
        sizes = tuple(_any_number(v) for v in value) if isinstance(value, list) else ()
    except ValueError:
        sizes = ()
    if not sizes or not all(0 < s <= 1 for s in sizes) or len(set(sizes)) != len(sizes):
        raise ValueError(expected)
    return sizes


def _position(value: Any) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError("[x, y] with x and y in [0, 1]")
    x, y = (_any_number(v) for v in value)
    if not (0 <= x <= 1 and 0 <= y <= 1):
        raise ValueError("[x, y] with x and y in [0, 1]")
    return (x, y)


def _positions(value: Any) -> tuple[tuple[float, float], ...]:
    expected = "a list of distinct [x, y] in [0, 1]^2, e.g. [[0, 0], [1, 0], [0, 1], [1, 1]]"
    try:
        found = tuple(_position(v) for v in value) if isinstance(value, list) else ()
    except ValueError:
        found = ()
    if not found or len(set(found)) != len(found):
        raise ValueError(expected)
    return found


_TOP: dict[str, Callable[[Any], Any]] = {
    "title": text,
    "model": text,
    "dataset": text,
    "seed": integer(0, 2**32 - 1),
    "images_per_class": integer(1, 1_000_000),
    "sizes": _sizes,
    "positions": _positions,
    "noise_patches": integer(0, 1000),
    "examples": integer(0, 24),
    "batch_size": integer(1, 4096),
}
_PAIR_KEYS = ("source", "target", "icon")


def _icon(value: Any, key: str, base: Path, problems: Problems) -> IconSpec | None:
    """The :class:`IconSpec` of an ``icon`` value (problems appended when it is not one)."""
    forms = (
        '"path/to/image.png", {atlas = "<id>", cell = [col, row], grid = G} or '
        '{atlas = "<id>", query = {attributed_to = "<class>"}}'
    )
    if isinstance(value, str) and value.strip():
        return IconSpec(path=(base / value).resolve(), written=value)
    if not isinstance(value, dict) or not isinstance(value.get("atlas"), str):
        problems.append((key, value, forms))
        return None
    unknown = sorted(set(value) - {"atlas", "cell", "grid", "query"})
    if unknown or ("cell" in value) == ("query" in value):
        problems.append((key, value, forms + " (exactly one of cell and query)"))
        return None
    grid = value.get("grid")
    if grid is not None and (isinstance(grid, bool) or not isinstance(grid, int) or grid < 1):
        problems.append((f"{key}.grid", grid, "a grid size of the atlas, e.g. 20"))
        return None
    if "cell" in value:
        cell = value["cell"]
        ok = isinstance(cell, list) and len(cell) == 2
        if not ok or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in cell
        ):
            problems.append((f"{key}.cell", cell, "[col, row], two integers >= 0"))
            return None
        return IconSpec(atlas=value["atlas"], cell=(cell[0], cell[1]), grid=grid)
    query = value["query"]
    if not isinstance(query, dict) or not any(kind in query for kind in ICON_QUERIES):
        problems.append(
            (f"{key}.query", query, "a ranked tour query: one of " + ", ".join(ICON_QUERIES))
        )
        return None
    if grid is not None:
        problems.append((f"{key}.grid", grid, "the grid inside the query: query = {..., grid = G}"))
        return None
    return IconSpec(atlas=value["atlas"], query=dict(query))


def _pairs(table: dict[str, Any], base: Path, problems: Problems) -> list[PairSpec]:
    has_top = any(key in table for key in _PAIR_KEYS)
    if has_top and "pairs" in table:
        problems.append(("pairs", table["pairs"], "either pairs = [...] or source/target/icon"))
        return []
    raw = [{k: table[k] for k in _PAIR_KEYS if k in table}] if has_top else table.get("pairs")
    if not isinstance(raw, list) or not raw:
        problems.append(("pairs", raw, "[[experiment.<id>.pairs]] tables of source, target, icon"))
        return []
    pairs = []
    for i, pair in enumerate(raw):
        key = "" if has_top else f"pairs[{i}]."
        if not isinstance(pair, dict):
            problems.append((key.rstrip("."), pair, "a table of source, target, icon"))
            continue
        for extra in sorted(set(pair) - set(_PAIR_KEYS)):
            problems.append((key + extra, pair[extra], "a known key: source, target, icon"))
        names = {}
        for name in ("source", "target"):
            value = pair.get(name)
            if isinstance(value, str) and value.strip():
                names[name] = value
            else:
                problems.append((key + name, value, "a class name of the model"))
        if names.get("source") is not None and names.get("source") == names.get("target"):
            problems.append((key + "target", names["target"], "a class other than the source"))
        icon = _icon(pair.get("icon"), key + "icon", base, problems)
        if len(names) == 2 and icon is not None:
            pairs.append(PairSpec(names["source"], names["target"], icon))
    return pairs


class ExperimentProblems(ConfigError):
    """Every problem of one experiment table; ``problems`` lists ``(key, value, expected)``."""

    def __init__(self, experiment_id: str, where: str, problems: Problems) -> None:
        self.problems = problems
        lines = [
            f"experiment.{experiment_id}.{key} = {value!r}: expected {exp}"
            for key, value, exp in problems
        ]
        what = (
            lines[0]
            if len(lines) == 1
            else (
                f"{len(lines)} problems in [experiment.{experiment_id}]:\n"
                + "\n".join(f"  - {x}" for x in lines)
            )
        )
        super().__init__(what, where=where, fix="edit the [experiment.<id>] table named above")


def parse_experiment(
    experiment_id: str, table: dict[str, Any], where: str, *, base: Path
) -> ExperimentSpec:
    """Validate one ``[experiment.<id>]`` table; ``base`` is the folder of its atlases.toml.

    Raises:
        ExperimentProblems: (a :class:`ConfigError`) listing every problem at once.
    """
    problems: Problems = []
    values: dict[str, Any] = {}
    known = [*_TOP, "fixed", "pairs", *_PAIR_KEYS]
    for key, value in table.items():
        if key in _TOP:
            try:
                values[key] = _TOP[key](value)
            except ValueError as err:
                problems.append((key, value, str(err)))
        elif key not in known:
            guess = closest(key, known)
            hint = f" (did you mean {guess!r}?)" if guess else ""
            problems.append((key, value, f"a known key{hint}: {', '.join(known)}"))
    for key in ("model", "dataset"):
        if key not in table:
            problems.append((key, None, f"{key} = ... (required)"))
    pairs = _pairs(table, base, problems)
    sizes = values.get("sizes", DEFAULT_SIZES)
    positions = values.get("positions", CORNERS)
    fixed = None
    if "fixed" in table:
        raw = table["fixed"]
        expected = "{size = <one of sizes>, position = [x, y] of positions}"
        try:
            if not isinstance(raw, dict) or set(raw) != {"size", "position"}:
                raise ValueError
            fixed = (_any_number(raw["size"]), _position(raw["position"]))
        except ValueError:
            problems.append(("fixed", raw, expected))
        else:
            if fixed[0] not in sizes or fixed[1] not in positions:
                problems.append(("fixed", raw, expected + ": a placement that is tried"))
    if problems:
        raise ExperimentProblems(experiment_id, where, problems)
    atlases = tuple(sorted({p.icon.atlas for p in pairs if p.icon.atlas is not None}))
    return ExperimentSpec(
        id=experiment_id,
        where=where,
        title=values.get("title", experiment_id),
        model=values["model"],
        dataset=values["dataset"],
        pairs=tuple(pairs),
        seed=values.get("seed", 0),
        images_per_class=values.get("images_per_class", DEFAULT_IMAGES),
        sizes=sizes,
        positions=positions,
        fixed=fixed,
        noise_patches=values.get("noise_patches", DEFAULT_NOISE),
        examples=values.get("examples", DEFAULT_EXAMPLES),
        batch_size=values.get("batch_size", DEFAULT_BATCH),
        atlases=atlases,
    )
