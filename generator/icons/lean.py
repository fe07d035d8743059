"""A lean copy of a model for rendering icons: the same function with less work per step.

Rendering runs a frozen model in eval mode thousands of times forward and backward. In eval
mode a batch norm is a fixed per-channel affine map, so a convolution followed by one is a
single convolution with scaled weights and a bias (:func:`fold_batch_norm`): the batch norm's
forward and backward (~15% of a demo-model render step on the CPU, measured with
``torch.profiler``) disappear, and the result is the same up to float rounding. The caller's
model is not modified.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from generator.models.base import AtlasModel


def fold_batch_norm(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> None:
    """Make ``conv`` compute ``norm(conv(x))`` of eval mode (in place; ``norm`` is unchanged).

    With ``s = weight_bn / sqrt(running_var + eps)``: ``W' = W * s`` per output channel and
    ``b' = (b - running_mean) * s + bias_bn`` (``b`` = 0 when the convolution has no bias).
    """
    import torch
    from torch import nn

    if norm.running_mean is None or norm.running_var is None:
        raise ValueError("fold_batch_norm needs a batch norm with running statistics")
    with torch.no_grad():
        scale = torch.rsqrt(norm.running_var.double() + norm.eps)
        if norm.weight is not None:
            scale = scale * norm.weight.double()
        shift = -norm.running_mean.double() * scale
        if norm.bias is not None:
            shift = shift + norm.bias.double()
        if conv.bias is not None:
            shift = shift + conv.bias.double() * scale
        weight = conv.weight.double() * scale.reshape(-1, *([1] * (conv.weight.dim() - 1)))
        conv.weight = nn.Parameter(weight.to(conv.weight.dtype), requires_grad=False)
        conv.bias = nn.Parameter(shift.to(conv.weight.dtype), requires_grad=False)


def render_copy(model: AtlasModel) -> tuple[AtlasModel, int]:
    """A frozen eval-mode copy of ``model`` with every batch norm that directly follows a
    convolution (our InceptionV1's :class:`~generator.models.layers.ConvUnit`) folded into it;
    and how many were folded. Other models are copied as they are."""
    from torch import nn

    from generator.models.layers import ConvUnit

    twin = copy.deepcopy(model).eval()
    folded = 0
    for module in twin.modules():
        if isinstance(module, ConvUnit) and isinstance(module.norm, nn.BatchNorm2d):
            if module.norm.running_mean is None:
                continue
            fold_batch_norm(module.conv, module.norm)
            module.norm = nn.Identity()
            folded += 1
    twin.requires_grad_(False)
    return twin, folded
