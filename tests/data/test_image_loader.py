"""Batched loading: fitting to the model's size, skipping bad images, one warning, workers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from generator.data.base import ImageDataWarning, LoadReport
from generator.data.folder import FolderSource
from generator.data.loader import fit_image, iterate_batches
from generator.data.synthetic import SyntheticWorld

from .images import CONVERTED, EXPECTED

CPU = torch.device("cpu")


def test_stretch_scales_each_axis_and_center_crop_keeps_the_middle() -> None:
    a, b, c = [10, 20, 30], [40, 50, 60], [70, 80, 90]
    wide = np.array([[a, b]], np.uint8)  # 1 x 2
    assert fit_image(wide, 2, "stretch").tolist() == [[a, b], [a, b]]
    tall = np.array([[a], [b]], np.uint8)  # 2 x 1
    assert fit_image(tall, 2, "stretch").tolist() == [[a, a], [b, b]]
    row = np.array([[a, b, c]], np.uint8)  # 1 x 3: centre square is b
    assert fit_image(row, 2, "center-crop").tolist() == [[b, b], [b, b]]
    grid = np.arange(2 * 4 * 3, dtype=np.uint8).reshape(2, 4, 3)
    assert np.array_equal(fit_image(grid, 2, "center-crop"), grid[:, 1:3])
    stretched = fit_image(grid, 2, "stretch")
    assert stretched.shape == (2, 2, 3) and not np.array_equal(stretched, grid[:, 1:3])
    same = np.arange(27, dtype=np.uint8).reshape(3, 3, 3)
    assert np.array_equal(fit_image(same, 3, "stretch"), same)
    with pytest.raises(ValueError, match="resize must be one of"):
        fit_image(same, 3, "crop")


def test_a_pass_over_bad_images_skips_counts_and_warns_once(bad_tree: Path) -> None:
    source = FolderSource(bad_tree)
    report = LoadReport()
    with pytest.warns(ImageDataWarning) as caught:
        batches = list(
            iterate_batches(
                source, range(len(source)), size=8, device=CPU, batch_size=4, report=report
            )
        )
    assert len(caught) == 1
    message = str(caught[0].message)
    good = [n for n, e in EXPECTED.items() if e == "ok" or e in CONVERTED]
    assert report.loaded == len(good) and report.skipped == len(EXPECTED) - len(good)
    assert report.converted == len(good) - 1
    assert report.reasons == {"truncated": 1, "zero bytes": 1, "not an image": 1, "too large": 1}
    assert report.conversions == {
        "grayscale": 1, "CMYK": 1, "16-bit": 1, "palette with transparency": 1, "RGBA": 2
    }  # fmt: skip
    assert "skipped 4 unusable image(s)" in message and "1 truncated" in message
    assert str(bad_tree / "h_truncated.jpg") in message and "converted 6" in message
    delivered = torch.cat([b.indices for b in batches]).tolist()
    assert [source.relative_path(i) for i in delivered] == sorted(good)


def test_batches_have_the_promised_shapes_dtypes_and_range() -> None:
    world = SyntheticWorld(seed=3, size=16)
    batches = list(iterate_batches(world, np.arange(10), size=20, device=CPU, batch_size=4))
    assert [len(b) for b in batches] == [4, 4, 2]
    for b in batches:
        assert b.images.dtype == torch.float32 and b.images.shape[1:] == (3, 20, 20)
        assert b.images.is_contiguous() and b.images.device == CPU
        assert float(b.images.min()) >= 0.0 and float(b.images.max()) <= 1.0
        assert b.indices.dtype == torch.int64 and b.labels.dtype == torch.int64
        assert b.labels.tolist() == [world.label(int(i)) for i in b.indices]
    same_size = next(iterate_batches(world, [5], size=16, device=CPU))
    expected = torch.from_numpy(world.read(5)).permute(2, 0, 1).float() / 255
    assert torch.equal(same_size.images[0], expected)


# torch warns when asked for more workers than the machine has cores (1-core CI runners).
@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")
def test_workers_do_not_change_the_batches(bad_tree: Path) -> None:
    source = FolderSource(bad_tree)
    runs = []
    for workers in (0, 2):
        with pytest.warns(ImageDataWarning):
            runs.append(
                list(
                    iterate_batches(
                        source,
                        [9, 0, 3, 7, 1, 5, 2],
                        size=6,
                        device=CPU,
                        batch_size=3,
                        workers=workers,
                    )
                )
            )
    zero, two = runs
    assert len(zero) == len(two)
    for a, b in zip(zero, two, strict=True):
        assert torch.equal(a.indices, b.indices) and torch.equal(a.images, b.images)
        assert torch.equal(a.labels, b.labels)
    assert torch.cat([b.indices for b in zero]).tolist() == [0, 3, 1, 5, 2]  # order kept


def test_a_clean_pass_is_silent_and_unlabelled_folders_give_minus_one(class_tree: Path) -> None:
    source = FolderSource(class_tree, labels="none")
    (batch,) = iterate_batches(source, [0, 1, 2], size=5, resize="center-crop", device=CPU)
    assert batch.labels.tolist() == [-1, -1, -1]


def test_warn_false_leaves_the_warning_to_the_caller(bad_tree: Path) -> None:
    source = FolderSource(bad_tree)
    report = LoadReport()
    for part in (range(0, 6), range(6, len(source))):  # two passes, one report, no warning
        list(iterate_batches(source, part, size=4, device=CPU, report=report, warn=False))
    assert (report.loaded, report.skipped) == (7, 4)
    with pytest.warns(ImageDataWarning, match="skipped 4"):
        report.warn(source.name)
