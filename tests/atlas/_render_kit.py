"""A small convolutional net whose layers tell images apart, and grids of its activations.

The shared ``TinyModel`` of conftest.py (weights ~ N(0.05, 0.4)) maps every image to nearly
the same direction, so rendered icons cannot be told from noise by their fidelity. This net
uses He-initialised weights, zero biases and Lucid's input range ``x * 255 - 117``, whose
large activations make the atlas objective's cosine term matter as it does in InceptionV1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from generator.atlas.artifacts import Activations, Grid, Layout
from generator.atlas.grid import make_grid
from generator.data.synthetic import SyntheticWorld
from generator.models.base import LayerInfo, StagedModel


class ConvNet(StagedModel):
    """conv2d0 (16 ch, /2) -> mixed3a (24 ch) -> pool -> mixed4a (32 ch) -> logits (3), on
    32 px inputs: mixed4a is 8 x 8. ``lucid_range``: inputs ``x * 255 - 117`` (large
    activations, like Lucid's InceptionV1) or ``2x - 1`` (small ones, like the demo model)."""

    def __init__(self, seed: int = 0, *, lucid_range: bool = True) -> None:
        super().__init__()
        self.lucid_range = lucid_range
        self.name = "convnet"
        self.input_size = 32
        self.labels = ("ring", "stripes", "dots")
        self.stages = nn.ModuleDict(
            {
                "conv2d0": nn.Sequential(nn.Conv2d(3, 16, 5, stride=2, padding=2), nn.ReLU()),
                "mixed3a": nn.Sequential(nn.Conv2d(16, 24, 3, padding=1), nn.ReLU()),
                "pool": nn.MaxPool2d(2),
                "mixed4a": nn.Sequential(nn.Conv2d(24, 32, 3, padding=1), nn.ReLU()),
                "head": nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
                "logits": nn.Linear(32, 3),
            }
        )
        self.layer_infos = (
            LayerInfo("conv2d0", 16, 16),
            LayerInfo("mixed3a", 24, 16),
            LayerInfo("mixed4a", 32, 8),
            LayerInfo("logits", 3, 1),
        )
        self.weights_digest = f"convnet-seed-{seed}"
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Conv2d | nn.Linear):
                    fan_in = module.weight[0].numel()
                    scale = (2.0 / fan_in) ** 0.5
                    module.weight.copy_(
                        torch.randn(module.weight.shape, generator=generator) * scale
                    )
                    assert module.bias is not None
                    module.bias.zero_()
        self.eval()
        self.requires_grad_(False)

    def preprocess(self, images: Tensor) -> Tensor:
        return images * 255.0 - 117.0 if self.lucid_range else images * 2.0 - 1.0


def world_images(n: int, size: int = 32, seed: int = 0) -> Tensor:
    """``[n, 3, size, size]`` float32 in [0, 1]: the first ``n`` images of the synthetic world."""
    world = SyntheticWorld(seed=seed, size=size, count=max(n, 1))
    return torch.from_numpy(world.read_batch(np.arange(n))).permute(0, 3, 1, 2).float() / 255.0


def sample_grids(
    model: StagedModel,
    layer: str,
    sizes: Sequence[int],
    *,
    images: int = 48,
    seed: int = 0,
    min_count: int = 0,
) -> tuple[Activations, Layout, dict[int, Grid]]:
    """Centre activations of ``images`` world images, laid out at random in [0, 1]^2 and
    binned into grids of ``sizes`` (attributions: a fixed random projection)."""
    with torch.no_grad():
        act = model.forward_to(world_images(images), [layer])[layer]
    h, w = act.shape[-2:]
    vectors = act[:, :, h // 2, w // 2].numpy().astype(np.float32)
    rng = np.random.default_rng(seed)
    n = len(vectors)
    attributions = (vectors @ rng.normal(size=(vectors.shape[1], len(model.labels)))).astype(
        np.float32
    )
    acts = Activations(
        layer=layer,
        vectors=vectors,
        image_index=np.arange(n, dtype=np.int64),
        positions=np.tile(np.array([[h // 2, w // 2]], dtype=np.int64), (n, 1)),
        labels=np.zeros(n, dtype=np.int64),
        layer_hw=(int(h), int(w)),
        attributions=attributions,
    )
    layout = Layout(xy=rng.random((n, 2)).astype(np.float32), method="random")
    grids = {s: make_grid(acts, layout, s, min_count=min_count, top_k=2) for s in sizes}
    return acts, layout, grids
