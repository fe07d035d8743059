"""The smooth max-pool relaxation (METHOD.md 2) against the article's formula, computed here.

The article back-propagated max-pooling through ``avg_pool(x^2) / (1e-2 + avg_pool(|x|))``
with the pool's own window. Its pools were TensorFlow's, whose ``avg_pool`` averages only the
pixels of a window that lie inside the image (padding is not counted). The reference below
walks the windows with explicit loops (no pooling function of torch or of the product), for
the geometries InceptionV1 uses: kernel 3 stride 2 in ceil mode (torchvision's), kernel 3
stride 1 padding 1 (inside the blocks), and TensorFlow ``SAME`` (Lucid's).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor, nn
from torch.nn import functional as F

from generator.atlas.attribute import Attributor
from generator.models.base import LayerInfo, StagedModel, relaxed_max_pool, smooth_max_pool
from generator.models.layers import max_pool

EPS = 1e-2  # METHOD.md 2


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny tensors: one thread


Windows = list[tuple[int, int]]


# -- the reference ---------------------------------------------------------------------------


def windows(size: int, kernel: int, stride: int, before: int, count: int) -> Windows:
    """``[start, end)`` of each of ``count`` windows along an axis of ``size`` pixels, the
    first starting ``before`` pixels before the image, clipped to the image."""
    spans = [(o * stride - before, o * stride - before + kernel) for o in range(count)]
    return [(max(a, 0), min(b, size)) for a, b in spans]


def torch_windows(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> Windows:
    """PyTorch's pooling geometry (nn.MaxPool2d docs): ``out = floor or ceil((size + 2p - k) /
    s) + 1``; in ceil mode a last window that would start in the right padding is dropped."""
    span = size + 2 * padding - kernel
    count = (math.ceil(span / stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (count - 1) * stride >= size + padding:
        count -= 1
    return windows(size, kernel, stride, padding, count)


def same_windows(size: int, kernel: int, stride: int) -> Windows:
    """TensorFlow ``SAME``: ``ceil(size / stride)`` windows, the padding's odd pixel after."""
    count = math.ceil(size / stride)
    total = max((count - 1) * stride + kernel - size, 0)
    return windows(size, kernel, stride, total // 2, count)


def relaxed_reference(x: Tensor, rows: Windows, columns: Windows) -> Tensor:
    """``mean(x^2) / (EPS + mean(|x|))`` over each window's pixels: ``[..., H, W] -> [..., h,
    w]``, differentiable (plain slicing and means)."""
    return torch.stack(
        [
            torch.stack(
                [
                    (x[..., r0:r1, c0:c1] ** 2).mean(dim=(-2, -1))
                    / (EPS + x[..., r0:r1, c0:c1].abs().mean(dim=(-2, -1)))
                    for c0, c1 in columns
                ],
                dim=-1,
            )
            for r0, r1 in rows
        ],
        dim=-2,
    )


def max_reference(x: Tensor, rows: Windows, columns: Windows) -> Tensor:
    """The hard max over each window's pixels."""
    return torch.stack(
        [
            torch.stack([x[..., r0:r1, c0:c1].amax(dim=(-2, -1)) for c0, c1 in columns], dim=-1)
            for r0, r1 in rows
        ],
        dim=-2,
    )


def relaxed_pool_reference(x: Tensor, rows: Windows, columns: Windows) -> Tensor:
    """The hard max's value with the relaxation's derivatives."""
    smooth = relaxed_reference(x, rows, columns)
    return smooth + (max_reference(x, rows, columns) - smooth).detach()


#: (pool, how to get its windows for a side) for InceptionV1's geometries.
GEOMETRIES = {
    "k3s2-ceil": (
        lambda: nn.MaxPool2d(3, stride=2, ceil_mode=True),
        lambda n: torch_windows(n, 3, 2, 0, True),
    ),
    "k3s1-pad1": (
        lambda: nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
        lambda n: torch_windows(n, 3, 1, 1, True),
    ),
    "k2s2-ceil": (
        lambda: nn.MaxPool2d(2, stride=2, ceil_mode=True),
        lambda n: torch_windows(n, 2, 2, 0, True),
    ),
    "lucid-k3s2": (lambda: max_pool(3, 2, "lucid"), lambda n: same_windows(n, 3, 2)),
    "lucid-k3s1": (lambda: max_pool(3, 1, "lucid"), lambda n: same_windows(n, 3, 1)),
}


def test_the_reference_windows_are_inceptions() -> None:
    # by hand: 4 px, kernel 3, stride 2, ceil mode: [0, 3) and [2, 5) clipped to [2, 4)
    assert torch_windows(4, 3, 2, 0, True) == [(0, 3), (2, 4)]
    assert torch_windows(4, 3, 2, 0, False) == [(0, 3)]
    assert torch_windows(3, 3, 1, 1, True) == [(0, 2), (0, 3), (1, 3)]
    # torchvision's googlenet at 224 px: 112 -> 56 -> 28 -> 14 -> 7 (ceil mode)
    assert [len(torch_windows(n, 3, 2, 0, True)) for n in (112, 56, 28)] == [56, 28, 14]
    assert len(torch_windows(14, 2, 2, 0, True)) == 7
    # Lucid's SAME at 224 px: 112 -> 56, the odd pixel of padding after
    assert same_windows(112, 3, 2)[-1] == (110, 112) and len(same_windows(112, 3, 2)) == 56
    assert same_windows(7, 3, 2) == [(0, 2), (1, 4), (3, 6), (5, 7)]


def test_the_formula_on_hand_computed_windows() -> None:
    """1..16 on a 4 x 4 map, kernel 3 stride 2 ceil mode; 1..9 on 3 x 3, kernel 3 padding 1."""
    x = torch.arange(1.0, 17.0, dtype=torch.float64).reshape(1, 1, 4, 4)
    expected = torch.tensor(
        [
            # [1 2 3; 5 6 7; 9 10 11]: mean of squares 426 / 9, mean 54 / 9
            # [3 4; 7 8; 11 12]: 403 / 6 and 45 / 6
            [426 / 9 / (EPS + 6.0), 403 / 6 / (EPS + 7.5)],
            # [9 10 11; 13 14 15]: 892 / 6, 72 / 6; [11 12; 15 16]: 746 / 4, 54 / 4
            [892 / 6 / (EPS + 12.0), 746 / 4 / (EPS + 13.5)],
        ],
        dtype=torch.float64,
    )
    got = smooth_max_pool(nn.MaxPool2d(3, stride=2, ceil_mode=True), x)
    torch.testing.assert_close(got[0, 0], expected, rtol=1e-12, atol=0)
    y = torch.arange(1.0, 10.0, dtype=torch.float64).reshape(1, 1, 3, 3)
    got = smooth_max_pool(nn.MaxPool2d(3, stride=1, padding=1), y)[0, 0]
    # corner [1 2; 4 5]: 46 / 4 and 12 / 4 (padding not counted); centre: all nine
    assert got[0, 0].item() == pytest.approx(46 / 4 / (EPS + 3.0), rel=1e-12)
    assert got[1, 1].item() == pytest.approx(285 / 9 / (EPS + 5.0), rel=1e-12)
    # [7 8; ...] bottom-right corner: [5 6; 8 9]: 206 / 4 and 28 / 4
    assert got[2, 2].item() == pytest.approx(206 / 4 / (EPS + 7.0), rel=1e-12)
    # |x| in the denominator: signs do not change it
    torch.testing.assert_close(smooth_max_pool(nn.MaxPool2d(3, stride=1, padding=1), -y)[0, 0], got)


def _input(side: int, seed: int) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(2, 3, side, side, generator=generator, dtype=torch.float64)


@pytest.mark.parametrize("geometry", ["k3s2-ceil", "k3s1-pad1", "k2s2-ceil"])
@pytest.mark.parametrize("side", [7, 8])
def test_smooth_max_pool_is_the_formula(geometry: str, side: int) -> None:
    make_pool, geometry_of = GEOMETRIES[geometry]
    x = _input(side, seed=side)
    expected = relaxed_reference(x, geometry_of(side), geometry_of(side))
    torch.testing.assert_close(smooth_max_pool(make_pool(), x), expected, rtol=1e-10, atol=1e-12)


def formula_derivatives(
    x: Tensor, rows: Windows, columns: Windows, weights: Tensor, tangent: Tensor
) -> tuple[Tensor, Tensor]:
    """The formula's vector-Jacobian product with ``weights`` and Jacobian-vector product with
    ``tangent``, differentiated by hand: over a window of ``n`` pixels the formula is
    ``f = S2 / (n EPS + S1)`` (``S2 = sum x^2``, ``S1 = sum |x|``), so
    ``df / dx_j = 2 x_j / (n EPS + S1) - S2 sign(x_j) / (n EPS + S1)^2``."""
    vjp = torch.zeros_like(x)
    jvp = torch.zeros(*x.shape[:-2], len(rows), len(columns), dtype=x.dtype)
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(columns):
            window = x[..., r0:r1, c0:c1]
            n = window.shape[-2] * window.shape[-1]
            s1 = window.abs().sum(dim=(-2, -1), keepdim=True)
            s2 = (window**2).sum(dim=(-2, -1), keepdim=True)
            d = 2 * window / (n * EPS + s1) - s2 * window.sign() / (n * EPS + s1) ** 2
            vjp[..., r0:r1, c0:c1] += weights[..., i, j, None, None] * d
            jvp[..., i, j] = (d * tangent[..., r0:r1, c0:c1]).sum(dim=(-2, -1))
    return vjp, jvp


@pytest.mark.parametrize("geometry", list(GEOMETRIES))
@pytest.mark.parametrize("side", [7, 10])
def test_relaxed_pool_keeps_the_max_and_takes_the_formulas_derivatives(
    geometry: str, side: int
) -> None:
    make_pool, geometry_of = GEOMETRIES[geometry]
    pool = make_pool()
    x = _input(side, seed=100 + side).relu() + 0.05 * _input(side, seed=200 + side)
    rows = columns = geometry_of(side)
    generator = torch.Generator().manual_seed(side)
    weights = torch.randn(2, 3, len(rows), len(columns), generator=generator, dtype=x.dtype)
    tangent = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    by_hand = formula_derivatives(x, rows, columns, weights, tangent)
    # autograd through the reference's loops agrees with the hand derivation
    a = x.clone().requires_grad_(True)
    (reference_grad,) = torch.autograd.grad(
        (relaxed_reference(a, rows, columns) * weights).sum(), a
    )
    reference_jvp = torch.func.jvp(lambda v: relaxed_reference(v, rows, columns), (x,), (tangent,))[
        1
    ]
    torch.testing.assert_close(reference_grad, by_hand[0])
    torch.testing.assert_close(reference_jvp, by_hand[1])

    with relaxed_max_pool(pool):
        out = pool(a)
        (grad,) = torch.autograd.grad((out * weights).sum(), a)
        with fwAD.dual_level():
            dual_out = pool(fwAD.make_dual(x, tangent))
            forward_tangent = fwAD.unpack_dual(dual_out).tangent
    # the max's value, up to the rounding of smooth + (max - smooth)
    torch.testing.assert_close(out.detach(), max_reference(x, rows, columns), rtol=1e-14, atol=0)
    torch.testing.assert_close(grad, by_hand[0])
    torch.testing.assert_close(forward_tangent, by_hand[1])
    # and the relaxation's derivatives are not the hard max's
    (hard,) = torch.autograd.grad((pool(a) * weights).sum(), a)
    assert (hard - grad).abs().max() > 0.1 * hard.abs().max()
    assert (hard != 0).sum() < (grad != 0).sum()  # the max routes to one pixel per window


def test_hooks_are_removed_on_exit_and_on_an_exception() -> None:
    pool = nn.MaxPool2d(3, stride=2, ceil_mode=True)
    model = nn.Sequential(nn.Identity(), pool, nn.Sequential(pool))  # one pool, used twice
    x = _input(7, seed=3).relu().requires_grad_(True)
    (hard,) = torch.autograd.grad(pool(x).sum(), x)
    with relaxed_max_pool(model):
        assert len(pool._forward_hooks) == 1
        (relaxed,) = torch.autograd.grad(pool(x).sum(), x)
    assert not pool._forward_hooks
    assert not torch.equal(relaxed, hard)
    torch.testing.assert_close(torch.autograd.grad(pool(x).sum(), x)[0], hard, rtol=0, atol=0)
    with pytest.raises(RuntimeError, match="inside the block"), relaxed_max_pool(model):
        pool(x)
        raise RuntimeError("inside the block")
    assert not pool._forward_hooks
    torch.testing.assert_close(torch.autograd.grad(pool(x).sum(), x)[0], hard, rtol=0, atol=0)


# -- attribution through a relaxed pool ------------------------------------------------------


class TwoPoolNet(StagedModel):
    """conv2d0 (6 ch, /2) -> mixed3a (8 ch, 10 x 10 at 20 px) -> max-pool 3/2 -> mixed4a
    (5 ch, 5 x 5) -> max-pool 3/1 -> mean -> logits (4). ``geometry``: the pools',
    "torchvision" (ceil mode: 10 -> 5; padding 1: 5 -> 5) or "lucid" (SAME: 10 -> 5 with
    the padding after; 5 -> 5 with one pixel each side)."""

    def __init__(self, geometry: str) -> None:
        super().__init__()
        self.name = f"two-pools-{geometry}"
        self.input_size = 20
        self.labels = ("a", "b", "c", "d")
        self.stages = nn.ModuleDict(
            {
                "conv2d0": nn.Sequential(nn.Conv2d(3, 6, 3, stride=2, padding=1), nn.ReLU()),
                "mixed3a": nn.Sequential(nn.Conv2d(6, 8, 3, padding=1), nn.ReLU()),
                "pool": max_pool(3, 2, geometry),
                "mixed4a": nn.Sequential(nn.Conv2d(8, 5, 3, padding=1), nn.ReLU()),
                "pool4": max_pool(3, 1, geometry),
                "head": nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
                "logits": nn.Linear(5, 4),
            }
        )
        self.layer_infos = (
            LayerInfo("conv2d0", 6, 10),
            LayerInfo("mixed3a", 8, 10),
            LayerInfo("mixed4a", 5, 5),
            LayerInfo("logits", 4, 1),
        )
        generator = torch.Generator().manual_seed(7)
        with torch.no_grad():
            for param in self.parameters():
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5 + 0.05)
        self.eval()

    def preprocess(self, images: Tensor) -> Tensor:
        return images * 2.0 - 1.0


#: The windows of TwoPoolNet's pools (10 -> 5, then 5 -> 5) in each geometry.
POOL_WINDOWS = {
    "torchvision": (torch_windows(10, 3, 2, 0, True), torch_windows(5, 3, 1, 1, True)),
    "lucid": (same_windows(10, 3, 2), same_windows(5, 3, 1)),
}


def attribution_reference(
    model: TwoPoolNet, act: Tensor, positions: Tensor, geometry: str, *, relaxed: bool
) -> Tensor:
    """``attr[s, c] = h . d logit_c / d h`` at each sample's position, the network after
    mixed3a written out by hand (its pools: :func:`relaxed_pool_reference` or the hard max),
    one reverse pass per class."""
    conv, linear = model.stages["mixed4a"][0], model.stages["logits"]  # type: ignore[index]
    assert isinstance(conv, nn.Conv2d) and isinstance(linear, nn.Linear)
    assert conv.bias is not None
    first, second = POOL_WINDOWS[geometry]
    pool = relaxed_pool_reference if relaxed else max_reference
    a = act.detach().double().clone().requires_grad_(True)
    pooled = pool(a, first, first)
    mixed4a = F.relu(F.conv2d(pooled, conv.weight.double(), conv.bias.double(), padding=1))
    logits = pool(mixed4a, second, second).mean(dim=(-2, -1)) @ linear.weight.double().T
    logits = logits + linear.bias.double()
    rows = torch.arange(len(positions))
    ys, xs = positions[:, 0], positions[:, 1]
    h = a.detach()[rows, :, ys, xs]  # [S, C]
    columns = []
    for c in range(logits.shape[1]):  # samples do not interact: one pass per class
        (grad,) = torch.autograd.grad(logits[:, c].sum(), a, retain_graph=True)
        columns.append((grad[rows, :, ys, xs] * h).sum(dim=1))
    return torch.stack(columns, dim=1).float()


@pytest.mark.parametrize("geometry", ["torchvision", "lucid"])
@pytest.mark.parametrize("method", ["jvp", "double-vjp"])
def test_attribution_through_a_relaxed_max_pool(geometry: str, method: str) -> None:
    model = TwoPoolNet(geometry)
    generator = torch.Generator().manual_seed(11)
    images = torch.rand(5, 3, 20, 20, generator=generator)
    with torch.no_grad():
        act = model.forward_to(images, ["mixed3a"])["mixed3a"]
    assert act.shape == (5, 8, 10, 10)
    # a corner, the last row and column (the ceil-mode / SAME windows), the inside
    positions = torch.tensor([[0, 0], [9, 9], [9, 4], [5, 9], [3, 6]])
    smooth = Attributor(model, "mixed3a", smooth_maxpool=True, method=method)(act, positions)
    hard = Attributor(model, "mixed3a", smooth_maxpool=False, method=method)(act, positions)
    expected = attribution_reference(model, act, positions, geometry, relaxed=True)
    expected_hard = attribution_reference(model, act, positions, geometry, relaxed=False)
    scale = expected.abs().max().item()
    torch.testing.assert_close(smooth, expected, rtol=1e-4, atol=1e-5 * scale)
    torch.testing.assert_close(hard, expected_hard, rtol=1e-4, atol=1e-5 * scale)
    assert (smooth - hard).abs().max() > 0.05 * scale
    assert all(not m._forward_hooks for m in model.modules())
