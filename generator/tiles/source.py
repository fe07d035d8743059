"""A precomputed atlas image (``image = "path"`` + ``grid`` + ``icon_size``) -> a one-level bundle.

The bundle keeps the source file's bytes and encoding (``level-<G>.jpg`` for a JPEG: no second
lossy compression, no slow PNG encode of a 12800 px image) and a ``cells-<G>.json`` listing
the occupied cells, found by comparing each cell with the background colour. Nothing else is
known about a precomputed image, so every cell has count 0 and no top classes.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from generator import seal
from generator.bundle import AtlasBundle, Level, cells_document
from generator.cache import atomic_dir, atomic_write_json
from generator.errors import ConfigError, ContentError
from generator.keys import image_source_key
from generator.tiles.pyramid import open_image, prepare, vips_reason

#: Channel difference (of 255) above which a pixel is not background. JPEG at quality >= 75
#: moves flat background by a few levels and rings up to ~20 next to sharp icon edges.
BACKGROUND_TOLERANCE = 32

#: A cell is occupied when more than this fraction of its inner pixels are not background:
#: 1% of an 80 px cell is 64 px, far above noise and far below any rendered icon.
OCCUPIED_FRACTION = 0.01

#: Pixels ignored along each cell border (at most a quarter of the cell): JPEG ringing from a
#: neighbouring icon stays within its 8x8 block, i.e. at most 7 px into an empty cell.
CELL_MARGIN = 8

#: libvips loader -> file suffix kept in the bundle; other formats are converted to PNG.
_KEPT_SUFFIX = {"jpegload": ".jpg", "pngload": ".png", "webpload": ".webp", "tiffload": ".tif"}


def parse_colour(text: str, where: str) -> tuple[int, int, int]:
    """``#rrggbb`` or ``#rgb`` -> ``(r, g, b)`` in 0..255; ConfigError naming ``where`` if not."""
    match = re.fullmatch(r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})", text.strip())
    if not match:
        raise ConfigError(
            "background must be a hex colour",
            where=where,
            expected='"#rrggbb" or "#rgb" (e.g. "#ffffff")',
            got=repr(text),
        )
    hexa = match.group(1)
    if len(hexa) == 3:
        hexa = "".join(c * 2 for c in hexa)
    r, g, b = (int(hexa[i : i + 2], 16) for i in (0, 2, 4))
    return r, g, b


def bundle_from_image(
    image: Path,
    *,
    atlas_id: str,
    title: str,
    grid: int,
    icon_size: int,
    work_dir: Path,
    background: str = "#ffffff",
) -> AtlasBundle:
    """Make (or reuse) the one-level bundle of a precomputed atlas image.

    The bundle lives in ``work_dir/<atlas_id>-<key>/``, ``key`` = digest of the image bytes and
    every parameter, written atomically; a second call with the same inputs loads it.

    Raises:
        ConfigError: ``grid`` or ``icon_size`` not positive, ``background`` not a hex colour.
        ContentError (naming ``image``): missing, unreadable or corrupt file, or a size other
            than ``grid * icon_size`` square (with the grid or icon size that would fit).
    """
    image = Path(image)
    where = f"atlas {atlas_id!r}"
    for key, value in (("grid", grid), ("icon_size", icon_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(
                f"{key} must be a positive integer", where=f"{where} {key}", got=repr(value)
            )
    bg = parse_colour(background, f"{where} background")
    header = open_image(image)
    _check_size(image, header.width, header.height, grid, icon_size)

    key = image_source_key(image, atlas_id, title, grid, icon_size, background)
    root = Path(work_dir) / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', atlas_id)}-{key}"
    if (root / "bundle.json").is_file():
        try:
            return seal.read(root, AtlasBundle.load)
        except seal.Damaged:
            seal.discard(root)  # a damaged cache entry: rebuilt below

    occupied = detect_cells(image, grid, icon_size, bg)
    loader = str(header.get("vips-loader"))
    suffix = next((s for name, s in _KEPT_SUFFIX.items() if loader.startswith(name)), ".png")
    level = Level(grid, icon_size, image=f"level-{grid}{suffix}", cells=f"cells-{grid}.json")
    with atomic_dir(root) as tmp:
        if loader.startswith(tuple(_KEPT_SUFFIX)):
            shutil.copyfile(image, tmp / level.image)
        else:
            header.pngsave(str(tmp / level.image))
        cells: list[tuple[int, int, int, list[int], list[float]]] = [
            (col, row, 0, [], []) for col, row in occupied
        ]
        atomic_write_json(tmp / level.cells, cells_document(grid, icon_size, cells), indent=None)
        AtlasBundle(
            id=atlas_id,
            kind="image",
            title=title,
            levels=(level,),
            background=background,
            info={"source": image.name, "grid": grid, "icon_size": icon_size},
            root=tmp,
        ).save()
    seal.seal(root)
    return AtlasBundle.load(root)


def detect_cells(
    image: Path, grid: int, cell_px: int, background: tuple[int, int, int]
) -> list[tuple[int, int]]:
    """The ``(col, row)`` of cells that are not uniformly ``background``, row-major order.

    One streaming libvips pass (a 12800 px atlas never sits in memory whole): a pixel is
    foreground when some channel differs from the background by more than
    :data:`BACKGROUND_TOLERANCE`; a cell is occupied when more than :data:`OCCUPIED_FRACTION`
    of its pixels, ignoring :data:`CELL_MARGIN` px along its borders, are foreground.
    Raises ContentError naming ``image`` when its pixels cannot be decoded (corrupt or
    truncated file).
    """
    import numpy as np
    import pyvips

    margin = min(CELL_MARGIN, cell_px // 4)
    inner = np.zeros((cell_px, cell_px), np.uint8)
    inner[margin : cell_px - margin, margin : cell_px - margin] = 255
    inner_share = float(inner.mean()) / 255
    try:
        picture = pyvips.Image.new_from_file(
            str(image), access="sequential", fail_on="truncated", revalidate=True
        )
        picture = prepare(picture, background)
        if picture.bands == 1:
            picture = picture.colourspace("srgb")
        foreground = (picture.cast("short") - list(background)).abs() > BACKGROUND_TOLERANCE
        counted = foreground.bandor() & pyvips.Image.new_from_array(inner).replicate(grid, grid)
        share: Any = (counted.cast("float") / 255).shrink(cell_px, cell_px).numpy()
    except pyvips.Error as err:
        raise ContentError(
            "atlas image is corrupt or truncated",
            where=str(image),
            got=vips_reason(err),
            fix="re-export the image as PNG or JPEG",
        ) from err
    rows, cols = np.nonzero(share.reshape(grid, grid) / inner_share > OCCUPIED_FRACTION)
    return [(int(col), int(row)) for row, col in zip(rows, cols, strict=True)]


def _check_size(image: Path, width: int, height: int, grid: int, icon_size: int) -> None:
    """Raise a ContentError naming ``image`` unless it is ``grid * icon_size`` px square."""
    side = grid * icon_size
    if (width, height) == (side, side):
        return
    if width == height and width % icon_size == 0:
        fix = f"set grid = {width // icon_size} (keeping icon_size = {icon_size})"
    elif width == height and width % grid == 0:
        fix = f"set icon_size = {width // grid} (keeping grid = {grid})"
    else:
        fix = f"crop or resize the image to {side}x{side} px, or set grid and icon_size to fit"
    raise ContentError(
        "atlas image size does not match its grid",
        where=str(image),
        expected=f"{side}x{side} px ({grid} cells of {icon_size} px per side)",
        got=f"{width}x{height} px",
        fix=fix,
    )
