"""The synthetic world's drawing: classes, per-image parameters, and :func:`render_batch`.

Twelve classes that a person tells apart at a glance and that share parts, so an atlas of a
model trained on them has neighbourhoods to show:

=========================  ==================================================================
shapes (figure on ground)  circle, ring, target (concentric rings), triangle, square, star
textures (whole frame)     stripes, checkerboard, dots, waves (bent stripes)
composites                 striped disc (stripes inside a disc), dotted square (dots inside
                           a square)
=========================  ==================================================================

Nuisances: position, size, rotation, one or two objects, colours (any hue, figure and ground
kept apart in luma), ground shading, cloudy grounds, clutter specks, lighting gradients; for
textures orientation, period, phase, duty, lattice kind, wave amplitude and wavelength.

Image ``i`` is a pure function of ``(seed, size, i)``: its label comes from a seeded shuffle of
each block ``[bK, bK + K)`` of indices (so each such block holds every class once, and any
range of ``n`` indices holds ``n / K`` of each class, within two), its parameters from a
counter-based hash (see :mod:`generator.data.procedural`). It is the same bytes whether drawn
alone or in any batch. :func:`render_batch` draws many images with numpy
(thousands per second on one core at 64 px; ``bench/data.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from generator.data import procedural as pr

F32 = np.float32

CLASS_NAMES: tuple[str, ...] = (
    "circle",
    "ring",
    "target",
    "triangle",
    "square",
    "star",
    "stripes",
    "checkerboard",
    "dots",
    "waves",
    "striped disc",
    "dotted square",
)

#: Bump when any drawing changes: part of :meth:`SyntheticWorld.identity` (cached activations).
WORLD_VERSION = 1

#: Hash domains of the per-image random streams (arbitrary distinct constants).
_DOMAIN_LABELS, _DOMAIN_PARAMS, _DOMAIN_NOISE = 1, 2, 3

#: Side of the value-noise lattice of cloudy grounds (5x5 points: blobs about a third of the image).
_NOISE_LATTICE = 5

#: Clutter specks drawn on the ground of shape classes (each present with probability 1/2).
_N_CLUTTER = 3

#: Probability that a shape image holds two objects instead of one.
_P_TWO_OBJECTS = 0.3

#: Names of the per-image uniforms; ``_U[name]`` is its column.
_PARAM_NAMES = (
    "bg_luma", "bg_hue", "bg_sat", "fg_dluma", "fg_side", "fg_hue", "fg_sat", "fg2_hue",
    "fg2_sat", "cl_hue", "cl_side", "light_amp", "light_dir", "cloud_amp", "two", "pair_dir",
    "x", "y", "r1", "r2", "turn1", "turn2", "shape", "tex_turn", "tex_period", "tex_phase",
    "tex_phase2", "tex_duty", "tex_amp", "tex_wavelength", "tex_hex",
    *(f"clutter{k}_{p}" for k in range(_N_CLUTTER) for p in ("x", "y", "r", "on")),
)  # fmt: skip
_U = {name: k for k, name in enumerate(_PARAM_NAMES)}


class _Scene:
    """The uniforms, colours and pixel grid of a sub-batch of images of one class."""

    def __init__(self, u: np.ndarray, colours: dict[str, np.ndarray], size: int) -> None:
        self.u = u
        self.colours = colours
        self.size = size
        self.x, self.y, self.px = pr.pixel_grid(size)

    def p(self, name: str) -> np.ndarray:
        """The uniform ``name`` of each image, ``float32 [B]`` in [0, 1)."""
        return self.u[:, _U[name]]

    def rgb(self, name: str) -> np.ndarray:
        """Colour ``name`` of each image as ``float32 [B, 1, 1, 3]``."""
        return self.colours[name][:, None, None, :]


def labels_of(indices: np.ndarray, seed: int, n_classes: int = len(CLASS_NAMES)) -> np.ndarray:
    """Class of each image index (``int64 [B]``): a seeded shuffle of each block ``[bK, bK+K)``."""
    idx = np.asarray(indices, dtype=np.int64)
    keys = pr.uniforms(seed, _DOMAIN_LABELS, idx // n_classes, n_classes)
    order = np.argsort(keys, axis=1, kind="stable")
    return order[np.arange(len(idx)), idx % n_classes].astype(np.int64)


def render_batch(
    indices: Sequence[int] | np.ndarray, *, seed: int = 0, size: int = 64
) -> np.ndarray:
    """Images ``indices`` of the world ``seed`` as ``uint8 [B, size, size, 3]`` RGB.

    Each image depends only on ``(seed, size, index)``, never on the rest of the batch.
    """
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size and idx.min() < 0:
        raise IndexError(f"synthetic image indices must be >= 0, got {int(idx.min())}")
    labels = labels_of(idx, seed)
    u = pr.uniforms(seed, _DOMAIN_PARAMS, idx, len(_PARAM_NAMES))
    colours = _palette(u)
    out = np.empty((len(idx), size, size, 3), np.uint8)
    for c in np.unique(labels):
        sel = np.flatnonzero(labels == c)
        scene = _Scene(u[sel], {k: v[sel] for k, v in colours.items()}, size)
        img = _DRAW[int(c)](scene, idx[sel], seed)
        img *= _lighting(scene)[..., None] * F32(255.0)
        img += F32(0.5)
        np.clip(img, F32(0.0), F32(255.0), out=img)
        out[sel] = img.astype(np.uint8)  # truncation of x + 0.5: rounding to nearest
    return out


# -- colours and ground --------------------------------------------------------------------------


def _pick_luma(base: np.ndarray, delta: np.ndarray, up: np.ndarray) -> np.ndarray:
    """``base +- delta`` on the preferred side, the other side if that leaves [0.02, 0.98]."""
    hi, lo = base + delta, base - delta
    first = np.where(up, hi, lo)
    second = np.where(up, lo, hi)
    ok = (first >= F32(0.02)) & (first <= F32(0.98))
    ok2 = (second >= F32(0.02)) & (second <= F32(0.98))
    pick = np.where(ok, first, np.where(ok2, second, first))
    return np.clip(pick, F32(0.02), F32(0.98)).astype(np.float32)


def _palette(u: np.ndarray) -> dict[str, np.ndarray]:
    """Ground, figure, second figure and clutter colours, ``float32 [B, 3]`` each.

    Figure and ground differ by 0.4..0.75 in luma (readable at a glance whatever the hues); the
    second figure colour (inside composites) sits 40% of the way from ground to figure.
    """
    g = lambda name: u[:, _U[name]]  # noqa: E731
    bg_l = pr.lerp(0.05, 0.95, g("bg_luma"))
    fg_l = _pick_luma(bg_l, pr.lerp(0.4, 0.75, g("fg_dluma")), g("fg_side") < 0.5)
    fg2_l = bg_l + (fg_l - bg_l) * F32(0.4)
    cl_l = _pick_luma(bg_l, np.full_like(bg_l, 0.25), g("cl_side") < 0.5)
    return {
        "bg": pr.with_luma(pr.hue_colour(g("bg_hue"), pr.lerp(0.0, 0.7, g("bg_sat"))), bg_l),
        "fg": pr.with_luma(pr.hue_colour(g("fg_hue"), pr.lerp(0.2, 1.0, g("fg_sat"))), fg_l),
        "fg2": pr.with_luma(pr.hue_colour(g("fg2_hue"), pr.lerp(0.2, 1.0, g("fg2_sat"))), fg2_l),
        "clutter": pr.with_luma(pr.hue_colour(g("cl_hue"), np.full_like(bg_l, 0.5)), cl_l),
    }


def _ground(s: _Scene, indices: np.ndarray, seed: int) -> np.ndarray:
    """The ground of shape classes ``float32 [B, S, S, 3]``: a colour, clouds, clutter specks."""
    lattice = pr.uniforms(seed, _DOMAIN_NOISE, indices, _NOISE_LATTICE**2)
    lattice = lattice.reshape(-1, _NOISE_LATTICE, _NOISE_LATTICE)
    clouds = (pr.value_noise(lattice, s.size) - F32(0.5)) * pr.col(
        pr.lerp(0.0, 0.35, s.p("cloud_amp"))
    )
    img = s.rgb("bg") + clouds[..., None]
    specks = np.zeros_like(clouds)  # union of the specks' coverage
    for k in range(_N_CLUTTER):
        radius = pr.lerp(0.03, 0.07, s.p(f"clutter{k}_r"))
        cx, cy = (
            pr.lerp(-0.95, 0.95, s.p(f"clutter{k}_x")),
            pr.lerp(-0.95, 0.95, s.p(f"clutter{k}_y")),
        )
        dx, dy = s.x - pr.col(cx), s.y - pr.col(cy)
        a = pr.coverage(np.sqrt(dx * dx + dy * dy) - pr.col(radius), s.px)
        a *= pr.col((s.p(f"clutter{k}_on") < 0.5).astype(np.float32))
        specks = np.maximum(specks, a)
    img += (s.rgb("clutter") - img) * specks[..., None]
    return img


def _lighting(s: _Scene) -> np.ndarray:
    """Gain ``[B, S, S]`` of a lighting gradient: ``1 + a (x cos t + y sin t)``, ``|a| <= 0.15``."""
    turn = s.p("light_dir")
    ramp = s.x * pr.col(pr.cos_turns(turn)) + s.y * pr.col(pr.sin_turns(turn))
    return F32(1.0) + ramp * pr.col(pr.lerp(-0.15, 0.15, s.p("light_amp")))


# -- shapes --------------------------------------------------------------------------------------

#: A shape: local coordinates, radius (image units) and the "shape" uniform -> signed distance
#: in local units (the shape's radius is 1).
_Shape = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _target_sd(u: np.ndarray, v: np.ndarray, r: np.ndarray, k: np.ndarray) -> np.ndarray:
    """A bullseye: a centre dot and 2 rings (3 when the target is large and ``k`` > 1/2)."""
    rings = F32(2.0) + ((k > F32(0.5)) & (r >= F32(0.42))).astype(np.float32)
    period = F32(1.0) / (rings + F32(0.25))  # outer edge of the last ring at radius 1
    rho = np.sqrt(u * u + v * v)
    return np.maximum(pr.band_sd(rho / period, F32(0.5)) * period, rho - F32(1.0))


_SHAPES: dict[str, _Shape] = {
    "circle": lambda u, v, r, k: pr.sd_disc(u, v),
    "ring": lambda u, v, r, k: pr.sd_ring(u, v, pr.lerp(0.22, 0.4, k)),
    "target": _target_sd,
    "triangle": lambda u, v, r, k: pr.sd_triangle(u, v),
    "square": lambda u, v, r, k: pr.sd_square(u, v),
    "star": lambda u, v, r, k: pr.sd_star5(u, v, pr.lerp(0.38, 0.5, k)),
}


def _objects(s: _Scene, shape: _Shape, scale: float) -> np.ndarray:
    """Coverage ``[B, S, S]`` of one object, or two smaller ones on opposite sides, of ``shape``."""
    two = s.p("two") < _P_TWO_OBJECTS
    d = s.p("pair_dir")
    cd, sd = pr.cos_turns(d), pr.sin_turns(d)
    x1 = np.where(two, F32(0.45) * cd, pr.lerp(-0.3, 0.3, s.p("x")))
    y1 = np.where(two, F32(0.45) * sd, pr.lerp(-0.3, 0.3, s.p("y")))
    r1 = np.where(two, pr.lerp(0.26, 0.38, s.p("r1")), pr.lerp(0.38, 0.62, s.p("r1"))) * F32(scale)
    r2 = pr.lerp(0.22, 0.34, s.p("r2")) * F32(scale)
    k = pr.col(s.p("shape"))
    cover = None
    for cx, cy, r, turn, on in (
        (x1, y1, r1, s.p("turn1"), np.ones_like(r1)),
        (F32(-0.48) * cd, F32(-0.48) * sd, r2, s.p("turn2"), two.astype(np.float32)),
    ):
        u, v = pr.frame(s.x, s.y, cx, cy, turn, r)
        a = pr.coverage(shape(u, v, pr.col(r), k) * pr.col(r), s.px) * pr.col(on)
        cover = a if cover is None else F32(1.0) - (F32(1.0) - cover) * (F32(1.0) - a)
    assert cover is not None
    return cover


def _draw_shape(name: str, scale: float = 1.0) -> Callable[[_Scene, np.ndarray, int], np.ndarray]:
    def draw(s: _Scene, indices: np.ndarray, seed: int) -> np.ndarray:
        img = _ground(s, indices, seed)
        a = _objects(s, _SHAPES[name], scale)[..., None]
        return img + (s.rgb("fg") - img) * a

    return draw


# -- textures ------------------------------------------------------------------------------------


def _rotated(s: _Scene, turn: np.ndarray, period: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Image coordinates rotated by ``turn`` turns, in units of ``period`` (image units)."""
    u, v = pr.frame(s.x, s.y, np.zeros_like(turn), np.zeros_like(turn), turn, period)
    return u, v


def _stripes(s: _Scene, period: np.ndarray, duty: np.ndarray) -> np.ndarray:
    """Coverage ``[B, S, S]`` of straight stripes at the texture angle, ``period`` image units."""
    t, _ = _rotated(s, s.p("tex_turn"), period)
    t = t + pr.col(s.p("tex_phase"))
    return pr.coverage(pr.band_sd(t, pr.col(duty)) * pr.col(period), s.px)


def _dots(s: _Scene, spacing: np.ndarray) -> np.ndarray:
    """Coverage ``[B, S, S]`` of a square or hexagonal lattice of dots ``spacing`` apart."""
    u, v = _rotated(s, s.p("tex_turn"), spacing)
    u, v = u + pr.col(s.p("tex_phase")), v + pr.col(s.p("tex_phase2"))
    radius = spacing * pr.lerp(0.22, 0.34, s.p("tex_duty"))
    hexagonal = pr.col((s.p("tex_hex") < 0.5).astype(np.float32))
    return pr.coverage(pr.lattice_sd(u, v, pr.col(spacing), pr.col(radius), hexagonal), s.px)


def _two_colour(s: _Scene, a: np.ndarray, low: str = "bg", high: str = "fg") -> np.ndarray:
    lo = s.rgb(low)
    return lo + (s.rgb(high) - lo) * a[..., None]


def _draw_stripes(s: _Scene, indices: np.ndarray, seed: int) -> np.ndarray:
    return _two_colour(
        s, _stripes(s, pr.lerp(0.14, 0.42, s.p("tex_period")), pr.lerp(0.3, 0.7, s.p("tex_duty")))
    )


def _draw_checkerboard(s: _Scene, indices: np.ndarray, seed: int) -> np.ndarray:
    period = pr.lerp(0.3, 0.7, s.p("tex_period"))  # two squares per period
    u, v = _rotated(s, s.p("tex_turn") * F32(0.25), period)
    u, v = u + pr.col(s.p("tex_phase")), v + pr.col(s.p("tex_phase2"))
    ppx = pr.col(period) * F32(1.0 / s.px)
    a = F32(0.5) + F32(0.5) * pr.square_wave(u, ppx) * pr.square_wave(v, ppx)
    return _two_colour(s, a)


def _draw_dots(s: _Scene, indices: np.ndarray, seed: int) -> np.ndarray:
    return _two_colour(s, _dots(s, pr.lerp(0.2, 0.4, s.p("tex_period"))))


def _draw_waves(s: _Scene, indices: np.ndarray, seed: int) -> np.ndarray:
    period = pr.col(pr.lerp(0.18, 0.4, s.p("tex_period")))
    amp = pr.col(pr.lerp(0.3, 0.6, s.p("tex_amp")))  # in periods
    wavelength = pr.col(pr.lerp(0.6, 1.2, s.p("tex_wavelength")))  # image units
    across, along = _rotated(s, s.p("tex_turn"), np.ones_like(s.p("tex_turn")))
    phase = along / wavelength + pr.col(s.p("tex_phase2"))
    t = across / period + amp * pr.sin_turns(phase) + pr.col(s.p("tex_phase"))
    slope = amp * F32(2 * np.pi) / wavelength * pr.cos_turns(phase)
    grad = np.sqrt(F32(1.0) / (period * period) + slope * slope)  # |grad t|, per image unit
    duty = pr.col(pr.lerp(0.35, 0.6, s.p("tex_duty")))
    return _two_colour(s, pr.coverage(pr.band_sd(t, duty) / grad, s.px))


# -- composites ----------------------------------------------------------------------------------


def _draw_striped_disc(s: _Scene, indices: np.ndarray, seed: int) -> np.ndarray:
    img = _ground(s, indices, seed)
    fill = _two_colour(
        s,
        _stripes(s, pr.lerp(0.12, 0.22, s.p("tex_period")), np.full_like(s.p("tex_duty"), 0.5)),
        "fg2",
        "fg",
    )
    a = _objects(s, _SHAPES["circle"], 1.25)[..., None]
    return img + (fill - img) * a


def _draw_dotted_square(s: _Scene, indices: np.ndarray, seed: int) -> np.ndarray:
    img = _ground(s, indices, seed)
    fill = _two_colour(s, _dots(s, pr.lerp(0.16, 0.24, s.p("tex_period"))), "fg2", "fg")
    a = _objects(s, _SHAPES["square"], 1.3)[..., None]
    return img + (fill - img) * a


_DRAW: tuple[Callable[[_Scene, np.ndarray, int], np.ndarray], ...] = (
    _draw_shape("circle"),
    _draw_shape("ring"),
    _draw_shape("target", 1.15),
    _draw_shape("triangle"),
    _draw_shape("square"),
    _draw_shape("star", 1.1),
    _draw_stripes,
    _draw_checkerboard,
    _draw_dots,
    _draw_waves,
    _draw_striped_disc,
    _draw_dotted_square,
)
assert len(_DRAW) == len(CLASS_NAMES)
