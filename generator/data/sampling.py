"""Deterministic samples of a source's indices, the same on every run, machine and platform.

The article drew one million random ImageNet training images; :func:`sample_indices` draws ``n``
of ``n_total`` indices from a seed. Only the raw output of numpy's PCG64 bit generator is used
(its stream is fixed across numpy versions and platforms, unlike ``Generator.choice``'s
algorithm); the selection itself is written here.
"""

from __future__ import annotations

import numpy as np

#: Above this many candidates, draw by rejection instead of ranking every index (memory).
_RANK_LIMIT = 1 << 25


def _raw(seed: int, n: int) -> np.ndarray:
    """``n`` raw 64-bit outputs of PCG64 seeded with ``seed`` (``uint64 [n]``)."""
    return np.random.PCG64(seed).random_raw(n).astype(np.uint64)


def sample_indices(n_total: int, n: int, seed: int, *, replace: bool = False) -> np.ndarray:
    """``n`` indices in ``[0, n_total)`` drawn with ``seed``, as ``int64``, sorted ascending.

    Without replacement (the default) the indices are distinct; when ``n >= n_total`` that is
    every index, ``0 .. n_total-1`` (check ``len`` of the result). With ``replace=True`` exactly
    ``n`` indices are drawn independently (repeats possible, still sorted). A larger ``n`` with
    the same seed and ``n_total`` does not in general contain a smaller one's sample.
    """
    if n_total < 0 or n < 0:
        raise ValueError(f"sample sizes must be >= 0, got n_total={n_total}, n={n}")
    if n == 0 or n_total == 0:
        return np.zeros(0, dtype=np.int64)
    if replace:
        return np.sort(_below(_raw(seed, n), n_total)).astype(np.int64)
    if n >= n_total:
        return np.arange(n_total, dtype=np.int64)
    if n_total <= _RANK_LIMIT:
        # Rank every index by a random 64-bit key and keep the n smallest (ties: lower index).
        keys = _raw(seed, n_total)
        chosen = np.argsort(keys, kind="stable")[:n]
        return np.sort(chosen).astype(np.int64)
    return _sparse_sample(n_total, n, seed)


def _below(raw: np.ndarray, bound: int) -> np.ndarray:
    """Map raw 64-bit values to ``[0, bound)`` by their top 53 bits (bias < bound / 2**53)."""
    unit = (raw >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return np.minimum((unit * bound).astype(np.int64), bound - 1)


def _sparse_sample(n_total: int, n: int, seed: int) -> np.ndarray:
    """Distinct indices from a huge range: draw in rounds, keep first occurrences, until ``n``."""
    gen = np.random.PCG64(seed)
    chosen = np.zeros(0, dtype=np.int64)
    while len(chosen) < n:
        draws = _below(gen.random_raw(2 * (n - len(chosen)) + 16).astype(np.uint64), n_total)
        merged = np.concatenate([chosen, draws])
        _, first = np.unique(merged, return_index=True)
        chosen = merged[np.sort(first)][:n]  # keep draw order, drop repeats
    return np.sort(chosen)
