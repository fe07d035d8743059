"""The layout of a two-class comparison (METHOD.md 6): x from attributions, y from a 1-D layout.

For the comparison of ``left`` and ``right`` over its selected samples
(:mod:`generator.atlas.classes`):

* ``d = attr[:, right] - attr[:, left]``; ``s`` = the 99th percentile of ``|d|`` (numpy's
  linear interpolation); ``x = clip(d / s, -1, 1)``, then mapped to [0, 1] by ``(x + 1) / 2``,
  so samples attributed more to ``left`` sit left of the centre and those attributed more to
  ``right`` to its right (when ``s == 0``, every sample is at 0.5);
* ``y`` = a 1-D layout of the raw activation vectors (the article: 1-D t-SNE; by default
  cosine distance, perplexity 50, learning rate 10; ``[atlas.<id>.layout]`` may change it),
  normalized as every layout axis (METHOD.md 3: 1st/99th percentiles widened by 10%).

x is not normalized like a layout axis: its scale is the attribution difference itself, so the
centre line means "attributed equally to both classes".
"""

from __future__ import annotations

import numpy as np

from generator.atlas.artifacts import Layout
from generator.atlas.layout import LayoutParams, embed

#: Percentile of ``|d|`` that maps to the edges of the x axis (METHOD.md 6).
X_PERCENTILE = 99.0


def comparison_x(attributions: np.ndarray, left: int, right: int) -> tuple[np.ndarray, float]:
    """``([N] float32 in [0, 1], s)``: each sample's x and the scale ``s`` (see the module doc).

    Args:
        attributions: ``[N, K]`` attributions of the comparison's samples.
        left, right: the two classes' logit indices.
    """
    a = np.asarray(attributions, dtype=np.float64)
    d = a[:, right] - a[:, left]
    scale = float(np.percentile(np.abs(d), X_PERCENTILE)) if len(d) else 0.0
    if not scale > 0 or not np.isfinite(scale):
        return np.full(len(d), 0.5, dtype=np.float32), 0.0
    x = np.clip(d / scale, -1.0, 1.0)
    return ((x + 1.0) / 2.0).astype(np.float32), scale


def comparison_layout(
    vectors: np.ndarray,
    attributions: np.ndarray,
    left: int,
    right: int,
    params: LayoutParams,
    *,
    seed: int,
) -> Layout:
    """The comparison's :class:`Layout`: ``xy[:, 0]`` = :func:`comparison_x`, ``xy[:, 1]`` = the
    normalized 1-D layout of ``vectors [N, C]`` with ``params`` (seeded)."""
    x, scale = comparison_x(attributions, left, right)
    y, used = embed(vectors, params, seed=seed, n_components=1)
    return Layout(
        xy=np.stack([x, y[:, 0]], axis=1).astype(np.float32),
        method="comparison",
        params={
            "x": "attribution difference (right - left) / its 99th-percentile |value|, clipped",
            "x_scale": scale,
            "left": int(left),
            "right": int(right),
            "y": {**used.as_dict(), "n_components": 1},
            "seed": seed,
        },
    )
