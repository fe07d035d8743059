"""Bin a layout into grids of cells and average each cell's samples (METHOD.md section 4).

Cells are half-open: with G cells per side, sample ``(x, y)`` in [0, 1] falls into
``xbin = floor(x * G)``, ``ybin = floor(y * G)``, except that ``x == 1.0`` (``y == 1.0``) goes to the
last bin ``G - 1``. So every sample lies in exactly one cell (the reference notebooks used
inclusive bounds, and boundary samples counted twice). A cell is kept when it holds MORE than
``min_count`` samples, as the article's recipe did (``count > threshold``, threshold 5). The
canvas row ``G - 1 - ybin`` (y up) is applied when the atlas image is composed, not here.

Also here: the whitening matrix of a layer's samples (METHOD.md section 5), used by rendering.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from generator.atlas.artifacts import Activations, Grid, Layout, Whitening, row_blocks, rows_as

#: Default minimum count: a kept cell holds more than this many samples (the recipe's 5).
DEFAULT_MIN_COUNT = 5

#: Classes listed per cell (the article's tooltip showed the top 5).
DEFAULT_TOP_K = 5

#: The article's grid sizes for a layer atlas (METHOD.md 4).
DEFAULT_GRIDS = (20, 40, 80, 160)

#: Relative ridge for a (nearly) singular second moment: when its smallest eigenvalue is
#: below ``WHITEN_EPS * largest``, ``WHITEN_EPS * largest * I`` is added before inverting.
#: 1e-6 sits just above float32 resolution (~1.2e-7), below which an inverse is noise.
WHITEN_EPS = 1e-6

#: float64 elements of one block of rows of the whitening's second moment (1 GiB): large, so
#: that the atlases of up to 131,072 samples of 1,024 channels sum in one product as before.
WHITEN_BLOCK_ELEMENTS = 1 << 27


def assign_bins(xy: np.ndarray, size: int) -> np.ndarray:
    """Half-open bins ``[N, 2] int64`` ``(xbin, ybin)`` of points ``xy [N, 2]`` in [0, 1]."""
    if size < 1:
        raise ValueError(f"grid size must be >= 1, got {size}")
    scaled = np.floor(np.asarray(xy, dtype=np.float64) * size)
    return np.clip(scaled, 0, size - 1).astype(np.int64)


def _means_by_cell(values: np.ndarray, sample_cell: np.ndarray, cells: int) -> np.ndarray:
    """Mean ``[cells, D] float64`` of ``values [N, D]`` over the samples of each cell.

    Accumulated in float64, :data:`~generator.atlas.artifacts.ROW_BLOCK` samples at a time (a
    float64 copy of a million 1008-class attributions would not fit in memory); every cell
    must hold a sample.
    """
    from scipy import sparse

    sums = np.zeros((cells, values.shape[1]), dtype=np.float64)
    for rows in row_blocks(len(sample_cell)):
        block = sample_cell[rows]
        keep = np.flatnonzero(block >= 0)
        one_hot = sparse.csr_matrix(
            (np.ones(len(keep)), (block[keep], keep)), shape=(cells, len(block))
        )
        sums += one_hot @ np.asarray(values[rows], dtype=np.float64)
    counts = np.bincount(sample_cell[sample_cell >= 0], minlength=cells)
    return sums / counts[:, None]


def top_classes(
    attributions: np.ndarray, k: int, valid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``[M, k] int64`` and values ``[M, k] float32`` of the ``k`` largest columns
    of ``attributions [M, K]`` per row (ties: lower index first); ``valid [K] bool`` excludes
    classes (e.g. a model's unused logits)."""
    scores = np.asarray(attributions, dtype=np.float64)
    if valid is not None:
        scores = np.where(valid[None, :], scores, -np.inf)
    k = min(k, int(scores.shape[1]) if valid is None else int(valid.sum()))
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    values = np.take_along_axis(scores, order, axis=1)
    return order.astype(np.int64), values.astype(np.float32)


def make_grid(
    activations: Activations,
    layout: Layout,
    size: int,
    *,
    min_count: int = DEFAULT_MIN_COUNT,
    top_k: int = DEFAULT_TOP_K,
    valid_classes: np.ndarray | None = None,
) -> Grid:
    """The ``size x size`` :class:`Grid` of ``activations`` laid out by ``layout``.

    Args:
        activations: ``N`` samples (vectors ``[N, C]``, optional attributions ``[N, K]``).
        layout: their ``[N, 2]`` positions in [0, 1].
        size: G, cells per side.
        min_count: keep cells with more than this many samples.
        top_k: classes listed per cell (by mean attribution).
        valid_classes: ``[K] bool``, classes eligible for the top list (None: all).
    """
    n = activations.count
    if layout.xy.shape[0] != n:
        raise ValueError(f"layout has {layout.xy.shape[0]} points for {n} samples")
    bins = assign_bins(layout.xy, size)
    flat = bins[:, 1] * size + bins[:, 0]  # ybin-major, so kept cells sort by (ybin, xbin)
    counts_all = np.bincount(flat, minlength=size * size)
    kept_flat = np.flatnonzero(counts_all > min_count)
    row_of_flat = np.full(size * size, -1, dtype=np.int64)
    row_of_flat[kept_flat] = np.arange(len(kept_flat))
    sample_cell = row_of_flat[flat]
    m = len(kept_flat)
    directions = _means_by_cell(activations.vectors, sample_cell, m).astype(np.float32)
    attributions = None
    top_idx = np.zeros((m, 0), dtype=np.int64)
    top_val = np.zeros((m, 0), dtype=np.float32)
    if activations.attributions is not None:
        attributions = _means_by_cell(activations.attributions, sample_cell, m).astype(np.float32)
        top_idx, top_val = top_classes(attributions, top_k, valid_classes)
    return Grid(
        size=size,
        min_count=min_count,
        cells=np.stack([kept_flat % size, kept_flat // size], axis=1).astype(np.int64),
        counts=counts_all[kept_flat].astype(np.int64),
        directions=directions.reshape(m, activations.channels),
        attributions=attributions,
        top_classes=top_idx,
        top_values=top_val,
        sample_cell=sample_cell,
        n_samples=n,
    )


def make_grids(
    activations: Activations,
    layout: Layout,
    sizes: Sequence[int] = DEFAULT_GRIDS,
    **options: object,
) -> dict[int, Grid]:
    """One :class:`Grid` per size, all from the same layout (options as :func:`make_grid`)."""
    return {size: make_grid(activations, layout, size, **options) for size in sizes}  # type: ignore[arg-type]


def whitening(activations: Activations, *, eps: float = WHITEN_EPS) -> Whitening:
    """The inverse of the uncentred second moment ``S = (A^T A / N)^-1`` of the samples.

    ``A`` = ``activations.vectors [N, C]``, summed in float64 a block of rows at a time (one
    block up to 131,072 rows of 1,024 channels). Computed by an eigendecomposition
    ``A^T A / N = V diag(l) V^T``; when ``min(l) <= eps * max(l)`` (dead channels, fewer samples
    than channels) the ridge ``r = eps * max(l)`` is added: ``S = V diag(1 / (l + r)) V^T``.
    Rendering whitens a direction ``v`` as ``v @ S``.
    """
    vectors = activations.vectors
    n, c = vectors.shape
    second_moment = np.zeros((c, c), dtype=np.float64)
    for block in rows_as(vectors, np.float64, rows=max(1, WHITEN_BLOCK_ELEMENTS // max(1, c))):
        second_moment += block.T @ block
    second_moment /= max(1, n)
    eigenvalues, eigenvectors = np.linalg.eigh(second_moment)
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    largest = float(eigenvalues.max()) if eigenvalues.size else 0.0
    ridge = 0.0
    if eigenvalues.min() <= eps * largest or largest == 0.0:
        ridge = eps * largest if largest > 0 else eps
    inverse = (eigenvectors / (eigenvalues + ridge)) @ eigenvectors.T
    return Whitening(
        layer=activations.layer,
        matrix=((inverse + inverse.T) / 2).astype(np.float32),
        ridge=ridge,
        n_samples=int(n),
    )
