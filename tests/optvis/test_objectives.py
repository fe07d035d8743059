"""Objectives: values, arithmetic, descriptions, the atlas formula, and that each one rises."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

from generator.optvis import objectives as obj
from generator.optvis.objectives import Objective, VisContext
from generator.optvis.param import pixel_image
from generator.optvis.render import render


def _context(seed: int = 0, b: int = 2) -> VisContext:
    g = torch.Generator().manual_seed(seed)
    acts = {
        "a": torch.rand((b, 4, 3, 5), generator=g),
        "b": torch.rand((b, 6, 2, 2), generator=g),
    }
    return VisContext(acts, torch.rand((b, 3, 12, 12), generator=g))


def test_neuron_and_channel_values() -> None:
    ctx = _context()
    a = ctx.activations["a"]
    assert torch.equal(obj.neuron("a", 2)(ctx), a[:, 2, 1, 2])  # centre of 3x5 is (1, 2)
    assert torch.equal(obj.neuron("a", 2, y=0, x=4)(ctx), a[:, 2, 0, 4])
    assert torch.allclose(obj.channel("a", 3)(ctx), a[:, 3].mean(dim=(1, 2)))
    per_element = obj.channel("a", [1, 3])
    assert per_element.batch == 2
    expected = torch.stack([a[0, 1].mean(), a[1, 3].mean()])
    assert torch.allclose(per_element(ctx), expected)
    as_tensor = obj.neuron("a", torch.tensor([0, 2]))
    assert torch.equal(as_tensor(ctx), torch.stack([a[0, 0, 1, 2], a[1, 2, 1, 2]]))
    assert torch.equal(obj.neuron("a", torch.tensor(2))(ctx), a[:, 2, 1, 2])


def test_direction_values() -> None:
    ctx = _context()
    a = ctx.activations["a"]
    v = torch.tensor([1.0, -2.0, 0.5, 3.0])
    dot = (a * v[None, :, None, None]).sum(1).mean(dim=(1, 2))
    assert torch.allclose(obj.direction("a", v)(ctx), dot)
    cos = torch.nn.functional.cosine_similarity(a, v[None, :, None, None], dim=1)
    assert torch.allclose(obj.direction("a", v, cosine=True)(ctx), cos.mean(dim=(1, 2)))
    vs = torch.stack([v, -v])
    centre = a[:, :, 1, 2]
    expected = torch.stack([centre[0] @ v, centre[1] @ -v])
    assert torch.allclose(obj.direction_neuron("a", vs)(ctx), expected)
    cos_centre = obj.direction_neuron("a", vs, cosine=True)(ctx)
    assert torch.allclose(cos_centre, torch.nn.functional.cosine_similarity(centre, vs, dim=1))


def _atlas_by_hand(a: np.ndarray, v: np.ndarray, s: np.ndarray | None, p: float) -> float:
    """METHOD.md 5 written out with plain loops on one element's centre vector ``a [C]``."""
    if s is not None:
        v = np.array([sum(v[k] * s[k, j] for k in range(len(v))) for j in range(len(v))])
    dot = sum(a[c] * v[c] for c in range(len(a))) / len(a)
    mag = math.sqrt(sum(x * x for x in a))
    cossim = max(0.1, dot / (1e-4 + mag))
    return dot * cossim**p


@pytest.mark.parametrize("whitened", [False, True])
@pytest.mark.parametrize("p", [2.0, 4.0])
def test_atlas_objective_matches_hand_computation(whitened: bool, p: float) -> None:
    ctx = _context(seed=3, b=3)
    a = ctx.activations["a"]
    g = torch.Generator().manual_seed(7)
    # Element 0 points along its centre activation (cossim term active), element 1 is small
    # (the 0.1 floor is active), element 2 is opposite (negative dot, floor active).
    centre = a[:, :, 1, 2]
    v = torch.stack([8 * centre[0], 0.01 * torch.rand(4, generator=g), -centre[2]])
    s = torch.eye(4) + 0.3 * torch.rand((4, 4), generator=g) if whitened else None
    got = obj.atlas_direction("a", v, whitening=s, cossim_pow=p)(ctx)
    for i in range(3):
        expected = _atlas_by_hand(
            centre[i].double().numpy(),
            v[i].double().numpy(),
            None if s is None else s.double().numpy(),
            p,
        )
        assert got[i].item() == pytest.approx(expected, rel=1e-5, abs=1e-9)
    # the three regimes really were exercised
    vw = v if s is None else v @ s
    cossims = (centre * vw).mean(1) / (1e-4 + centre.norm(dim=1))
    assert cossims[0] > 0.1 and cossims[1] < 0.1 and cossims[2] < 0


def test_atlas_objective_shared_direction_and_description() -> None:
    v = torch.ones(4)
    o = obj.atlas_direction("a", v)
    assert o.batch is None
    assert o.description == "atlas_direction(a, v[4], p=2)"
    many = obj.atlas_direction("a", torch.ones((5, 4)), whitening=torch.eye(4), cossim_pow=4)
    assert many.batch == 5
    assert many.description == "atlas_direction(a, 5 directions, whitened, p=4)"
    with pytest.raises(ValueError, match="whitening must be"):
        obj.atlas_direction("a", v, whitening=torch.eye(3))


def test_border_penalty() -> None:
    b, size = 2, 16
    grey = torch.full((b, 3, size, size), 0.5)
    penalty = obj.border_penalty()
    assert torch.equal(penalty(VisContext({}, grey)), torch.zeros(b))
    inside = grey.clone()
    inside[:, :, 8, 8] = 1.0  # the interior is not penalized (its blur does not reach the rim)
    assert torch.equal(penalty(VisContext({}, inside)), torch.zeros(b))
    rim = grey.clone()
    rim[1, 0, 0, 0] = 1.0
    values = penalty(VisContext({}, rim))
    assert values[0] == 0 and values[1] < -0.8 * 0.25  # at least the distance-from-grey term
    flat = torch.full((1, 3, size, size), 0.7)
    # a flat image has no detail anywhere: only the grey term, over the 5 px rim
    rim_pixels = size * size - (size - 10) ** 2
    expected = -0.8 * 0.2**2 * 3 * rim_pixels
    assert penalty(VisContext({}, flat)).item() == pytest.approx(expected, rel=1e-5)


def test_arithmetic_and_descriptions() -> None:
    ctx = _context()
    c = obj.channel("a", 3)
    n = obj.neuron("b", 1)
    combo = 0.5 * c - n
    assert combo.description == "0.5 * channel(a:3) - neuron(b:1 @ centre)"
    assert combo.layers == frozenset({"a", "b"})
    assert torch.allclose(combo(ctx), 0.5 * c(ctx) - n(ctx))
    scaled = 2 * (c + n)
    assert scaled.description == "2 * (channel(a:3) + neuron(b:1 @ centre))"
    assert torch.allclose(scaled(ctx), 2 * (c(ctx) + n(ctx)))
    assert (-(c + n)).description == "-(channel(a:3) + neuron(b:1 @ centre))"
    assert torch.allclose((-(c + n))(ctx), -(c(ctx) + n(ctx)))
    halved = c / 4
    assert halved.description == "channel(a:3) / 4"
    assert torch.allclose(halved(ctx), c(ctx) / 4)
    assert (c - (n + c)).description == "channel(a:3) - (neuron(b:1 @ centre) + channel(a:3))"
    total = sum([c, n, c])
    assert isinstance(total, Objective)
    assert torch.allclose(total(ctx), 2 * c(ctx) + n(ctx))
    assert torch.allclose(Objective.sum([c, n, c])(ctx), total(ctx))
    assert repr(c) == "Objective(channel(a:3))"


def test_arithmetic_errors() -> None:
    c = obj.channel("a", 1)
    with pytest.raises(TypeError):
        c + 1
    with pytest.raises(TypeError):
        c * c
    with pytest.raises(ZeroDivisionError):
        c / 0
    with pytest.raises(ValueError, match="at least one"):
        Objective.sum([])
    with pytest.raises(ValueError, match="different batch sizes"):
        obj.channel("a", [1, 2]) + obj.channel("a", [1, 2, 3])
    assert (obj.channel("a", [1, 2]) + c).batch == 2


def test_shape_errors_are_clear() -> None:
    ctx = _context(b=2)
    with pytest.raises(ValueError, match="3 directions for a batch of 2"):
        obj.direction_neuron("a", torch.ones((3, 4)))(ctx)
    with pytest.raises(ValueError, match="5 channels, layer has 4"):
        obj.atlas_direction("a", torch.ones(5))(ctx)
    with pytest.raises(KeyError, match="only \\['a', 'b'\\] were captured"):
        obj.channel("zzz", 0)(ctx)


OBJECTIVES = {
    "neuron": lambda: obj.neuron("conv2", 4),
    "neuron per element": lambda: obj.neuron("conv2", [4, 12]),
    "channel": lambda: obj.channel("conv3", [2, 9]),
    "direction": lambda: obj.direction("conv2", torch.linspace(-1, 1, 16)),
    "direction cosine": lambda: obj.direction("conv3", torch.rand(2, 16), cosine=True),
    "direction_neuron": lambda: obj.direction_neuron("conv3", torch.rand(2, 16)),
    "direction_neuron cosine": lambda: obj.direction_neuron(
        "conv3", torch.rand(2, 16), cosine=True
    ),
    "atlas": lambda: obj.atlas_direction("conv3", 3 * torch.rand(2, 16)),
    "atlas whitened": lambda: obj.atlas_direction(
        "conv3", torch.rand(2, 16), whitening=4 * torch.eye(16), cossim_pow=4
    ),
    "border penalty": lambda: obj.border_penalty(width=3),
    "combination": lambda: obj.channel("conv2", 1) - 0.1 * obj.neuron("conv3", 4),
}


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_each_objective_rises_after_a_few_adam_steps(
    tiny_model: torch.nn.Module, name: str
) -> None:
    torch.manual_seed(0)  # only the random test directions above; render itself uses none
    objective = OBJECTIVES[name]()
    # start from a random image (a grey start leaves some ReLUs and the border penalty flat)
    start = torch.rand((2, 3, 16, 16), generator=torch.Generator().manual_seed(5)) * 0.6 + 0.2
    param = functools.partial(pixel_image, init=start)
    common = dict(batch=2, size=16, transforms=[], seed=1, param=param)
    before = render(tiny_model, objective, steps=0, **common).values  # type: ignore[arg-type]
    after = render(tiny_model, objective, steps=6, **common).values  # type: ignore[arg-type]
    assert torch.all(after > before), (name, before, after)
