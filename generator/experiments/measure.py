"""Measuring a patch experiment's pairs (METHOD.md 6): draw, classify, patch, count.

:class:`PairRunner` holds one model and data set. :meth:`~PairRunner.measure` measures a pair
in this process as three steps that a cluster run (:mod:`generator.cluster.experiments`)
shares: :meth:`~PairRunner.prepare` draws ``images_per_class`` images of the source class
(seeded), classifies them and keeps those the model gets right (a :class:`PairWork` with the
pair's patch bytes and empty flips); :meth:`~PairRunner.patched` classifies one batch of them
with every patch (the icon, then each noise patch) at every placement, the batch's part of the
flips, which :meth:`PairWork.record` stores; :meth:`~PairRunner.finish` counts the statistics
(:func:`generator.experiments.results.flip_statistics`) and makes the example images. The
batches are ``spec.batch_size`` consecutive ids of the correctly classified images
(:meth:`PairWork.chunks`), wherever they run, so the results are the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from generator.atlas.classes import valid_classes
from generator.atlas.progress import Progress
from generator.errors import AtlasError, unknown_name
from generator.experiments.patch import fit_icon, noise_patch, paste, patch_tensor, placement
from generator.experiments.results import PairResult, flip_statistics
from generator.experiments.spec import ExperimentSpec, PairSpec

if TYPE_CHECKING:
    import torch

    from generator.data.base import ImageSource
    from generator.models.base import AtlasModel

#: Classes listed before and after for each example image.
EXAMPLE_TOP = 3


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


@dataclass
class PairWork:
    """One pair between its classification and its statistics.

    Attributes:
        target: the target class (a logit of the model).
        drawn: images drawn of the source class.
        ids: ``[n] int64``, the drawn images classified correctly before, in drawn order;
            patched in batches of ``spec.batch_size`` consecutive ids (:meth:`chunks`).
        pixels: ``pixels[d][side]``, the ``uint8 [side, side, 3]`` patch of draw ``d`` (0: the
            icon, then the noise patches) at each placement side.
        flips: ``[1 + noise, P, n] bool`` and target_p: ``[P, n] float32``, filled batch by
            batch (:meth:`record`): whether image ``i`` is classified as the target with draw
            ``d`` at placement ``p``; the target's probability with the icon.
    """

    target: int
    drawn: int
    ids: np.ndarray
    pixels: list[dict[int, np.ndarray]]
    flips: np.ndarray
    target_p: np.ndarray

    def chunks(self, batch_size: int) -> list[np.ndarray]:
        """The ids of each batch :meth:`PairRunner.batches` makes of :attr:`ids`."""
        return [self.ids[k : k + batch_size] for k in range(0, len(self.ids), batch_size)]

    def record(self, indices: np.ndarray, flips: np.ndarray, target_p: np.ndarray) -> None:
        """Store one batch's :meth:`PairRunner.patched` results; ``indices``: its image ids."""
        column = {int(i): k for k, i in enumerate(self.ids)}
        rows = np.array([column[int(i)] for i in indices], dtype=np.int64)
        self.flips[:, :, rows] = flips
        self.target_p[:, rows] = target_p


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
        work = self.prepare(pair, icon, source, target)
        patches = self.patches(work.pixels)
        done = 0
        for batch in self.batches(work.ids):
            work.record(batch.indices.numpy(), *self.patched(batch.images, patches, target))
            done += len(batch.indices)
            self.progress.message(
                f"experiment {self.spec.id}: {done}/{len(work.ids)} images patched"
            )
        return self.finish(work)

    def prepare(self, pair: PairSpec, icon: np.ndarray, source: int, target: int) -> PairWork:
        """Draw and classify the pair's images; its :class:`PairWork`, nothing patched yet."""
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
        draws = 1 + spec.noise_patches
        return PairWork(
            target=target,
            drawn=len(drawn),
            ids=ids,
            pixels=self.patch_pixels(icon),
            flips=np.zeros((draws, len(self.placements), len(ids)), dtype=bool),
            target_p=np.zeros((len(self.placements), len(ids)), dtype=np.float32),
        )

    def patched(
        self, images: torch.Tensor, patches: list[list[torch.Tensor]], target: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """``images [B, 3, S, S]`` with every patch at every placement, classified:
        ``(flips [1 + noise, P, B] bool, target_p [P, B] float32)``, the top class being
        ``target`` and the icon's (draw 0) softmax probability of ``target``."""
        draws, count = len(patches), len(images)
        flips = np.zeros((draws, len(self.placements), count), dtype=bool)
        target_p = np.zeros((len(self.placements), count), dtype=np.float32)
        for p, where_p in enumerate(self.placements):
            for d in range(draws):
                predicted, probs = self.classify(paste(images, patches[d][p], where_p))
                flips[d, p] = (predicted == target).cpu().numpy()
                if d == 0:
                    target_p[p] = probs[:, target].cpu().numpy()
        return flips, target_p

    def finish(self, work: PairWork) -> PairResult:
        """The pair's statistics and example images, once ``work`` is filled."""
        spec = self.spec
        fixed = None if spec.fixed is None else spec.placements().index(spec.fixed)
        stats = flip_statistics(work.flips, fixed)
        icon = self.patches(work.pixels[:1])[0]
        examples = self.examples(work.ids, work.flips[0], work.target_p, icon)
        return PairResult(work.drawn, len(work.ids), stats, self.placements, examples)

    def patch_pixels(self, icon: np.ndarray) -> list[dict[int, np.ndarray]]:
        """``pixels[d][side]``: the ``uint8 [side, side, 3]`` patch of draw ``d`` (0: the icon,
        then the noise patches) at each placement side."""
        sides = sorted({p.side for p in self.placements})
        return [
            {
                side: fit_icon(icon, side)
                if d == 0
                else noise_patch(side, seed=self.spec.seed, draw=d - 1)
                for side in sides
            }
            for d in range(1 + self.spec.noise_patches)
        ]

    def patches(self, pixels: list[dict[int, np.ndarray]]) -> list[list[torch.Tensor]]:
        """``patches[d][p]``: ``[3, w, w]`` float patch of draw ``d`` at placement ``p``'s side
        (from :meth:`patch_pixels`), on this runner's device."""
        out = []
        for by_side in pixels:
            tensors = {side: patch_tensor(patch, self.device) for side, patch in by_side.items()}
            out.append([tensors[p.side] for p in self.placements])
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
