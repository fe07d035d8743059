"""The contract every model of the atlas pipeline meets: named layers, truncated forwards.

An :class:`AtlasModel` is a classifier whose interesting layers have names in the article's
vocabulary (``mixed4c``), that can run only as far as a layer (``forward_to``: the work past
the deepest requested layer is never done) and continue from a layer's activation to the
logits (``logits_from``: used by attribution). Images enter in [0, 1]; each model applies its
own normalization in :meth:`AtlasModel.preprocess`.

:class:`StagedModel` implements the contract for networks written as an ordered list of
stages (our InceptionV1s). Other classifiers (any torchvision model) implement it with hooks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from generator.errors import unknown_name


@dataclass(frozen=True)
class LayerInfo:
    """One named layer.

    Attributes:
        name: the layer's name in the article's vocabulary (``mixed4c``, ``logits``).
        channels: depth of its (post-ReLU) activation.
        size: spatial side of its activation at the model's default input size (1 for logits).
    """

    name: str
    channels: int
    size: int


class AtlasModel(nn.Module):
    """A classifier with named layers, truncated forwards and its own preprocessing.

    Subclasses set, in ``__init__``:

    Attributes:
        name: registry name (``inceptionv1-lucid``, ``googlenet``, ``demo``...).
        input_size: default square input side in pixels (224 for InceptionV1).
        labels: class name per logit index (``len(labels) == number of logits``).
        layer_infos: the named layers, in forward order.
        weights_digest: digest of the weights loaded ("random-init" when none were loaded);
            part of every cache key downstream.
    """

    name: str = "model"
    input_size: int = 224
    labels: tuple[str, ...] = ()
    layer_infos: tuple[LayerInfo, ...] = ()
    weights_digest: str = "random-init"

    # -- facts ------------------------------------------------------------------------------

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(info.name for info in self.layer_infos)

    def layer(self, name: str) -> LayerInfo:
        """The layer called ``name``; an unknown name raises an error listing the valid ones."""
        for info in self.layer_infos:
            if info.name == name:
                return info
        raise unknown_name("layer", name, self.layer_names, where=f"model {self.name!r}")

    def identity(self) -> str:
        """A string naming architecture and weights, for cache keys."""
        return f"{self.name}:{self.weights_digest}"

    # -- computation ------------------------------------------------------------------------

    def preprocess(self, images: Tensor) -> Tensor:
        """Map images ``[B, 3, H, W]`` in [0, 1] to the network's input range."""
        raise NotImplementedError

    def forward_to(self, images: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        """Run from images ``[B, 3, H, W]`` in [0, 1] up to the deepest of ``layers``.

        Returns ``{layer: activation}``, each ``[B, C, h, w]`` (``[B, K]`` for logits),
        post-ReLU. Work past the deepest requested layer is not done.
        """
        raise NotImplementedError

    def logits_from(self, layer: str, activation: Tensor, images: Tensor | None = None) -> Tensor:
        """Continue the forward pass from ``layer``'s ``activation`` to the logits ``[B, K]``.

        ``images`` is only needed by models that cannot start mid-way (hook-based models
        re-run the layers before ``layer`` and substitute ``activation``).
        """
        raise NotImplementedError

    def forward(self, images: Tensor) -> Tensor:
        """Logits ``[B, K]`` for images in [0, 1]."""
        return self.forward_to(images, ["logits"])["logits"]


class StagedModel(AtlasModel):
    """An :class:`AtlasModel` written as ordered stages.

    ``self.stages`` is an ``nn.ModuleDict`` in forward order; every named layer is the output
    of the stage with the same name (other stages, e.g. max-pools, are unnamed steps).
    The stage called ``logits`` must map the last feature map to ``[B, K]``.
    """

    stages: nn.ModuleDict

    def _stage_index(self, layer: str) -> int:
        self.layer(layer)  # validates the name with a helpful error
        return list(self.stages.keys()).index(layer)

    def forward_to(self, images: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        wanted = set(layers)
        last = max(self._stage_index(name) for name in wanted)
        out: dict[str, Tensor] = {}
        x = self.preprocess(images)
        for i, (name, stage) in enumerate(self.stages.items()):
            x = stage(x)
            if name in wanted:
                out[name] = x
            if i == last:
                break
        return out

    def logits_from(self, layer: str, activation: Tensor, images: Tensor | None = None) -> Tensor:
        start = self._stage_index(layer)
        x = activation
        for i, stage in enumerate(self.stages.values()):
            if i > start:
                x = stage(x)
        return x


def smooth_max_pool(pool: nn.MaxPool2d, x: Tensor, eps: float = 1e-2) -> Tensor:
    """The smooth relaxation of max-pooling the article back-propagated through (METHOD.md 2).

    ``avg_pool(x^2) / (eps + avg_pool(|x|))`` with the pool's own window; for non-negative
    inputs it lies between the mean and the max of each window.
    """
    kwargs = dict(
        kernel_size=pool.kernel_size,
        stride=pool.stride,
        padding=pool.padding,
        ceil_mode=pool.ceil_mode,
        count_include_pad=False,
    )
    return nn.functional.avg_pool2d(x * x, **kwargs) / (  # type: ignore[arg-type]
        eps + nn.functional.avg_pool2d(x.abs(), **kwargs)  # type: ignore[arg-type]
    )


@contextlib.contextmanager
def relaxed_max_pool(model: nn.Module) -> Iterator[None]:
    """Within the block, every ``nn.MaxPool2d`` of ``model`` keeps its forward value but its
    derivatives (reverse and forward mode) are those of :func:`smooth_max_pool`.

    Implemented as ``smooth + (max - smooth).detach()`` by forward hooks that are always
    removed on exit.
    """

    def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> Tensor:
        assert isinstance(module, nn.MaxPool2d)
        smooth = smooth_max_pool(module, inputs[0])
        if smooth.shape != output.shape:  # dilation or odd padding: keep the hard max
            return output
        return smooth + (output - smooth).detach()

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.MaxPool2d)
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def default_device() -> torch.device:
    """CUDA when available, else CPU (callers pass devices explicitly; this is only a default)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
