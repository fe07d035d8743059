"""What a computed atlas will need, before anything runs: disk and memory per stage.

``atlas compute --plan ID ...`` prints, for each stage, the bytes it writes to the cache and
the peak memory of its dominant arrays, computed from the spec and the model's shapes alone
(N = samples x positions vectors of C channels, K logits, grids G, icons of S px):

- **collect** (activations and attributions): exactly what its ``.npy`` files hold --
  ``N x C`` vectors and ``N x K`` attributions in float32 (float16 with ``float16 = true``),
  image index, positions and labels -- plus the same again in resumable chunks while it runs
  (the assembled files are linked into the cache, not copied);
- **whitening** ``C x C``, **layout** ``N x 2``: exact;
- **grid-G**: at most ``min(G^2, N)`` kept cells (each with a mean vector and mean
  attributions), plus the ``N`` samples' cell index: an upper bound, exact when every cell is
  kept;
- **icons**, **bundle** (level images, examples, heat maps) and **tiles**: upper bounds from
  the pixel counts (images stored raw; PNG and JPEG are smaller).

Memory is the dominant arrays each stage holds at once, not counting the model or Python; a
planning figure, not a measurement. The activations are streamed: collection holds one chunk of
rows, whitening and the grids a block of rows (memory-mapped files feed them), so only the
layout holds every vector (float32) and its neighbour graph, unless the landmarks back end lays
it out (``landmarks``): then the landmarks, their graph and one block of the vectors
(:func:`landmarks_memory`).

:func:`check_disk` refuses to start when the cache's disk cannot hold what the stages not yet
cached will write.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from generator.atlas.artifacts import ROW_BLOCK
from generator.atlas.collect import CHUNK_IMAGES
from generator.atlas.grid import WHITEN_BLOCK_ELEMENTS
from generator.atlas.landmarks import BLOCK_ELEMENTS, PLACE_NEIGHBORS, PLACE_ROWS
from generator.errors import SetupError

#: Bytes a ``.npz`` adds around each array (the ``.npy`` header, the zip64 entries: 254
#: measured for short names), at most.
NPZ_OVERHEAD = 300

#: Bytes of a ``.npy`` file's header (format 1.0, padded to 64: 128 for every 1- or 2-D shape
#: of fewer than 10^20 elements).
NPY_HEADER = 128


@dataclass(frozen=True)
class StagePlan:
    """One stage: ``disk`` bytes kept in the cache, ``scratch`` bytes needed only while it runs,
    ``memory`` bytes of its dominant arrays; ``exact`` when ``disk`` is not an upper bound."""

    stage: str
    disk: int
    scratch: int
    memory: int
    exact: bool
    note: str = ""


@dataclass(frozen=True)
class AtlasPlan:
    """The stages of one atlas, in the order they run."""

    atlas_id: str
    stages: tuple[StagePlan, ...]

    @property
    def disk(self) -> int:
        return sum(s.disk for s in self.stages)

    @property
    def peak_disk(self) -> int:
        """The most the cache holds at once: everything kept plus the largest scratch."""
        return self.disk + max((s.scratch for s in self.stages), default=0)

    @property
    def peak_memory(self) -> int:
        return max((s.memory for s in self.stages), default=0)

    def render(self) -> str:
        """The plan as a table (sizes in MB; ``<=`` marks an upper bound)."""
        lines = [
            f"atlas {self.atlas_id}:",
            f"  {'stage':<12} {'disk':>12} {'scratch':>10} {'memory':>10}",
        ]
        for s in self.stages:
            bound = "" if s.exact else "<="
            lines.append(
                f"  {s.stage:<12} {bound:>2}{_mb(s.disk):>10} {_mb(s.scratch):>10}"
                f" {_mb(s.memory):>10}  {s.note}".rstrip()
            )
        lines.append(
            f"  {'total':<12} {'':>2}{_mb(self.disk):>10} peak disk {_mb(self.peak_disk)},"
            f" peak memory {_mb(self.peak_memory)}"
        )
        return "\n".join(lines)


def npz_bytes(*arrays: tuple[int, int]) -> int:
    """Bytes of an uncompressed ``.npz`` of arrays given as ``(elements, itemsize)``."""
    return sum(count * size + NPZ_OVERHEAD for count, size in arrays)


def npy_bytes(*arrays: tuple[int, int]) -> int:
    """Bytes of ``.npy`` files of arrays given as ``(elements, itemsize)``."""
    return sum(count * size + NPY_HEADER for count, size in arrays)


def landmarks_memory(n: int, c: int, stored: int, landmarks: int, n_neighbors: int) -> int:
    """Peak bytes of the landmarks layout (:mod:`generator.atlas.landmarks`) of ``n`` vectors
    of ``c`` channels stored in ``stored``-byte floats: the landmarks in float32 (the rows, their
    distinct copy, the normalized copy), their neighbour graph as umap-learn holds it, one block
    of :data:`~generator.atlas.landmarks.PLACE_ROWS` vectors (read, then converted) with its
    score block and nearest landmarks, and the ``[n, 2]`` float64 result with the row indices."""
    rows = min(n, PLACE_ROWS)
    return (
        3 * landmarks * c * 4
        + 3 * landmarks * n_neighbors * 12
        + rows * c * (stored + 4)
        + BLOCK_ELEMENTS["cpu"] * 4
        + rows * PLACE_NEIGHBORS * 12
        + n * (16 + 8 * 3)
    )


def plan_atlas(
    atlas_id: str,
    *,
    samples: int,
    positions: int,
    channels: int,
    classes: int,
    attribution: bool,
    float16: bool,
    whiten: bool,
    grids: Sequence[int],
    top_classes: int,
    n_neighbors: int,
    icon_size: int,
    examples: int,
    example_px: int,
    landmarks: int | None = None,
) -> AtlasPlan:
    """The plan of one atlas from its numbers (see the module doc); ``landmarks``: how many,
    when the landmarks back end lays it out (None: every vector is laid out at once)."""
    n, c, k = samples * positions, channels, classes if attribution else 0
    stored = 2 if float16 else 4
    vectors = (n * c, stored)
    columns = (vectors, (n, 8), (n * 2, 8), (n, 8), *([(n * k, stored)] if k else []))
    collected = npy_bytes(*columns)
    chunk = min(n, CHUNK_IMAGES * positions) * (c + k)
    block = min(n, ROW_BLOCK) * (c + k) * 8  # one block of rows in float64
    stages = [
        StagePlan(
            "collect",
            collected,
            npz_bytes(*columns),  # the resumable chunks, deleted once assembled
            chunk * 4 * 2 + n * 32,  # a chunk's rows (and their copy), the index columns
            True,
            f"{n:,} vectors of {c} channels" + (f", attributions to {k} classes" if k else ""),
        )
    ]
    if whiten:
        rows = min(n, max(1, WHITEN_BLOCK_ELEMENTS // max(1, c)))
        stages.append(
            StagePlan("whitening", npz_bytes((c * c, 4)), 0, rows * c * 8 + 3 * c * c * 8, True)
        )
    graph = n * n_neighbors * 12  # int64 indices + float32 distances
    if landmarks is None:
        layout_memory, how = n * c * 4 + graph * 3, "UMAP/t-SNE"
    else:
        layout_memory = landmarks_memory(n, c, stored, min(landmarks, n), n_neighbors)
        how = f"UMAP of {min(landmarks, n):,} landmarks, the rest placed"
    stages.append(StagePlan("layout", npz_bytes((n * 2, 4)), 0, layout_memory, True, how))
    icon_px = icon_size * icon_size * 3
    for g in grids:
        m = min(g * g, n)
        disk = npz_bytes(
            (m * 2, 8), (m, 8), (m * c, 4), (m * top_classes, 8), (m * top_classes, 4), (n, 8),
            *([(m * k, 4)] if k else []),
        )  # fmt: skip
        stages.append(
            StagePlan(
                f"grid-{g}", disk, 0, block + 2 * disk, m == g * g and m <= n, f"<= {m:,} cells"
            )
        )
    cells = [min(g * g, n) for g in grids]
    icons = sum(npz_bytes((m * 2, 8), (m * icon_px, 1), (m, 4), (m, 4), (m, 8)) for m in cells)
    stages.append(
        StagePlan("icons", icons, icons, icons, False, f"{sum(cells):,} icons of {icon_size} px")
    )
    levels = sum(g * g * icon_px for g in grids)
    thumbs = sum(m * examples * example_px * example_px * 3 for m in cells)
    heat = sum(g * g * k * 4 for g in grids)
    arrays = sum(m * (c + k) * 4 for m in cells)
    bundle = levels + thumbs + heat + arrays
    stages.append(
        StagePlan(
            "bundle",
            bundle,
            thumbs,
            levels // len(grids) + thumbs,
            False,
            "level images, examples, heat maps",
        )
    )
    stages.append(StagePlan("tiles", levels * 4 // 3, 0, 0, False, "Deep Zoom pyramids"))
    return AtlasPlan(atlas_id, tuple(stages))


def check_disk(folder: Path, needed: int, what: str) -> None:
    """Refuse (a :class:`SetupError`, exit 2) when ``folder``'s disk has less than ``needed``
    bytes free."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed:
        raise SetupError(
            f"{what} needs {_mb(needed)} MB of disk and {probe} has {_mb(free)} MB free",
            where=str(folder),
            expected=f"at least {needed:,} bytes free",
            fix="free space there, set [paths] cache to a larger disk, or use fewer samples,"
            " float16 = true, or smaller grids (`atlas compute --plan` shows each stage)",
        )


def _mb(count: int) -> str:
    return f"{count / 1e6:,.1f}"
