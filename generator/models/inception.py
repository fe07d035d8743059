"""InceptionV1 (GoogLeNet) with the article's layer names, in the variants the atlas uses.

One architecture, described by an :class:`InceptionConfig`:

* :data:`LUCID` -- Lucid's ``inception5h`` graph, the network of the article: TF ``SAME``
  padding, local response norm after ``maxpool0`` and after ``conv2d2``, real 5x5 branches,
  ``mixed4a`` 508 channels, 1008 logits, input ``x * 255 - 117``.
* :data:`TORCHVISION` -- torchvision's ``googlenet`` (IMAGENET1K_V1): batch norm, its "5x5"
  branches are 3x3, ``mixed4a`` 512 channels, 1000 logits, ImageNet normalization followed by
  googlenet's ``transform_input``.
* any width multiplier, input size and normalization (``"lrn" | "batch" | "none"``), e.g. the
  small demo model (:mod:`generator.models.demo`).

Named layers (post-ReLU activations): ``conv2d0, conv2d1, conv2d2, mixed3a, mixed3b,
mixed4a..mixed4e, mixed5a, mixed5b`` and ``logits`` (pre-softmax ``[B, K]``). Pools and LRNs
are unnamed stages (see :class:`generator.models.base.StagedModel`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor, nn

from generator.errors import AtlasError
from generator.models.base import LayerInfo, StagedModel
from generator.models.layers import (
    BlockWidths,
    Classifier,
    ConvUnit,
    InceptionBlock,
    LocalResponseNorm,
    max_pool,
)

#: The named layers, in forward order (Lucid's names; torchvision calls them conv1..3,
#: inception3a..inception5b, fc).
LAYER_NAMES: tuple[str, ...] = (
    "conv2d0",
    "conv2d1",
    "conv2d2",
    "mixed3a",
    "mixed3b",
    "mixed4a",
    "mixed4b",
    "mixed4c",
    "mixed4d",
    "mixed4e",
    "mixed5a",
    "mixed5b",
    "logits",
)

#: Stem output channels (conv2d0 7x7/2, conv2d1 1x1, conv2d2 3x3).
STEM_CHANNELS = {"conv2d0": 64, "conv2d1": 64, "conv2d2": 192}

#: Branch widths of Lucid's graph (read off the shapes of inception5h's weights).
LUCID_BLOCKS: dict[str, BlockWidths] = {
    "mixed3a": BlockWidths(64, 96, 128, 16, 32, 32),
    "mixed3b": BlockWidths(128, 128, 192, 32, 96, 64),
    "mixed4a": BlockWidths(192, 96, 204, 16, 48, 64),  # 508 channels
    "mixed4b": BlockWidths(160, 112, 224, 24, 64, 64),
    "mixed4c": BlockWidths(128, 128, 256, 24, 64, 64),
    "mixed4d": BlockWidths(112, 144, 288, 32, 64, 64),
    "mixed4e": BlockWidths(256, 160, 320, 32, 128, 128),
    "mixed5a": BlockWidths(256, 160, 320, 48, 128, 128),
    "mixed5b": BlockWidths(384, 192, 384, 48, 128, 128),
}

#: torchvision's googlenet: the paper's table 1, which differs from Lucid's in two places.
TORCHVISION_BLOCKS: dict[str, BlockWidths] = {
    **LUCID_BLOCKS,
    "mixed4a": BlockWidths(192, 96, 208, 16, 48, 64),  # 512 channels
    "mixed5a": BlockWidths(256, 160, 320, 32, 128, 128),
}

#: ImageNet channel statistics used by torchvision's weights (``weights.transforms()``).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Lucid's InceptionV1 input range: ``image_value_range = (-117, 255 - 117)``.
LUCID_SCALE = 255.0
LUCID_OFFSET = 117.0

GEOMETRIES = ("lucid", "torchvision")
NORMS = ("lrn", "batch", "none")
PREPROCESSINGS = ("lucid", "imagenet", "googlenet", "centered")


@dataclass(frozen=True)
class InceptionConfig:
    """Everything that fixes the architecture (and is saved beside trained weights).

    Attributes:
        geometry: ``"lucid"`` (TF SAME padding, 3x3/2 last pool, real 5x5 branches, Lucid's
            widths) or ``"torchvision"`` (symmetric padding, ceil-mode pools, 2x2/2 last pool,
            3x3 "5x5" branches, the paper's widths).
        norm: ``"lrn"`` (Lucid), ``"batch"`` (torchvision, eps 1e-3) or ``"none"``.
        width: channel multiplier (1.0 = full size; 0.25 for the demo).
        input_size: default square input side in pixels (at least 32).
        num_classes: number of logits.
        preprocess: ``"lucid"`` (x*255-117), ``"imagenet"`` ((x-mean)/std), ``"googlenet"``
            (imagenet, then googlenet's ``transform_input``) or ``"centered"`` (2x-1).
        dropout: before the final linear layer (training only).
    """

    geometry: str = "lucid"
    norm: str = "lrn"
    width: float = 1.0
    input_size: int = 224
    num_classes: int = 1008
    preprocess: str = "lucid"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        problems = []
        for key, allowed in (
            ("geometry", GEOMETRIES),
            ("norm", NORMS),
            ("preprocess", PREPROCESSINGS),
        ):
            if getattr(self, key) not in allowed:
                problems.append((key, getattr(self, key), "one of " + ", ".join(allowed)))
        if not 0 < self.width <= 4:
            problems.append(("width", self.width, "a number in (0, 4]"))
        if not 32 <= self.input_size <= 4096:
            problems.append(("input_size", self.input_size, "an integer in [32, 4096]"))
        if self.num_classes < 1:
            problems.append(("num_classes", self.num_classes, "a positive integer"))
        if not 0 <= self.dropout < 1:
            problems.append(("dropout", self.dropout, "a number in [0, 1)"))
        if problems:
            key, value, expected = problems[0]
            raise AtlasError(
                f"invalid InceptionV1 architecture: {key} = {value!r}",
                where="InceptionConfig",
                expected=expected,
                got=repr(value),
                exit_code=2,
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InceptionConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise AtlasError(
                f"unknown InceptionV1 architecture keys: {', '.join(unknown)}",
                expected=", ".join(sorted(known)),
                exit_code=2,
            )
        return cls(**dict(data))

    @property
    def blocks(self) -> dict[str, BlockWidths]:
        table = LUCID_BLOCKS if self.geometry == "lucid" else TORCHVISION_BLOCKS
        return {name: widths.scaled(self.width) for name, widths in table.items()}

    @property
    def stem(self) -> dict[str, int]:
        return {name: max(1, round(c * self.width)) for name, c in STEM_CHANNELS.items()}


#: The article's network (Lucid's inception5h).
LUCID = InceptionConfig()

#: torchvision's googlenet with its IMAGENET1K_V1 weights (which set ``transform_input``).
TORCHVISION = InceptionConfig(
    geometry="torchvision",
    norm="batch",
    num_classes=1000,
    preprocess="googlenet",
    dropout=0.2,
)


def build_stages(config: InceptionConfig) -> nn.ModuleDict:
    """The ordered stages of ``config``'s network (named layers plus unnamed pools/LRNs)."""
    g, batch = config.geometry, config.norm == "batch"
    stem, blocks = config.stem, config.blocks
    stages: dict[str, nn.Module] = {}
    stages["conv2d0"] = ConvUnit(3, stem["conv2d0"], 7, stride=2, geometry=g, batch_norm=batch)
    stages["maxpool0"] = max_pool(3, 2, g)
    if config.norm == "lrn":
        stages["localresponsenorm0"] = LocalResponseNorm()
    stages["conv2d1"] = ConvUnit(stem["conv2d0"], stem["conv2d1"], 1, geometry=g, batch_norm=batch)
    stages["conv2d2"] = ConvUnit(stem["conv2d1"], stem["conv2d2"], 3, geometry=g, batch_norm=batch)
    if config.norm == "lrn":
        stages["localresponsenorm1"] = LocalResponseNorm()
    stages["maxpool1"] = max_pool(3, 2, g)
    five = 5 if g == "lucid" else 3
    channels = stem["conv2d2"]
    for name, widths in blocks.items():
        if name == "mixed4a":
            stages["maxpool4"] = max_pool(3, 2, g)
        if name == "mixed5a":
            # Lucid: 3x3/2 SAME ("maxpool10"); torchvision: 2x2/2 ceil mode ("maxpool4").
            stages["maxpool10"] = max_pool(3, 2, g) if g == "lucid" else max_pool(2, 2, g)
        stages[name] = InceptionBlock(
            channels, widths, five_kernel=five, geometry=g, batch_norm=batch
        )
        channels = widths.out_channels
    stages["logits"] = Classifier(channels, config.num_classes, config.dropout)
    return nn.ModuleDict(stages)


#: Width of the throw-away copy that :func:`probe_layer_infos` runs (spatial sizes do not
#: depend on width; a copy with 1..8 channels per convolution runs in milliseconds).
PROBE_WIDTH = 0.02


def layer_channels(config: InceptionConfig) -> dict[str, int]:
    """Depth of every named layer of ``config`` (from the width tables)."""
    channels: dict[str, int] = dict(config.stem)
    channels.update({name: widths.out_channels for name, widths in config.blocks.items()})
    channels["logits"] = config.num_classes
    return channels


def probe_layer_infos(config: InceptionConfig) -> tuple[LayerInfo, ...]:
    """Channels and spatial side of every named layer at ``config.input_size``.

    Sides come from a real CPU forward of a zero image through a very narrow copy of the
    network (same geometry, :data:`PROBE_WIDTH`), built from a fixed seed so the global
    random state is untouched; channels come from the width tables.
    """
    channels = layer_channels(config)
    with seeded(0):
        stages = build_stages(replace(config, width=min(config.width, PROBE_WIDTH))).eval()
    x = torch.zeros(1, 3, config.input_size, config.input_size)
    infos = []
    with torch.no_grad():
        for name, stage in stages.items():
            x = stage(x)
            if name in LAYER_NAMES:
                side = int(x.shape[-1]) if x.ndim == 4 else 1
                infos.append(LayerInfo(name, channels[name], side))
    return tuple(infos)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Draw random initial weights from ``seed`` without touching the global generator."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class InceptionV1(StagedModel):
    """InceptionV1 as ordered stages; see the module docstring for the variants.

    Attributes:
        config: the architecture.
        stages: ``conv2d0, maxpool0, [localresponsenorm0], conv2d1, conv2d2,
            [localresponsenorm1], maxpool1, mixed3a, mixed3b, maxpool4, mixed4a..mixed4e,
            maxpool10, mixed5a, mixed5b, logits``.
    """

    def __init__(
        self,
        config: InceptionConfig = LUCID,
        *,
        name: str = "inceptionv1",
        labels: Sequence[str] | None = None,
        seed: int = 0,
    ):
        super().__init__()
        labels = tuple(labels) if labels is not None else default_labels(config.num_classes)
        if len(labels) != config.num_classes:
            raise AtlasError(
                f"model {name!r} has {config.num_classes} logits but {len(labels)} labels",
                expected=f"{config.num_classes} class names",
                exit_code=2,
            )
        self.config = config
        self.name = name
        self.input_size = config.input_size
        self.labels = labels
        self.layer_infos = probe_layer_infos(config)
        self.weights_digest = f"random-init-seed{seed}"
        with seeded(seed):
            self.stages = build_stages(config)

    def preprocess(self, images: Tensor) -> Tensor:
        """Images ``[B, 3, H, W]`` in [0, 1] -> the network's input (see ``config.preprocess``).

        ``lucid``: [-117, 138]; ``imagenet``: about [-2.1, 2.6]; ``googlenet``: [-1, 1]
        (computed as torchvision does: normalize, then ``transform_input``); ``centered``:
        [-1, 1].
        """
        kind = self.config.preprocess
        if kind == "lucid":
            return images * LUCID_SCALE - LUCID_OFFSET
        if kind == "centered":
            return images * 2 - 1
        mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device)
        std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device)
        x = (images - mean[:, None, None]) / std[:, None, None]
        if kind == "googlenet":
            # torchvision GoogLeNet._transform_input: back from ImageNet statistics to [-1, 1].
            x = x * (std[:, None, None] / 0.5) + (mean[:, None, None] - 0.5) / 0.5
        return x


def default_labels(num_classes: int) -> tuple[str, ...]:
    """``("class 0", "class 1", ...)`` for models without class names."""
    return tuple(f"class {i}" for i in range(num_classes))


def build_inceptionv1(
    config: InceptionConfig = LUCID,
    *,
    name: str = "inceptionv1",
    labels: Sequence[str] | None = None,
    seed: int = 0,
    **changes: Any,
) -> InceptionV1:
    """An :class:`InceptionV1` with randomly initialised weights (drawn from ``seed``).

    ``changes`` override fields of ``config``, e.g.
    ``build_inceptionv1(LUCID, width=0.25, input_size=64, norm="batch", num_classes=10)``.
    """
    if changes:
        config = replace(config, **changes)
    return InceptionV1(config, name=name, labels=labels, seed=seed)
