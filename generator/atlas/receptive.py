"""The receptive field of a layer's activations, measured on the model itself.

Dataset examples are crops of real images around the sampled activations (viewerdata's
``crop_receptive_field``); how large a crop should be depends on the layer. Rather than read
a table of layer geometries (which user models lack), we ask the network: the input gradient
of the activations at the layer's centre position, ``d sum_c a[c, h//2, w//2] / d image``,
summed in magnitude over a few images. Max-pools are relaxed while measuring
(:func:`generator.models.base.relaxed_max_pool`), so a pool passes gradient to its whole
window, as it would for some input, not only to this input's maxima.

* ``support``: the side of the smallest square centred on the position that holds every pixel
  with a nonzero gradient (the theoretical receptive field, clipped to the image);
* ``effective``: the side of the smallest centred square holding :data:`EFFECTIVE_MASS` of the
  gradient magnitude: where the activation actually looks (the theoretical field of deep
  layers is larger than the image: 299 px for mixed4c at 224 px);
* ``stride``: input px per step of the layer's map (input side / map side).

Crops use ``effective``. Measured once per (model, layer, input size, images) and cached.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from generator.models.base import AtlasModel

#: Share of the input-gradient magnitude the effective receptive field holds.
EFFECTIVE_MASS = 0.9

#: Images the receptive field is measured on (the first of the atlas's sample list).
RECEPTIVE_IMAGES = 8


@dataclass(frozen=True)
class ReceptiveField:
    """Where one activation of ``layer`` looks in an ``input_size`` px image.

    Attributes:
        layer: the layer; input_size: the image side the model saw.
        layer_size: ``(h, w)`` of the layer's map at that input size.
        stride: input px per activation step (``input_size / w``).
        support: side (px) of the centred square holding every pixel that affects the centre
            activation (at most ``2 * input_size``).
        effective: side (px) of the centred square holding ``mass`` of the gradient magnitude.
        mass: the share used for ``effective``.
    """

    layer: str
    input_size: int
    layer_size: tuple[int, int]
    stride: float
    support: int
    effective: int
    mass: float = EFFECTIVE_MASS

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["layer_size"] = list(self.layer_size)
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ReceptiveField:
        return cls(**{**doc, "layer_size": tuple(doc["layer_size"])})


def gradient_map(model: AtlasModel, layer: str, images: torch.Tensor) -> tuple[np.ndarray, tuple]:
    """``(|grad| [H, W] float64, (h, w))``: the input-gradient magnitude of the centre
    activation of ``layer`` summed over the images ``[B, 3, H, W]`` in [0, 1] and colours."""
    import torch

    from generator.models.base import relaxed_max_pool

    training = model.training
    model.eval()
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        x = images.detach().clone().requires_grad_(True)
        with torch.enable_grad(), relaxed_max_pool(model):
            act = model.forward_to(x, [layer])[layer]
            h, w = act.shape[-2:]
            act[:, :, h // 2, w // 2].sum().backward()
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(training)
    assert x.grad is not None
    grad = x.grad.abs().sum(dim=(0, 1)).double().cpu().numpy()
    return grad, (int(h), int(w))


def centred_side(
    weights: np.ndarray, centre: tuple[float, float], share: float, *, nonzero: bool = False
) -> int:
    """Side of the smallest square centred at ``centre`` ``(y, x)`` (px, continuous) that holds
    ``share`` of ``weights [H, W]`` (``nonzero``: every nonzero pixel), the square's corners
    rounded as viewerdata's crops round them. At most ``2 * max(H, W)``."""
    height, width = weights.shape
    total = float(weights.sum())
    if total <= 0:
        return max(height, width)
    need = total if nonzero else share * total
    sums = np.zeros((height + 1, width + 1))
    sums[1:, 1:] = weights.cumsum(0).cumsum(1)
    limit = 2 * max(height, width)
    for side in range(1, limit + 1):
        top, left = round(centre[0] - side / 2), round(centre[1] - side / 2)
        y0, x0 = min(max(top, 0), height), min(max(left, 0), width)
        y1, x1 = min(max(top + side, 0), height), min(max(left + side, 0), width)
        inside = sums[y1, x1] - sums[y0, x1] - sums[y1, x0] + sums[y0, x0]
        if inside >= need * (1 - 1e-9):
            return side
    return limit


def receptive_field(
    model: AtlasModel, layer: str, images: torch.Tensor, *, mass: float = EFFECTIVE_MASS
) -> ReceptiveField:
    """Measure ``layer``'s receptive field on ``images [B, 3, S, S]`` in [0, 1] (a few real
    images of the atlas's data set, on the model's device)."""
    grad, (h, w) = gradient_map(model, layer, images)
    size = int(images.shape[-1])
    centre = ((h // 2 + 0.5) * images.shape[-2] / h, (w // 2 + 0.5) * size / w)
    return ReceptiveField(
        layer=layer,
        input_size=size,
        layer_size=(h, w),
        stride=size / w,
        support=centred_side(grad, centre, 1.0, nonzero=True),
        effective=centred_side(grad, centre, mass),
        mass=mass,
    )
