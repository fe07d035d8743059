"""Cutting atlas images into Deep Zoom pyramids with pyvips, semantic-zoom levels merged in.

A *semantic* pyramid is the finest level's Deep Zoom image whose coarse DZI levels are cut from
the coarser atlases instead of from the finest one (see :func:`plan_spans`). Because a level
image exactly ``2**k`` times smaller than the finest has, at each of its own pyramid levels, the
size of the finest pyramid's level of the same index (both round ``ceil(W / 2**(M-L))``), its
tiles have the same names and sizes: replacing those levels costs no extra files.

pyvips is imported inside the functions that use it (the site half must start fast).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator.errors import ConfigError, ContentError, no_room
from generator.tiles.dzi import DziInfo, max_level, write_dzi

if TYPE_CHECKING:
    import pyvips

#: Tile formats and the libvips save options each uses. ``keep=none`` drops metadata (EXIF,
#: ICC, XMP) so tiles are small and byte-identical across runs; ``optimize_coding`` makes
#: optimal Huffman tables: 7% fewer JPEG bytes for 17% more time (measured on noise icons).
FORMATS = ("jpg", "webp", "png")

#: Largest side of ``fallback.jpg``, the static image shown without JavaScript and in print.
FALLBACK_MAX_SIDE = 1600

#: Pixel decoding fails on truncated files instead of padding them with grey.
_FAIL_ON = "truncated"


@dataclass(frozen=True)
class TileSettings:
    """How pyramids are cut (``[tiles]`` in ``atlas.toml``).

    Attributes:
        tile_size: tile side in px without overlap; 254 + 2 x 1 px overlap = 256 px tiles.
        overlap: pixels each tile shares with each neighbour (hides seams when zooming).
        format: ``jpg``, ``webp`` or ``png`` (lossless, large: for tests and line art).
        quality: JPEG/WebP quality 1..100 (ignored for png).
    """

    tile_size: int = 254
    overlap: int = 1
    format: str = "jpg"
    quality: int = 85

    def __post_init__(self) -> None:
        def bad(key: str, expected: str, got: object) -> ConfigError:
            return ConfigError(
                f"invalid tile setting {key}",
                where=f"[tiles] {key}",
                expected=expected,
                got=repr(got),
                fix=f"set [tiles] {key} in atlas.toml to {expected}",
            )

        if not isinstance(self.tile_size, int) or not 16 <= self.tile_size <= 4096:
            raise bad("tile_size", "an integer from 16 to 4096 (e.g. 254)", self.tile_size)
        if not isinstance(self.overlap, int) or not 0 <= self.overlap <= self.tile_size // 4:
            raise bad("overlap", f"an integer from 0 to {self.tile_size // 4}", self.overlap)
        if self.format not in FORMATS:
            raise bad("format", " | ".join(f'"{f}"' for f in FORMATS), self.format)
        if not isinstance(self.quality, int) or not 1 <= self.quality <= 100:
            raise bad("quality", "an integer from 1 to 100 (e.g. 85)", self.quality)

    @property
    def suffix(self) -> str:
        """The libvips ``dzsave`` suffix, e.g. ``.jpg[Q=85,keep=none,optimize_coding]``."""
        if self.format == "jpg":
            return f".jpg[Q={self.quality},keep=none,optimize_coding]"
        if self.format == "webp":
            return f".webp[Q={self.quality},keep=none]"
        return ".png[compression=6,keep=none]"


@dataclass(frozen=True)
class LevelSpan:
    """Where one grid level lives in the merged pyramid.

    Attributes:
        grid, cell_px: the bundle level (cells per side, px per cell).
        width, height: the level image's size in px.
        scale: finest side / this level's side (a power of two; 1 for the finest level).
        dzi_min_level, dzi_max_level: the DZI levels cut from this level's image; the maximum
            is the level's native resolution (one image px per DZI px).
    """

    grid: int
    cell_px: int
    width: int
    height: int
    scale: int
    dzi_min_level: int
    dzi_max_level: int


def plan_spans(levels: Sequence[tuple[int, int, int, int]], where: str) -> list[LevelSpan]:
    """Assign DZI levels to grid levels: each coarse level up to its native resolution.

    ``levels`` are ``(grid, cell_px, width, height)``, coarse to fine. Level ``i`` native DZI
    level is ``M - log2(scale_i)`` (``M`` = the finest image's top level); it owns the DZI
    levels above the previous level's native one, up to its own, so two grids never share a
    DZI level and the coarsest level also owns every level below its native one.

    Raises ConfigError (``where`` = the bundle) when sides are not the finest side divided by
    distinct powers of two: no resampling is done, because it would blur icons and shift cells.
    """
    if not levels:
        raise ConfigError("atlas bundle has no levels", where=where)
    fine_w, fine_h = levels[-1][2], levels[-1][3]
    top = max_level(fine_w, fine_h)
    spans: list[LevelSpan] = []
    previous = -1
    for grid, cell_px, width, height in levels:
        scale = fine_w // width if width else 0
        exact = scale >= 1 and width * scale == fine_w and height * scale == fine_h
        if not exact or scale & (scale - 1) or (spans and scale >= spans[-1].scale):
            sides = ", ".join(f"grid {g}: {w}x{h} px" for g, _, w, h in levels)
            raise ConfigError(
                "semantic-zoom levels must halve in size from fine to coarse",
                where=where,
                expected="each level's side = the finest side / a distinct power of two, coarse"
                " to fine (e.g. grids 20, 40, 80 with the same cell_px: 1600, 3200, 6400 px)",
                got=sides,
                fix="compute the levels with the same icon size and grids that double",
            )
        native = top - (scale.bit_length() - 1)
        spans.append(LevelSpan(grid, cell_px, width, height, scale, previous + 1, native))
        previous = native
    return spans


def load_level(path: Path, size: tuple[int, int], background: tuple[int, int, int]) -> Any:
    """Open a level image for one top-to-bottom pass, checked against its expected ``size``.

    Returns an 8-bit sRGB (or grey) ``pyvips.Image``, alpha flattened onto ``background``.
    Raises ContentError naming ``path`` when it is missing, unreadable or the wrong size.
    """
    import pyvips

    try:
        image = pyvips.Image.new_from_file(
            str(path), access="sequential", fail_on=_FAIL_ON, revalidate=True
        )
        check_header(path, image)
    except pyvips.Error as err:
        what = "atlas image not found" if not path.is_file() else "cannot read atlas image"
        raise ContentError(
            what,
            where=str(path),
            got=vips_reason(err),
            fix="re-export the image as PNG or JPEG (or recompute the atlas)",
        ) from err
    if (image.width, image.height) != size:
        raise ContentError(
            "atlas level image has the wrong size",
            where=str(path),
            expected=f"{size[0]}x{size[1]} px",
            got=f"{image.width}x{image.height} px",
            fix="recompute the atlas bundle (`atlas compute <id>`)",
        )
    return prepare(image, background)


def prepare(image: pyvips.Image, background: tuple[int, int, int]) -> pyvips.Image:
    """``image`` as 8-bit sRGB or grey without alpha (alpha flattened onto ``background``)."""
    if image.hasalpha():
        bg = list(background) if image.bands > 2 else [sum(background) / 3]
        image = image.flatten(background=bg)
    if image.interpretation not in ("srgb", "b-w") or image.format != "uchar":
        image = image.colourspace("b-w" if image.bands == 1 else "srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    return image


def tile_image(image: pyvips.Image | Path, base: Path, settings: TileSettings) -> Path:
    """Cut one plain pyramid: ``<base>.dzi`` + ``<base>_files/<L>/<col>_<row>.<fmt>``.

    ``image`` is a concrete ``pyvips.Image`` (compose atlases in memory or in a ``.v`` file
    first: a lazy join of thousands of icons tiles 5-10x slower) or an image file. Blank tiles
    are kept (skipped ones are 404s in OpenSeadragon). Output is byte-identical across runs:
    libvips' ``vips-properties.xml`` (it holds a timestamp) is removed and the descriptor is
    written by :func:`generator.tiles.dzi.write_dzi`. Returns the ``.dzi`` path.
    """
    if isinstance(image, str | Path):
        path = Path(image)
        probe = open_image(path)
        image = load_level(path, (probe.width, probe.height), (255, 255, 255))
    return _dzsave(image, base, settings, depth="onepixel")


def cut_pyramid(
    images: Sequence[Path],
    spans: Sequence[LevelSpan],
    settings: TileSettings,
    background: tuple[int, int, int],
    out: Path,
) -> tuple[int, int]:
    """Write the merged pyramid ``out/atlas.dzi`` + ``out/atlas_files/`` and ``fallback.jpg``;
    return the fallback's size.

    ``images[i]`` is the image of ``spans[i]`` (coarse to fine). Each image is tiled once: a
    level owning a single DZI level is cut at that resolution only (``depth="one"``), a level
    owning several (the coarsest) gets its whole pyramid; its level folders are then moved
    into place. ``out`` must be empty (a cache entry being filled).
    """
    files = out / "atlas_files"
    files.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix=".cut-", dir=out) as scratch:
        for path, span in zip(images, spans, strict=True):
            image = load_level(path, (span.width, span.height), background)
            single = span.dzi_min_level == span.dzi_max_level
            base = Path(scratch) / f"grid-{span.grid}"
            try:
                _dzsave(image, base, settings, depth="one" if single else "onepixel")
            except ContentError as err:
                raise ContentError(err.what, where=str(path), got=err.got, fix=err.fix) from err
            produced = Path(scratch) / f"grid-{span.grid}_files"
            if single:
                os.replace(produced / "0", files / str(span.dzi_max_level))
                continue
            own_top = max_level(span.width, span.height)
            if own_top != span.dzi_max_level:  # plan_spans guarantees this; libvips must agree
                raise RuntimeError(f"{path}: pyramid top level {own_top}, planned {span}")
            for level in range(span.dzi_min_level, span.dzi_max_level + 1):
                os.replace(produced / str(level), files / str(level))
    fine = spans[-1]
    write_dzi(
        out / "atlas.dzi",
        DziInfo(settings.tile_size, settings.overlap, settings.format, fine.width, fine.height),
    )
    return write_fallback(images[0], background, out / "fallback.jpg", settings.quality)


def write_fallback(
    image: Path, background: tuple[int, int, int], dest: Path, quality: int = 85
) -> tuple[int, int]:
    """Save ``image`` (the coarsest level: what readers see zoomed out) as a JPEG whose longer
    side is at most :data:`FALLBACK_MAX_SIDE`; never upscaled. Returns its size."""
    probe = open_image(image)
    picture = load_level(image, (probe.width, probe.height), background)
    if max(picture.width, picture.height) > FALLBACK_MAX_SIDE:
        picture = picture.thumbnail_image(FALLBACK_MAX_SIDE, height=FALLBACK_MAX_SIDE, size="down")
    picture.jpegsave(str(dest), Q=quality, keep="none", optimize_coding=True)
    return picture.width, picture.height


def _dzsave(image: pyvips.Image, base: Path, settings: TileSettings, *, depth: str) -> Path:
    """Run libvips ``dzsave`` into a fresh ``base``; tidy the output; return the ``.dzi``."""
    import pyvips

    files = base.parent / f"{base.name}_files"
    if files.exists():
        raise FileExistsError(f"{files} already exists: tile into an empty folder")
    base.parent.mkdir(parents=True, exist_ok=True)
    try:
        image.dzsave(
            str(base),
            tile_size=settings.tile_size,
            overlap=settings.overlap,
            suffix=settings.suffix,
            depth=depth,
        )
    except pyvips.Error as err:
        if "No space left" in str(err) or "Disk quota" in str(err):
            raise no_room(str(base.parent), "no space left while cutting tiles", full=True) from err
        raise ContentError(
            "cannot tile atlas image (corrupt or truncated?)",
            where=str(base),
            got=vips_reason(err),
            fix="re-export the image as PNG or JPEG (or recompute the atlas)",
        ) from err
    (files / "vips-properties.xml").unlink(missing_ok=True)
    dzi = base.parent / f"{base.name}.dzi"
    write_dzi(
        dzi,
        DziInfo(settings.tile_size, settings.overlap, settings.format, image.width, image.height),
    )
    return dzi


def open_image(path: Path) -> Any:
    """The header of an image file, or a ContentError naming it."""
    import pyvips

    if not path.is_file():
        raise ContentError(
            "atlas image not found",
            where=str(path),
            fix="check the image path (relative to the publication folder)",
        )
    try:
        header = pyvips.Image.new_from_file(str(path), revalidate=True)
    except pyvips.Error as err:
        raise ContentError(
            "cannot read atlas image",
            where=str(path),
            expected="a PNG, JPEG, WebP or TIFF image",
            got=vips_reason(err),
            fix="re-export the image as PNG or JPEG",
        ) from err
    check_header(path, header)
    return header


#: Loaders an atlas image may use: raster formats only. A vector image (SVG, PDF) is
#: rendered at whatever size it declares (a 130-byte SVG can declare 100,000 px square).
RASTER_LOADERS = ("pngload", "jpegload", "webpload", "tiffload")

#: The most pixels an atlas image may have, read from its header before anything is decoded:
#: 2^30 (32,768 px square; the article's 160 x 160 grid of 80 px icons is 12,800 px square).
MAX_PIXELS = 1 << 30


def check_header(path: Path, header: Any) -> None:
    """Refuse a vector image or one over :data:`MAX_PIXELS` (a decompression bomb: a 1 MB PNG
    can declare 100,000 x 100,000 pixels), before any pixel is decoded."""
    loader = str(header.get("vips-loader")) if "vips-loader" in header.get_fields() else ""
    if not loader.startswith(RASTER_LOADERS):
        raise ContentError(
            "an atlas image must be a raster image",
            where=str(path),
            expected="a PNG, JPEG, WebP or TIFF image",
            got=f"a {loader.removesuffix('_source').removesuffix('load') or 'unknown'} image",
            fix="export the atlas as PNG or JPEG",
        )
    pixels = header.width * header.height
    if pixels > MAX_PIXELS:
        raise ContentError(
            "the atlas image declares more pixels than an atlas may have",
            where=str(path),
            expected=f"at most {MAX_PIXELS:,} pixels (32,768 px square)",
            got=f"{header.width:,} x {header.height:,} = {pixels:,} pixels",
            fix="use a smaller grid or icon size for this atlas",
        )


def vips_reason(err: Exception) -> str:
    """The informative lines of a pyvips error, joined on one line."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return "; ".join(dict.fromkeys(lines))[:300]
