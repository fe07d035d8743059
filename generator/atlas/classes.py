"""Which samples a class activation atlas or a two-class comparison shows (METHOD.md 6).

The article's class atlas of class ``c`` keeps, out of every sample of the layer,

* the **winners**: samples whose top attributed class is ``c`` (the largest of their
  attributions over the model's real classes, placeholder logits excluded; ties go to the lower
  class index, as ``argmax``), and
* the **top n**: the ``n`` samples with the largest attribution to ``c``, positive only
  (a sample with ``attr[c] <= 0`` is never taken, so fewer than ``n`` may come back; ties go to
  the lower sample index),

and the union of the two (each sample once, in sample order). A comparison of classes ``a``
and ``b`` keeps the union of both classes' selections. The selected samples are then laid out
on their own, but the icons are still whitened with the matrix of *all* the layer's samples
(METHOD.md 6: "whitening over all samples"), computed by the pipeline before selecting.

Pure numpy; the attributions of a million samples x 1008 classes (4 GB) are scanned in blocks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from generator.atlas.artifacts import Activations, row_blocks
from generator.errors import AtlasError, unknown_name

#: Labels of logits that are not classes (Lucid's InceptionV1: index 0 "dummy" and
#: 1001..1007 "unused <i>", see generator.models.labels): never a sample's or a cell's top class.
PLACEHOLDER_LABELS = ("dummy", "unused ")

#: Rows of the attribution matrix scanned at a time for the winners (bounds the temporary
#: float32 copy to 64k x 1008 x 4 B = 260 MB).
_BLOCK = 65536


@dataclass(frozen=True)
class Selection:
    """The samples of a class atlas or comparison and how they were chosen.

    Attributes:
        classes: the class names (one for a class atlas, ``[left, right]`` for a comparison).
        class_indices: their logit indices.
        indices: ``[n] int64``, sorted, distinct: the selected rows of the layer's samples.
        winners: per class, how many samples it wins (0 when ``filter.winners`` is off).
        top: per class, how many samples the top-n filter took (positive attributions only).
        total: N, the number of samples selected from.
    """

    classes: tuple[str, ...]
    class_indices: tuple[int, ...]
    indices: np.ndarray
    winners: tuple[int, ...]
    top: tuple[int, ...]
    total: int

    def info(self) -> dict[str, Any]:
        """A JSON-able summary (``bundle.json``'s ``info["selection"]``)."""
        return {
            "classes": list(self.classes),
            "class_indices": list(self.class_indices),
            "selected": len(self.indices),
            "of": self.total,
            "winners": list(self.winners),
            "top": list(self.top),
        }


def valid_classes(labels: Sequence[str]) -> np.ndarray:
    """``[K] bool``: the logits that are real classes (placeholder labels excluded)."""
    return np.array([not label.startswith(PLACEHOLDER_LABELS) for label in labels], dtype=bool)


def class_index(labels: Sequence[str], name: str, *, where: str) -> int:
    """The logit index of class ``name`` in ``labels``; an unknown name lists the closest."""
    try:
        return list(labels).index(name)
    except ValueError:
        raise unknown_name(
            "class",
            name,
            [label for label in labels if label],
            where=where,
            fix="use the model's spelling of the class (its labels are listed above)",
        ) from None


def top_classes_of_samples(attributions: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """``[N] int64``: each sample's top attributed class among ``valid [K] bool`` classes
    (None: all), i.e. ``argmax`` of ``attributions [N, K]`` with invalid columns at -inf."""
    n = attributions.shape[0]
    out = np.empty(n, dtype=np.int64)
    for rows in row_blocks(n, _BLOCK):
        block = np.asarray(attributions[rows], dtype=np.float32)
        if valid is not None:
            block = np.where(valid[None, :], block, np.float32(-np.inf))
        out[rows] = np.argmax(block, axis=1)
    return out


def top_positive(values: np.ndarray, n: int) -> np.ndarray:
    """Indices ``[<= n] int64`` of the ``n`` largest strictly positive ``values [N]``, largest
    first (ties: lower index first)."""
    values = np.asarray(values, dtype=np.float64)
    positive = np.flatnonzero(values > 0)
    order = np.argsort(-values[positive], kind="stable")[:n]
    return positive[order].astype(np.int64)


def select_samples(
    attributions: np.ndarray,
    class_indices: Sequence[int],
    *,
    winners: bool = True,
    top: int = 2000,
    valid: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple[int, ...], tuple[int, ...]]:
    """The union of each class's winners and top-``top`` positive samples.

    Args:
        attributions: ``[N, K] float32``, each sample's attribution to every class.
        class_indices: the classes (one for a class atlas, two for a comparison).
        winners: keep the samples whose top attributed class is one of them.
        top: also keep each class's ``top`` samples of largest positive attribution.
        valid: ``[K] bool``, the classes that can be a sample's top class (None: all).

    Returns:
        (sorted distinct sample indices ``[n] int64``, winners per class, top-n taken per class).
    """
    chosen: list[np.ndarray] = []
    won: list[int] = []
    taken: list[int] = []
    best = top_classes_of_samples(attributions, valid) if winners else None
    for index in class_indices:
        if best is not None:
            mine = np.flatnonzero(best == index)
            chosen.append(mine)
            won.append(len(mine))
        else:
            won.append(0)
        if top > 0:
            ranked = top_positive(attributions[:, index], top)
            chosen.append(ranked)
            taken.append(len(ranked))
        else:
            taken.append(0)
    indices = np.unique(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)
    return indices.astype(np.int64), tuple(won), tuple(taken)


def select(
    activations: Activations,
    labels: Sequence[str],
    classes: Sequence[str],
    *,
    winners: bool,
    top: int,
    valid: np.ndarray | None,
    where: str,
) -> Selection:
    """The :class:`Selection` of ``classes`` (names) among ``activations``' samples.

    Raises:
        AtlasError: no attributions, an unknown class name, or nothing selected.
    """
    if activations.attributions is None:
        raise AtlasError(
            "class atlases need the samples' attributions, and these activations have none",
            where=where,
            fix="remove `attribution = { enabled = false }` from the atlas table",
        )
    indices = tuple(class_index(labels, name, where=where) for name in classes)
    rows, won, taken = select_samples(
        activations.attributions, indices, winners=winners, top=top, valid=valid
    )
    if len(rows) == 0:
        raise AtlasError(
            f"no sample is attributed to {' or '.join(repr(c) for c in classes)}",
            where=where,
            expected="samples that this class wins, or with positive attribution to it",
            fix="use more `samples`, another layer, or check the class name",
        )
    return Selection(tuple(classes), indices, rows, won, taken, activations.count)


def subset(activations: Activations, indices: np.ndarray) -> Activations:
    """The samples ``indices [n]`` of ``activations`` (every per-sample array, same order)."""
    attributions = activations.attributions
    return dataclasses.replace(
        activations,
        vectors=np.ascontiguousarray(activations.vectors[indices]),
        image_index=activations.image_index[indices],
        positions=activations.positions[indices],
        labels=activations.labels[indices],
        attributions=None if attributions is None else np.ascontiguousarray(attributions[indices]),
        meta={**activations.meta, "subset": len(indices)},
    )
