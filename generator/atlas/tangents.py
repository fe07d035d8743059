"""Lean forward-mode rules for convolutions and eval-mode batch norm (attribution's JVP).

torch's forward-mode rule for ``convolution`` is ``conv(x_t, w) + conv(x, w_t)``; when only the
input carries a tangent, ``w_t`` is a zero tensor that is still convolved, so every convolution
costs three instead of two (measured in bench/collect.py). Within :func:`input_tangents_only`,
every 2-D convolution and every eval-mode batch norm runs through an ``autograd.Function``
whose forward computes the same values and whose ``jvp`` propagates the input's
tangent alone (``conv(x_t, w)``; ``x_t * w / sqrt(running_var + eps)``). Valid only when the
parameters carry no tangent, as in attribution. It is a ``TorchFunctionMode``: calls are
intercepted at ``torch.conv2d`` / ``F.batch_norm`` for the duration of the block, whatever module
makes them, and no module is modified.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode


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


def _arguments(names: tuple[str, ...], args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """Positional and keyword arguments of a call, in the order of ``names`` (None: absent)."""
    values = list(args) + [None] * (len(names) - len(args))
    for name, value in kwargs.items():
        values[names.index(name)] = value
    return values


_CONV2D = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
_BATCH_NORM = (
    "input",
    "running_mean",
    "running_var",
    "weight",
    "bias",
    "training",
    "momentum",
    "eps",
)


class _InputTangentsOnly(TorchFunctionMode):
    """Routes ``conv2d`` and eval-mode ``batch_norm`` calls through the lean rules above."""

    def __init__(self) -> None:
        super().__init__()
        self.switched = 0

    def __torch_function__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        if func is torch.conv2d:
            x, weight, bias, stride, padding, dilation, groups = _arguments(_CONV2D, args, kwargs)
            conv_args = (
                1 if stride is None else stride,
                0 if padding is None else padding,
                1 if dilation is None else dilation,
                1 if groups is None else groups,
            )
            self.switched += 1
            return _Conv2dInputTangent.apply(x, weight, bias, conv_args)
        if func is F.batch_norm:
            x, mean, var, weight, bias, training, _, eps = _arguments(_BATCH_NORM, args, kwargs)
            if not training and mean is not None and var is not None:
                inv_std = torch.rsqrt(var + (1e-5 if eps is None else eps))
                scale = inv_std if weight is None else weight * inv_std
                shift = -mean * scale + (0 if bias is None else bias)
                shape = (-1,) + (1,) * (x.dim() - 2)
                self.switched += 1
                return _BatchNormInputTangent.apply(x, scale.view(shape), shift.view(shape))
        return func(*args, **kwargs)


@contextlib.contextmanager
def input_tangents_only() -> Iterator[_InputTangentsOnly]:
    """Within the block (this thread), every ``conv2d`` and eval-mode ``batch_norm`` call
    propagates only its input's tangent (whatever module makes the call: ``nn.Conv2d``, a
    subclass with its own padding, a functional model). ``switched`` counts the calls routed."""
    with _InputTangentsOnly() as mode:
        yield mode
