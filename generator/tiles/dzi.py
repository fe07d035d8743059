"""Deep Zoom geometry in plain Python: level sizes, tile boxes, ``.dzi`` files, missing tiles.

No pyvips here, so ``atlas check`` and the site half can use it without loading libvips.

A Deep Zoom image of ``W x H`` pixels has levels ``0..M`` with ``M = ceil(log2(max(W, H)))``;
level ``L`` is ``ceil(W / 2**(M-L)) x ceil(H / 2**(M-L))`` pixels (libvips and OpenSeadragon
both round up), cut into ``ceil(w / tile_size) x ceil(h / tile_size)`` tiles named
``<stem>_files/<L>/<col>_<row>.<format>``. Each tile covers its ``tile_size`` square plus
``overlap`` pixels on every side that has a neighbour.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from generator.cache import atomic_write_text
from generator.errors import ContentError

#: The XML namespace of Deep Zoom descriptors.
DZI_NAMESPACE = "http://schemas.microsoft.com/deepzoom/2008"


class DziLevel(NamedTuple):
    """One level of a Deep Zoom pyramid: ``(level, width, height, cols, rows)``."""

    level: int
    width: int
    height: int
    cols: int
    rows: int


@dataclass(frozen=True)
class DziInfo:
    """What a ``.dzi`` descriptor says: tile size, overlap, format and full-resolution size."""

    tile_size: int
    overlap: int
    format: str
    width: int
    height: int


def max_level(width: int, height: int) -> int:
    """The finest level index ``ceil(log2(max(width, height)))`` (0 for a 1x1 image)."""
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    return (max(width, height) - 1).bit_length()


def dzi_levels(width: int, height: int, tile_size: int) -> list[DziLevel]:
    """Every level of the pyramid of a ``width x height`` image, level 0 (1x1) first."""
    if tile_size < 1:
        raise ValueError(f"tile_size must be positive, got {tile_size}")
    top = max_level(width, height)
    levels = []
    for level in range(top + 1):
        factor = 1 << (top - level)
        w, h = -(-width // factor), -(-height // factor)
        levels.append(DziLevel(level, w, h, -(-w // tile_size), -(-h // tile_size)))
    return levels


def tile_box(
    level: DziLevel, col: int, row: int, tile_size: int, overlap: int
) -> tuple[int, int, int, int]:
    """The ``(x, y, w, h)`` pixel box of tile ``(col, row)`` in its level, overlap included."""
    x0 = max(col * tile_size - overlap, 0)
    y0 = max(row * tile_size - overlap, 0)
    x1 = min((col + 1) * tile_size + overlap, level.width)
    y1 = min((row + 1) * tile_size + overlap, level.height)
    return x0, y0, x1 - x0, y1 - y0


def dzi_xml(info: DziInfo) -> str:
    """The ``.dzi`` descriptor text of ``info`` (stable bytes: attribute order is fixed)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Image xmlns="{DZI_NAMESPACE}" Format="{info.format}" Overlap="{info.overlap}"'
        f' TileSize="{info.tile_size}">\n'
        f'  <Size Width="{info.width}" Height="{info.height}"/>\n'
        "</Image>\n"
    )


def write_dzi(path: Path, info: DziInfo) -> None:
    """Write the descriptor of ``info`` to ``path`` atomically."""
    atomic_write_text(path, dzi_xml(info))


def read_dzi(path: Path) -> DziInfo:
    """Parse a ``.dzi`` descriptor; raise a ContentError naming the file when it is not one."""
    fix = "rebuild the site (`atlas build`) to recut the pyramid"
    try:
        root = ET.fromstring(path.read_bytes())
    except FileNotFoundError as err:
        raise ContentError("Deep Zoom descriptor not found", where=str(path), fix=fix) from err
    except ET.ParseError as err:
        raise ContentError(
            "Deep Zoom descriptor is not valid XML", where=str(path), got=str(err), fix=fix
        ) from err
    size = root.find(f"{{{DZI_NAMESPACE}}}Size")
    if size is None:
        size = root.find("Size")
    try:
        if size is None:
            raise KeyError("Size")
        info = DziInfo(
            tile_size=int(root.attrib["TileSize"]),
            overlap=int(root.attrib["Overlap"]),
            format=root.attrib["Format"],
            width=int(size.attrib["Width"]),
            height=int(size.attrib["Height"]),
        )
    except (KeyError, ValueError) as err:
        raise ContentError(
            "Deep Zoom descriptor lacks a valid attribute",
            where=str(path),
            expected="<Image TileSize= Overlap= Format=><Size Width= Height=/></Image>",
            got=f"{type(err).__name__}: {err}",
            fix=fix,
        ) from err
    if info.tile_size < 1 or info.width < 1 or info.height < 1 or info.overlap < 0:
        raise ContentError(
            "Deep Zoom descriptor has a non-positive size",
            where=str(path),
            got=f"TileSize={info.tile_size} Overlap={info.overlap} Size={info.width}x{info.height}",
            fix=fix,
        )
    return info


def dzi_tile_paths(dzi: Path) -> list[str]:
    """Every tile path the descriptor implies, relative to its folder, coarse levels first."""
    info = read_dzi(dzi)
    base = f"{dzi.stem}_files"
    return [
        f"{base}/{lv.level}/{col}_{row}.{info.format}"
        for lv in dzi_levels(info.width, info.height, info.tile_size)
        for row in range(lv.rows)
        for col in range(lv.cols)
    ]


def check_dzi(dzi: Path) -> list[str]:
    """Relative paths (from the descriptor's folder) of the tiles ``dzi`` implies but lacks.

    Lists each level folder once, so a pyramid of thousands of tiles checks in milliseconds.
    """
    dzi = Path(dzi)
    folder = dzi.parent
    present: dict[str, set[str]] = {}
    missing = []
    for rel in dzi_tile_paths(dzi):
        level_dir, name = rel.rsplit("/", 1)
        if level_dir not in present:
            try:
                present[level_dir] = {p.name for p in (folder / level_dir).iterdir()}
            except (FileNotFoundError, NotADirectoryError):
                present[level_dir] = set()
        if name not in present[level_dir]:
            missing.append(rel)
    return missing
