"""Decoding one image file to RGB ``uint8``, robustly: convert what can be, reject the rest.

:func:`decode_image` returns ``(uint8 [H, W, 3], note)`` where ``note`` names the conversion made
("grayscale", "CMYK", "16-bit", "palette with transparency", ...) or is None for plain 8-bit RGB.
Anything it cannot use raises :class:`BadImage` with a reason from a fixed vocabulary:

================  ==================================================================
``zero bytes``    the file is empty
``unreadable``    the file cannot be opened (permissions, vanished)
``not an image``  Pillow does not recognise the format
``too large``     more pixels than the limit (decompression-bomb guard)
``truncated``     the data ends early
``corrupt``       any other decoding failure
================  ==================================================================

Transparent pixels are flattened onto white, as a browser shows the image on a white page.
Pillow's own warnings (decompression-bomb warnings, EXIF complaints) are silenced here: every
decision is reported through the note or the :class:`BadImage` instead.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from generator.data.base import BadImage

#: Default pixel limit: Pillow's own ``Image.MAX_IMAGE_PIXELS`` (89,478,485 = 0.25 GiB of 24-bit
#: RGB / 3 bytes), its guard against decompression bombs. Pillow itself refuses images over twice
#: that in ``Image.open``, so larger limits are capped there (reported as "too large" too).
DEFAULT_MAX_PIXELS = 89_478_485

#: EXIF tag of the orientation (TIFF/EXIF 2.3, tag 0x0112); values 2..8 need a transpose.
_ORIENTATION = 0x0112

#: Pillow modes holding 16-bit unsigned samples.
_MODES_16 = ("I;16", "I;16L", "I;16B", "I;16N")


def decode_image(
    path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS, where: str | None = None
) -> tuple[np.ndarray, str | None]:
    """The image at ``path`` as ``uint8 [H, W, 3]`` RGB (C-contiguous, writable) and its note.

    Raises :class:`BadImage` (``where`` defaults to the path) when the file cannot be used.
    EXIF orientation is applied, so photos come out the way up their camera meant.
    """
    where = where or os.fspath(path)
    try:
        size = os.stat(path).st_size
    except OSError as err:
        raise BadImage(where, "unreadable", err.strerror) from err
    if size == 0:
        raise BadImage(where, "zero bytes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with Image.open(path) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise BadImage(where, "too large", f"{width}x{height} pixels > {max_pixels}")
                if width == 0 or height == 0:
                    raise BadImage(where, "corrupt", f"{width}x{height} pixels")
                img.load()
                return _to_rgb(_upright(img))
        except BadImage:
            raise
        except Image.DecompressionBombError as err:
            raise BadImage(where, "too large", str(err)) from err
        except UnidentifiedImageError as err:
            raise BadImage(where, "not an image") from err
        except PermissionError as err:
            raise BadImage(where, "unreadable", err.strerror) from err
        except Exception as err:  # a decoder failure on one file must not end a long pass
            text = f"{type(err).__name__}: {err}"
            reason = (
                "truncated" if "truncat" in text.lower() or isinstance(err, EOFError) else "corrupt"
            )
            raise BadImage(where, reason, text) from err


def _upright(img: Image.Image) -> Image.Image:
    """``img`` turned by its EXIF orientation, if it has one other than "upright"."""
    try:
        orientation = img.getexif().get(_ORIENTATION, 1)
    except Exception:  # unreadable EXIF: keep the pixels as stored
        return img
    if orientation in (2, 3, 4, 5, 6, 7, 8):
        return ImageOps.exif_transpose(img)
    return img


def _flatten(rgba: np.ndarray) -> np.ndarray:
    """``uint8 [H, W, 4]`` RGBA composited over white -> ``uint8 [H, W, 3]`` (rounded)."""
    rgb = rgba[..., :3].astype(np.uint32)
    alpha = rgba[..., 3:].astype(np.uint32)
    return ((rgb * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)


def _gray(arr: np.ndarray) -> np.ndarray:
    return np.repeat(arr[..., None], 3, axis=2)


def _to_rgb(img: Image.Image) -> tuple[np.ndarray, str | None]:
    """Pixels of a loaded image as ``uint8 [H, W, 3]`` and the conversion's name (None: none)."""
    mode = img.mode
    if mode == "RGB":
        return np.array(img, dtype=np.uint8), None
    if mode == "L":
        return _gray(np.array(img, dtype=np.uint8)), "grayscale"
    if mode == "1":
        return _gray(np.array(img.convert("L"), dtype=np.uint8)), "bilevel"
    if mode == "P" and "transparency" not in img.info:
        return np.array(img.convert("RGB"), dtype=np.uint8), "palette"
    if mode in ("P", "PA"):
        return _flatten(np.array(img.convert("RGBA"), dtype=np.uint8)), "palette with transparency"
    if mode in ("RGBA", "RGBa"):
        return _flatten(np.array(img.convert("RGBA"), dtype=np.uint8)), "RGBA"
    if mode in ("LA", "La"):
        return _flatten(np.array(img.convert("RGBA"), dtype=np.uint8)), "grayscale with alpha"
    if mode == "CMYK":
        return np.array(img.convert("RGB"), dtype=np.uint8), "CMYK"
    if mode in _MODES_16 or mode == "I":
        # 16-bit samples (PNG, TIFF); 32-bit "I" images are read as 16-bit and clipped.
        wide = np.clip(np.array(img).astype(np.int64), 0, 65535)
        return _gray(((wide * 255 + 32767) // 65535).astype(np.uint8)), "16-bit"
    if mode == "F":
        flt = np.nan_to_num(np.array(img, dtype=np.float64), nan=0.0)
        return _gray(np.clip(np.rint(flt), 0, 255).astype(np.uint8)), "float"
    return np.array(img.convert("RGB"), dtype=np.uint8), f"mode {mode}"
