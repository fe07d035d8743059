"""A tiny staged model and a tiny in-memory image source for the compute-stage tests.

The model has the article's layer names (``mixed3a``, ``mixed4a``) on 16 px inputs, max-pools
after both (so the smooth max-pool relaxation matters for attribution), and 5 logits. The
source holds seeded random images of mixed sizes, one of which is unreadable.
``ray_session``: a local Ray of 2 CPUs shared by the cluster tests.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from generator.cache import digest
from generator.data.base import BadImage, ImageSource, LoadReport
from generator.models.base import LayerInfo, StagedModel


class TinyModel(StagedModel):
    """conv -> pool -> mixed3a (8x8x12) -> pool -> mixed4a (4x4x16) -> avg -> logits (5)."""

    def __init__(self, seed: int = 0, classes: int = 5) -> None:
        super().__init__()
        self.name = "tiny"
        self.input_size = 16
        self.labels = tuple(f"class {i}" for i in range(classes))
        self.stages = nn.ModuleDict(
            {
                "conv2d0": nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()),
                "pool0": nn.MaxPool2d(2),
                "mixed3a": nn.Sequential(nn.Conv2d(8, 12, 3, padding=1), nn.ReLU()),
                "pool1": nn.MaxPool2d(3, stride=2, padding=1),
                "mixed4a": nn.Sequential(nn.Conv2d(12, 16, 3, padding=1), nn.ReLU()),
                "pool2": nn.MaxPool2d(2),
                "head": nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
                "logits": nn.Linear(16, classes),
            }
        )
        self.layer_infos = (
            LayerInfo("conv2d0", 8, 16),
            LayerInfo("mixed3a", 12, 8),
            LayerInfo("mixed4a", 16, 4),
            LayerInfo("logits", classes, 1),
        )
        self.weights_digest = f"tiny-seed-{seed}"
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for param in self.parameters():
                param.copy_(torch.randn(param.shape, generator=generator) * 0.4 + 0.05)
        self.eval()

    def preprocess(self, images: Tensor) -> Tensor:
        return images * 2.0 - 1.0


class TinySource(ImageSource):
    """``n`` seeded random RGB images of sizes 12..24 px; ``bad`` indices raise BadImage."""

    def __init__(self, n: int = 40, seed: int = 0, bad: Sequence[int] = (7,)) -> None:
        self.name = "tiny"
        self.n = n
        self.seed = seed
        self.bad = set(bad)
        self.class_names = ("even", "odd")

    def __len__(self) -> int:
        return self.n

    def identity(self) -> str:
        return digest("tiny-source", self.n, self.seed, sorted(self.bad))

    def read(self, index: int) -> np.ndarray:
        if index in self.bad:
            raise BadImage(self.describe(index), "truncated")
        rng = np.random.default_rng([self.seed, index])
        side = int(rng.integers(12, 25))
        return rng.integers(0, 256, size=(side, side, 3), dtype=np.uint8)

    def label(self, index: int) -> int:
        return index % 2


@dataclass
class Batch:
    indices: Tensor
    images: Tensor
    labels: Tensor


def simple_batches(
    source: ImageSource,
    indices: Sequence[int],
    *,
    size: int,
    batch_size: int,
    device: torch.device,
    report: LoadReport | None = None,
) -> Iterator[Batch]:
    """A minimal in-process loader (stretch resize), batching consecutive requested indices."""
    for start in range(0, len(indices), batch_size):
        kept, images = [], []
        for index in indices[start : start + batch_size]:
            try:
                array = source.read(int(index))
            except BadImage as err:
                if report is not None:
                    report.skip(err)
                continue
            image = torch.from_numpy(array).permute(2, 0, 1)[None].float() / 255.0
            images.append(nn.functional.interpolate(image, size=(size, size), mode="bilinear"))
            kept.append(int(index))
        if kept:
            yield Batch(
                indices=torch.tensor(kept, dtype=torch.long),
                images=torch.cat(images).to(device),
                labels=torch.tensor([source.label(i) for i in kept], dtype=torch.long),
            )


@pytest.fixture
def tiny_model() -> TinyModel:
    return TinyModel()


@pytest.fixture
def tiny_source() -> TinySource:
    return TinySource()


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """Ray started here with 2 CPUs (skipped without Ray), shared by the cluster tests: starting
    it takes 5..20 s on this machine."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()
