"""Patch experiments declared in a publication's ``atlases.toml``, computed when the site builds.

An ``[experiment.<id>]`` table (keys: :mod:`generator.experiments.spec`) sits beside the
publication's ``[atlas.<id>]`` tables, whose atlases its icons may come from. A build, once the
atlases' bundles exist:

1. resolves each pair's icon to pixels: an image file (relative to atlases.toml), a cell of an
   atlas's level image (``{atlas, cell = [col, row], grid}``; default grid: the coarsest), or
   the best cell of a ranked tour query on an atlas (``{atlas, query = {attributed_to = c}}``,
   answered by :class:`~generator.site.blocks.tourquery.TourQueries` as tour stops are);
2. computes the experiment, or finds it in the cache (:func:`generator.experiments.run.
   run_experiment`): a folder with ``results.json``, ``icons/`` and ``examples/``;
3. publishes that folder at ``<publication>/experiments/<id>/``, where a committed results
   file would be, and the ```` ```patch-results ```` block of the publication's pages reads
   the computed ``results.json`` by experiment id (a committed
   ``experiments/<id>/results.json`` still works for experiments not declared; declaring one
   that is also committed is an error).

Parsing needs neither torch nor the model; computing does (imported when needed). A machine
without the compute engine takes the results from the cache or the frozen folder
(:mod:`generator.freeze.resolve`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from generator.bundle import AtlasBundle
from generator.cache import CacheLayout
from generator.errors import ConfigError, ContentError, closest
from generator.experiments.spec import ExperimentSpec, IconSpec, parse_experiment
from generator.paths import confine
from generator.specs import SpecFile, read_experiment_entries

if TYPE_CHECKING:
    from generator.config import Config
    from generator.freeze.resolve import Results
    from generator.freeze.store import FrozenEntry
    from generator.site.blocks.tourquery import TourQueries
    from generator.site.content import Publication


@dataclass(frozen=True)
class ComputedResults:
    """A computed experiment: its publication, id and cache folder (``results.json`` inside)."""

    publication: str
    id: str
    folder: Path

    @property
    def results(self) -> Path:
        return self.folder / "results.json"

    def outputs(self) -> dict[str, Path]:
        """Output path (site-root relative) -> file, for every file of the folder."""
        base = f"{self.publication}/experiments/{self.id}"
        return {
            f"{base}/{path.relative_to(self.folder).as_posix()}": path
            for path in sorted(self.folder.rglob("*"))
            if path.is_file() and path.name != "inputs.json"
        }


def load_experiments(files: Sequence[SpecFile]) -> dict[str, list[ExperimentSpec]]:
    """Every ``[experiment.<id>]`` of the publications' atlases.toml files
    (:func:`generator.specs.read_spec_files`), validated, by publication name (the name of
    the file's folder)."""
    found: dict[str, list[ExperimentSpec]] = {}
    for file in files:
        folder = file.path.parent
        specs = read_experiments(file)
        for spec in specs:
            for index, pair in enumerate(spec.pairs):
                if pair.icon.path is not None:  # an image file: it must be content
                    confine(
                        pair.icon.path,
                        folder.parent,  # the content folder
                        where=f"{spec.where} (pairs[{index}].icon)",
                        what=f"the icon image of [experiment.{spec.id}]",
                        written=pair.icon.written,
                    )
            committed = folder / "experiments" / spec.id / "results.json"
            if committed.is_file():
                raise ConfigError(
                    f"experiment {spec.id!r} is declared and also committed",
                    where=spec.where,
                    expected="either an [experiment.<id>] table (computed when the site"
                    " builds) or a committed experiments/<id>/results.json",
                    got=str(committed),
                    fix="delete one of the two, or rename the experiment",
                )
        if specs:
            found[folder.name] = specs
    return found


def read_experiments(file: SpecFile) -> list[ExperimentSpec]:
    """The experiment tables of one atlases.toml (``where`` names each table's line)."""
    base = file.path.parent
    return [
        parse_experiment(entry.id, entry.table, entry.where, base=base)
        for entry in read_experiment_entries(file)
    ]


#: The most pixels an icon image file may declare (checked from its header, before decoding).
MAX_ICON_PIXELS = 4096 * 4096


def icon_pixels(
    icon: IconSpec, bundles: dict[str, AtlasBundle], queries: TourQueries, where: str
) -> np.ndarray:
    """The icon's pixels, ``uint8 [h, w, 3]`` (an atlas cell: ``cell_px`` square)."""
    from PIL import Image

    if icon.path is not None:
        try:
            with Image.open(icon.path) as image:  # reads the header only
                if image.width * image.height > MAX_ICON_PIXELS:
                    raise ContentError(
                        "the icon image declares more pixels than an icon may have",
                        where=f"{where} (icon)",
                        expected=f"at most {MAX_ICON_PIXELS:,} pixels (a patch is resized to at"
                        " most the model's input)",
                        got=f"{image.width:,} x {image.height:,} ({icon.path})",
                        fix="use a smaller icon image",
                    )
                return np.asarray(image.convert("RGB"), dtype=np.uint8)
        except Image.DecompressionBombError as err:
            raise ContentError(
                "the icon image declares more pixels than an icon may have",
                where=f"{where} (icon)",
                expected=f"at most {MAX_ICON_PIXELS:,} pixels",
                got=f"{err} ({icon.path})",
                fix="use a smaller icon image",
            ) from err
        except OSError as err:
            raise ContentError(
                f"cannot read the icon image: {err}",
                where=f"{where} (icon)",
                expected="a PNG/JPEG file, relative to atlases.toml",
                got=str(icon.path),
                fix="fix the icon path",
            ) from err
    assert icon.atlas is not None
    if icon.atlas not in bundles:
        guess = closest(icon.atlas, bundles)
        raise ConfigError(
            f"the icon names an unknown atlas {icon.atlas!r}"
            + (f" (did you mean {guess!r}?)" if guess else ""),
            where=f"{where} (icon.atlas)",
            expected="an atlas id of the site: " + ", ".join(sorted(bundles)),
            fix="fix the id or declare the atlas",
        )
    bundle = bundles[icon.atlas]
    if icon.query is not None:
        from generator.site.blocks.tourquery import parse_query

        query = dataclasses.replace(parse_query(icon.query, f"{where} (icon.query)"), n=1)
        found = queries.resolve(icon.atlas, query, f"{where} (icon.query)")
        grid, (col, row) = found.grid, found.cells[0]
    else:
        assert icon.cell is not None
        grid = icon.grid if icon.grid is not None else bundle.grids[0]
        col, row = icon.cell
    return cell_pixels(bundle, grid, col, row, where)


def cell_pixels(bundle: AtlasBundle, grid: int, col: int, row: int, where: str) -> np.ndarray:
    """Cell ``(col, row)`` of level ``grid``'s image, ``uint8 [cell_px, cell_px, 3]``; the cell
    must hold an icon (be listed in ``cells-<grid>.json``)."""
    import json

    from PIL import Image

    level = next((lv for lv in bundle.levels if lv.grid == grid), None)
    if level is None:
        raise ConfigError(
            f"atlas {bundle.id!r} has no {grid}x{grid} grid",
            where=f"{where} (icon.grid)",
            expected="one of its grids: " + ", ".join(map(str, bundle.grids)),
            fix="change the icon's grid",
        )
    cells = json.loads((bundle.root / level.cells).read_text())["cells"]
    if not any(c[0] == col and c[1] == row for c in cells):
        raise ConfigError(
            f"cell [{col}, {row}] of atlas {bundle.id!r} at grid {grid} holds no icon",
            where=f"{where} (icon.cell)",
            expected=f"an occupied cell (col and row from 0 to {grid - 1})",
            got=f"[{col}, {row}]",
            fix="pick a cell the atlas shows (hover it in `atlas serve`), or use a query",
        )
    s = level.cell_px
    with Image.open(bundle.root / level.image) as image:
        crop = image.convert("RGB").crop((col * s, row * s, (col + 1) * s, (row + 1) * s))
        return np.asarray(crop, dtype=np.uint8)


def compute_experiments(
    pub: Publication,
    specs: list[ExperimentSpec],
    bundles: dict[str, AtlasBundle],
    queries: TourQueries,
    config: Config,
    results: Results,
) -> dict[str, ComputedResults]:
    """Each experiment of ``pub``: from the cache, else the frozen folder, else computed
    (:mod:`generator.freeze.resolve`); results by experiment id."""
    from generator.freeze.recipe import experiment_recipe
    from generator.freeze.resolve import Wanted
    from generator.freeze.store import FrozenStore

    store = FrozenStore(config.paths.freeze)
    layout = CacheLayout(config.paths.cache)
    out = {}
    for spec in specs:
        icons = [icon_pixels(pair.icon, bundles, queries, spec.where) for pair in spec.pairs]
        frozen = store.experiment(pub.name, spec.id)
        wanted = Wanted(
            kind="experiment",
            entry_id=spec.id,
            where=f"{spec.where} ([experiment.{spec.id}])",
            recipe=experiment_recipe(spec, icons, config),
            frozen=frozen,
            frozen_at=store.experiment_folder(pub.name, spec.id),
            folder_of=layout.experiment,
            marker="results.json",
        )
        compute = functools.partial(_run_experiment, spec, icons, config, frozen)
        folder = results.resolve(wanted, compute)
        out[spec.id] = ComputedResults(pub.name, spec.id, folder)
    return out


def _run_experiment(
    spec: ExperimentSpec, icons: list[np.ndarray], config: Config, frozen: FrozenEntry | None
) -> Path:
    from generator.experiments.run import run_experiment

    return run_experiment(spec, icons, config=config, frozen=frozen)
