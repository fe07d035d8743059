"""The compute half of a build: every publication's atlas bundles and patch experiments.

Publications are computed one by one, each atlas from its bundle cache when nothing changed.
A publication whose computed atlases or experiments need what the machine lacks (model weights,
an image folder: a :class:`~generator.errors.SetupError`) is **skipped**: the build names
everything it lacks (all its models and data sets are checked, :mod:`generator.atlas.
requirements`), warns, and builds the rest of the site, with a short notice in place of each of
that publication's pages (so links into it keep working; see :mod:`generator.site.build`).
With ``strict`` the same error fails the build (exit 2) before anything is written.

Errors of other kinds (a bad spec, an unknown class, a broken image) fail the build as always.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from generator.bundle import AtlasBundle
from generator.config import Config
from generator.errors import SetupError
from generator.freeze.resolve import Results
from generator.site import atlases as atlas_specs
from generator.site.build_experiments import ComputedResults, compute_experiments

if TYPE_CHECKING:
    from generator.atlas.requirements import Missing
    from generator.experiments.spec import ExperimentSpec
    from generator.site.content import Content, Publication


@dataclass(frozen=True)
class Skipped:
    """A publication left out of this build: the error (everything missing) and its lines."""

    publication: str
    error: SetupError
    missing: tuple[str, ...]


@dataclass
class Computed:
    """What the compute half produced: bundles by atlas id, computed experiments by
    ``(publication, experiment id)``, and the publications skipped by name."""

    bundles: dict[str, AtlasBundle] = field(default_factory=dict)
    experiments: dict[tuple[str, str], ComputedResults] = field(default_factory=dict)
    skipped: dict[str, Skipped] = field(default_factory=dict)


def compute_publications(
    content: Content,
    specs: dict[str, atlas_specs.AtlasSpec],
    experiments: dict[str, list[ExperimentSpec]],
    config: Config,
    digests: atlas_specs.FileDigests,
    *,
    strict: bool,
    log: Callable[[str], None],
    publish_stale: bool = True,
) -> Computed:
    """Bundles and experiments of every publication, skipping those the machine cannot
    compute (see the module doc); ``strict`` raises their :class:`SetupError` instead.
    A stale frozen result is published with a warning unless ``strict`` or not
    ``publish_stale`` (then its publication cannot be computed)."""
    from generator.site.blocks.tourquery import TourQueries

    results = Results(config.paths.cache, strict=strict or not publish_stale, log=log)
    done = Computed()
    by_pub = {pub.name: pub for pub in content.publications}
    if config.compute.cluster != "none":
        _render_queue(specs, config)
    for name, pub in by_pub.items():
        mine = {i: s for i, s in specs.items() if s.source == pub.atlases_toml}
        try:
            bundles = atlas_specs.prepare_bundles(mine, config, digests, results)
            mine_experiments = experiments.get(name, [])
            if mine_experiments:
                queries = TourQueries({**done.bundles, **bundles})
                found = compute_experiments(
                    pub, mine_experiments, {**done.bundles, **bundles}, queries, config, results
                )
                done.experiments.update({(name, i): r for i, r in found.items()})
        except SetupError as err:
            if not any(s.image is None for s in mine.values()) and not experiments.get(name):
                raise  # not a computed atlas or experiment: a broken install, not a skip
            skipped = _skip(pub, mine, experiments.get(name, []), err, config)
            if strict:
                raise skipped.error from err
            log(
                f"warning: publication {name!r} left out (a notice replaces its pages):\n"
                + skipped.error.message()
            )
            done.skipped[name] = skipped
            continue
        done.bundles.update(bundles)
    return done


def _render_queue(specs: dict[str, atlas_specs.AtlasSpec], config: Config) -> None:
    """On a cluster: the icons of every computed atlas of every publication in one queue
    (:mod:`generator.atlas.render_queue`) before the publications are computed one by one.
    A spec that does not parse is left to its publication, which reports it."""
    from generator.atlas.render_queue import render_queue
    from generator.atlas.spec import parse_computed_atlas
    from generator.errors import AtlasError
    from generator.freeze.store import FrozenStore

    computed = []
    for spec in specs.values():
        if spec.image is not None:
            continue
        try:
            computed.append(
                parse_computed_atlas(spec.id, spec.table, where=spec.where, config=config)
            )
        except AtlasError:
            continue
    render_queue(computed, config, frozen=FrozenStore(config.paths.freeze).atlas)


def _skip(
    pub: Publication,
    specs: dict[str, atlas_specs.AtlasSpec],
    experiments: list[ExperimentSpec],
    error: SetupError,
    config: Config,
) -> Skipped:
    """Everything ``pub`` lacks, checked model by model and data set by data set."""
    from generator.atlas.requirements import missing_requirements, requirements_error

    models = [str(s.table["model"]) for s in specs.values() if "model" in s.table]
    datasets = [str(s.table["dataset"]) for s in specs.values() if "dataset" in s.table]
    models += [e.model for e in experiments]
    datasets += [e.dataset for e in experiments]
    missing: list[Missing] = missing_requirements(models, datasets, config=config)
    where = str(pub.atlases_toml or pub.folder)
    combined = requirements_error(pub.name, where, missing, error)
    lines = tuple(m.line() for m in missing) or (error.what,)
    return Skipped(pub.name, combined, lines)
