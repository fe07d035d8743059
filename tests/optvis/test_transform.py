"""Transforms: exact results on tiny tensors, one draw per call, explicit generators."""

from __future__ import annotations

import pytest
import torch

from generator.optvis import transform as tf


def _image(b: int = 2, h: int = 6, w: int = 7) -> torch.Tensor:
    return torch.arange(b * 3 * h * w, dtype=torch.float32).reshape(b, 3, h, w) / (b * 3 * h * w)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_pad_then_crop_or_pad_returns_the_original() -> None:
    x = _image()
    padded = tf.pad(3, value=0.5)(x, _gen())
    assert padded.shape == (2, 3, 12, 13)
    assert torch.all(padded[..., :3, :] == 0.5) and torch.all(padded[..., :, -3:] == 0.5)
    back = tf.crop_or_pad_to(6, 7)(padded, _gen())
    assert torch.equal(back, x)


def test_crop_or_pad_offsets_match_tensorflow() -> None:
    x = _image(b=1, h=5, w=4)
    cropped = tf.crop_or_pad_to(2, 4)(x, _gen())  # (5 - 2) // 2 = 1 row off the top
    assert torch.equal(cropped, x[..., 1:3, :])
    padded = tf.crop_or_pad_to(5, 7, value=-1.0)(x, _gen())  # (7 - 4) // 2 = 1 column left
    assert torch.equal(padded[..., :, 1:5], x)
    assert torch.all(padded[..., :, 0] == -1) and torch.all(padded[..., :, 5:] == -1)
    both = tf.crop_or_pad_to(3, 6)(x, _gen())
    assert torch.equal(both[..., :, 1:5], x[..., 1:4, :])


def test_jitter_crops_exactly_where_the_generator_says() -> None:
    x = _image(h=9, w=10)
    g = _gen(42)
    expected = torch.randint(4, (2,), generator=_gen(42)).tolist()  # the same single draw
    out = tf.jitter(3)(x, g)
    top, left = expected
    assert out.shape == (2, 3, 6, 7)
    assert torch.equal(out, x[..., top : top + 6, left : left + 7])
    assert torch.equal(tf.jitter(0)(x, _gen()), x)
    with pytest.raises(ValueError, match="cannot crop"):
        tf.jitter(9)(x, _gen())


def test_jitter_covers_every_offset_inclusive() -> None:
    x = _image(b=1, h=5, w=5)
    g = _gen(1)
    corners = set()
    for _ in range(200):
        out = tf.jitter(2)(x, g)
        corners.add(out[0, 0, 0, 0].item())
    starts = {x[0, 0, i, j].item() for i in range(3) for j in range(3)}
    assert corners == starts


def test_rotation_by_zero_and_scale_by_one_are_identities() -> None:
    x = _image()
    assert torch.equal(tf.random_rotate([0])(x, _gen()), x)
    assert torch.equal(tf.rotate(x, 0.0), x)
    assert torch.equal(tf.random_scale([1.0])(x, _gen()), x)
    assert torch.allclose(tf.rotate(x, 360.0), x, atol=1e-5)


def test_rotation_direction_and_exactness() -> None:
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 4] = 1.0  # right of centre
    up = tf.rotate(x, 90.0)  # counter-clockwise as displayed: right -> top
    expected = torch.zeros_like(x)
    expected[0, 0, 0, 2] = 1.0
    assert torch.allclose(up, expected, atol=1e-5)
    wide = torch.zeros(1, 1, 3, 5)
    wide[0, 0, 1, 2] = 1.0  # the centre pixel stays put at any angle, on any aspect ratio
    assert tf.rotate(wide, 17.0)[0, 0, 1, 2].item() == pytest.approx(1.0, abs=1e-5)
    corners = tf.rotate(torch.ones(1, 1, 8, 8), 45.0)  # outside the image reads as 0
    assert corners[0, 0, 0, 0] < 0.05 and corners[0, 0, 4, 4] == pytest.approx(1.0)


def test_random_scale_sizes_truncate_like_lucid() -> None:
    x = torch.full((1, 3, 10, 10), 0.3)
    out = tf.random_scale([0.95])(x, _gen())
    assert out.shape == (1, 3, 9, 9)  # int(9.5) = 9
    assert torch.allclose(out, torch.full_like(out, 0.3))
    assert tf.random_scale([2.0])(x, _gen()).shape == (1, 3, 20, 20)


def test_compose_applies_in_order() -> None:
    x = _image(b=1, h=4, w=4)
    t = tf.compose([tf.pad(1, value=0.0), tf.crop_or_pad_to(2, 2)])
    assert torch.equal(t(x, _gen()), x[..., 1:3, 1:3])  # pad to 6, then the centre 2x2


def test_one_draw_per_call_whatever_the_batch() -> None:
    """The whole batch gets the same crop/scale/angle, and the generator advances the same
    amount for a batch of 1 and of 5 (so batch composition never changes the draws)."""
    standard = tf.compose(tf.standard_transforms(12))
    one = torch.rand(1, 3, 12, 12, generator=_gen(3))
    many = one.repeat(5, 1, 1, 1)
    g1, g5 = _gen(9), _gen(9)
    for _ in range(5):
        out1, out5 = standard(one, g1), standard(many, g5)
        assert torch.allclose(out5, out1.expand_as(out5), atol=1e-6)
    assert torch.equal(g1.get_state(), g5.get_state())


def test_standard_transforms_keep_the_icon_size_and_are_reproducible() -> None:
    assert len(tf.standard_transforms(80)) == 10
    assert len(tf.RECIPE_ANGLES) == 40 + 20 + 10 + 5 and tf.RECIPE_ANGLES.count(0) == 8
    assert tf.RECIPE_SCALES[0] == pytest.approx(0.998**20) and len(tf.RECIPE_SCALES) == 20
    standard = tf.compose(tf.standard_transforms((20, 24)))
    x = torch.rand(2, 3, 20, 24, generator=_gen(0))
    outs = [standard(x, _gen(7)) for _ in range(2)]
    assert outs[0].shape == (2, 3, 20, 24)
    assert torch.equal(outs[0], outs[1])
    assert not torch.equal(outs[0], standard(x, _gen(8)))


def test_bad_configurations_are_refused() -> None:
    with pytest.raises(ValueError):
        tf.pad(-1)
    with pytest.raises(ValueError):
        tf.jitter(-2)
    with pytest.raises(ValueError):
        tf.random_scale([])
    with pytest.raises(ValueError):
        tf.random_rotate([])
