"""Parameterizations: range, fitting a given image, initialisation, per-element noise."""

from __future__ import annotations

import pytest
import torch

from generator.optvis.param import (
    ImageParam,
    color_matrix,
    fourier_image,
    from_rgb,
    pixel_image,
    spectrum_scale,
    to_rgb,
)

PARAMS: dict[str, ImageParam] = {"pixel": pixel_image, "fourier": fourier_image}


def _target(b: int = 2, h: int = 12, w: int = 16) -> torch.Tensor:
    """A smooth colourful image in [0.1, 0.9] (an odd one: ramps and a bright square)."""
    g = torch.Generator().manual_seed(11)
    ys = torch.linspace(0, 1, h)[:, None]
    xs = torch.linspace(0, 1, w)[None, :]
    img = torch.stack([ys.expand(h, w), xs.expand(h, w), (ys * xs)], dim=0)
    img = img[None].repeat(b, 1, 1, 1)
    img[:, :, 3:7, 4:9] = torch.rand((b, 3, 1, 1), generator=g)
    return 0.1 + 0.8 * img


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_render_shape_and_range(name: str) -> None:
    params, render = PARAMS[name](3, 10, 7, generator=torch.Generator().manual_seed(0))
    images = render()
    assert images.shape == (3, 3, 10, 7)
    assert images.dtype == torch.float32
    assert images.min() > 0 and images.max() < 1
    # sd 0.01 noise: a near-grey start, as Lucid's
    assert (images - 0.5).abs().max() < 0.1
    assert all(p.requires_grad for p in params)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_each_parameterization_can_fit_a_given_image(name: str) -> None:
    target = _target()
    params, render = PARAMS[name](2, 12, 16, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(params, lr=0.05)
    start = torch.mean((render() - target) ** 2).item()
    for _ in range(150):
        optimizer.zero_grad()
        loss = torch.mean((render() - target) ** 2)
        loss.backward()
        optimizer.step()
    end = torch.mean((render() - target) ** 2).item()
    assert end < 0.1 * start, (start, end)


@pytest.mark.parametrize("name", sorted(PARAMS))
@pytest.mark.parametrize("decorrelate", [True, False])
def test_init_from_image_reproduces_it(name: str, decorrelate: bool) -> None:
    target = _target(h=9, w=11)  # odd sides: the real FFT's half spectrum must round-trip
    _, render = PARAMS[name](
        2,
        9,
        11,
        generator=torch.Generator().manual_seed(0),
        init=target,
        decorrelate=decorrelate,  # type: ignore[call-arg]
    )
    assert torch.allclose(render(), target, atol=1e-5)


def test_init_shape_is_checked() -> None:
    with pytest.raises(ValueError, match=r"init images must be \[2, 3, 8, 8\]"):
        pixel_image(2, 8, 8, generator=torch.Generator(), init=torch.rand(1, 3, 8, 8))


def test_per_element_generators_make_elements_independent() -> None:
    seeds = [5, 6, 7]
    _, batch = fourier_image(3, 8, 8, generator=[torch.Generator().manual_seed(s) for s in seeds])
    _, alone = fourier_image(1, 8, 8, generator=[torch.Generator().manual_seed(6)])
    assert torch.equal(batch()[1], alone()[0])
    _, other = fourier_image(1, 8, 8, generator=[torch.Generator().manual_seed(8)])
    assert not torch.equal(batch()[1], other()[0])
    with pytest.raises(ValueError, match="2 generators for a batch of 3"):
        pixel_image(3, 8, 8, generator=[torch.Generator(), torch.Generator()])


def test_same_generator_state_gives_same_parameters() -> None:
    a, _ = pixel_image(2, 5, 5, generator=torch.Generator().manual_seed(1))
    b, _ = pixel_image(2, 5, 5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a[0], b[0])


def test_color_matrix_is_lucids_normalized() -> None:
    m = color_matrix()
    raw = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.0, -0.05], [0.27, -0.09, 0.03]])
    norms = m.norm(dim=0)
    assert norms.max().item() == pytest.approx(1.0)
    assert torch.allclose(m * raw.norm(dim=0).max(), raw)
    t = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    assert torch.allclose(from_rgb(to_rgb(t)), t, atol=1e-6)


def test_spectrum_scale() -> None:
    h, w = 6, 8
    scale = spectrum_scale(h, w)
    assert scale.shape == (h, w // 2 + 1)
    assert scale[0, 0].item() == pytest.approx(8.0)  # DC: 1 / (1 / max(w, h))
    assert scale[0, 1].item() == pytest.approx(8.0)  # f = 1/8 equals the floor
    assert scale[0, 4].item() == pytest.approx(2.0)  # f = 1/2 (Nyquist)
    assert scale[1, 2].item() == pytest.approx(1 / ((1 / 6) ** 2 + (2 / 8) ** 2) ** 0.5)
    assert torch.allclose(spectrum_scale(h, w, decay_power=2), scale**2)
