"""Objectives: what a feature visualization maximizes.

An objective is a value ``(VisContext) -> Tensor [B]``: one number per batch element, higher is
better. The render loop sums the batch for the backward pass, so batch elements never mix.
Objectives are built from a few kinds (:func:`neuron`, :func:`channel`, :func:`direction`,
:func:`direction_neuron`, :func:`atlas_direction`, :func:`border_penalty`) and combined with
arithmetic, which also composes a readable description::

    obj = atlas_direction("mixed4c", directions, whitening=S) + border_penalty()
    obj.description   # 'atlas_direction(mixed4c, 64 directions, whitened, p=2) + border_penalty(5 px)'
    (0.5 * channel("mixed4c", 7) - neuron("mixed4c", 3)).layers   # frozenset({'mixed4c'})

``layers`` names the activations an objective reads, so the render loop runs the model only as
far as the deepest of them. ``batch`` is the batch size an objective is tied to (per-element
directions ``[B, C]`` or per-element channel lists), or None when it applies to any batch.

Activation tensors are ``[B, C, h, w]`` (post-ReLU, as ``AtlasModel.forward_to`` returns them);
the image is ``[B, 3, H, W]`` in [0, 1]. Objective arithmetic runs in at least float32 whatever
precision the model ran in (half-precision activations from autocast are widened first).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

#: Lucid's atlas recipe (``direction_neuron_cossim_S``): floor of the cosine term and the
#: epsilon of its denominator (METHOD.md 5).
ATLAS_COSSIM_FLOOR = 0.1
ATLAS_COSSIM_EPS = 1e-4

#: Lucid's ``penalize_boundary_complexity`` as the atlas recipe called it: border width (px),
#: target grey, weight of the distance-from-grey term, blur kernel side (METHOD.md 5).
BORDER_WIDTH = 5
BORDER_GREY = 0.5
BORDER_GREY_WEIGHT = 0.8
BORDER_BLUR_SIZE = 5


@dataclass(frozen=True)
class VisContext:
    """What an objective sees at one optimization step.

    Attributes:
        activations: ``{layer: [B, C, h, w]}`` captured by a truncated forward pass of the
            (transformed) image.
        image: ``[B, 3, H, W]`` in [0, 1]: the parameterized image *before* the random
            transforms (what the icon will be; the border penalty reads it).
    """

    activations: Mapping[str, Tensor]
    image: Tensor

    def layer(self, name: str) -> Tensor:
        """The activation of ``name``; a clear error when the render did not capture it."""
        if name not in self.activations:
            raise KeyError(
                f"objective reads layer {name!r} but only {sorted(self.activations)} were "
                "captured; pass the objective's .layers to forward_to"
            )
        return self.activations[name]


ObjectiveFn = Callable[[VisContext], Tensor]


class Objective:
    """A per-batch-element quantity to maximize, with arithmetic and a description.

    Args:
        fn: ``(VisContext) -> Tensor [B]``.
        description: readable text, e.g. ``channel(mixed4c:7)``.
        layers: the layers ``fn`` reads.
        batch: the batch size ``fn`` is tied to, or None when any batch works.
    """

    __slots__ = ("_compound", "_fn", "batch", "description", "layers")

    def __init__(
        self,
        fn: ObjectiveFn,
        description: str,
        *,
        layers: Iterable[str] = (),
        batch: int | None = None,
        _compound: bool = False,
    ) -> None:
        self._fn = fn
        self.description = description
        self.layers = frozenset(layers)
        self.batch = batch
        self._compound = _compound  # a sum: needs parentheses inside a product

    def __call__(self, ctx: VisContext) -> Tensor:
        """The objective's value ``[B]`` (float32) for one step's context."""
        return self._fn(ctx)

    def __repr__(self) -> str:
        return f"Objective({self.description})"

    # -- arithmetic -------------------------------------------------------------------------

    def _wrapped(self) -> str:
        return f"({self.description})" if self._compound else self.description

    def __add__(self, other: object) -> Objective:
        if isinstance(other, numbers.Real) and other == 0:  # lets sum([...]) start from 0
            return self
        if not isinstance(other, Objective):
            return NotImplemented
        return _combine(self, other, 1.0, f"{self.description} + {other.description}")

    __radd__ = __add__

    def __sub__(self, other: object) -> Objective:
        if isinstance(other, numbers.Real) and other == 0:
            return self
        if not isinstance(other, Objective):
            return NotImplemented
        return _combine(self, other, -1.0, f"{self.description} - {other._wrapped()}")

    def __neg__(self) -> Objective:
        fn = self._fn
        return Objective(
            lambda ctx: -fn(ctx),
            f"-{self._wrapped()}",
            layers=self.layers,
            batch=self.batch,
        )

    def __mul__(self, other: object) -> Objective:
        if isinstance(other, bool) or not isinstance(other, numbers.Real):
            return NotImplemented
        factor = float(other)
        fn = self._fn
        return Objective(
            lambda ctx: factor * fn(ctx),
            f"{factor:g} * {self._wrapped()}",
            layers=self.layers,
            batch=self.batch,
        )

    __rmul__ = __mul__

    def __truediv__(self, other: object) -> Objective:
        if isinstance(other, bool) or not isinstance(other, numbers.Real):
            return NotImplemented
        if other == 0:
            raise ZeroDivisionError(f"dividing objective {self.description!r} by zero")
        divisor = float(other)
        fn = self._fn
        return Objective(
            lambda ctx: fn(ctx) / divisor,
            f"{self._wrapped()} / {divisor:g}",
            layers=self.layers,
            batch=self.batch,
        )

    @staticmethod
    def sum(objectives: Iterable[Objective]) -> Objective:
        """The sum of several objectives (at least one)."""
        items = list(objectives)
        if not items:
            raise ValueError("Objective.sum needs at least one objective")
        total = items[0]
        for item in items[1:]:
            total = total + item
        return total


def _combine(a: Objective, b: Objective, sign: float, description: str) -> Objective:
    fa, fb = a._fn, b._fn
    if sign > 0:

        def fn(ctx: VisContext) -> Tensor:
            return fa(ctx) + fb(ctx)

    else:

        def fn(ctx: VisContext) -> Tensor:
            return fa(ctx) - fb(ctx)

    return Objective(
        fn,
        description,
        layers=a.layers | b.layers,
        batch=_merge_batch(a, b),
        _compound=True,
    )


def _merge_batch(a: Objective, b: Objective) -> int | None:
    if a.batch is not None and b.batch is not None and a.batch != b.batch:
        raise ValueError(
            f"cannot combine objectives for different batch sizes: {a.description!r} is for "
            f"{a.batch} images, {b.description!r} for {b.batch}"
        )
    return a.batch if a.batch is not None else b.batch


# -- helpers ---------------------------------------------------------------------------------


def _wide(t: Tensor) -> Tensor:
    """``t`` in at least float32 (half precision from autocast is widened, float64 kept)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def _activation(ctx: VisContext, layer: str) -> Tensor:
    """``ctx``'s activation of ``layer`` as ``[B, C, h, w]`` (in the model's precision)."""
    a = ctx.layer(layer)
    return a[:, :, None, None] if a.dim() == 2 else a  # logits [B, K]: a 1x1 map


def _position(a: Tensor, y: int | None, x: int | None) -> tuple[int, int]:
    """The spatial position ``(y, x)``; None means the centre ``(h // 2, w // 2)`` as Lucid."""
    h, w = a.shape[-2:]
    return (h // 2 if y is None else y), (w // 2 if x is None else x)


def _at(a: Tensor, y: int | None, x: int | None) -> Tensor:
    """The channel vectors ``[B, C]`` of ``a [B, C, h, w]`` at one position (>= float32)."""
    yy, xx = _position(a, y, x)
    return _wide(a[:, :, yy, xx])


def _where(y: int | None, x: int | None) -> str:
    return "centre" if y is None and x is None else f"y={y},x={x}"


class _Constant:
    """A constant tensor (direction, channel list) copied once to each device it meets."""

    def __init__(self, value: Tensor) -> None:
        self._value = value
        self._copies: dict[torch.device, Tensor] = {value.device: value}

    def on(self, device: torch.device) -> Tensor:
        if device not in self._copies:
            self._copies[device] = self._value.to(device)
        return self._copies[device]


def _per_element_channels(
    channel: int | Sequence[int] | Tensor,
) -> tuple[_Constant | int, int | None, str]:
    """A single channel index, or one per batch element: (value, batch, text)."""
    if isinstance(channel, Tensor):
        channel = channel.tolist()
    if not isinstance(channel, Sequence):
        return int(channel), None, str(int(channel))
    channels = [int(c) for c in channel]
    if not channels:
        raise ValueError("a per-element channel list must not be empty")
    text = f"[{', '.join(map(str, channels[:4]))}{', ...' if len(channels) > 4 else ''}]"
    return _Constant(torch.tensor(channels, dtype=torch.long)), len(channels), text


def _pick_channel(a: Tensor, channel: _Constant | int) -> Tensor:
    """``a [B, C, ...]`` -> ``[B, ...]``: one channel for all, or channel[b] for element b."""
    if isinstance(channel, int):
        return a[:, channel]
    index = channel.on(a.device)
    if index.shape[0] != a.shape[0]:
        raise ValueError(f"{index.shape[0]} per-element channels for a batch of {a.shape[0]}")
    return a[torch.arange(a.shape[0], device=a.device), index]


def _directions(v: Tensor, what: str) -> tuple[Tensor, int | None]:
    """A direction ``[C]`` (shared) or ``[B, C]`` (one per element) as ``[1|B, C]``."""
    if v.dim() == 1:
        return _wide(v.detach())[None], None
    if v.dim() == 2:
        return _wide(v.detach()), v.shape[0]
    raise ValueError(f"{what}: a direction must be [C] or [B, C], got shape {tuple(v.shape)}")


def _check_batch(vs: Tensor, a: Tensor, what: str) -> None:
    if vs.shape[0] not in (1, a.shape[0]):
        raise ValueError(f"{what}: {vs.shape[0]} directions for a batch of {a.shape[0]} images")
    if vs.shape[1] != a.shape[1]:
        raise ValueError(f"{what}: directions have {vs.shape[1]} channels, layer has {a.shape[1]}")


def _direction_text(vs: Tensor, batch: int | None) -> str:
    return f"v[{vs.shape[1]}]" if batch is None else f"{batch} directions"


# -- kinds -----------------------------------------------------------------------------------


def neuron(
    layer: str,
    channel: int | Sequence[int] | Tensor,
    *,
    y: int | None = None,
    x: int | None = None,
) -> Objective:
    """One neuron: ``a[b, channel, y, x]`` (centre position by default).

    ``channel`` may be a list (or 1-D tensor) with one channel per batch element.
    """
    ch, batch, text = _per_element_channels(channel)

    def fn(ctx: VisContext) -> Tensor:
        return _pick_channel(_at(_activation(ctx, layer), y, x), ch)

    return Objective(fn, f"neuron({layer}:{text} @ {_where(y, x)})", layers=[layer], batch=batch)


def channel(layer: str, channel: int | Sequence[int] | Tensor) -> Objective:
    """One channel: the spatial mean of ``a[b, channel]``; a list gives one per element."""
    ch, batch, text = _per_element_channels(channel)

    def fn(ctx: VisContext) -> Tensor:
        return _wide(_pick_channel(_activation(ctx, layer), ch)).mean(dim=(-2, -1))

    return Objective(fn, f"channel({layer}:{text})", layers=[layer], batch=batch)


def direction(layer: str, v: Tensor, *, cosine: bool = False) -> Objective:
    """A direction in activation space, averaged over all spatial positions.

    At each position the score is ``sum_c a[c] * v[c]`` (``cosine=False``, Lucid's
    ``direction``) or the cosine similarity of ``a`` and ``v`` (``cosine=True``); the value is
    its spatial mean. ``v`` is ``[C]`` (all elements) or ``[B, C]`` (element b gets ``v[b]``).
    """
    vs, batch = _directions(v, "direction")
    const = _Constant(vs)

    def fn(ctx: VisContext) -> Tensor:
        a = _wide(_activation(ctx, layer))
        _check_batch(vs, a, "direction")
        d = const.on(a.device)[:, :, None, None]
        score = (a * d).sum(dim=1)
        if cosine:
            score = score / (a.norm(dim=1) * d.norm(dim=1)).clamp_min(1e-8)
        return score.mean(dim=(-2, -1))

    kind = ", cosine" if cosine else ""
    return Objective(
        fn, f"direction({layer}, {_direction_text(vs, batch)}{kind})", layers=[layer], batch=batch
    )


def direction_neuron(
    layer: str, v: Tensor, *, cosine: bool = False, y: int | None = None, x: int | None = None
) -> Objective:
    """A direction at one spatial position (the centre by default): dot product or cosine.

    ``v`` is ``[C]`` or ``[B, C]`` as in :func:`direction`.
    """
    vs, batch = _directions(v, "direction_neuron")
    const = _Constant(vs)

    def fn(ctx: VisContext) -> Tensor:
        a = _activation(ctx, layer)
        _check_batch(vs, a, "direction_neuron")
        act = _at(a, y, x)  # [B, C]
        d = const.on(a.device)
        score = (act * d).sum(dim=1)
        if cosine:
            score = score / (act.norm(dim=1) * d.norm(dim=1)).clamp_min(1e-8)
        return score

    kind = ", cosine" if cosine else ""
    text = f"direction_neuron({layer}, {_direction_text(vs, batch)} @ {_where(y, x)}{kind})"
    return Objective(fn, text, layers=[layer], batch=batch)


def atlas_direction(
    layer: str,
    v: Tensor,
    *,
    whitening: Tensor | None = None,
    cossim_pow: float = 2.0,
    y: int | None = None,
    x: int | None = None,
) -> Objective:
    """The activation atlas objective of Lucid's recipe (METHOD.md 5), exactly.

    With ``a`` the channel vector ``[C]`` at the layer's centre position and
    ``v' = v @ S`` (``S`` the whitening matrix ``[C, C]``, or the identity when None)::

        dot    = mean_c(a * v')                       # a channel *mean*, not a sum
        cossim = max(0.1, dot / (1e-4 + |a|))
        value  = dot * cossim ** cossim_pow           # p = 2 (recipe) or 4 (notebooks)

    ``cossim`` is not a true cosine (``v'`` is not normalized and ``dot`` is a mean): it is the
    recipe's formula, kept as is, and its floor 0.1 keeps the gradient of ``dot`` alive when
    the angle is poor. Plain cosine similarity does not reproduce the article's icons
    (METHOD.md 8). ``v`` is ``[C]`` or ``[B, C]`` (one direction per batch element, so one
    forward pass renders a batch of different cells).
    """
    vs, batch = _directions(v, "atlas_direction")
    if whitening is not None:
        s = whitening.detach().to(device=vs.device, dtype=vs.dtype)
        if s.shape != (vs.shape[1], vs.shape[1]):
            raise ValueError(
                f"atlas_direction: whitening must be [{vs.shape[1]}, {vs.shape[1]}], "
                f"got {tuple(s.shape)}"
            )
        vs = vs @ s
    const = _Constant(vs)

    def fn(ctx: VisContext) -> Tensor:
        a = _activation(ctx, layer)
        _check_batch(vs, a, "atlas_direction")
        act = _at(a, y, x)  # [B, C]
        dot = (act * const.on(a.device)).mean(dim=1)
        cossim = (dot / (ATLAS_COSSIM_EPS + act.norm(dim=1))).clamp_min(ATLAS_COSSIM_FLOOR)
        return dot * cossim**cossim_pow

    white = ", whitened" if whitening is not None else ""
    text = (
        f"atlas_direction({layer}, {_direction_text(vs, batch)}{white}, p={cossim_pow:g}"
        + ("" if y is None and x is None else f" @ {_where(y, x)}")
        + ")"
    )
    return Objective(fn, text, layers=[layer], batch=batch)


def _border_blur(image: Tensor, size: int) -> Tensor:
    """Lucid's ``_tf_blur``: a ``size x size`` box (weight 0.5 on the rim, 1 inside) per channel,
    normalized by the kernel mass inside the image (zero padding does not darken the edges)."""
    k = torch.full((size, size), 0.5, dtype=image.dtype, device=image.device)
    k[1:-1, 1:-1] = 1.0
    c = image.shape[1]
    kernel = k.expand(c, 1, size, size)
    pad = size // 2
    blurred = F.conv2d(image, kernel, padding=pad, groups=c)
    mass = F.conv2d(image.new_ones((1, 1, *image.shape[-2:])), k[None, None], padding=pad)
    return blurred / mass


def border_penalty(width: int = BORDER_WIDTH, grey: float = BORDER_GREY) -> Objective:
    """Penalize detail and colour in a ``width``-px border of the rendered image (always <= 0).

    Per element: ``-sum_border[(blur(x) - x)^2 + 0.8 (x - grey)^2]`` over the un-transformed
    image ``[B, 3, H, W]``, as Lucid's ``penalize_boundary_complexity(w=5)`` read
    ``T("input")`` in the atlas recipe. (METHOD.md 5 says "of the padded image"; the border of
    the 16-px constant padding would be a constant with no gradient, so the reference's
    reading, the image itself, is the one that does anything.)
    """
    if width < 1:
        raise ValueError(f"border_penalty: width must be >= 1 px, got {width}")

    def fn(ctx: VisContext) -> Tensor:
        image = _wide(ctx.image)
        h, w = image.shape[-2:]
        mask = torch.ones((h, w), dtype=image.dtype, device=image.device)
        if h > 2 * width and w > 2 * width:
            mask[width:-width, width:-width] = 0.0
        blur = _border_blur(image, BORDER_BLUR_SIZE)
        diffs = (blur - image) ** 2 + BORDER_GREY_WEIGHT * (image - grey) ** 2
        return -(diffs * mask).sum(dim=(1, 2, 3))

    return Objective(fn, f"border_penalty({width} px)")
