"""Random image transforms a feature visualization must be robust to.

A transform is ``(config) -> (images, generator) -> images``: the outer call fixes its
parameters, the returned closure maps images ``[B, C, H, W]`` to images ``[B, C, H', W']``
drawing any randomness from the ``torch.Generator`` it is given (never the global random
state). Each transform makes ONE random draw per call for the whole batch, as the original did,
so every batch element sees the same crop, scale and rotation at a given step, and the draws do
not depend on the batch size. Draws are host-side numbers (offsets, sizes, angles): give a CPU
generator to avoid a device synchronization per draw.

:func:`standard_transforms` is the atlas recipe's list, as data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

Transform = Callable[[Tensor, torch.Generator], Tensor]


def _randint(high: int, generator: torch.Generator, n: int = 1) -> list[int]:
    """``n`` integers uniform in ``[0, high)`` from ``generator``."""
    values = torch.randint(high, (n,), generator=generator, device=generator.device)
    return [int(v) for v in values.tolist()]


def _choose(choices: Sequence[float], generator: torch.Generator) -> float:
    return choices[_randint(len(choices), generator)[0]]


def pad(width: int, value: float = 0.5) -> Transform:
    """Pad ``width`` px on every side with the constant ``value`` (the recipe: 16, grey 0.5)."""
    if width < 0:
        raise ValueError(f"pad: width must be >= 0, got {width}")

    def inner(images: Tensor, generator: torch.Generator) -> Tensor:
        return F.pad(images, (width, width, width, width), mode="constant", value=value)

    return inner


def jitter(d: int) -> Transform:
    """A random crop that shrinks the image by ``d`` px in each dimension.

    The offsets ``(top, left)`` are uniform in ``0..d`` (inclusive), drawn as one pair per call:
    ``images[..., top:top + H - d, left:left + W - d]`` (Lucid's ``jitter``, a
    ``tf.random_crop``; not a translation that keeps the size, as Lucent's).
    """
    if d < 0:
        raise ValueError(f"jitter: d must be >= 0, got {d}")

    def inner(images: Tensor, generator: torch.Generator) -> Tensor:
        h, w = images.shape[-2:]
        if d >= h or d >= w:
            raise ValueError(f"jitter({d}) cannot crop an image of {h}x{w} px")
        top, left = _randint(d + 1, generator, 2)
        return images[..., top : top + h - d, left : left + w - d]

    return inner


def random_scale(scales: Iterable[float]) -> Transform:
    """Resize by a factor drawn from ``scales`` (bilinear; new side = ``int(scale * side)``).

    The size is truncated as Lucid's ``random_scale`` did; a draw that keeps the size returns
    the images unchanged.
    """
    choices = [float(s) for s in scales]
    if not choices or min(choices) <= 0:
        raise ValueError(f"random_scale needs positive scales, got {choices}")

    def inner(images: Tensor, generator: torch.Generator) -> Tensor:
        scale = _choose(choices, generator)
        h, w = images.shape[-2:]
        size = (max(1, int(scale * h)), max(1, int(scale * w)))
        if size == (h, w):
            return images
        return F.interpolate(images, size=size, mode="bilinear", align_corners=False)

    return inner


def rotate(images: Tensor, degrees: float) -> Tensor:
    """Rotate ``[B, C, H, W]`` counter-clockwise (as displayed) about the image centre.

    Bilinear sampling; pixels from outside the image are 0, as ``tf.contrib.image.rotate``.
    The sampling grid is computed on the images' device from Python scalars: no host-to-device
    copy, so no synchronization per step on a GPU.
    """
    if degrees == 0:
        return images
    b, _, h, w = images.shape
    a = math.radians(degrees)
    cos, sin = math.cos(a), math.sin(a)
    # Pixel centres in normalized coordinates (align_corners=False). Output pixel (x, y)
    # (centred, y down) samples the input at the inverse rotation; the aspect ratio enters
    # the cross terms because x and y are normalized by different sides.
    ys = (torch.arange(h, device=images.device, dtype=images.dtype) * 2 + 1) / h - 1
    xs = (torch.arange(w, device=images.device, dtype=images.dtype) * 2 + 1) / w - 1
    ys, xs = ys[:, None], xs[None, :]
    grid = torch.stack(
        torch.broadcast_tensors(cos * xs - sin * (h / w) * ys, sin * (w / h) * xs + cos * ys),
        dim=-1,
    )
    return F.grid_sample(
        images,
        grid.expand(b, h, w, 2),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )


def random_rotate(degrees: Iterable[float]) -> Transform:
    """Rotate by an angle (degrees) drawn from ``degrees``; see :func:`rotate`."""
    choices = [float(a) for a in degrees]
    if not choices:
        raise ValueError("random_rotate needs at least one angle")

    def inner(images: Tensor, generator: torch.Generator) -> Tensor:
        return rotate(images, _choose(choices, generator))

    return inner


def crop_or_pad_to(height: int, width: int, value: float = 0.0) -> Transform:
    """Centre-crop or pad (constant ``value``) to exactly ``height x width``.

    Offsets are ``(difference) // 2`` on the top/left, as ``tf.image.resize_image_with_crop_or_pad``
    (which pads with 0, hence the default).
    """

    def inner(images: Tensor, generator: torch.Generator) -> Tensor:
        h, w = images.shape[-2:]
        if h > height:
            top = (h - height) // 2
            images = images[..., top : top + height, :]
        if w > width:
            left = (w - width) // 2
            images = images[..., :, left : left + width]
        h, w = images.shape[-2:]
        if (h, w) == (height, width):
            return images
        top, left = (height - h) // 2, (width - w) // 2
        return F.pad(
            images, (left, width - w - left, top, height - h - top), mode="constant", value=value
        )

    return inner


def compose(transforms: Iterable[Transform]) -> Transform:
    """Apply ``transforms`` in order, all drawing from the same generator."""
    chain = list(transforms)

    def inner(images: Tensor, generator: torch.Generator) -> Tensor:
        for t in chain:
            images = t(images, generator)
        return images

    return inner


#: The recipe's rotation choices in degrees: range(-20, 20) + range(-10, 10) + range(-5, 5) + five
#: zeros (so small angles are more likely), METHOD.md 5.
RECIPE_ANGLES: tuple[int, ...] = (*range(-20, 20), *range(-10, 10), *range(-5, 5), *(5 * [0]))

#: The recipe's scales 0.998^n, n in 20..39 (0.923..0.961), METHOD.md 5.
RECIPE_SCALES: tuple[float, ...] = tuple(0.998**n for n in range(20, 40))


def standard_transforms(icon_size: int | tuple[int, int]) -> list[Transform]:
    """The activation atlas recipe's transforms (Lucid ``recipes/activation_atlas/render.py``;
    METHOD.md 5), for icons of ``icon_size`` px.

    pad 16 with grey 0.5; jitter 4, 4, 8, 8, 8 (random crops, 32 px in all, undoing the pad);
    random scale 0.998^n for n in 20..39; random rotation from :data:`RECIPE_ANGLES`; jitter 2;
    crop or pad back to the icon size. The network sees the icon size (no upsampling to 224).
    """
    h, w = (icon_size, icon_size) if isinstance(icon_size, int) else icon_size
    return [
        pad(16, value=0.5),
        jitter(4),
        jitter(4),
        jitter(8),
        jitter(8),
        jitter(8),
        random_scale(RECIPE_SCALES),
        random_rotate(RECIPE_ANGLES),
        jitter(2),
        crop_or_pad_to(h, w),
    ]
