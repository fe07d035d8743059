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

Results are cached under ``<cache>/experiment/<key>/`` (:func:`generator.keys.experiment_key`:
model identity with its weights, data identity, the spec's settings and the icons' bytes), so a
build computes an experiment once; the same seed gives identical statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from generator import seal
from generator.atlas.classes import class_index, valid_classes
from generator.atlas.progress import Progress
from generator.cache import CacheLayout, atomic_dir, atomic_write_json
from generator.errors import AtlasError, unknown_name
from generator.experiments.patch import fit_icon, noise_patch, paste, patch_tensor, placement
from generator.experiments.results import RESULTS_FORMAT, PairResult, flip_statistics, write_pair
from generator.experiments.spec import ExperimentSpec, PairSpec
from generator.freeze.resolve import stale_message, take_frozen
from generator.keys import experiment_key

if TYPE_CHECKING:
    import torch

    from generator.config import Config
    from generator.data.base import ImageSource
    from generator.freeze.store import FrozenEntry
    from generator.models.base import AtlasModel

#: Classes listed before and after for each example image.
EXAMPLE_TOP = 3


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
        measured = [
            runner.measure(pair, icon, src, dst)
            for pair, icon, (src, dst) in zip(spec.pairs, icons, classes, strict=True)
        ]
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


def images_of_class(source: ImageSource, name: str, *, where: str) -> np.ndarray:
    """``[n] int64``: the images of ``source`` labelled with class ``name``.

    A data set class matches when its name is ``name`` or when it is a WordNet id (ImageNet's
    folder names, ``n04251144``) whose ImageNet class name is ``name``.
    """
    from generator.models.labels import lucid_classes

    names = tuple(source.class_names)
    if not names:
        raise AtlasError(
            "patch experiments need images labelled by class, and this data set has no labels",
            where=where,
            expected="an image folder with one subfolder per class (ImageNet's train/ folder)",
            fix="point the experiment's dataset at a labelled image folder",
        )
    by_wnid = {wnid: label for wnid, label in lucid_classes() if wnid}
    wanted = [k for k, c in enumerate(names) if c == name or by_wnid.get(c) == name]
    if not wanted:
        shown = [by_wnid.get(c, c) for c in names]
        raise unknown_name("class of the data set", name, shown, where=where)
    labels = source.labels(np.arange(len(source), dtype=np.int64))
    return np.flatnonzero(np.isin(labels, wanted)).astype(np.int64)


class PairRunner:
    """Measures pairs with one model and data set (see the module doc)."""

    def __init__(
        self,
        spec: ExperimentSpec,
        model: AtlasModel,
        source: ImageSource,
        resize: str,
        device: torch.device,
        progress: Progress,
    ) -> None:
        import torch

        self.spec, self.model, self.source, self.resize = spec, model, source, resize
        self.device, self.progress = device, progress
        self.size = model.input_size
        self.valid = torch.from_numpy(valid_classes(model.labels)).to(device)
        self.placements = [placement(r, pos, self.size) for r, pos in spec.placements()]

    def batches(self, indices: np.ndarray) -> Any:
        from generator.data.loader import iterate_batches

        return iterate_batches(
            self.source,
            indices,
            size=self.size,
            device=self.device,
            resize=self.resize,
            batch_size=self.spec.batch_size,
            warn=False,
        )

    def classify(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(top real class ``[B] int64``, softmax over all logits ``[B, K]``) of ``images``."""
        import torch

        with torch.no_grad():
            logits = self.model(images).float()
        masked = torch.where(self.valid[None, :], logits, torch.full_like(logits, -torch.inf))
        return masked.argmax(dim=1), torch.softmax(logits, dim=1)

    def measure(self, pair: PairSpec, icon: np.ndarray, source: int, target: int) -> PairResult:
        """Classify, patch, count; returns the pair's statistics and example images."""
        spec = self.spec
        where = f"{spec.where} ([experiment.{spec.id}] {pair.source} -> {pair.target})"
        from generator.data.sampling import sample_indices

        candidates = images_of_class(self.source, pair.source, where=where)
        drawn = candidates[sample_indices(len(candidates), spec.images_per_class, spec.seed)]
        correct: list[int] = []
        for batch in self.batches(drawn):
            predicted, _ = self.classify(batch.images)
            correct += batch.indices[(predicted == source).cpu()].tolist()
        ids = np.array(correct, dtype=np.int64)
        self.progress.message(
            f"experiment {spec.id}: {pair.source} -> {pair.target}: {len(ids)} of "
            f"{len(drawn)} images classified correctly before"
        )
        row = {int(i): k for k, i in enumerate(ids)}
        draws = 1 + spec.noise_patches
        flips = np.zeros((draws, len(self.placements), len(ids)), dtype=bool)
        target_p = np.zeros((len(self.placements), len(ids)), dtype=np.float32)
        patches = self.patches(icon)
        done = 0
        for batch in self.batches(ids):
            rows = np.array([row[int(i)] for i in batch.indices], dtype=np.int64)
            for p, where_p in enumerate(self.placements):
                for d in range(draws):
                    predicted, probs = self.classify(paste(batch.images, patches[d][p], where_p))
                    flips[d, p, rows] = (predicted == target).cpu().numpy()
                    if d == 0:
                        target_p[p, rows] = probs[:, target].cpu().numpy()
            done += len(rows)
            self.progress.message(f"experiment {spec.id}: {done}/{len(ids)} images patched")
        fixed = None if spec.fixed is None else spec.placements().index(spec.fixed)
        stats = flip_statistics(flips, fixed)
        examples = self.examples(ids, flips[0], target_p, patches[0])
        return PairResult(len(drawn), len(ids), stats, self.placements, examples)

    def patches(self, icon: np.ndarray) -> list[list[torch.Tensor]]:
        """``patches[d][p]``: ``[3, w, w]`` float patch of draw ``d`` (0: the icon, then the
        noise patches) at placement ``p``'s side."""
        sides = sorted({p.side for p in self.placements})
        out = []
        for d in range(1 + self.spec.noise_patches):
            by_side = {
                side: patch_tensor(
                    fit_icon(icon, side)
                    if d == 0
                    else noise_patch(side, seed=self.spec.seed, draw=d - 1),
                    self.device,
                )
                for side in sides
            }
            out.append([by_side[p.side] for p in self.placements])
        return out

    def examples(
        self, ids: np.ndarray, flips: np.ndarray, target_p: np.ndarray, icon: list[torch.Tensor]
    ) -> list[dict[str, Any]]:
        """Up to ``spec.examples`` patched images: flipped ones first, then by the target's
        probability at each image's best placement; each with its top classes before/after."""
        if self.spec.examples == 0 or len(ids) == 0:
            return []
        best = target_p.argmax(axis=0)
        columns = np.arange(len(ids))
        order = np.lexsort((columns, -target_p[best, columns], ~flips[best, columns]))
        chosen = order[: self.spec.examples]
        out: list[dict[str, Any]] = []
        for batch in self.batches(ids[chosen]):
            for k, image_id in enumerate(batch.indices.tolist()):
                column = int(np.flatnonzero(ids == image_id)[0])
                where_p = self.placements[int(best[column])]
                image = batch.images[k : k + 1]
                patched = paste(image, icon[int(best[column])], where_p)
                _, before = self.classify(image)
                _, after = self.classify(patched)
                out.append(
                    {
                        "source_index": int(image_id),
                        "placement": where_p.describe(),
                        "pixels": (patched[0].permute(1, 2, 0).cpu().numpy() * 255)
                        .round()
                        .astype(np.uint8),
                        "before": self.top(before[0]),
                        "after": self.top(after[0]),
                    }
                )
        return out

    def top(self, probs: torch.Tensor) -> list[list[Any]]:
        """``[[class name, probability], ...]`` of the :data:`EXAMPLE_TOP` most probable real
        classes, most probable first."""
        import torch

        masked = torch.where(self.valid, probs, torch.full_like(probs, -1.0))
        values, indices = masked.topk(EXAMPLE_TOP)
        return [
            [self.model.labels[int(i)], round(float(v), 4)]
            for v, i in zip(values.tolist(), indices.tolist(), strict=True)
        ]
