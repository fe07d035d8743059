"""Image files for the data tests: every kind of image a real folder throws at the loader."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def noise_rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth-ish random ``uint8 [h, w, 3]`` (compresses like a photo, not like flat colour)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def png_with_declared_size(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` pixels (the data is a few bytes): a bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


#: What each file of :func:`bad_tree` becomes: a conversion note, a skip reason, or "ok".
EXPECTED = {
    "a_good.jpg": "ok",
    "b_gray.png": "grayscale",
    "c_cmyk.jpg": "CMYK",
    "d_deep.png": "16-bit",
    "e_palette.png": "palette with transparency",
    "f_rgba.png": "RGBA",
    "g_rgba.webp": "RGBA",
    "h_truncated.jpg": "truncated",
    "i_empty.jpg": "zero bytes",
    "j_garbage.png": "not an image",
    "k_bomb.png": "too large",
}
CONVERTED = {"grayscale", "CMYK", "16-bit", "palette with transparency", "RGBA"}


def write_bad_tree(root: Path) -> Path:
    """A flat folder with one file per entry of :data:`EXPECTED` (plus ignored non-images)."""
    root.mkdir(parents=True, exist_ok=True)
    rgb = noise_rgb(24, 32)
    Image.fromarray(rgb).save(root / "a_good.jpg", quality=90)
    Image.fromarray(rgb[..., 0]).save(root / "b_gray.png")
    Image.new("CMYK", (20, 10), (0, 255, 255, 0)).save(root / "c_cmyk.jpg")
    deep = (np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 257).astype(np.uint16)
    Image.fromarray(deep).save(root / "d_deep.png")
    pal = Image.new("P", (8, 8), 1)
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.paste(0, (0, 0, 4, 8))  # left half: index 0, transparent
    pal.save(root / "e_palette.png", transparency=0)
    rgba = np.zeros((6, 6, 4), np.uint8)
    rgba[..., 1] = 200
    rgba[..., 3] = 255
    rgba[:3, :, 3] = 0  # top half fully transparent
    Image.fromarray(rgba).save(root / "f_rgba.png")
    Image.fromarray(rgba).save(root / "g_rgba.webp", lossless=True)
    Image.fromarray(noise_rgb(64, 64, 1)).save(root / "tmp.jpg", quality=95)
    data = (root / "tmp.jpg").read_bytes()
    (root / "tmp.jpg").unlink()
    (root / "h_truncated.jpg").write_bytes(data[: len(data) // 2])
    (root / "i_empty.jpg").write_bytes(b"")
    (root / "j_garbage.png").write_bytes(bytes(range(256)) * 4)
    (root / "k_bomb.png").write_bytes(png_with_declared_size(60_000, 60_000))
    (root / "notes.txt").write_text("not an image name: ignored")
    (root / ".hidden.jpg").write_bytes(b"ignored: hidden")
    return root
