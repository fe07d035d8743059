"""Benchmark: cutting Deep Zoom pyramids, and what semantic zoom costs in bytes and files.

1. Tile a 12800x12800 atlas (160x160 icons of 80 px, noise-ish content, a quarter of the cells
   empty) composed in memory first, as the compute pipeline does: goal < 15 s on 2 cores.
2. A 3-level semantic pyramid (grids 40/80/160 of 80 px icons: 3200/6400/12800 px) published
   from a bundle on disk, against a plain pyramid of the finest image alone, and against
   cross-faded layers (one full pyramid per grid).

Usage: ``python bench/tiles.py [--side 12800] [--out bench/out/tiles]``; prints a Markdown
table for bench/RESULTS.md ("## Tiles").
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generator.bundle import AtlasBundle, Level, cells_document
from generator.tiles import TileSettings, publish_atlas, tile_image, tree_stats

#: Icon side in px, as in the article's atlases.
ICON = 80


def compose_atlas(grid: int, icon: int, seed: int) -> np.ndarray:
    """uint8 [grid*icon, grid*icon, 3]: icons of 4 px noise blocks over a per-icon colour,
    a quarter of the cells left white (empty), composed one row of icons at a time."""
    rng = np.random.default_rng(seed)
    side = grid * icon
    atlas = np.empty((side, side, 3), np.uint8)
    for row in range(grid):
        base = rng.integers(0, 256, (1, grid, 1, 3), dtype=np.uint16)
        noise = rng.integers(0, 256, (icon // 4, grid, icon // 4, 3), dtype=np.uint16)
        band = ((base + noise) // 2).astype(np.uint8)
        band = np.repeat(np.repeat(band, 4, axis=0), 4, axis=2)  # [icon, grid, icon, 3]
        band[:, rng.random(grid) < 0.25] = 255
        atlas[row * icon : (row + 1) * icon] = band.reshape(icon, side, 3)
    return atlas


def as_vips(pixels: np.ndarray) -> Any:
    """A concrete in-memory ``pyvips.Image`` over ``pixels`` (no copy)."""
    import pyvips

    height, width, bands = pixels.shape
    return pyvips.Image.new_from_memory(pixels.data, width, height, bands, "uchar")


def bench_plain(side: int, out: Path, settings: TileSettings) -> dict[str, Any]:
    """Compose a ``side`` px atlas in memory and cut its plain pyramid."""
    start = time.perf_counter()
    pixels = compose_atlas(side // ICON, ICON, seed=0)
    composed = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    tile_image(as_vips(pixels), out / "plain" / "atlas", settings)
    tiled, tiled_cpu = time.perf_counter() - start, time.process_time() - cpu
    files, size = tree_stats(out / "plain" / "atlas_files")
    return {
        "side": side,
        "compose_s": composed,
        "tile_s": tiled,
        "tile_cpu_s": tiled_cpu,
        "files": files,
        "bytes": size,
    }


def bench_semantic(side: int, out: Path, settings: TileSettings) -> dict[str, Any]:
    """Publish a 3-level bundle (sides side/4, side/2, side) and compare with alternatives."""
    root = out / "bundle"
    root.mkdir(parents=True)
    grids = [side // ICON // 4, side // ICON // 2, side // ICON]
    levels = []
    for seed, grid in enumerate(grids):
        image = as_vips(compose_atlas(grid, ICON, seed=seed + 1))
        image.pngsave(str(root / f"level-{grid}.png"), compression=1)
        doc = cells_document(grid, ICON, [])
        (root / f"cells-{grid}.json").write_text(json.dumps(doc))
        levels.append(Level(grid, ICON, f"level-{grid}.png", f"cells-{grid}.json"))
    bundle = AtlasBundle(id="bench", kind="layer", title="bench", levels=tuple(levels), root=root)
    bundle.save()

    start = time.perf_counter()
    published = publish_atlas(bundle, out / "site" / "bench", settings, out / "cache")
    publish_s = time.perf_counter() - start
    start = time.perf_counter()
    publish_atlas(bundle, out / "site2" / "bench", settings, out / "cache")
    cached_s = time.perf_counter() - start

    separate = {}
    for grid in grids:
        dzi = tile_image(root / f"level-{grid}.png", out / "separate" / f"grid-{grid}", settings)
        separate[grid] = tree_stats(dzi.parent / f"{dzi.stem}_files")
    return {
        "grids": grids,
        "levels": published.manifest["levels"],
        "publish_s": publish_s,
        "cached_publish_s": cached_s,
        "merged": tree_stats(published.folder / "atlas_files"),
        "plain_finest": separate[grids[-1]],
        "crossfade": (
            sum(files for files, _ in separate.values()),
            sum(size for _, size in separate.values()),
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=12800, help="finest atlas side in px")
    parser.add_argument("--out", type=Path, default=Path("bench/out/tiles"))
    args = parser.parse_args()
    if args.side % (4 * ICON):
        parser.error(f"--side must be a multiple of {4 * ICON}")
    shutil.rmtree(args.out, ignore_errors=True)
    settings = TileSettings()

    plain = bench_plain(args.side, args.out, settings)
    mpx = args.side**2 / 1e6
    print(f"| tile {args.side} px in memory ({mpx:.0f} Mpx) | {plain['tile_s']:.1f} s "
          f"({mpx / plain['tile_s']:.0f} Mpx/s, CPU {plain['tile_cpu_s']:.1f} s) | {plain['files']} files, "
          f"{plain['bytes'] / 1e6:.1f} MB | compose {plain['compose_s']:.1f} s |")  # fmt: skip
    shutil.rmtree(args.out / "plain")

    semantic = bench_semantic(args.side, args.out, settings)
    plain_files, plain_bytes = semantic["plain_finest"]
    merged_files, merged_bytes = semantic["merged"]
    fade_files, fade_bytes = semantic["crossfade"]
    spans = ", ".join(
        f"{lv['grid']}: {lv['dzi_min_level']}..{lv['dzi_max_level']}" for lv in semantic["levels"]
    )
    print(
        f"| publish grids {semantic['grids']} from PNG | {semantic['publish_s']:.1f} s "
        f"(cached: {semantic['cached_publish_s']:.2f} s) | DZI levels per grid: {spans} | |"
    )
    print(
        f"| plain pyramid of the finest level | | {plain_files} files, "
        f"{plain_bytes / 1e6:.1f} MB | |"
    )
    print(
        f"| merged semantic pyramid | | {merged_files} files ({merged_files - plain_files:+d}), "
        f"{merged_bytes / 1e6:.1f} MB ({(merged_bytes - plain_bytes) / 1e6:+.2f} MB, "
        f"{100 * (merged_bytes / plain_bytes - 1):+.1f}%) | |"
    )
    print(f"| cross-faded layers (a pyramid per grid) | | {fade_files} files "
          f"({fade_files - plain_files:+d}), {fade_bytes / 1e6:.1f} MB "
          f"({100 * (fade_bytes / plain_bytes - 1):+.1f}%) | |")  # fmt: skip


if __name__ == "__main__":
    main()
