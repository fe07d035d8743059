"""Run a patch experiment (METHOD.md 6) and write the results the article's table shows.

:func:`run_experiment` reads like the experiment: for every pair (source class -> target class,
icon), draw ``images_per_class`` images of the source class (seeded), classify them, keep the
ones the model gets right, paste the icon at every placement (each size at each position,
:mod:`generator.experiments.patch`) and count the images whose top class becomes the target; do the
same with ``noise_patches`` random-noise patches of each size as the control; then write
``results.json`` (the format ``generator/site/blocks/patch_results_block.py`` reads), the icons and patched
example images with their top classes before and after.

Statistics per pair (counted by :mod:`generator.experiments.results`), over the ``n`` images
classified correctly before (``flip[p, i]``: image ``i`` is classified as the target with
placement ``p``; a class is a model's real class, never a placeholder logit):

* ``best_per_image_rate`` = mean over images of ``any_p flip[p, i]`` (the best size and corner
  chosen per image);
* ``fixed_rate`` = mean of ``flip[f, i]`` for one placement ``f``: the experiment's ``fixed``,
  else the placement with the highest rate (ties: the first in size-major order);
* ``noise_best_rate`` / ``noise_fixed_rate``: the same for each noise patch, averaged over the
  noise patches (the fixed one at the icon's placement ``f``);
* all rates are 0 when no image was classified correctly.

A pair is measured by :class:`generator.experiments.measure.PairRunner` (classify, patch
batch by batch, count). With ``[compute] cluster`` (:func:`measure_on_cluster`,
:mod:`generator.cluster.experiments`) each pair's images are classified here and the patched
batches of all pairs, ``(1 + noise_patches) x placements`` forward passes per image (the
expensive part), run on Ray workers in one queue; their flips come back here, and the
statistics, the example images, ``results.json`` and the cache entry are made here as without
a cluster: the same bytes.

Results are cached under ``<cache>/experiment/<key>/`` (:func:`generator.keys.experiment_key`:
model identity with its weights, data identity, the spec's settings and the icons' bytes), so a
build computes an experiment once; the same seed gives identical statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from generator import seal
from generator.atlas.classes import class_index
from generator.atlas.progress import Progress
from generator.cache import CacheLayout, atomic_dir, atomic_write_json
from generator.experiments.measure import PairRunner
from generator.experiments.results import RESULTS_FORMAT, PairResult, write_pair
from generator.experiments.spec import ExperimentSpec
from generator.freeze.resolve import stale_message, take_frozen
from generator.keys import experiment_key

if TYPE_CHECKING:
    from generator.cluster.session import ClusterPlan
    from generator.config import Config
    from generator.freeze.store import FrozenEntry


def run_experiment(
    spec: ExperimentSpec,
    icons: Sequence[np.ndarray],
    *,
    config: Config,
    progress: Progress | None = None,
    device: str | None = None,
    frozen: FrozenEntry | None = None,
) -> Path:
    """The folder holding ``results.json``, ``icons/`` and ``examples/`` of ``spec`` (cached).

    Args:
        spec: a validated experiment; icons: ``uint8 [h, w, 3]`` per pair, in order.
        config: the project's :class:`generator.config.Config` (paths, ``[compute]``,
            ``[models]``, ``[datasets]``).
        device: overrides ``[compute] device``.
        frozen: the experiment's frozen entry (``atlas freeze``), taken instead of computing
            when it was computed under the same key (:mod:`generator.freeze.resolve`).
    """
    from generator.atlas.environment import ComputeEnvironment

    progress = progress or Progress()
    env = ComputeEnvironment.from_config(config, device=device)
    cache_dir, run_device = env.cache, env.device
    with env.threads_capped():
        model = env.open_model(spec.model)
        source, resize = env.open_data(spec.dataset)
        where = f"{spec.where} ([experiment.{spec.id}])"
        classes = [
            (
                class_index(model.labels, p.source, where=where),
                class_index(model.labels, p.target, where=where),
            )
            for p in spec.pairs
        ]
        key = experiment_key(spec, model, source, resize, icons)
        folder = CacheLayout(cache_dir).experiment(key)
        damage = seal.check(folder) if (folder / "results.json").is_file() else "absent"
        if damage is None:
            progress.message(f"experiment {spec.id}: cached ({folder})")
            return folder
        if damage != "absent":
            progress.message(
                f"experiment {spec.id}: the cached results are damaged ({damage}): discarded,"
                f" recomputing ({folder})"
            )
            seal.discard(folder)
        if frozen is not None and frozen.key == folder.name:
            take_frozen(frozen, folder, "experiment")
            progress.message(
                f"experiment {spec.id}: taken from the frozen folder ({frozen.folder})"
            )
            return folder
        if frozen is not None:
            progress.message(stale_message("experiment", spec.id, frozen, None))
        runner = PairRunner(spec, model, source, resize, run_device, progress)
        if env.cluster is None:
            measured = [
                runner.measure(pair, icon, src, dst)
                for pair, icon, (src, dst) in zip(spec.pairs, icons, classes, strict=True)
            ]
        else:
            measured = measure_on_cluster(env.cluster, runner, icons, classes)
        with atomic_dir(folder) as tmp:
            (tmp / "icons").mkdir()
            (tmp / "examples").mkdir()
            pairs = [
                write_pair(tmp, k, pair, icon, result)
                for k, (pair, icon, result) in enumerate(
                    zip(spec.pairs, icons, measured, strict=True)
                )
            ]
            atomic_write_json(
                tmp / "results.json",
                {
                    "format": RESULTS_FORMAT,
                    "experiment": spec.id,
                    "title": spec.title,
                    "model": spec.model,
                    "dataset": spec.dataset,
                    "seed": spec.seed,
                    "images_per_class": spec.images_per_class,
                    "noise_patches": spec.noise_patches,
                    "pairs": pairs,
                },
            )
    seal.seal(folder)
    progress.message(f"experiment {spec.id}: results written ({folder})")
    return folder


def measure_on_cluster(
    plan: ClusterPlan,
    runner: PairRunner,
    icons: Sequence[np.ndarray],
    classes: Sequence[tuple[int, int]],
) -> list[PairResult]:
    """:meth:`PairRunner.measure` of every pair, the patched batches of all pairs on Ray
    workers (:mod:`generator.cluster.experiments`): each pair classified here, its batches sent
    to the pool, their flips recorded here as they come back, then its statistics and examples
    made here; the same results as measuring here."""
    from generator.cluster.experiments import patch_on_cluster

    works = [
        runner.prepare(pair, icon, src, dst)
        for pair, icon, (src, dst) in zip(runner.spec.pairs, icons, classes, strict=True)
    ]
    for k, batches in patch_on_cluster(plan, runner, works):
        for indices, flips, target_p in batches:
            works[k].record(indices, flips, target_p)
    return [runner.finish(work) for work in works]
