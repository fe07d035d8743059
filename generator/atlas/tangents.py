"""Lean forward-mode rules for convolutions and eval-mode batch norm (attribution's JVP).

torch's forward-mode rule for ``convolution`` is ``conv(x_t, w) + conv(x, w_t)``; when only the
input carries a tangent, ``w_t`` is a zero tensor that is still convolved, so every convolution
costs three instead of two (measured in bench/collect.py). Within :func:`input_tangents_only`,
every plain ``nn.Conv2d`` and every eval-mode ``nn.BatchNorm2d`` of a model runs through an
``autograd.Function`` whose forward is the module's own and whose ``jvp`` propagates the input's
tangent alone (``conv(x_t, w)``; ``x_t * w / sqrt(running_var + eps)``). Valid only when the
parameters carry no tangent, as in attribution. The modules' ``forward`` is restored on exit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class _Conv2dInputTangent(torch.autograd.Function):
    """``conv2d(x, weight, bias)`` whose forward-mode derivative ignores parameter tangents."""

    @staticmethod
    def forward(x: Tensor, weight: Tensor, bias: Tensor | None, args: tuple[Any, ...]) -> Tensor:
        return F.conv2d(x, weight, bias, *args)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        _, weight, _, args = inputs
        ctx.save_for_forward(weight)
        ctx.args = args

    @staticmethod
    def jvp(ctx: Any, x_t: Tensor, *_: Any) -> Tensor:
        (weight,) = ctx.saved_tensors
        return F.conv2d(x_t, weight, None, *ctx.args)


class _BatchNormInputTangent(torch.autograd.Function):
    """Eval-mode batch norm (an affine map per channel) with an input-only forward derivative."""

    @staticmethod
    def forward(x: Tensor, scale: Tensor, shift: Tensor) -> Tensor:
        return x * scale + shift

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        ctx.save_for_forward(inputs[1])

    @staticmethod
    def jvp(ctx: Any, x_t: Tensor, *_: Any) -> Tensor:
        (scale,) = ctx.saved_tensors
        return x_t * scale


def _conv_forward(module: nn.Conv2d, x: Tensor) -> Tensor:
    args = (module.stride, module.padding, module.dilation, module.groups)
    return _Conv2dInputTangent.apply(x, module.weight, module.bias, args)


def _batch_norm_forward(module: nn.BatchNorm2d, x: Tensor) -> Tensor:
    assert module.running_var is not None and module.running_mean is not None
    inv_std = torch.rsqrt(module.running_var + module.eps)
    scale = inv_std if module.weight is None else module.weight * inv_std
    shift = -module.running_mean * scale
    if module.bias is not None:
        shift = shift + module.bias
    return _BatchNormInputTangent.apply(x, scale[:, None, None], shift[:, None, None])


@contextlib.contextmanager
def input_tangents_only(model: nn.Module) -> Iterator[int]:
    """Within the block, plain convolutions and eval-mode batch norms of ``model`` propagate
    only their input's tangent; yields how many modules were switched."""
    switched: list[nn.Module] = []
    for module in model.modules():
        if "forward" in module.__dict__:
            continue  # someone else's override: leave it alone
        if type(module) is nn.Conv2d and module.padding_mode == "zeros":
            module.forward = _conv_forward.__get__(module)  # type: ignore[method-assign]
        elif (
            type(module) is nn.BatchNorm2d
            and not module.training
            and module.track_running_stats
            and module.running_var is not None
        ):
            module.forward = _batch_norm_forward.__get__(module)  # type: ignore[method-assign]
        else:
            continue
        switched.append(module)
    try:
        yield len(switched)
    finally:
        for module in switched:
            del module.forward
