"""Building blocks of our InceptionV1: convolutions, pools and the inception block.

Two geometries share these blocks:

* ``"lucid"`` -- TensorFlow's ``SAME`` padding, as in Lucid's frozen graph (``inception5h``):
  every convolution and max-pool pads so that ``out = ceil(in / stride)``, putting the odd
  pixel of padding at the bottom/right. PyTorch ports emulate it with fixed ``F.pad`` calls
  that are only right for inputs whose side is a multiple of 32; :class:`SameConv2d` and
  :class:`SameMaxPool2d` compute the padding from the actual input, so they agree with those
  ports at 224 px and stay faithful to TensorFlow at other sizes.
* ``"torchvision"`` -- torchvision's ``googlenet``: symmetric padding, ``ceil_mode`` pools.

Every max-pool is an ``nn.MaxPool2d`` (whose padding is its own, never a ``-inf`` pad
before it), so :func:`generator.models.base.relaxed_max_pool` can relax each one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

#: Lucid's local response normalization in ``torch.nn.LocalResponseNorm`` terms. The graph
#: used TF's ``depth_radius=5, bias=2, alpha=1e-4, beta=0.5``; torch divides ``alpha`` by the
#: window size, hence size = 2*5+1 = 11 and alpha = 1e-4 * 11 (METHOD.md section 7).
LRN_SIZE = 11
LRN_ALPHA = 0.0011
LRN_BETA = 0.5
LRN_K = 2.0

#: torchvision's ``BasicConv2d`` batch norm epsilon.
BATCH_NORM_EPS = 1e-3


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow ``SAME`` padding ``(before, after)`` of one spatial axis of side ``size``.

    The output side is ``ceil(size / stride)``; an odd total goes after (bottom/right).
    """
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow ``SAME`` padding computed from each input's size.

    Input ``[B, C_in, H, W]`` -> ``[B, C_out, ceil(H/s), ceil(W/s)]``. Symmetric padding goes
    to the convolution itself; an asymmetric one (7x7 stride 2 on an even side: 2 before,
    3 after) is a zero pad first.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, **kwargs: object):
        super().__init__(in_channels, out_channels, kernel_size, padding=0, **kwargs)  # type: ignore[arg-type]

    def forward(self, x: Tensor) -> Tensor:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        top, bottom = same_padding(x.shape[-2], kh, sh)
        left, right = same_padding(x.shape[-1], kw, sw)
        if top == bottom and left == right:
            return F.conv2d(x, self.weight, self.bias, self.stride, (top, left))
        x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, self.bias, self.stride)


class SameMaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` with TensorFlow ``SAME`` padding (implicit ``-inf``), any input size.

    Realized with the module's own ``padding`` (set per call: the ``before`` amount of each
    axis) and ``ceil_mode=True``, which adds the extra bottom/right window TF's asymmetric pad
    gives. Checked against ``ceil(in / stride)`` at every call. Because the geometry lives on
    the module, the forward hook of :func:`relaxed_max_pool` sees the padding actually used.
    """

    def __init__(self, kernel_size: int, stride: int):
        super().__init__(kernel_size, stride=stride, padding=0, ceil_mode=True)
        self._kernel = kernel_size
        self._stride = stride

    def forward(self, x: Tensor) -> Tensor:
        pads = [same_padding(side, self._kernel, self._stride) for side in x.shape[-2:]]
        self.padding = (pads[0][0], pads[1][0])
        out = super().forward(x)
        expected = [math.ceil(side / self._stride) for side in x.shape[-2:]]
        if list(out.shape[-2:]) != expected:  # pragma: no cover - kernel > 2*pad+1 geometries
            raise ValueError(f"SAME max-pool {self._kernel}/{self._stride} cannot pool {x.shape}")
        return out


class ConvUnit(nn.Module):
    """Convolution, optional batch norm, ReLU: ``[B, C_in, H, W] -> [B, C_out, h, w]``, >= 0.

    ``conv`` has a bias only without batch norm (torchvision's ``BasicConv2d`` has none).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        *,
        stride: int = 1,
        geometry: str,
        batch_norm: bool,
    ):
        super().__init__()
        self.conv: nn.Conv2d
        if geometry == "lucid":
            self.conv = SameConv2d(
                in_channels, out_channels, kernel, stride=stride, bias=not batch_norm
            )
        else:
            self.conv = nn.Conv2d(
                in_channels,
                out_channels,
                kernel,
                stride=stride,
                padding=kernel // 2,
                bias=not batch_norm,
            )
        self.norm: nn.Module = (
            nn.BatchNorm2d(out_channels, eps=BATCH_NORM_EPS) if batch_norm else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.norm(self.conv(x)))


def max_pool(kernel: int, stride: int, geometry: str) -> nn.MaxPool2d:
    """A max-pool of the given geometry (``"lucid"``: SAME; ``"torchvision"``: ceil mode)."""
    if geometry == "lucid":
        return SameMaxPool2d(kernel, stride)
    # torchvision pads only its stride-1 pools (inside the blocks), by one pixel.
    padding = (kernel - 1) // 2 if stride == 1 else 0
    return nn.MaxPool2d(kernel, stride=stride, padding=padding, ceil_mode=True)


@dataclass(frozen=True)
class BlockWidths:
    """Output channels of an inception block's branches (GoogLeNet paper, table 1).

    ``b1x1``; ``b3x3_reduce`` -> ``b3x3``; ``b5x5_reduce`` -> ``b5x5``; pool -> ``pool_proj``.
    The block's output depth is ``b1x1 + b3x3 + b5x5 + pool_proj``.
    """

    b1x1: int
    b3x3_reduce: int
    b3x3: int
    b5x5_reduce: int
    b5x5: int
    pool_proj: int

    @property
    def out_channels(self) -> int:
        return self.b1x1 + self.b3x3 + self.b5x5 + self.pool_proj

    def scaled(self, width: float) -> BlockWidths:
        """Every branch times ``width``, rounded, at least 1 channel."""
        return BlockWidths(*(max(1, round(c * width)) for c in self.__dict__.values()))


class InceptionBlock(nn.Module):
    """Four parallel branches concatenated on channels: ``[B, C_in, H, W] -> [B, C_out, H, W]``.

    The "5x5" branch has a ``five_kernel`` x ``five_kernel`` convolution: 5 in Lucid's graph,
    3 in torchvision's googlenet (a long-standing quirk of that port, kept for its weights).
    Output is post-ReLU (every branch ends in a ReLU), values >= 0.
    """

    def __init__(
        self,
        in_channels: int,
        widths: BlockWidths,
        *,
        five_kernel: int,
        geometry: str,
        batch_norm: bool,
    ):
        super().__init__()

        def unit(cin: int, cout: int, kernel: int) -> ConvUnit:
            return ConvUnit(cin, cout, kernel, geometry=geometry, batch_norm=batch_norm)

        self.b1x1 = unit(in_channels, widths.b1x1, 1)
        self.b3x3_reduce = unit(in_channels, widths.b3x3_reduce, 1)
        self.b3x3 = unit(widths.b3x3_reduce, widths.b3x3, 3)
        self.b5x5_reduce = unit(in_channels, widths.b5x5_reduce, 1)
        self.b5x5 = unit(widths.b5x5_reduce, widths.b5x5, five_kernel)
        self.pool = max_pool(3, 1, geometry)
        self.pool_proj = unit(in_channels, widths.pool_proj, 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat(
            [
                self.b1x1(x),
                self.b3x3(self.b3x3_reduce(x)),
                self.b5x5(self.b5x5_reduce(x)),
                self.pool_proj(self.pool(x)),
            ],
            dim=1,
        )


class Classifier(nn.Module):
    """Global average pool, dropout, linear: ``[B, C, h, w] -> [B, K]`` pre-softmax logits.

    At 224 px (7x7 final maps) the global mean equals Lucid's 7x7 VALID average pool and
    torchvision's ``AdaptiveAvgPool2d(1)``; at other sizes it still gives one logit vector.
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.dropout(x.mean(dim=(-2, -1))))


class LocalResponseNorm(nn.LocalResponseNorm):
    """Lucid's LRN (:data:`LRN_SIZE` ... :data:`LRN_K`); shape-preserving.

    ``y = x / (k + alpha / n * sum_{|c' - c| <= n // 2} x[c']^2) ** beta`` over channels
    (zero beyond the first and last channel), torch's ``local_response_norm`` exactly. On the
    CPU the channel window is summed by :func:`channel_window_sum` (and ``beta = 0.5`` is an
    ``rsqrt``), which is 2..4x faster than torch's ``avg_pool3d`` forward + backward (torch's
    LRN was ~40% of a full-width InceptionV1 render step; bench/RESULTS.md, "Atlas rendering")
    and equal to it within float32 rounding; elsewhere torch's own kernel runs.
    """

    def __init__(self) -> None:
        super().__init__(LRN_SIZE, alpha=LRN_ALPHA, beta=LRN_BETA, k=LRN_K)

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu" or x.dim() != 4:
            return super().forward(x)
        n = self.size
        squares = F.pad(x * x, (0, 0, 0, 0, n // 2, (n - 1) // 2))
        denominator = channel_window_sum(squares, n).mul(self.alpha / n).add(self.k)
        if self.beta == 0.5:
            return x * torch.rsqrt(denominator)
        return x * denominator.pow(-self.beta)


def channel_window_sum(padded: Tensor, n: int) -> Tensor:
    """Sums of ``n`` consecutive channels: ``[B, C + n - 1, H, W] -> [B, C, H, W]``,
    ``out[:, c] = padded[:, c:c + n].sum(1)``.

    Built from partial sums of widths 1, 2, 4, 8... (each the sum of two shifted halves) and
    the binary digits of ``n``: ``2 * log2(n)`` additions of whole tensors instead of a
    pooling kernel (11 = 8 + 2 + 1: 5 additions). Every output is a sum of the same terms as
    a direct sum, so the result is as accurate (a running cumulative sum would be faster still
    but loses ~1e-5 of relative precision to cancellation in float32 after 192 channels).
    """
    channels = padded.shape[1] - n + 1
    partial = {1: padded}
    width = 1
    while width * 2 <= n:
        previous = partial[width]
        partial[width * 2] = previous[:, :-width] + previous[:, width:]
        width *= 2
    total: Tensor | None = None
    offset = 0
    for width in sorted(partial, reverse=True):
        if n - offset >= width:
            part = partial[width][:, offset : offset + channels]
            total = part if total is None else total + part
            offset += width
    assert total is not None  # n >= 1
    return total
