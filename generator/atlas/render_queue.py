"""Every atlas's icons in one queue on a cluster, so the workers stay busy across atlases.

Without a cluster each atlas renders its icons in its own turn
(:func:`generator.atlas.bundle_stage.compute_bundle`). With one (``[compute] cluster``), a
build or ``atlas compute --bundle`` of several atlases first runs :func:`render_queue`:

1. each atlas's grids are computed (cached, as its bundle would compute them) and its render
   is planned as :func:`generator.icons.render_icons.render_icons` plans it
   (:func:`~generator.icons.render_icons.plan_render`: the same run folder, the same batches);
2. the batches left of every level of every atlas go to ONE pool of Ray workers
   (:func:`generator.cluster.render.render_queue_on_cluster`; each distinct model shipped
   once), and each batch is saved in its atlas's run folder as it comes back;
3. then each atlas's own bundle finds its render finished (``render: resuming, N of N icons
   already done``) and goes on with its dataset examples and composition.

So the bytes are those of a render without Ray, an interrupted queue resumes like any render
(every saved batch is kept), and the workers never wait while this process lays out or
composes the next atlas. Left out of the queue: atlases whose bundle or icons are cached,
whose frozen results match (:mod:`generator.freeze`), and those this machine cannot compute
or whose spec is wrong (their own compute reports it, as without a cluster). An error while
an atlas's grids are computed (NaN activations, a broken image) stops the queue at once, as it
would stop that atlas's own compute: it is not computed a second time to fail again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from generator.atlas.progress import Progress
from generator.errors import AtlasError, SetupError

if TYPE_CHECKING:
    from generator.atlas.environment import ComputeEnvironment
    from generator.atlas.spec import ComputedAtlasSpec
    from generator.config import Config
    from generator.freeze.store import FrozenEntry
    from generator.icons.render_icons import RenderPlan
    from generator.models.base import AtlasModel


@dataclass(frozen=True)
class Queued:
    """One atlas's render in the queue: its id, its model's name and its plan."""

    atlas: str
    model: str
    plan: RenderPlan


def render_queue(
    specs: Sequence[ComputedAtlasSpec],
    config: Config,
    *,
    device: str | None = None,
    progress: Progress | None = None,
    frozen: Callable[[str], FrozenEntry | None] | None = None,
) -> int:
    """Render the icons left of every atlas of ``specs`` in one queue on ``[compute]
    cluster`` (see the module docstring); returns the icons rendered (0 without a cluster).

    Args:
        device: overrides ``[compute] device``; frozen: an atlas id's frozen entry (the site
            build's; ``atlas compute`` computes frozen atlases again).
    """
    from generator.atlas.environment import ComputeEnvironment

    progress = progress or Progress()
    env = ComputeEnvironment.from_config(config, device=device)
    if env.cluster is None:
        return 0
    models: dict[str, AtlasModel] = {}
    queued: list[Queued] = []
    with env.threads_capped():
        for spec in specs:
            try:
                item = _planned(spec, env, progress, models, frozen)
            except SetupError:
                continue  # this machine lacks something: reported when the atlas is computed
            if item is not None and item.plan.units:
                queued.append(item)
        if not queued:
            return 0
        return _run(queued, models, env, progress)


def _planned(
    spec: ComputedAtlasSpec,
    env: ComputeEnvironment,
    progress: Progress,
    models: dict[str, AtlasModel],
    frozen: Callable[[str], FrozenEntry | None] | None,
) -> Queued | None:
    """The planned render of ``spec``, or None when its bundle, icons or frozen entry stand."""
    from generator.atlas.bundle_stage import bundle_settings
    from generator.atlas.pipeline import compute_grids
    from generator.atlas.stages import StageCache, open_sources
    from generator.cache import CacheLayout
    from generator.icons.lean import render_copy
    from generator.icons.render_icons import plan_render
    from generator.keys import bundle_keys

    try:
        render, looks = bundle_settings(spec)
        sources = open_sources(spec, env)
        keys = bundle_keys(spec, sources, render, looks)
    except AtlasError:
        return None  # a wrong spec: reported when the atlas itself is computed, before work
    cache = StageCache(env.cache, progress, keys)
    bundle = cache.folder("bundle")
    if (bundle / "bundle.json").is_file() or cache.folder("icons").is_dir():
        return None
    entry = frozen(spec.id) if frozen is not None else None
    if entry is not None and entry.key == bundle.name:
        return None
    grids = compute_grids(spec, env, progress=progress, sources=sources)
    if spec.model not in models:
        models[spec.model], _ = render_copy(sources.model)
    plan = plan_render(
        models[spec.model],
        spec.layer,
        grids.grids,
        whitening=None if grids.whitening is None else grids.whitening.matrix,
        settings=render,
        run_dir=CacheLayout(env.cache).render_run(keys["icons"]),
        key=keys["icons"],
        device=env.device,
        progress=progress,
    )
    plan.results.clear()  # the queue only saves batches: each atlas assembles its own icons
    return Queued(spec.id, spec.model, plan)


def _run(
    queued: list[Queued],
    models: dict[str, AtlasModel],
    env: ComputeEnvironment,
    progress: Progress,
) -> int:
    """Every batch of ``queued`` on one pool; each saved in its atlas's run folder."""
    from generator.cluster.render import render_queue_on_cluster

    assert env.cluster is not None
    names = sorted({item.model for item in queued})
    jobs = [(names.index(item.model), item.plan.job) for item in queued]
    units = [(a, unit) for a, item in enumerate(queued) for unit in item.plan.units]
    total = sum(item.plan.total for item in queued)
    done = sum(int(item.plan.done.sum()) for item in queued)
    progress.message(
        f"render: one queue of {len(units)} batch(es), {total - done:,} icons, from "
        f"{len(queued)} atlas(es): {', '.join(item.atlas for item in queued)}"
    )
    rendered = 0
    for atlas, ids, batch in render_queue_on_cluster(
        env.cluster, [models[name] for name in names], jobs, units, total, done, progress
    ):
        queued[atlas].plan.run.save(ids, batch)
        rendered += len(ids)
    return rendered
