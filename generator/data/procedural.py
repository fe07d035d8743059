"""Vectorised drawing primitives for the synthetic world: hashing, colours, shapes, textures.

Everything works on batches: per-image parameters are ``float32 [B]`` arrays, pixel fields are
``float32 [B, S, S]`` over a grid of pixel centres in image units, ``x`` and ``y`` in [-1, 1]
(``y`` grows downwards). Shapes are signed-distance functions (negative inside), turned into
anti-aliased coverage with :func:`coverage`. Textures are periodic bands in a rotated frame.

Bit-for-bit determinism regardless of batch: per-pixel arithmetic uses only operations IEEE 754
rounds exactly (``+ - * /``, ``sqrt``, ``abs``, ``floor``, ``min``/``max``), so an element's
value never depends on which SIMD loop numpy picked for the array it sits in. Sines come from a
polynomial (:func:`sin_turns`) instead of ``np.sin``; random numbers come from a counter-based
hash of ``(seed, index, k)`` (:func:`uniforms`), never from a stateful generator.
"""

from __future__ import annotations

import numpy as np

F32 = np.float32

#: splitmix64 constants (Steele, Lea & Flood, "Fast splittable pseudorandom number
#: generators", OOPSLA 2014; the finalizer of java.util.SplittableRandom).
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_MASK64 = (1 << 64) - 1


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer of ``uint64`` array ``x`` (wrapping arithmetic), same shape."""
    z = np.asarray(x, dtype=np.uint64) + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def uniforms(seed: int, domain: int, indices: np.ndarray, n: int) -> np.ndarray:
    """``float32 [B, n]`` in [0, 1): the ``n`` random numbers of each image index.

    Counter-based: entry ``[b, k]`` is a hash of ``(seed, domain, indices[b], k)`` alone, so an
    image's numbers do not depend on the batch it is drawn in. ``domain`` separates streams
    (labels, parameters, noise lattices) of the same image. 24 bits of each hash are kept, so
    the floats are exact multiples of 2**-24.
    """
    key = splitmix64(np.array([(seed ^ (domain * 0x632BE59BD9B4E019)) & _MASK64], np.uint64))
    base = splitmix64(key ^ np.asarray(indices, dtype=np.uint64))
    ks = np.arange(n, dtype=np.uint64) * _GOLDEN
    bits = splitmix64(base[:, None] ^ ks[None, :]) >> np.uint64(40)
    return (bits.astype(np.float32) * F32(2.0**-24)).astype(np.float32)


def lerp(a: np.ndarray | float, b: np.ndarray | float, t: np.ndarray) -> np.ndarray:
    """``a + (b - a) * t`` elementwise (maps uniforms in [0, 1) to [a, b))."""
    return np.asarray(a + (b - a) * t, dtype=np.float32)


# -- sines without libm ------------------------------------------------------------------------

#: Taylor coefficients of sin(x) up to x**11; on |x| <= pi/2 the error is below 6e-8.
_SIN_TAYLOR = [F32((-1) ** k / float(np.prod(np.arange(1, 2 * k + 2)))) for k in range(6)]


def sin_turns(t: np.ndarray) -> np.ndarray:
    """``sin(2 pi t)`` for float32 ``t`` (any shape), to float32 accuracy, exact ops only."""
    t = np.asarray(t, dtype=np.float32)
    r = t - np.floor(t + F32(0.5))  # [-0.5, 0.5)
    r = np.where(r > F32(0.25), F32(0.5) - r, r)
    r = np.where(r < F32(-0.25), F32(-0.5) - r, r)  # [-0.25, 0.25]: sin is odd, no folding left
    x = r * F32(2 * np.pi)
    x2 = x * x
    acc = np.full_like(x2, _SIN_TAYLOR[-1])
    for c in reversed(_SIN_TAYLOR[:-1]):
        acc = acc * x2 + c
    return np.asarray(acc * x, dtype=np.float32)


def cos_turns(t: np.ndarray) -> np.ndarray:
    """``cos(2 pi t)`` (see :func:`sin_turns`)."""
    return sin_turns(np.asarray(t, dtype=np.float32) + F32(0.25))


# -- the pixel grid ----------------------------------------------------------------------------


def pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Pixel-centre coordinates ``x, y`` as ``float32 [1, S, S]`` in (-1, 1), and one pixel's width."""
    c = ((np.arange(size, dtype=np.float32) + F32(0.5)) * F32(2.0 / size) - F32(1.0)).astype(
        np.float32
    )
    y, x = np.meshgrid(c, c, indexing="ij")
    return x[None], y[None], 2.0 / size


def col(v: np.ndarray) -> np.ndarray:
    """A per-image ``[B]`` array as ``[B, 1, 1]`` for broadcasting against pixel fields."""
    return np.asarray(v, dtype=np.float32)[:, None, None]


def frame(
    x: np.ndarray,
    y: np.ndarray,
    cx: np.ndarray,
    cy: np.ndarray,
    turn: np.ndarray,
    scale: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Local coordinates ``[B, S, S]``: translated by ``(cx, cy)``, rotated by ``turn`` turns, divided by ``scale``."""
    c, s = col(cos_turns(turn)), col(sin_turns(turn))
    dx, dy = x - col(cx), y - col(cy)
    k = F32(1.0) / col(scale)
    return (dx * c + dy * s) * k, (dy * c - dx * s) * k


def coverage(sdf_image_units: np.ndarray, px: float) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of a signed distance (image units, negative inside).

    A box filter one pixel wide across the edge: 1 deep inside, 0 outside, linear in between.
    """
    return np.clip(F32(0.5) - sdf_image_units * F32(1.0 / px), F32(0.0), F32(1.0))


# -- shapes: signed distances in local units (the shape's radius is 1) --------------------------


def sd_disc(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.sqrt(u * u + v * v) - F32(1.0)


def sd_ring(u: np.ndarray, v: np.ndarray, width: np.ndarray) -> np.ndarray:
    """An annulus of outer radius 1 and thickness ``width`` (``[B,1,1]``)."""
    half = width * F32(0.5)
    return np.abs(np.sqrt(u * u + v * v) - (F32(1.0) - half)) - half


def sd_square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A square of half-side 0.8 (so its area is close to the unit disc's: 2.56 vs 3.14)."""
    return np.maximum(np.abs(u), np.abs(v)) - F32(0.8)


#: Outward edge normals of an equilateral triangle (unit vectors at 90, 210 and 330 degrees).
_TRI_NORMALS = ((0.0, 1.0), (-0.8660254, -0.5), (0.8660254, -0.5))


def sd_triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """An equilateral triangle of circumradius 1.1 (inradius 0.55); exact inside."""
    d = None
    for nx, ny in _TRI_NORMALS:
        e = u * F32(nx) + v * F32(ny)
        d = e if d is None else np.maximum(d, e)
    assert d is not None
    return d - F32(0.55)


#: cos and sin of 36 degrees, the half-angle between a five-pointed star's tips.
_K1 = (F32(0.809016994375), F32(-0.587785252292))


def sd_star5(u: np.ndarray, v: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """A five-pointed star with tips at radius 1 and inner vertices at radius ``inner``.

    Inigo Quilez's exact 2-D star distance ("2D distance functions", iquilezles.org): fold the
    plane into one tenth by reflections, then measure to one edge segment.
    """
    k1x, k1y = _K1
    k2x, k2y = -k1x, k1y
    px, py = np.abs(u), v
    d = np.maximum(k1x * px + k1y * py, F32(0.0)) * F32(2.0)
    px, py = px - d * k1x, py - d * k1y
    d = np.maximum(k2x * px + k2y * py, F32(0.0)) * F32(2.0)
    px, py = np.abs(px - d * k2x), py - d * k2y - F32(1.0)
    bax, bay = inner * (-k1y), inner * k1x - F32(1.0)
    h = np.clip((px * bax + py * bay) / (bax * bax + bay * bay), F32(0.0), F32(1.0))
    dx, dy = px - bax * h, py - bay * h
    return np.sqrt(dx * dx + dy * dy) * np.sign(py * bax - px * bay)


# -- textures ------------------------------------------------------------------------------------


def band_sd(t: np.ndarray, duty: np.ndarray | float | np.floating) -> np.ndarray:
    """Signed distance, in periods, to bands of width ``duty`` centred on the integers of ``t``."""
    return np.abs(t - np.floor(t + F32(0.5))) - F32(0.5) * duty


def square_wave(t: np.ndarray, period_px: np.ndarray) -> np.ndarray:
    """+1 on bands of half a period centred on the integers of ``t``, -1 between; edges anti-aliased."""
    return np.clip(-band_sd(t, F32(0.5)) * period_px * F32(2.0), F32(-1.0), F32(1.0))


def lattice_sd(
    u: np.ndarray, v: np.ndarray, spacing: np.ndarray, radius: np.ndarray, hexagonal: np.ndarray
) -> np.ndarray:
    """Distance (image units) to a lattice of discs; ``u, v`` in spacings, ``[B,1,1]`` options.

    ``hexagonal`` (0 or 1) shifts every other row by half a spacing and packs rows at
    sqrt(3)/2 of a spacing, giving a hexagonal lattice.
    """
    row_h = F32(1.0) - hexagonal * F32(1.0 - 0.8660254)
    rv = v / row_h
    row = np.floor(rv + F32(0.5))
    shift = hexagonal * F32(0.5) * (row - F32(2.0) * np.floor(row * F32(0.5)))  # odd rows
    du = (u + shift) - np.floor(u + shift + F32(0.5))
    dv = (rv - row) * row_h
    return np.sqrt(du * du + dv * dv) * spacing - radius


def value_noise(lattice: np.ndarray, size: int) -> np.ndarray:
    """Smooth noise ``float32 [B, S, S]`` from per-image lattice values ``[B, G, G]`` in [0, 1).

    Cubic (smoothstep) interpolation between lattice points spread over the image; written as
    two explicit sums over the lattice axis (not a BLAS product) so the result is exact.
    """
    g = lattice.shape[1]
    t = (np.arange(size, dtype=np.float32) + F32(0.5)) * F32((g - 1) / size)
    i0 = np.minimum(np.floor(t).astype(np.int64), g - 2)
    f = t - i0.astype(np.float32)
    f = f * f * (F32(3.0) - F32(2.0) * f)
    w = np.zeros((size, g), np.float32)  # interpolation weights: w[x, i]
    w[np.arange(size), i0] = F32(1.0) - f
    w[np.arange(size), i0 + 1] = f
    # rows[b, i, x] = sum_j lattice[b, i, j] w[x, j]
    rows = np.zeros((lattice.shape[0], g, size), np.float32)
    for j in range(g):
        rows += lattice[:, :, j, None] * w[None, None, :, j]
    out = np.zeros((lattice.shape[0], size, size), np.float32)
    for i in range(g):
        out += w[None, :, i, None] * rows[:, i, None, :]
    return out


# -- colours -------------------------------------------------------------------------------------

#: Rec. 601 luma weights, the "lightness" used to keep figure and ground apart.
LUMA = (F32(0.299), F32(0.587), F32(0.114))


def hue_colour(hue: np.ndarray, saturation: np.ndarray) -> np.ndarray:
    """``float32 [B, 3]`` RGB in [0, 1] of full-value HSV colours (hue in turns)."""
    h6 = np.asarray(hue, np.float32)[:, None] * F32(6.0) + np.array([0, 4, 2], np.float32)
    k = h6 - F32(6.0) * np.floor(h6 * F32(1.0 / 6.0))
    pure = np.clip(np.abs(k - F32(3.0)) - F32(1.0), F32(0.0), F32(1.0))
    s = np.asarray(saturation, np.float32)[:, None]
    return F32(1.0) - s * (F32(1.0) - pure)


def with_luma(rgb: np.ndarray, luma: np.ndarray) -> np.ndarray:
    """Colours ``[B, 3]`` moved towards black or white until their luma equals ``luma`` ``[B]``."""
    y = rgb[:, 0] * LUMA[0] + rgb[:, 1] * LUMA[1] + rgb[:, 2] * LUMA[2]
    target = np.asarray(luma, np.float32)
    darker = rgb * (target / np.maximum(y, F32(1e-6)))[:, None]
    lighter = rgb + (F32(1.0) - rgb) * ((target - y) / np.maximum(F32(1.0) - y, F32(1e-6)))[:, None]
    return np.where((target <= y)[:, None], darker, lighter).astype(np.float32)
