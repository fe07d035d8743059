"""``atlas freeze``: the results of computed atlases and experiments, written to the frozen folder.

:func:`freeze` runs the compute half of a build (:func:`generator.site.compute.
compute_publications`: each result from the cache, else computed; a stale frozen entry is never
re-frozen), then writes each selected result with :meth:`FrozenStore.write` and reports sizes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.cache import CacheLayout
from generator.config import Config
from generator.errors import ConfigError, SetupError, unknown_name
from generator.freeze.store import FrozenEntry, FrozenStore
from generator.keys import recipe_key


@dataclass
class FreezeReport:
    """What :func:`freeze` wrote (entries in order), removed (folders of ids no longer
    declared, with ``--all``), suggests for Git LFS, and left out (``--all``: what this
    machine cannot compute)."""

    written: list[FrozenEntry] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    lfs: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(entry.bytes for entry in self.written)


def freeze(
    config: Config,
    ids: Sequence[str] = (),
    *,
    everything: bool = False,
    log: Callable[[str], None] = print,
) -> FreezeReport:
    """Freeze the computed atlases and experiments named by ``ids`` (atlas or experiment
    ids), or every one with ``everything``; see the module doc. Holds the project lock."""
    from generator.lock import project_lock

    with project_lock(config.paths.cache, "atlas freeze", log=log):
        return _freeze(config, ids, everything=everything, log=log)


def _freeze(
    config: Config, ids: Sequence[str], *, everything: bool, log: Callable[[str], None]
) -> FreezeReport:
    from generator.atlas.spec import parse_computed_atlas
    from generator.freeze.recipe import atlas_recipe, experiment_recipe
    from generator.site import atlases as atlas_specs
    from generator.site.blocks.tourquery import TourQueries
    from generator.site.build_experiments import icon_pixels, load_experiments
    from generator.site.compute import compute_publications
    from generator.site.content import gather_content
    from generator.specs import read_spec_files

    if not ids and not everything:
        raise ConfigError(
            "atlas freeze needs the ids of what to freeze, or --all",
            fix="atlas freeze <atlas or experiment id> ..., or atlas freeze --all",
            exit_code=2,
        )
    content = gather_content(config.paths.content, include_drafts=True)
    spec_files = read_spec_files(content.root)
    specs, _warnings = atlas_specs.load_specs(spec_files, content.root)
    experiments = load_experiments(spec_files)
    atlases = {i: s for i, s in specs.items() if s.image is None}
    declared = {(pub, e.id): e for pub, found in experiments.items() for e in found}
    wanted = set(ids)
    known = set(atlases) | {i for _pub, i in declared}
    for name in ids:
        if name not in known:
            raise unknown_name(
                "computed atlas or experiment", name, sorted(known), fix="check `atlas freeze` ids"
            )
    pick_atlases = [i for i in atlases if everything or i in wanted]
    pick_experiments = [k for k in declared if everything or k[1] in wanted]

    computed = compute_publications(
        content,
        specs,
        experiments,
        config,
        atlas_specs.FileDigests(CacheLayout(config.paths.cache).file_digests()),
        strict=False,
        publish_stale=False,
        log=log,
    )
    by_source = {pub.atlases_toml: pub.name for pub in content.publications}
    report = FreezeReport()
    store = FrozenStore(config.paths.freeze)

    def write(
        kind: str,
        entry_id: str,
        publication: str,
        result: Path,
        recipe: dict[str, Any],
        inputs: dict[str, Any] | None,
    ) -> None:
        """Freeze one result folder of the cache (its key: the folder's name)."""
        folder = (
            store.atlas_folder(entry_id)
            if kind == "atlas"
            else store.experiment_folder(publication, entry_id)
        )
        entry = store.write(
            folder,
            result,
            kind=kind,
            entry_id=entry_id,
            publication=publication,
            recipe=recipe,
            recipe_key=recipe_key(recipe),
            key=result.name,
            inputs=inputs,
        )
        report.written.append(entry)
        log(f"{kind} {entry_id}: {len(entry.files)} files, {_size(entry.bytes)} -> {entry.folder}")

    for atlas_id in pick_atlases:
        spec = atlases[atlas_id]
        publication = by_source.get(spec.source, "")
        bundle = computed.bundles.get(atlas_id)
        if bundle is None:
            _left_out(report, "atlas", atlas_id, computed.skipped[publication].error, everything)
            continue
        recipe = atlas_recipe(
            parse_computed_atlas(atlas_id, spec.table, where=spec.where, config=config), config
        )
        inputs_file = bundle.root / "inputs.json"
        inputs = json.loads(inputs_file.read_text()) if inputs_file.is_file() else None
        write("atlas", atlas_id, publication, bundle.root, recipe, inputs)
    for publication, experiment_id in pick_experiments:
        found = computed.experiments.get((publication, experiment_id))
        if found is None:
            why = computed.skipped[publication].error
            _left_out(report, "experiment", experiment_id, why, everything)
            continue
        experiment = declared[(publication, experiment_id)]
        queries = TourQueries(computed.bundles)
        icons = [
            icon_pixels(p.icon, computed.bundles, queries, experiment.where)
            for p in experiment.pairs
        ]
        recipe = experiment_recipe(experiment, icons, config)
        write("experiment", experiment_id, publication, found.folder, recipe, None)
    if everything:
        keep = {store.atlas_folder(i) for i in atlases}
        keep |= {store.experiment_folder(pub, i) for pub, i in declared}
        for entry in list(store.entries()):
            if entry.folder not in keep:
                store.remove(entry.folder)
                report.removed.append(entry.folder)
                log(f"removed {entry.folder} ({entry.kind} {entry.id!r} is no longer declared)")
    report.lfs = store.write_gitattributes()
    log(
        f"frozen: {len(report.written)} entries, {_size(report.bytes)} in all, in"
        f" {config.paths.freeze} (commit it)"
    )
    for path in report.lfs:
        log(f"  over 50 MB, suggested for Git LFS in .gitattributes: {path}")
    if report.left_out:
        log(
            f"warning: {len(report.left_out)} not frozen (they cannot be computed on this"
            " machine; freeze them where they are computed): " + ", ".join(report.left_out)
        )
    return report


def _left_out(
    report: FreezeReport, kind: str, entry_id: str, why: SetupError, everything: bool
) -> None:
    """An entry this machine cannot compute: an error when named, a warning with ``--all``."""
    error = SetupError(
        f"{kind} {entry_id!r} cannot be frozen: it cannot be computed on this machine",
        where=why.where,
        got=why.what,
        fix="freeze it where it is computed (the compute engine, weights and data at hand)",
    )
    if not everything:
        raise error
    report.left_out.append(f"{kind} {entry_id}")


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 100_000 else f"{count / 1e3:.1f} kB"
