"""Image parameterizations: trainable tensors and the function that renders them to images.

A parameterization is ``(batch, height, width, *, generator, device, dtype) -> (params,
render)``: ``params`` is the list of trainable tensors for the optimizer; ``render()`` returns
the current images ``[B, 3, H, W]`` in [0, 1] (differentiable in ``params``). Options such as
``decay_power`` or ``decorrelate`` are bound with ``functools.partial``.

Both parameterizations here produce an unconstrained "logit colour" image, mix its channels with
the fixed colour decorrelation matrix of Lucid (optional) and squash it with a sigmoid, as
Lucid's ``param.image(..., fft=True, decorrelate=True)`` does (METHOD.md 5).

Randomness: initial noise is drawn from ``generator`` on the generator's own device and then
moved to ``device`` (so a CPU generator gives the same start on every device). A *sequence* of
generators, one per batch element, gives every element its own noise stream, independent of
which other elements share the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import torch
from torch import Tensor

#: Lucid's ``color_correlation_svd_sqrt`` (lucid/optvis/param/color.py): the square root of the
#: colour covariance of ImageNet, estimated by the Lucid authors; METHOD.md 5.
COLOR_CORRELATION_SVD_SQRT = (
    (0.26, 0.09, 0.02),
    (0.27, 0.00, -0.05),
    (0.27, -0.09, 0.03),
)

#: Lucid's initial standard deviation of the parameters (``sd or 0.01``), METHOD.md 5.
INIT_SD = 0.01

#: Lucid's ``fft_image`` divides the image by 4 ("is that a magic constant?" says its source);
#: kept so that our learning rate 0.05 means what it meant there.
FOURIER_DIVISOR = 4.0

RenderFn = Callable[[], Tensor]
GeneratorLike = torch.Generator | Sequence[torch.Generator]


class ImageParam(Protocol):
    """The shape of a parameterization (see the module docstring)."""

    def __call__(
        self,
        batch: int,
        height: int,
        width: int,
        *,
        generator: GeneratorLike,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> tuple[list[Tensor], RenderFn]: ...


def color_matrix(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Tensor:
    """Lucid's colour decorrelation matrix ``[3, 3]`` divided by its largest column norm."""
    m = torch.tensor(COLOR_CORRELATION_SVD_SQRT, dtype=torch.float64)
    m = m / m.norm(dim=0).max()
    return m.to(device=device, dtype=dtype)


def decorrelate_colors(t: Tensor, matrix: Tensor) -> Tensor:
    """Mix channels: ``out[:, c] = sum_k matrix[c, k] * t[:, k]`` for ``t [B, 3, H, W]``."""
    return torch.einsum("ck,bkhw->bchw", matrix, t)


def to_rgb(t: Tensor, *, decorrelate: bool = True, matrix: Tensor | None = None) -> Tensor:
    """Unconstrained ``[B, 3, H, W]`` -> images in (0, 1): colour mixing (optional), sigmoid."""
    if decorrelate:
        t = decorrelate_colors(t, color_matrix(t.device, t.dtype) if matrix is None else matrix)
    return torch.sigmoid(t)


def from_rgb(images: Tensor, *, decorrelate: bool = True, eps: float = 1e-4) -> Tensor:
    """The inverse of :func:`to_rgb` (images clamped to ``[eps, 1 - eps]`` first)."""
    logits = torch.logit(images.clamp(eps, 1 - eps))
    if not decorrelate:
        return logits
    inverse = torch.linalg.inv(color_matrix(images.device, torch.float64)).to(images.dtype)
    return decorrelate_colors(logits, inverse)


def normal(
    shape: Sequence[int],
    batch: int,
    generator: GeneratorLike,
    *,
    sd: float,
    device: torch.device | str,
    dtype: torch.dtype,
) -> Tensor:
    """Gaussian noise ``[batch, *shape]`` with standard deviation ``sd``.

    One generator draws the whole batch; a sequence of ``batch`` generators draws element b
    from ``generator[b]`` (each on that generator's device), so an element's noise does not
    depend on its neighbours.
    """
    if isinstance(generator, torch.Generator):
        noise = torch.randn(
            (batch, *shape), generator=generator, device=generator.device, dtype=torch.float32
        )
    else:
        if len(generator) != batch:
            raise ValueError(f"{len(generator)} generators for a batch of {batch} images")
        draws = [
            torch.randn(tuple(shape), generator=g, device=g.device, dtype=torch.float32)
            for g in generator
        ]
        if len({d.device for d in draws}) > 1:
            draws = [d.to(device) for d in draws]
        noise = torch.stack(draws)  # on the generators' device: one copy to ``device`` below
    return (noise * sd).to(device=device, dtype=dtype)


def pixel_image(
    batch: int,
    height: int,
    width: int,
    *,
    generator: GeneratorLike,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    sd: float = INIT_SD,
    decorrelate: bool = True,
    init: Tensor | None = None,
) -> tuple[list[Tensor], RenderFn]:
    """One free value per pixel and channel.

    Args:
        batch, height, width: the images' shape ``[batch, 3, height, width]``.
        generator: one generator, or one per batch element (see :func:`normal`).
        sd: standard deviation of the initial noise (Lucid: 0.01).
        decorrelate: mix colours with :func:`color_matrix` before the sigmoid.
        init: start from these images ``[batch, 3, height, width]`` in [0, 1] instead of noise.

    Returns:
        ``([logits [B, 3, H, W]], render)``; ``render()`` gives images in (0, 1).
    """
    if init is not None:
        _check_init(init, batch, height, width)
        logits = from_rgb(init.to(device=device, dtype=dtype), decorrelate=decorrelate)
    else:
        logits = normal((3, height, width), batch, generator, sd=sd, device=device, dtype=dtype)
    logits.requires_grad_(True)
    matrix = color_matrix(device, dtype)

    def render() -> Tensor:
        return to_rgb(logits, decorrelate=decorrelate, matrix=matrix)

    return [logits], render


def spectrum_scale(height: int, width: int, decay_power: float = 1.0) -> Tensor:
    """Per-frequency scale ``1 / max(f, 1 / max(w, h)) ** decay_power``, ``[h, w // 2 + 1]``.

    ``f`` is the frequency magnitude (cycles per pixel) of each real-FFT coefficient; the floor
    ``1 / max(w, h)`` keeps the DC term finite. Lucid's ``fft_image``, METHOD.md 5.
    """
    fy = torch.fft.fftfreq(height, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(width, dtype=torch.float64)[None, :]
    freqs = torch.sqrt(fx * fx + fy * fy)
    return 1.0 / freqs.clamp_min(1.0 / max(width, height)) ** decay_power


def fourier_image(
    batch: int,
    height: int,
    width: int,
    *,
    generator: GeneratorLike,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    sd: float = INIT_SD,
    decay_power: float = 1.0,
    decorrelate: bool = True,
    init: Tensor | None = None,
) -> tuple[list[Tensor], RenderFn]:
    """Images parameterized by their (scaled) 2-D real Fourier coefficients, as Lucid's.

    The trainable tensor ``spectrum [B, 3, H, W // 2 + 1, 2]`` holds real and imaginary parts;
    ``image = irfft2(spectrum * spectrum_scale, norm="ortho") / 4``. Lucid scaled by
    ``sqrt(h * w)`` under TensorFlow's ``1 / (h * w)`` inverse FFT, which is the orthonormal
    inverse FFT used here. Scaling down high frequencies makes plain gradient steps favour
    smooth, natural-looking images.

    Args:
        batch, height, width: the images' shape ``[batch, 3, height, width]``.
        generator: one generator, or one per batch element (see :func:`normal`).
        sd: standard deviation of the initial coefficients (Lucid: 0.01).
        decay_power: exponent of the frequency scaling (Lucid: 1).
        decorrelate: mix colours with :func:`color_matrix` before the sigmoid.
        init: start from these images ``[batch, 3, height, width]`` in [0, 1] instead of noise.

    Returns:
        ``([spectrum], render)``; ``render()`` gives images ``[B, 3, H, W]`` in (0, 1).
    """
    scale = spectrum_scale(height, width, decay_power).to(device=device, dtype=dtype)
    freq_shape = (3, height, width // 2 + 1, 2)
    if init is not None:
        _check_init(init, batch, height, width)
        logits = from_rgb(init.to(device=device, dtype=dtype), decorrelate=decorrelate)
        coeffs = torch.fft.rfft2(logits * FOURIER_DIVISOR, norm="ortho") / scale
        spectrum = torch.view_as_real(coeffs).contiguous()
    else:
        spectrum = normal(freq_shape, batch, generator, sd=sd, device=device, dtype=dtype)
    spectrum.requires_grad_(True)
    matrix = color_matrix(device, dtype)

    def render() -> Tensor:
        coeffs = torch.view_as_complex(spectrum) * scale
        logits = torch.fft.irfft2(coeffs, s=(height, width), norm="ortho") / FOURIER_DIVISOR
        return to_rgb(logits, decorrelate=decorrelate, matrix=matrix)

    return [spectrum], render


def _check_init(init: Tensor, batch: int, height: int, width: int) -> None:
    if tuple(init.shape) != (batch, 3, height, width):
        raise ValueError(
            f"init images must be [{batch}, 3, {height}, {width}], got {tuple(init.shape)}"
        )
