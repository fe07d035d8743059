"""Fixtures of the data tests: image trees on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from .images import noise_rgb, write_bad_tree


@pytest.fixture
def bad_tree(tmp_path: Path) -> Path:
    return write_bad_tree(tmp_path / "bad")


@pytest.fixture
def class_tree(tmp_path: Path) -> Path:
    """ImageNet style: ``zebra/`` (2 images, one nested) and ``apple/`` (1 image)."""
    root = tmp_path / "classes"
    for rel, seed in (("zebra/z1.png", 1), ("zebra/more/z2.jpg", 2), ("apple/a1.webp", 3)):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(noise_rgb(10 + seed, 12, seed)).save(path)
    return root
