"""The rendered icons of an atlas, and the batches of a render in progress.

:class:`Icons` is the render stage's artifact for one grid level: one feature visualization per
kept cell, in the cell order of its :class:`~generator.atlas.artifacts.Grid`, with the fidelity
of each (see :mod:`generator.icons.render_icons`). :func:`save_icons` / :func:`load_icons` store the
levels of one atlas as ``icons-<G>.npz`` + ``icons.json`` in a cache folder.

:class:`RenderRun` is what makes a render resumable. Every icon of an atlas has an id, its
position in the atlas's work list (all cells of the coarsest level, then the next...). Each
finished batch is written at once, atomically, as ``<run_dir>/part-<first id>-<n>.npz`` holding
its ids and results; a later run reads every part, renders only the ids no part holds (in
batches of any size), and assembles the same arrays as an uninterrupted run.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from generator.cache import atomic_write_bytes, atomic_write_json, clean_stale_temporaries
from generator.errors import AtlasError

#: Version of the files below (part of the render stage's cache key).
ICONS_FORMAT = 1

#: Result arrays of a render, per icon: name -> dtype (``images`` is ``[n, S, S, 3]``).
FIELDS = {"images": np.uint8, "values": np.float32, "fidelity": np.float32, "best_try": np.int64}


@dataclass(frozen=True, eq=False)
class Icons:
    """The icons of one grid level.

    Attributes:
        grid: G, cells per side.
        cells: ``[M, 2] int64`` ``(xbin, ybin)`` of the kept cells, as ``Grid.cells``.
        images: ``[M, S, S, 3] uint8`` RGB, the icon of each cell (S = icon size).
        values: ``[M] float32``: the direction objective of the kept try (its scale depends on
            the model and the layer; comparable within an atlas).
        fidelity: ``[M] float32`` in [-1, 1]: cosine similarity between the icon's own
            activation at the layer's centre position and its cell's direction.
        best_try: ``[M] int64``: which try each icon kept.
    """

    grid: int
    cells: np.ndarray
    images: np.ndarray
    values: np.ndarray
    fidelity: np.ndarray
    best_try: np.ndarray

    def __post_init__(self) -> None:
        m = self.cells.shape[0]
        if self.cells.shape != (m, 2) or self.images.ndim != 4 or self.images.shape[0] != m:
            raise ValueError(f"icons: cells [M, 2] and images [M, S, S, 3] disagree: {m}")
        if self.images.shape[3] != 3 or self.images.shape[1] != self.images.shape[2]:
            raise ValueError(f"icons must be [M, S, S, 3], got {self.images.shape}")
        for name in ("values", "fidelity", "best_try"):
            if getattr(self, name).shape != (m,):
                raise ValueError(f"icons: {name} must be [{m}]")

    @property
    def icon_size(self) -> int:
        """S, the icon side in px."""
        return int(self.images.shape[1])

    def __len__(self) -> int:
        return int(self.cells.shape[0])


def fidelity_summary(fidelity: np.ndarray) -> dict[str, float | int]:
    """``{"n", "mean", "min", "q25", "median", "q75", "max"}`` of cosine similarities
    (rounded to 4 decimals; an empty array gives ``{"n": 0}``)."""
    values = np.asarray(fidelity, dtype=np.float64).reshape(-1)
    if not values.size:
        return {"n": 0}
    q25, median, q75 = np.quantile(values, [0.25, 0.5, 0.75])
    stats = {
        "mean": values.mean(),
        "min": values.min(),
        "q25": q25,
        "median": median,
        "q75": q75,
        "max": values.max(),
    }
    return {"n": int(values.size), **{k: round(float(v), 4) for k, v in stats.items()}}


def save_icons(folder: Path, levels: Mapping[int, Icons], facts: Mapping[str, Any]) -> None:
    """Write ``icons-<G>.npz`` per level and ``icons.json`` (``facts`` plus a fidelity summary
    per level) into ``folder``, which the caller owns (a cache folder being filled)."""
    folder.mkdir(parents=True, exist_ok=True)
    for grid, icons in levels.items():
        with open(folder / f"icons-{grid}.npz", "wb") as f:
            np.savez(
                f,
                cells=icons.cells,
                images=icons.images,
                values=icons.values,
                fidelity=icons.fidelity,
                best_try=icons.best_try,
            )
    summary = {str(g): fidelity_summary(icons.fidelity) for g, icons in levels.items()}
    doc = {"format": ICONS_FORMAT, "grids": [int(g) for g in levels], "fidelity": summary}
    atomic_write_json(folder / "icons.json", {**facts, **doc})


def load_icons(folder: Path) -> dict[int, Icons]:
    """The levels saved by :func:`save_icons`; an :class:`AtlasError` when unreadable."""
    try:
        doc = json.loads((folder / "icons.json").read_text())
        if doc.get("format") != ICONS_FORMAT:
            raise ValueError(f"format {doc.get('format')!r}, expected {ICONS_FORMAT}")
        levels = {}
        for grid in doc["grids"]:
            with np.load(folder / f"icons-{grid}.npz", allow_pickle=False) as npz:
                levels[int(grid)] = Icons(grid=int(grid), **{k: npz[k] for k in npz.files})
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise AtlasError(
            f"cannot read the cached icons ({err})",
            where=str(folder),
            fix=f"delete {folder} and build again",
        ) from err
    return levels


class RenderRun:
    """The finished batches of one render (see the module docstring).

    Args:
        folder: ``<cache>/render-runs/<key>/``, created on the first save.
        key: the render's cache key; parts written under another key are ignored.
        icon_size: S, so a part of another size is ignored too.
    """

    def __init__(self, folder: Path, key: str, icon_size: int) -> None:
        self.folder = Path(folder)
        self.key = key
        self.icon_size = icon_size

    def load(self, total: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``(done [total] bool, results)``: which ids are finished and their results, arrays
        of :data:`FIELDS` over all ``total`` ids (zeros where not done). Unreadable parts
        (a disk that filled up) are skipped: their icons are rendered again."""
        size = self.icon_size
        done = np.zeros(total, dtype=bool)
        results = {
            name: np.zeros((total, size, size, 3) if name == "images" else total, dtype)
            for name, dtype in FIELDS.items()
        }
        if not self.folder.is_dir():
            return done, results
        clean_stale_temporaries(self.folder)
        for path in sorted(self.folder.glob("part-*.npz")):
            try:
                with np.load(path, allow_pickle=False) as npz:
                    if str(npz["key"]) != self.key:
                        continue
                    ids = npz["ids"].astype(np.int64)
                    part = {name: npz[name] for name in FIELDS}
            except (OSError, ValueError, KeyError):
                continue
            if part["images"].shape[1:] != (size, size, 3) or (ids >= total).any():
                continue
            fresh = ~done[ids]
            for name, values in part.items():
                results[name][ids[fresh]] = values[fresh]
            done[ids] = True
        return done, results

    def save(self, ids: Sequence[int] | np.ndarray, results: Mapping[str, np.ndarray]) -> Path:
        """Write one finished batch (``ids [n]`` and each of :data:`FIELDS` ``[n, ...]``)
        atomically; returns its path."""
        ids = np.asarray(ids, dtype=np.int64)
        buffer = io.BytesIO()
        arrays = {name: np.asarray(results[name], dtype=dtype) for name, dtype in FIELDS.items()}
        np.savez(buffer, key=np.array(self.key), ids=ids, **arrays)  # type: ignore[arg-type]
        path = self.folder / f"part-{int(ids.min()):08d}-{len(ids)}.npz"
        atomic_write_bytes(path, buffer.getvalue())
        return path
