"""``atlas compute <atlas-id>...``: run the compute stages of computed atlases, reusing the cache;
``atlas quality [--check] [<atlas-id>...]``: measure their cached bundles (:mod:`.quality`).

Atlas specs are ``[atlas.<id>]`` tables of ``<content>/<publication>/atlases.toml`` (the content
folder comes from atlas.toml's ``[paths] content``). A table with ``image`` is a precomputed atlas
and has nothing to compute. Heavy imports (torch, umap) happen inside the handler.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator.cache import CacheLayout
from generator.cluster.options import add_cluster_options, with_cluster_options
from generator.errors import AtlasError, SetupError, unknown_name

if TYPE_CHECKING:
    from generator.atlas.spec import ComputedAtlasSpec
    from generator.config import Config
    from generator.specs import AtlasEntry


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "compute",
        help="compute atlases' activations, attributions, layouts and grids (cached, resumable)",
        description="Run the compute stages (collect -> attribute -> layout -> grid) of the "
        "computed atlases named, reusing every cached artifact; an interrupted run resumes "
        "where it stopped. Atlases sharing model, data and sampling are collected in one pass.",
    )
    p.add_argument("ids", nargs="*", metavar="ATLAS_ID", help="atlas ids ([atlas.<id>] tables)")
    p.add_argument("--all", action="store_true", help="every computed atlas of the site")
    p.add_argument("--list", action="store_true", help="list the atlas specs and exit")
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (default: [compute])")
    p.add_argument(
        "--batch-size", type=_at_least(1), default=None, help="images per batch (default 64)"
    )
    p.add_argument(
        "--workers", type=_at_least(0), default=None, help="image decoding processes (default 0)"
    )
    p.add_argument(
        "--bundle",
        action="store_true",
        help="also render every cell's icon and compose the atlas bundle (what `atlas build` "
        "publishes; cached, and an interrupted render resumes)",
    )
    p.add_argument(
        "--plan",
        action="store_true",
        help="print the disk and peak memory each stage will need, computing nothing; exit 2"
        " when the cache's disk cannot hold the stages not yet cached",
    )
    add_cluster_options(p)
    p.set_defaults(func=cmd_compute)

    p = subparsers.add_parser(
        "quality",
        help="measure the cached bundles of computed atlases against the quality thresholds",
        description="Read the cached bundles of the configured publications' computed atlases "
        "(nothing is computed: a missing bundle is an error, exit 2) and print neighbour "
        "agreement (layer atlases), how the model classifies class atlases' icons, and icon "
        'fidelity against noise, each with its threshold (docs/ARCHITECTURE.md, "Quality '
        'checks").',
    )
    p.add_argument("ids", nargs="*", metavar="ATLAS_ID", help="atlas ids (default: all)")
    p.add_argument("--check", action="store_true", help="exit 1 when a threshold is missed")
    p.set_defaults(func=cmd_quality)


def find_atlas_tables(content: Path) -> dict[str, AtlasEntry]:
    """Every ``[atlas.<id>]`` of the publications' atlases.toml by id, found as the build
    finds them (:func:`generator.specs.read_spec_files`)."""
    from generator.specs import read_atlas_entries, read_spec_files

    return read_atlas_entries(read_spec_files(content))[0]


def _at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``low`` (argparse names the option when it fails)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {low}, got {text!r}"
            ) from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value

    return parse


def _first(*values: int | None) -> int:
    """The first value given: the command line's, then the environment's (``[compute]``'s, or
    its default)."""
    return next(v for v in values if v is not None)


def cmd_compute(args: argparse.Namespace) -> int:
    from generator.atlas.spec import parse_computed_atlas
    from generator.config import load_config

    config = with_cluster_options(load_config(args.config), args)
    tables = find_atlas_tables(config.paths.content)
    computed_ids = [i for i, entry in tables.items() if not entry.is_image]
    if args.list:
        for atlas_id, entry in tables.items():
            table, where = entry.table, entry.where
            kind = "image" if entry.is_image else f"{table.get('model')} {table.get('layer')}"
            if table.get("kind") in ("class", "comparison"):
                classes = table.get("classes") or [table.get("class")]
                kind += f" {table['kind']}: " + " vs ".join(map(str, classes))
            print(f"{atlas_id:<24} {kind:<32} {where}")
        return 0
    ids = computed_ids if args.all else list(args.ids)
    if not ids:
        raise AtlasError(
            "name the atlases to compute",
            expected="atlas ids, or --all",
            fix="`atlas compute --list` shows them",
            exit_code=2,
        )
    specs = []
    for atlas_id in ids:
        if atlas_id not in tables:
            raise unknown_name("atlas", atlas_id, sorted(tables), where=str(config.paths.content))
        table, where = tables[atlas_id].table, tables[atlas_id].where
        if tables[atlas_id].is_image:
            raise AtlasError(
                f"atlas {atlas_id!r} is a precomputed image: there is nothing to compute",
                where=where,
                fix="`atlas build` publishes it as it is",
                exit_code=2,
            )
        specs.append(parse_computed_atlas(atlas_id, table, where, config=config))

    from generator.atlas.environment import ComputeEnvironment
    from generator.atlas.pipeline import compute_many, describe
    from generator.atlas.progress import Progress
    from generator.lock import project_lock

    with project_lock(config.paths.cache, "atlas compute"):
        if args.plan:
            for plan, _ in plans(specs, config, args.device):
                print(plan)
            return 0
        for _, needed in plans(specs, config, args.device):
            needed()  # refuses before anything runs when the disk cannot hold it
        env = ComputeEnvironment.from_config(config, device=args.device)
        env = dataclasses.replace(
            env,
            batch_size=_first(args.batch_size, env.batch_size),
            workers=_first(args.workers, env.workers),
        )
        device = env.device
        start = time.monotonic()
        with env.threads_capped():
            results = compute_many(specs, env, progress=Progress())
        for result in results:
            print(describe(result))
        if args.bundle:
            from generator.atlas.bundle_stage import compute_bundle
            from generator.atlas.render_queue import render_queue

            # on a cluster, every atlas's icons in one queue first (none: nothing happens)
            render_queue(specs, config, device=str(device), progress=Progress())
            for spec in specs:
                bundle = compute_bundle(
                    spec, config=config, progress=Progress(), device=str(device)
                )
                fidelity = bundle.info.get("fidelity", {}).get("all", {})
                print(
                    f"  bundle: {bundle.root} (levels {list(bundle.grids)}, icon fidelity mean "
                    f"{fidelity.get('mean')}, quartiles {fidelity.get('q25')}/"
                    f"{fidelity.get('median')}/{fidelity.get('q75')})"
                )
    print(
        f"{len(results)} atlas(es) in {time.monotonic() - start:.1f}s on {device}; "
        f"cache: {config.paths.cache}",
        file=sys.stderr,
    )
    return 0


def plans(
    specs: list[ComputedAtlasSpec], config: Config, device: str | None
) -> list[tuple[str, Callable[[], None]]]:
    """Each spec's plan (:mod:`generator.atlas.plan`) as printed, with the stages already
    cached marked, and a check that refuses when the disk cannot hold the others."""
    from generator.atlas.bundle_stage import bundle_settings
    from generator.atlas.environment import ComputeEnvironment
    from generator.atlas.plan import check_disk, plan_atlas
    from generator.atlas.stages import open_sources
    from generator.keys import bundle_keys

    env = ComputeEnvironment.from_config(config, device=device)
    layout = CacheLayout(config.paths.cache)
    out: list[tuple[str, Callable[[], None]]] = []
    with env.threads_capped():
        for spec in specs:
            render, looks = bundle_settings(spec)
            sources = open_sources(spec, env)
            keys = bundle_keys(spec, sources, render, looks)
            neighbours = spec.layout.n_neighbors
            if spec.layout.method == "tsne":
                neighbours = int(3 * spec.layout.perplexity)
            plan = plan_atlas(
                spec.id,
                samples=len(sources.indices),
                positions=spec.positions,
                channels=sources.model.layer(spec.layer).channels,
                classes=len(sources.model.labels),
                attribution=spec.attribution.enabled,
                float16=spec.float16,
                whiten=spec.whiten,
                grids=spec.grids,
                top_classes=spec.top_classes,
                n_neighbors=neighbours,
                icon_size=render.icon_size,
                examples=looks.examples,
                example_px=looks.example_px,
                landmarks=(
                    keys.layout_backend.landmarks
                    if keys.layout_backend.name == "landmarks"
                    else None
                ),
            )
            names = {"collect": "activations"}
            cached = {
                s.stage
                for s in plan.stages
                if names.get(s.stage, s.stage) in keys.parts
                and layout.stage(
                    names.get(s.stage, s.stage), keys[names.get(s.stage, s.stage)]
                ).is_dir()
            }
            todo = [s for s in plan.stages if s.stage not in cached]
            needed = sum(s.disk for s in todo) + max((s.scratch for s in todo), default=0)
            text = plan.render() + (
                f"\n  cached already: {', '.join(sorted(cached))}; still to write: {needed / 1e6:,.1f} MB"
                if cached
                else ""
            )

            def check(needed: int = needed, atlas_id: str = spec.id) -> None:
                check_disk(layout.root, needed, f"atlas {atlas_id}")

            out.append((text, check))
    return out


def cmd_quality(args: argparse.Namespace) -> int:
    from generator.atlas.environment import ComputeEnvironment
    from generator.atlas.quality import QualityReport, assess_bundle, cached_bundle
    from generator.atlas.spec import parse_computed_atlas
    from generator.bundle import AtlasBundle
    from generator.config import load_config

    config = load_config(args.config)
    tables = find_atlas_tables(config.paths.content)
    for atlas_id in args.ids:
        if atlas_id not in tables:
            raise unknown_name("atlas", atlas_id, sorted(tables), where=str(config.paths.content))
    env = ComputeEnvironment.from_config(config)
    device = env.device
    notes: list[str] = []
    cannot: dict[str, list[str]] = {}
    found, missing = [], []
    with env.threads_capped():
        # 1. Find every bundle (the keys need the model and the sample list, nothing more).
        for atlas_id in args.ids or list(tables):
            table, where = tables[atlas_id].table, tables[atlas_id].where
            if tables[atlas_id].is_image:
                notes.append(f"{atlas_id}: a precomputed image, nothing to measure")
                continue
            spec = parse_computed_atlas(atlas_id, table, where, config=config)
            try:
                folder, sources = cached_bundle(spec, env)
            except SetupError as err:
                if args.ids:
                    raise
                cannot.setdefault(err.what, []).append(atlas_id)
                continue
            if (folder / "bundle.json").is_file():
                found.append((AtlasBundle.load(folder), sources.model))
            else:
                missing.append(f"{atlas_id} ({where})")
        if missing:
            raise AtlasError(
                f"no cached bundle for {len(missing)} atlas(es): " + ", ".join(missing),
                where=str(CacheLayout(config.paths.cache).bundles()),
                expected="bundles computed with the specs as they are now",
                fix="run `atlas build` (it computes them), then `atlas quality` again",
                exit_code=2,
            )
        # 2. Measure them.
        measures = []
        for bundle, model in found:
            measures += assess_bundle(bundle, model, device=device)
    notes += [f"not measured ({what}): {', '.join(ids)}" for what, ids in cannot.items()]
    report = QualityReport(tuple(measures), tuple(notes))
    print(report.table())
    return 1 if args.check and report.failures else 0
