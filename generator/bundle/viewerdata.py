"""What the viewer reads beside the tiles: dataset-example sprites and class heat maps per level.

The compose stage writes these into the bundle folder next to ``level-<G>.png`` and
``cells-<G>.json``, records the returned descriptions in ``bundle.info["viewer"]`` (see
:func:`viewer_info`), and :func:`generator.tiles.publish_atlas` copies the folders and lists the
descriptions in ``viewer.json`` (``levels[i].examples``, ``levels[i].heatmap``). Pure
numpy/Pillow; no torch.

Cells are ``(col, row)`` as in ``cells-<G>.json``: ``col`` = x bin, ``row`` = G-1-y bin
(a :class:`generator.atlas.artifacts.Grid` holds ``(xbin, ybin)``: pass
``np.stack([xbin, G - 1 - ybin], 1)``). *Row-major* order sorts cells by ``row``, then ``col``.

Dataset examples, ``examples-<G>/``::

    index.json       {"format": 1, "grid": G, "thumb": T, "per_cell": E, "block": B,
                      "counts": base64 of uint8 [G*G]: examples of cell (col, row) at row*G+col}
    <bx>_<by>.jpg    sprite sheet of the cells col in [bx*B, bx*B+B), row in [by*B, by*B+B):
                     example e of cell (col, row) at x = ((col - bx*B) * E + e) * T,
                     y = (row - by*B) * T, T x T px. Only sheets holding an example exist.

One file per thumbnail would be ~50,000 files for a 160 x 160 grid; one sheet per level would
make a click download megabytes. A B x B block (B = 4: at most 64 thumbnails, ~100 KB) is one
request per click, and neighbouring clicks reuse it.

Class heat maps, ``heatmap-<G>/``::

    index.json       {"format": 1, "grid": G, "classes": K, "chunk": C, "cells": M,
                      "mask": base64 of bits [G*G] (bit i = byte i>>3, bit i&7; i = row*G+col):
                      the M cells that have values, in row-major order}
    <i>.bin          classes [i*C, min(K, (i+1)*C)) = c classes: float32 little-endian
                     scales [c], then int8 values [c, M] (class-major); the mean attribution of
                     class k to the m-th cell is values[k, m] * scales[k].

Each class is quantised with its own scale ``max|a[:, k]| / 127``, so the round-trip error is
at most ``max|a[:, k]| / 254`` (half a step). C is chosen so a chunk is about
``chunk_bytes`` (32 KB): picking a class costs one small request at any grid size.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from generator.cache import atomic_dir

#: Version of the layouts above; the viewer refuses other versions.
VIEWERDATA_FORMAT = 1

#: Cells per sprite-sheet side (see the module docstring).
DEFAULT_BLOCK = 4

#: Target bytes of one heat-map chunk (classes per chunk = this / cells, at least 1).
DEFAULT_CHUNK_BYTES = 32_768

#: Largest quantised magnitude (int8, symmetric so that 0 stays exactly 0).
_QMAX = 127


def examples_folder(grid: int) -> str:
    return f"examples-{grid}"


def heatmap_folder(grid: int) -> str:
    return f"heatmap-{grid}"


# --- choosing and cropping examples (for the compose stage) -----------------------------------


def pick_examples(sample_cell: np.ndarray, cells: int, per_cell: int, seed: int) -> np.ndarray:
    """Up to ``per_cell`` samples of each cell, chosen deterministically.

    Args:
        sample_cell: ``[N] int`` cell row of each sample (``-1``: in no kept cell), as
            ``Grid.sample_cell``.
        cells: M, the number of kept cells.
        per_cell: E, examples wanted per cell.
        seed: the choice is a function of ``(sample_cell, seed)`` only.

    Returns ``[M, E] int64`` sample indices, ``-1`` where a cell has fewer than E samples.
    """
    sample_cell = np.asarray(sample_cell, dtype=np.int64)
    if per_cell < 1 or cells < 0:
        raise ValueError(f"per_cell must be >= 1 and cells >= 0, got {per_cell}, {cells}")
    if sample_cell.size and sample_cell.max() >= cells:
        raise ValueError(f"sample_cell refers to cell {sample_cell.max()} of only {cells}")
    order = np.random.default_rng(seed).permutation(sample_cell.size)
    order = order[sample_cell[order] >= 0]
    order = order[np.argsort(sample_cell[order], kind="stable")]
    owner = sample_cell[order]
    first = np.searchsorted(owner, np.arange(cells))
    rank = np.arange(order.size) - first[owner]
    keep = rank < per_cell
    chosen = np.full((cells, per_cell), -1, dtype=np.int64)
    chosen[owner[keep], rank[keep]] = order[keep]
    return chosen


def crop_receptive_field(
    image: np.ndarray,
    position: tuple[int, int],
    layer_size: tuple[int, int],
    window: int,
    thumb: int,
    fill: tuple[int, int, int] = (128, 128, 128),
) -> np.ndarray:
    """The ``window`` px square of ``image`` seen by one activation, as a ``thumb`` px thumbnail.

    Args:
        image: ``uint8 [H, W, 3]``, the image as the model saw it (after its resize/crop).
        position: ``(y, x)`` of the activation in the layer's ``[h, w]`` map
            (``Activations.positions``).
        layer_size: ``(h, w)`` of that map.
        window: side of the receptive field in image px (centred on the position's centre
            ``((y + 0.5) * H / h, (x + 0.5) * W / w)``); parts outside the image are ``fill``.
        thumb: output side T.

    Returns ``uint8 [T, T, 3]``.
    """
    from PIL import Image

    pixels = np.asarray(image)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"image must be uint8 [H, W, 3], got {pixels.dtype} {pixels.shape}")
    height, width = pixels.shape[:2]
    cy = (position[0] + 0.5) * height / layer_size[0]
    cx = (position[1] + 0.5) * width / layer_size[1]
    top, left = round(cy - window / 2), round(cx - window / 2)
    canvas = np.empty((window, window, 3), np.uint8)
    canvas[:] = fill
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + window, height), min(left + window, width)
    if y1 > y0 and x1 > x0:
        canvas[y0 - top : y1 - top, x0 - left : x1 - left] = pixels[y0:y1, x0:x1]
    resized = Image.fromarray(canvas).resize((thumb, thumb), Image.Resampling.LANCZOS)
    return np.asarray(resized)


# --- writers ----------------------------------------------------------------------------------


def write_examples(
    root: Path,
    grid: int,
    cells: np.ndarray,
    thumbs: np.ndarray | Sequence[np.ndarray],
    counts: np.ndarray | None = None,
    *,
    per_cell: int | None = None,
    block: int = DEFAULT_BLOCK,
    quality: int = 80,
) -> dict[str, Any]:
    """Write ``root/examples-<G>/`` (layout in the module docstring); return its description.

    Args:
        root: the bundle folder.
        grid: G, cells per side.
        cells: ``[M, 2] int`` ``(col, row)`` of each cell, distinct, in ``[0, G)``.
        thumbs: the example thumbnails of each cell, either ``uint8 [M, E, T, T, 3]`` (the
            first ``counts[m]`` of cell m are real; default all E), or a sequence whose item m
            is ``uint8 [n_m, T, T, 3]`` with ``n_m <= per_cell`` (may be lazy: items are read
            once, block by block, so a 160 x 160 grid never needs all thumbnails in memory).
        counts: ``[M] int`` in ``[0, E]`` (array ``thumbs`` only).
        per_cell: E for a sequence ``thumbs`` (required then).
        block: B, cells per sprite-sheet side.
        quality: JPEG quality of the sheets.

    Returns ``{"folder", "format", "thumb", "per_cell", "block", "sheets", "bytes"}`` (what
    :func:`viewer_info` records; the viewer reads the first five). The folder is replaced in
    one rename.
    """
    from PIL import Image

    cells = _check_cells(cells, grid)
    m = len(cells)
    items = _example_items(thumbs, m, counts, per_cell)
    e_max = per_cell if per_cell is not None else int(np.shape(thumbs)[1])
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")

    per_grid = np.zeros(grid * grid, dtype=np.uint8)
    blocks: dict[tuple[int, int], list[int]] = {}
    for index, (col, row) in enumerate(cells.tolist()):
        blocks.setdefault((col // block, row // block), []).append(index)
    side = 0
    sheets = total = 0
    with atomic_dir(root / examples_folder(grid)) as tmp:
        for (bx, by), members in sorted(blocks.items()):
            placed: list[tuple[int, int, np.ndarray]] = []
            for index in members:
                examples = items(index)
                if not len(examples):
                    continue
                side = side or examples.shape[1]
                if examples.shape[1:] != (side, side, 3) or len(examples) > e_max:
                    raise ValueError(
                        f"thumbnails of cell {index} must be uint8 [<= {e_max}, {side}, {side}, 3],"
                        f" got {examples.shape}"
                    )
                col, row = int(cells[index, 0]), int(cells[index, 1])
                per_grid[row * grid + col] = len(examples)
                placed.append((col - bx * block, row - by * block, examples))
            if not placed:
                continue
            cols = min(block, grid - bx * block)
            rows = min(block, grid - by * block)
            sheet = np.full((rows * side, cols * e_max * side, 3), 255, dtype=np.uint8)
            for col, row, examples in placed:
                for e, pixels in enumerate(examples):
                    x = (col * e_max + e) * side
                    sheet[row * side : (row + 1) * side, x : x + side] = pixels
            path = tmp / f"{bx}_{by}.jpg"
            Image.fromarray(sheet).save(path, quality=quality, optimize=True)
            total += path.stat().st_size
            sheets += 1
        index_doc = {
            "format": VIEWERDATA_FORMAT,
            "grid": int(grid),
            "thumb": int(side),
            "per_cell": int(e_max),
            "block": int(block),
            "counts": base64.b64encode(per_grid.tobytes()).decode("ascii"),
        }
        (tmp / "index.json").write_text(json.dumps(index_doc, separators=(",", ":")))
        total += (tmp / "index.json").stat().st_size
    return {
        "folder": examples_folder(grid),
        "format": VIEWERDATA_FORMAT,
        "thumb": int(side),
        "per_cell": int(e_max),
        "block": int(block),
        "sheets": sheets,
        "bytes": total,
    }


def _example_items(
    thumbs: np.ndarray | Sequence[np.ndarray],
    m: int,
    counts: np.ndarray | None,
    per_cell: int | None,
) -> Callable[[int], np.ndarray]:
    """``index -> uint8 [n, T, T, 3]`` over either form of ``thumbs`` (checked)."""
    if len(thumbs) != m:
        raise ValueError(f"thumbs must hold one entry per cell ({m}), got {len(thumbs)}")
    if isinstance(thumbs, np.ndarray):
        if thumbs.dtype != np.uint8 or thumbs.ndim != 5 or thumbs.shape[4] != 3:
            raise ValueError(
                f"thumbs must be uint8 [M, E, T, T, 3], got {thumbs.dtype} {thumbs.shape}"
            )
        if per_cell is not None:
            raise ValueError("per_cell is given by thumbs.shape[1] for an array")
        e = thumbs.shape[1]
        n = np.full(m, e, np.int64) if counts is None else np.asarray(counts, np.int64)
        if n.shape != (m,) or (m and (n.min() < 0 or n.max() > e)):
            raise ValueError(f"counts must be [{m}] in 0..{e}")
        array = thumbs
        return lambda index: array[index, : n[index]]
    if per_cell is None or per_cell < 1 or counts is not None:
        raise ValueError("a sequence of thumbnails needs per_cell >= 1 and no counts")
    sequence = thumbs

    def item(index: int) -> np.ndarray:
        examples = np.asarray(sequence[index])
        if examples.dtype != np.uint8 or examples.ndim != 4:
            raise ValueError(f"thumbnails of cell {index} must be uint8 [n, T, T, 3]")
        return examples

    return item


def write_heatmaps(
    root: Path,
    grid: int,
    cells: np.ndarray,
    attributions: np.ndarray,
    labels: Sequence[str],
    *,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> dict[str, Any]:
    """Write ``root/heatmap-<G>/`` (layout in the module docstring); return its description.

    Args:
        root: the bundle folder.
        grid: G, cells per side.
        cells: ``[M, 2] int`` ``(col, row)`` of each cell, distinct, in ``[0, G)``.
        attributions: ``float32 [M, K]`` mean attribution of each cell to each class
            (``Grid.attributions``), finite.
        labels: the K class names (only their number is checked: the names travel in
            ``viewer.json``).
        chunk_bytes: target size of one chunk file.

    Returns ``{"folder", "format", "classes", "chunk", "cells", "files", "bytes"}``.
    """
    cells = _check_cells(cells, grid)
    values = np.asarray(attributions, dtype=np.float32)
    m = len(cells)
    if values.ndim != 2 or values.shape[0] != m or values.shape[1] != len(labels):
        raise ValueError(
            f"attributions must be [{m}, {len(labels)}] (cells x labels), got {values.shape}"
        )
    if not np.isfinite(values).all():
        raise ValueError("attributions hold NaN or infinite values")
    k = values.shape[1]
    order = np.lexsort((cells[:, 0], cells[:, 1]))  # row-major
    values = values[order]
    mask = np.zeros(grid * grid, dtype=bool)
    mask[cells[:, 1] * grid + cells[:, 0]] = True
    scales, quantised = quantise(values)
    chunk = max(1, min(k, chunk_bytes // max(m, 1)))
    files = -(-k // chunk) if k else 0
    total = 0
    with atomic_dir(root / heatmap_folder(grid)) as tmp:
        for i in range(files):
            lo, hi = i * chunk, min(k, (i + 1) * chunk)
            data = scales[lo:hi].astype("<f4").tobytes() + quantised[:, lo:hi].T.tobytes()
            (tmp / f"{i}.bin").write_bytes(data)
            total += len(data)
        index_doc = {
            "format": VIEWERDATA_FORMAT,
            "grid": int(grid),
            "classes": int(k),
            "chunk": int(chunk),
            "cells": int(m),
            "mask": base64.b64encode(np.packbits(mask, bitorder="little").tobytes()).decode(),
        }
        (tmp / "index.json").write_text(json.dumps(index_doc, separators=(",", ":")))
        total += (tmp / "index.json").stat().st_size
    return {
        "folder": heatmap_folder(grid),
        "format": VIEWERDATA_FORMAT,
        "classes": int(k),
        "chunk": int(chunk),
        "cells": int(m),
        "files": files,
        "bytes": total,
    }


def quantise(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column symmetric int8: ``float32 [M, K]`` -> (``float32 [K]`` scales, ``int8 [M, K]``).

    ``values ≈ q * scales`` with ``|error| <= scales / 2 = max|column| / 254``; a column of
    zeros gets scale 0.
    """
    values = np.asarray(values, dtype=np.float32)
    peak = np.abs(values).max(axis=0) if values.size else np.zeros(values.shape[1], np.float32)
    scales = (peak / _QMAX).astype(np.float32)
    safe = np.where(scales > 0, scales, 1).astype(np.float32)
    quantised = np.clip(np.rint(values / safe), -_QMAX, _QMAX).astype(np.int8)
    return scales, quantised


def viewer_info(levels: Mapping[int, Mapping[str, dict[str, Any]]]) -> dict[str, Any]:
    """The ``bundle.info["viewer"]`` entry: ``{grid: {"examples": ..., "heatmap": ...}}`` ->
    ``{"levels": {"<G>": {...}}}`` (JSON keys are strings). Either kind may be absent."""
    known = {"examples", "heatmap"}
    out: dict[str, dict[str, Any]] = {}
    for grid, kinds in levels.items():
        unknown = set(kinds) - known
        if unknown:
            raise ValueError(f"unknown viewer data {sorted(unknown)} for grid {grid}")
        out[str(int(grid))] = {kind: dict(desc) for kind, desc in kinds.items()}
    return {"levels": out}


# --- readers (tests, checks and tools; the viewer reads the same bytes in JavaScript) ----------


def read_heatmap(folder: Path, class_index: int) -> np.ndarray:
    """``float32 [G, G]`` (``[row, col]``) attribution of every cell to one class from a written
    ``heatmap-<G>/`` folder; NaN for cells without a value."""
    index = json.loads((folder / "index.json").read_text())
    grid, m, chunk = index["grid"], index["cells"], index["chunk"]
    if not 0 <= class_index < index["classes"]:
        raise IndexError(f"class {class_index} of {index['classes']}")
    data = (folder / f"{class_index // chunk}.bin").read_bytes()
    count = min(chunk, index["classes"] - (class_index // chunk) * chunk)
    local = class_index % chunk
    scale = np.frombuffer(data, "<f4", count=count)[local]
    q = np.frombuffer(data, np.int8, count=m, offset=4 * count + local * m)
    mask = np.unpackbits(
        np.frombuffer(base64.b64decode(index["mask"]), np.uint8), bitorder="little"
    )[: grid * grid].astype(bool)
    out = np.full(grid * grid, np.nan, dtype=np.float32)
    out[mask] = q.astype(np.float32) * scale
    return out.reshape(grid, grid)


def read_examples(folder: Path, col: int, row: int) -> np.ndarray:
    """``uint8 [n, T, T, 3]``: the example thumbnails of cell ``(col, row)`` from a written
    ``examples-<G>/`` folder (``n`` = 0 when it has none)."""
    from PIL import Image

    index = json.loads((folder / "index.json").read_text())
    grid, side, per_cell, block = index["grid"], index["thumb"], index["per_cell"], index["block"]
    counts = np.frombuffer(base64.b64decode(index["counts"]), np.uint8)
    n = int(counts[row * grid + col])
    if not n:
        return np.zeros((0, side, side, 3), np.uint8)
    with Image.open(folder / f"{col // block}_{row // block}.jpg") as sheet:
        pixels = np.asarray(sheet.convert("RGB"))
    y = (row % block) * side
    x0 = (col % block) * per_cell * side
    return np.stack([pixels[y : y + side, x0 + e * side : x0 + (e + 1) * side] for e in range(n)])


def _check_cells(cells: np.ndarray, grid: int) -> np.ndarray:
    """``cells`` as ``int64 [M, 2]``; ValueError unless distinct and inside the grid."""
    cells = np.asarray(cells)
    if grid < 1:
        raise ValueError(f"grid must be >= 1, got {grid}")
    if cells.ndim != 2 or cells.shape[1] != 2 or not np.issubdtype(cells.dtype, np.integer):
        raise ValueError(f"cells must be int [M, 2] (col, row), got {cells.dtype} {cells.shape}")
    cells = cells.astype(np.int64)
    if cells.size and (cells.min() < 0 or cells.max() >= grid):
        raise ValueError(f"cells must lie in [0, {grid}), got {cells.min()}..{cells.max()}")
    flat = cells[:, 1] * grid + cells[:, 0]
    if len(np.unique(flat)) != len(flat):
        raise ValueError("cells must be distinct")
    return cells
