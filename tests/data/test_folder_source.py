"""Image folders: scanning, labels, identity, and robust decoding of every bad-image kind."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generator.data.base import BadImage
from generator.data.decode import decode_image
from generator.data.folder import FolderSource
from generator.errors import ConfigError, SetupError

from .images import CONVERTED, EXPECTED


def test_every_bad_kind_is_converted_or_rejected_with_its_reason(bad_tree: Path) -> None:
    source = FolderSource(bad_tree)
    names = [source.relative_path(i) for i in range(len(source))]
    assert names == sorted(EXPECTED)  # hidden and non-image files ignored, sorted order
    for i, name in enumerate(names):
        expected = EXPECTED[name]
        if expected == "ok" or expected in CONVERTED:
            image, note = source.read_noted(i)
            assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
            assert image.flags.c_contiguous and image.flags.writeable
            assert note == (None if expected == "ok" else expected), name
        else:
            with pytest.raises(BadImage) as caught:
                source.read(i)
            assert caught.value.reason == expected, name
            assert caught.value.where == str(bad_tree / name)


def test_conversions_keep_the_pixels(bad_tree: Path) -> None:
    gray, note = decode_image(bad_tree / "b_gray.png")
    assert note == "grayscale" and np.array_equal(gray[..., 0], gray[..., 2])
    deep, _ = decode_image(bad_tree / "d_deep.png")
    assert deep[0, 0, 0] == 0 and deep[-1, -1, 0] == 255  # 16-bit 0..65535 -> 0..255
    assert deep[0, 1, 0] == 1  # 257 / 65535 * 255 = 1
    pal, _ = decode_image(bad_tree / "e_palette.png")
    assert pal[0, 0].tolist() == [255, 255, 255]  # transparent: white
    assert pal[0, 7].tolist() == [0, 0, 255]  # opaque palette entry 1
    rgba, _ = decode_image(bad_tree / "f_rgba.png")
    assert rgba[0, 0].tolist() == [255, 255, 255] and rgba[5, 5].tolist() == [0, 200, 0]
    cmyk, _ = decode_image(bad_tree / "c_cmyk.jpg")
    assert cmyk.shape == (10, 20, 3) and cmyk[5, 10, 0] > 200 and cmyk[5, 10, 1] < 60  # red


def test_pixel_limit_rejects_large_images_with_the_size(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "big.png")
    source = FolderSource(tmp_path, max_pixels=500)
    with pytest.raises(BadImage) as caught:
        source.read(0)
    assert caught.value.reason == "too large" and "30x20" in str(caught.value)
    assert FolderSource(tmp_path, max_pixels=600).read(0).shape == (20, 30, 3)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    img = Image.fromarray(np.zeros((10, 20, 3), np.uint8))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.save(tmp_path / "photo.jpg", exif=exif)
    image, note = decode_image(tmp_path / "photo.jpg")
    assert image.shape == (20, 10, 3) and note is None


def test_class_subfolders_give_sorted_class_names_and_labels(class_tree: Path) -> None:
    source = FolderSource(class_tree)
    assert source.class_names == ("apple", "zebra")
    order = [source.relative_path(i) for i in range(len(source))]
    assert order == ["apple/a1.webp", "zebra/more/z2.jpg", "zebra/z1.png"]
    assert [source.label(i) for i in range(3)] == [0, 1, 1]
    assert source.labels([2, 0]).tolist() == [1, 0] and source.labels().tolist() == [0, 1, 1]
    assert source.describe(0) == str(class_tree / "apple" / "a1.webp")
    shown = FolderSource(class_tree, class_names=["Apple", "Zebra"])
    assert shown.class_names == ("Apple", "Zebra") and shown.label(2) == 1
    with pytest.raises(ConfigError, match="1 class names given for 2"):
        FolderSource(class_tree, class_names=["one"])


def test_flat_folders_are_unlabelled(class_tree: Path) -> None:
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(class_tree / "loose.png")
    source = FolderSource(class_tree)  # an image in the root: flat
    assert source.class_names == () and {source.label(i) for i in range(len(source))} == {-1}
    forced = FolderSource(class_tree, labels="folders")
    assert forced.class_names == ("apple", "zebra")
    assert forced.label([forced.relative_path(i) for i in range(4)].index("loose.png")) == -1
    assert FolderSource(class_tree / "zebra", labels="none").class_names == ()


def test_identity_follows_paths_sizes_mtimes_and_options(class_tree: Path) -> None:
    first = FolderSource(class_tree).identity()
    assert FolderSource(class_tree).identity() == first
    assert FolderSource(class_tree, max_pixels=1000).identity() != first
    target = class_tree / "apple" / "a1.webp"
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    touched = FolderSource(class_tree).identity()
    assert touched != first
    Image.fromarray(np.ones((9, 9, 3), np.uint8)).save(class_tree / "apple" / "a2.png")
    assert FolderSource(class_tree).identity() not in (first, touched)


def test_missing_or_empty_folders_say_what_and_where(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="image folder not found") as caught:
        FolderSource(tmp_path / "nope")
    assert caught.value.exit_code == 2 and str(tmp_path / "nope") in str(caught.value)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(SetupError, match="no images found"):
        FolderSource(tmp_path / "empty")
    with pytest.raises(ConfigError, match="unknown label mode"):
        FolderSource(tmp_path / "empty", labels="subfolders")


def test_bad_image_survives_pickling() -> None:
    import pickle

    err = pickle.loads(pickle.dumps(BadImage("x.jpg", "truncated", "12 bytes")))
    assert (err.where, err.reason, err.detail) == ("x.jpg", "truncated", "12 bytes")
