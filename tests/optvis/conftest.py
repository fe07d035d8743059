"""A tiny staged model for the optvis tests (a few convolutions, named layers, ~5k weights)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from generator.models.base import LayerInfo, StagedModel


class TinyNet(StagedModel):
    """conv1 (8 ch, full size) -> pool -> conv2 (16 ch, 1/2) -> pool -> conv3 (16 ch, 1/4) ->
    logits (10). Weights drawn from ``seed`` (He-normal, small positive biases so ReLUs live)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.name = "tiny"
        self.input_size = 32
        self.labels = tuple(f"class{i}" for i in range(10))
        self.layer_infos = (
            LayerInfo("conv1", 8, 32),
            LayerInfo("conv2", 16, 16),
            LayerInfo("conv3", 16, 8),
            LayerInfo("logits", 10, 1),
        )
        self.stages = nn.ModuleDict(
            {
                "conv1": nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()),
                "pool1": nn.MaxPool2d(2),
                "conv2": nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU()),
                "pool2": nn.MaxPool2d(2),
                "conv3": nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.ReLU()),
                "logits": nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10)),
            }
        )
        g = torch.Generator().manual_seed(seed)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                fan_in = m.weight[0].numel()
                nn.init.normal_(m.weight, std=math.sqrt(2.0 / fan_in), generator=g)
                assert m.bias is not None
                nn.init.constant_(m.bias, 0.05)

    def preprocess(self, images: Tensor) -> Tensor:
        return images * 2.0 - 1.0


@pytest.fixture()
def tiny_model() -> TinyNet:
    return TinyNet(seed=0)


@pytest.fixture(autouse=True)
def one_thread(one_torch_thread: None) -> None:
    """Tiny tensors: every optvis test runs on one torch thread (tests/conftest.py)."""
