"""The typed artifacts the compute stages hand each other, saved as ``.npz`` + ``.json``.

collect/attribute -> :class:`Activations`; layout -> :class:`Layout`; grid -> :class:`Grid` (one
per resolution) and :class:`Whitening` (one per layer sample). Each is a frozen dataclass of numpy
arrays plus a few facts; ``save(folder)`` writes ``<name>.npz`` (arrays, uncompressed) and
``<name>.json`` (everything else) into a folder the caller owns (the pipeline fills a temporary
folder and renames it into the cache, see :func:`generator.cache.atomic_dir`); ``load(folder)``
reads them back and checks shapes. Arrays in memory have the dtypes documented below, whatever
precision they were stored with, except the activations' vectors and attributions.

:class:`Activations` are the one artifact that grows with the sample count (a million samples of
a 1,024-channel layer with 1,000-class attributions: 4 GB each in float16), so they are stored
as one ``.npy`` file per array and loaded memory-mapped, in the precision they were stored with
(float16 or float32): every consumer reads them a block of rows at a time and computes in
float32 or float64 (:func:`rows_as`), so nothing holds the whole matrix of attributions.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from generator.cache import atomic_write_json
from generator.errors import AtlasError

#: Version of the on-disk layout of these artifacts; part of every cache key.
ARTIFACT_FORMAT = 1


def _save(folder: Path, name: str, arrays: dict[str, np.ndarray], facts: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{name}.npz", "wb") as f:
        np.savez(f, **cast(dict[str, Any], arrays))
    _write_facts(folder, name, facts)


def _write_facts(folder: Path, name: str, facts: dict[str, Any]) -> None:
    atomic_write_json(folder / f"{name}.json", {"format": ARTIFACT_FORMAT, **facts})


def _load(folder: Path, name: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    def arrays() -> dict[str, np.ndarray]:
        with np.load(folder / f"{name}.npz", allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}

    return _read(folder, name, arrays)


def _read(
    folder: Path, name: str, read_arrays: Callable[[], dict[str, np.ndarray]]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays (``read_arrays()``) and the ``<name>.json`` facts of a cached artifact; a
    file that cannot be read, or one of another format, is an :class:`AtlasError` saying how to
    mend it."""
    try:
        facts = json.loads((folder / f"{name}.json").read_text())
        arrays = read_arrays()
    except (OSError, ValueError) as err:
        raise AtlasError(
            f"cannot read the cached {name} artifact ({err})",
            where=str(folder),
            fix=f"delete {folder} and run `atlas compute` again",
        ) from err
    if facts.get("format") != ARTIFACT_FORMAT:
        raise AtlasError(
            f"cached {name} artifact was written by another version of atlas",
            where=str(folder),
            expected=f"format {ARTIFACT_FORMAT}",
            got=str(facts.get("format")),
            fix=f"delete {folder} and run `atlas compute` again",
        )
    return arrays, facts


#: Rows of an activation array copied or converted at a time (bounds the memory of streaming).
ROW_BLOCK = 16384

#: The arrays of :class:`Activations`, each ``<name>.npy`` in its folder.
ACTIVATION_ARRAYS = ("vectors", "image_index", "positions", "labels", "attributions")


def row_blocks(n: int, rows: int = ROW_BLOCK) -> Iterator[slice]:
    """Slices of ``rows`` rows (the last shorter) covering ``0..n``."""
    for start in range(0, n, rows):
        yield slice(start, min(n, start + rows))


def rows_as(values: np.ndarray, dtype: type, rows: int = ROW_BLOCK) -> Iterator[np.ndarray]:
    """``values [N, ...]`` (an array, or a memory map) a block of ``rows`` rows at a time, each
    block converted to ``dtype`` (a copy only of that block)."""
    for block in row_blocks(values.shape[0], rows):
        yield np.asarray(values[block], dtype=dtype)


def reserved_memmap(
    path: Path, shape: tuple[int, ...], dtype: np.dtype | type = np.uint8
) -> np.memmap:
    """An array memory-mapped from a new ``.npy`` file whose every block is allocated now: on a
    full disk this raises ``OSError`` (ENOSPC) here, where a sparse file would kill the process
    with SIGBUS at the first write to a page that has no block."""
    array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    with open(path, "r+b") as f:
        os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
    return array


def write_npy(path: Path, values: np.ndarray, dtype: np.dtype | type) -> None:
    """``values`` saved as ``path`` (a ``.npy`` of ``dtype``), copied a block of rows at a time
    so that a memory-mapped source is never read whole."""
    out = reserved_memmap(path, values.shape, dtype)
    try:
        for block in row_blocks(values.shape[0]):
            out[block] = values[block]
        out.flush()
    finally:
        del out


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise ValueError(what)


@dataclass(frozen=True, eq=False)
class Activations:
    """Activation vectors sampled at random positions of one layer, with their attributions.

    Attributes:
        layer: the layer's name (``mixed4c``).
        vectors: ``[N, C]`` float32, or float16 when stored so (loaded memory-mapped: convert
            a block of rows at a time, :func:`rows_as`), post-ReLU (>= 0 for ReLU layers), one
            row per sample.
        image_index: ``[N] int64``, index of each sample's image in the data source.
        positions: ``[N, 2] int64``, spatial position ``(y, x)`` in the layer's activation map,
            ``0 <= y < h``, ``0 <= x < w``.
        labels: ``[N] int64``, the data source's label of each sample's image (-1 when unknown).
        layer_hw: ``(h, w)`` of the layer's activation map.
        attributions: ``[N, K]`` float32 (or float16, as ``vectors``) or None:
            ``attr[n, c] = h_n . d logit_c / d h_n`` (METHOD.md section 2), K = number of the
            model's logits.
        meta: how they were produced (model identity, data identity, seed, options), JSON-able.
        stored: the arrays read from ``.npy`` files, by name: ``(file, the array read)`` (set
            by :meth:`load`); :meth:`save` links such a file instead of copying it when the
            field still holds that very array in the precision asked for.
    """

    layer: str
    vectors: np.ndarray
    image_index: np.ndarray
    positions: np.ndarray
    labels: np.ndarray
    layer_hw: tuple[int, int]
    attributions: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    stored: dict[str, tuple[Path, np.ndarray]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        n = self.vectors.shape[0]
        _check(self.vectors.ndim == 2, f"vectors must be [N, C], got {self.vectors.shape}")
        _check(self.image_index.shape == (n,), f"image_index must be [{n}]")
        _check(self.positions.shape == (n, 2), f"positions must be [{n}, 2]")
        _check(self.labels.shape == (n,), f"labels must be [{n}]")
        if self.attributions is not None:
            _check(
                self.attributions.ndim == 2 and self.attributions.shape[0] == n,
                f"attributions must be [{n}, K], got {self.attributions.shape}",
            )

    @property
    def count(self) -> int:
        """N, the number of samples."""
        return int(self.vectors.shape[0])

    @property
    def channels(self) -> int:
        """C, the layer's depth."""
        return int(self.vectors.shape[1])

    def nonfinite_rows(self) -> int:
        """How many samples have a NaN or infinite value in their vector or attributions
        (read a block of rows at a time)."""
        bad = 0
        for rows in row_blocks(self.count):
            finite = np.isfinite(self.vectors[rows]).all(axis=1)
            if self.attributions is not None:
                finite &= np.isfinite(self.attributions[rows]).all(axis=1)
            bad += int(np.count_nonzero(~finite))
        return bad

    def save(self, folder: str | Path, *, float16: bool = False) -> None:
        """Write ``<array>.npy`` files and ``activations.json`` into ``folder`` (vectors and
        attributions as float16 if asked, else float32), a block of rows at a time; files of
        :attr:`stored` already in that form are hard-linked (copied across file systems)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        dtype = np.dtype(np.float16 if float16 else np.float32)
        arrays: dict[str, tuple[np.ndarray, np.dtype]] = {
            "vectors": (self.vectors, dtype),
            "image_index": (self.image_index, np.dtype(np.int64)),
            "positions": (self.positions, np.dtype(np.int64)),
            "labels": (self.labels, np.dtype(np.int64)),
        }
        if self.attributions is not None:
            arrays["attributions"] = (self.attributions, dtype)
        for name, (values, want) in arrays.items():
            path = folder / f"{name}.npy"
            source = self.stored.get(name)
            if source is not None and source[1] is values and values.dtype == want:
                _link_or_copy(source[0], path)
            else:
                write_npy(path, values, want)
        write_activation_facts(folder, self.layer, self.layer_hw, self.meta)

    @classmethod
    def load(cls, folder: str | Path) -> Activations:
        """The activations saved in ``folder``: vectors and attributions memory-mapped in their
        stored precision, the rest in memory."""
        folder = Path(folder)
        if (folder / "activations.npz").is_file():
            return cls._load_npz(folder)

        def mapped() -> dict[str, np.ndarray]:
            return {
                name: np.load(
                    folder / f"{name}.npy",
                    mmap_mode="r" if name in ("vectors", "attributions") else None,
                    allow_pickle=False,
                )
                for name in ACTIVATION_ARRAYS
                if name != "attributions" or (folder / "attributions.npy").is_file()
            }

        arrays, facts = _read(folder, "activations", mapped)
        fields: dict[str, Any] = {
            "vectors": arrays["vectors"],
            "image_index": arrays["image_index"].astype(np.int64, copy=False),
            "positions": arrays["positions"].astype(np.int64, copy=False),
            "labels": arrays["labels"].astype(np.int64, copy=False),
            "attributions": arrays.get("attributions"),
        }
        try:
            layer, hw, meta = facts["layer"], facts["layer_hw"], facts.get("meta", {})
        except KeyError as err:
            raise AtlasError(
                f"cannot read the cached activations (activations.json has no {err})",
                where=str(folder),
                fix=f"delete {folder} and run `atlas compute` again",
            ) from err
        return cls(
            layer=layer,
            layer_hw=(int(hw[0]), int(hw[1])),
            meta=meta,
            stored={
                name: (folder / f"{name}.npy", value)
                for name, value in fields.items()
                if value is not None
            },
            **fields,
        )

    @classmethod
    def _load_npz(cls, folder: Path) -> Activations:
        """Activations cached before they were stored as ``.npy`` files (one ``.npz``; the
        same values, so the same cache key): read whole, as float32."""
        arrays, facts = _load(folder, "activations")
        attributions = arrays.get("attributions")
        return cls(
            layer=facts["layer"],
            vectors=arrays["vectors"].astype(np.float32),
            image_index=arrays["image_index"].astype(np.int64),
            positions=arrays["positions"].astype(np.int64),
            labels=arrays["labels"].astype(np.int64),
            layer_hw=(int(facts["layer_hw"][0]), int(facts["layer_hw"][1])),
            attributions=None if attributions is None else attributions.astype(np.float32),
            meta=facts.get("meta", {}),
        )


def write_activation_facts(
    folder: Path, layer: str, layer_hw: tuple[int, int], meta: dict[str, Any]
) -> None:
    """``activations.json`` of activations whose ``.npy`` files are in ``folder``."""
    _write_facts(folder, "activations", {"layer": layer, "layer_hw": list(layer_hw), "meta": meta})


def _link_or_copy(source: Path, target: Path) -> None:
    """``target`` as another name of ``source`` (a hard link), else a copy of it."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


@dataclass(frozen=True, eq=False)
class Layout:
    """A 2-D layout of samples, each axis normalized to [0, 1] (METHOD.md section 3).

    Attributes:
        xy: ``[N, 2] float32`` in [0, 1]; x grows rightwards, y upwards (the grid flips rows).
        method: ``umap`` or ``tsne``.
        params: the settings actually used (after defaults and caps), JSON-able.
    """

    xy: np.ndarray
    method: str
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(self.xy.ndim == 2 and self.xy.shape[1] == 2, f"xy must be [N, 2], {self.xy.shape}")

    def save(self, folder: str | Path) -> None:
        facts = {"method": self.method, "params": self.params}
        _save(Path(folder), "layout", {"xy": self.xy.astype(np.float32)}, facts)

    @classmethod
    def load(cls, folder: str | Path) -> Layout:
        arrays, facts = _load(Path(folder), "layout")
        return cls(
            xy=arrays["xy"].astype(np.float32), method=facts["method"], params=facts["params"]
        )


@dataclass(frozen=True, eq=False)
class Grid:
    """One resolution of an atlas: the kept cells of a ``size x size`` grid over a layout.

    Cells are addressed ``(xbin, ybin)`` with ybin counted upwards from the bottom, as in the
    layout; the canvas row ``G-1-ybin`` is applied when the atlas image is composed.

    Attributes:
        size: G, cells per side.
        min_count: a cell is kept when it holds *more than* this many samples (METHOD.md 4).
        cells: ``[M, 2] int64`` ``(xbin, ybin)`` of the kept cells, ``0 <= bin < G``, sorted by
            ``(ybin, xbin)``.
        counts: ``[M] int64`` samples per kept cell (each ``> min_count``).
        directions: ``[M, C] float32`` mean activation vector of each kept cell.
        attributions: ``[M, K] float32`` mean attribution per class, or None.
        top_classes: ``[M, k] int64`` class indices by decreasing mean attribution (``k`` = 0
            when there are no attributions).
        top_values: ``[M, k] float32`` their mean attributions.
        sample_cell: ``[N] int64`` row of ``cells`` each sample fell into, -1 when its cell was
            dropped (too few samples).
        n_samples: N, the number of samples binned (kept or not).
    """

    size: int
    min_count: int
    cells: np.ndarray
    counts: np.ndarray
    directions: np.ndarray
    attributions: np.ndarray | None
    top_classes: np.ndarray
    top_values: np.ndarray
    sample_cell: np.ndarray
    n_samples: int

    def __post_init__(self) -> None:
        m = self.cells.shape[0]
        _check(self.cells.shape == (m, 2), f"cells must be [M, 2], got {self.cells.shape}")
        _check(self.counts.shape == (m,), f"counts must be [{m}]")
        _check(self.directions.ndim == 2 and self.directions.shape[0] == m, "directions [M, C]")
        _check(self.top_classes.shape == self.top_values.shape, "top classes/values differ")
        _check(
            self.sample_cell.shape == (self.n_samples,), f"sample_cell must be [{self.n_samples}]"
        )

    @property
    def kept(self) -> int:
        """M, the number of kept cells."""
        return int(self.cells.shape[0])

    @property
    def dropped_samples(self) -> int:
        """Samples that fell into cells with too few samples."""
        return int(self.n_samples - self.counts.sum())

    def save(self, folder: str | Path) -> None:
        arrays = {
            "cells": self.cells,
            "counts": self.counts,
            "directions": self.directions.astype(np.float32),
            "top_classes": self.top_classes,
            "top_values": self.top_values.astype(np.float32),
            "sample_cell": self.sample_cell,
        }
        if self.attributions is not None:
            arrays["attributions"] = self.attributions.astype(np.float32)
        facts = {"size": self.size, "min_count": self.min_count, "n_samples": self.n_samples}
        _save(Path(folder), f"grid-{self.size}", arrays, facts)

    @classmethod
    def load(cls, folder: str | Path, size: int) -> Grid:
        arrays, facts = _load(Path(folder), f"grid-{size}")
        return cls(
            size=int(facts["size"]),
            min_count=int(facts["min_count"]),
            cells=arrays["cells"].astype(np.int64),
            counts=arrays["counts"].astype(np.int64),
            directions=arrays["directions"].astype(np.float32),
            attributions=arrays.get("attributions"),
            top_classes=arrays["top_classes"].astype(np.int64),
            top_values=arrays["top_values"].astype(np.float32),
            sample_cell=arrays["sample_cell"].astype(np.int64),
            n_samples=int(facts["n_samples"]),
        )


@dataclass(frozen=True, eq=False)
class Whitening:
    """The whitening matrix of a layer's sampled activations (METHOD.md section 5).

    Attributes:
        layer: the layer's name.
        matrix: ``[C, C] float32``, symmetric: the inverse of the uncentred second moment
            ``A^T A / N``, or of ``A^T A / N + ridge * I`` when that is (nearly) singular.
        ridge: the ridge added (0.0 when the plain inverse was well conditioned).
        n_samples: N, the number of samples it was estimated from.
    """

    layer: str
    matrix: np.ndarray
    ridge: float
    n_samples: int

    def __post_init__(self) -> None:
        c = self.matrix.shape[0]
        _check(self.matrix.shape == (c, c), f"matrix must be [C, C], got {self.matrix.shape}")

    def save(self, folder: str | Path) -> None:
        facts = {"layer": self.layer, "ridge": self.ridge, "n_samples": self.n_samples}
        _save(Path(folder), "whitening", {"matrix": self.matrix.astype(np.float32)}, facts)

    @classmethod
    def load(cls, folder: str | Path) -> Whitening:
        arrays, facts = _load(Path(folder), "whitening")
        return cls(
            layer=facts["layer"],
            matrix=arrays["matrix"].astype(np.float32),
            ridge=float(facts["ridge"]),
            n_samples=int(facts["n_samples"]),
        )
