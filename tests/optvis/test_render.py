"""The render loop: determinism, batch independence, best of k, hooks, the caller's model."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch
from torch import Tensor

from generator.optvis import objectives as obj
from generator.optvis import transform as tf
from generator.optvis.objectives import VisContext
from generator.optvis.render import Rendered, derive_seed, render

from .conftest import TinyNet

SIZE = 20


def _directions(n: int, seed: int = 0) -> Tensor:
    return torch.rand((n, 16), generator=torch.Generator().manual_seed(seed))


def _atlas(directions: Tensor) -> obj.Objective:
    return obj.atlas_direction("conv3", 4 * directions) + 0.01 * obj.border_penalty(width=3)


def _hooks(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_same_seed_gives_identical_icons(tiny_model: TinyNet) -> None:
    goal = _atlas(_directions(2))
    a = render(tiny_model, goal, size=SIZE, steps=5, seed=3)
    b = render(tiny_model, goal, size=SIZE, steps=5, seed=3)
    assert torch.equal(a.images, b.images) and torch.equal(a.values, b.values)
    c = render(tiny_model, goal, size=SIZE, steps=5, seed=4)
    assert not torch.equal(a.images, c.images)
    g1, g2 = torch.Generator().manual_seed(8), torch.Generator().manual_seed(8)
    d = render(tiny_model, goal, size=SIZE, steps=2, seed=g1)
    e = render(tiny_model, goal, size=SIZE, steps=2, seed=g2)
    assert torch.equal(d.images, e.images)


def test_batch_elements_do_not_interfere() -> None:
    """Rendering three different directions in one batch equals rendering each alone.

    In float64: the randomness is identical by design, and float64 keeps the last-bit
    differences of batched convolutions from being amplified (a ReLU gate or the 0.1 floor
    flipping) over the steps, so the comparison can be tight.
    """
    model = TinyNet().double()
    directions = _directions(3, seed=1).double()
    common = dict(size=SIZE, steps=8, seed=5, dtype=torch.float64)
    together = render(model, _atlas(directions), **common)  # type: ignore[arg-type]
    assert together.images.shape == (3, 3, SIZE, SIZE)
    for i in range(3):
        alone = render(
            model,
            _atlas(directions[i : i + 1]),
            icon_seeds=[i],
            **common,  # type: ignore[arg-type]
        )
        assert torch.allclose(alone.images[0], together.images[i], atol=1e-9)
        assert alone.values[0].item() == pytest.approx(together.values[i].item(), rel=1e-6)
    # and the elements really differ (different directions, different noise)
    assert not torch.allclose(together.images[0], together.images[1], atol=1e-2)


def test_icon_seeds_name_the_noise_not_the_position() -> None:
    model = TinyNet().double()
    d = _directions(2, seed=2).double()
    swapped = torch.stack([d[1], d[0]])
    common = dict(size=SIZE, steps=4, dtype=torch.float64)
    a = render(model, _atlas(d), icon_seeds=[10, 11], **common)  # type: ignore[arg-type]
    b = render(model, _atlas(swapped), icon_seeds=[11, 10], **common)  # type: ignore[arg-type]
    assert torch.allclose(a.images[0], b.images[1], atol=1e-9)
    assert torch.allclose(a.images[1], b.images[0], atol=1e-9)


def _evaluate(model: TinyNet, goal: obj.Objective, images: Tensor) -> Tensor:
    with torch.no_grad():
        return goal(VisContext(model.forward_to(images, sorted(goal.layers)), images))


def test_best_of_k_keeps_the_best_try_per_element(tiny_model: TinyNet) -> None:
    goal = _atlas(_directions(4, seed=3))
    result = render(tiny_model, goal, size=SIZE, steps=3, tries=3, seed=0)
    assert result.try_values.shape == (3, 4)
    assert torch.equal(result.values, result.try_values.max(dim=0).values)
    assert torch.equal(result.best_try, result.try_values.argmax(dim=0))
    # the kept images are the ones that scored those values
    assert torch.allclose(_evaluate(tiny_model, goal, result.images), result.values, rtol=1e-4)
    # tries really differ, and not every element picked the same try
    assert result.try_values.std(dim=0).min() > 0
    # try 0 of a 3-try render is a 1-try render with the same seed
    single = render(tiny_model, goal, size=SIZE, steps=3, tries=1, seed=0)
    assert torch.equal(single.try_values[0], result.try_values[0])
    assert torch.all(result.values >= single.values)


def test_select_by_ranks_tries_with_another_objective(tiny_model: TinyNet) -> None:
    d = _directions(2, seed=4)
    direction_only = obj.atlas_direction("conv3", 4 * d)
    result = render(
        tiny_model, _atlas(d), size=SIZE, steps=2, tries=2, select_by=direction_only, seed=1
    )
    assert torch.allclose(
        _evaluate(tiny_model, direction_only, result.images), result.values, rtol=1e-4
    )


def test_rendering_raises_the_centre_cosine_similarity(tiny_model: TinyNet) -> None:
    """What the atlas reports as fidelity: the centre activation turns toward the direction.
    Directions are centre activations of random images, as atlas cells' are of real ones."""
    images = torch.rand((3, 3, SIZE, SIZE), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        directions = tiny_model.forward_to(images, ["conv3"])["conv3"][:, :, 2, 2]
    goal = obj.atlas_direction("conv3", directions)
    cosine = obj.direction_neuron("conv3", directions, cosine=True)
    light = [tf.jitter(2), tf.crop_or_pad_to(SIZE, SIZE)]
    before = render(tiny_model, goal, size=SIZE, steps=0, seed=2, transforms=light)
    after = render(tiny_model, goal, size=SIZE, steps=30, seed=2, transforms=light)
    cos_before = _evaluate(tiny_model, cosine, before.images)
    cos_after = _evaluate(tiny_model, cosine, after.images)
    assert torch.all(cos_after > cos_before)
    assert cos_after.mean() > 0.95


def test_icons_are_uint8_hwc(tiny_model: TinyNet) -> None:
    result = render(tiny_model, obj.channel("conv2", [1, 4]), size=(12, 16), steps=1)
    icons = result.icons()
    assert icons.dtype == torch.uint8 and icons.shape == (2, 12, 16, 3)
    assert torch.equal(icons[0, 3, 5], (result.images[0, :, 3, 5] * 255).round().to(torch.uint8))
    assert result.description == "channel(conv2:[1, 4])"
    assert isinstance(result, Rendered) and result.seconds > 0


class LeakyNet(TinyNet):
    """A model whose forward registers a hook on every call and never removes it (as Lucent's
    render does): render must not let them pile up."""

    def forward_to(self, images: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        self.stages["conv1"].register_forward_hook(lambda m, i, o: None)
        return super().forward_to(images, layers)


def test_no_hooks_are_left_on_the_model() -> None:
    model = TinyNet()
    render(model, obj.channel("conv2", 1), size=SIZE, steps=2)
    assert _hooks(model) == 0
    leaky = LeakyNet()
    kept = leaky.stages["conv2"].register_forward_hook(lambda m, i, o: None)  # the caller's own
    render(leaky, obj.channel("conv2", 1), size=SIZE, steps=3)
    assert _hooks(leaky) == 1  # only the caller's hook survives
    kept.remove()


def test_the_callers_model_is_restored_even_on_error(tiny_model: TinyNet) -> None:
    tiny_model.train()
    next(iter(tiny_model.parameters())).requires_grad_(False)  # a caller's own choice
    flags = [p.requires_grad for p in tiny_model.parameters()]
    weights = [p.detach().clone() for p in tiny_model.parameters()]
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        assert not any(p.requires_grad for p in tiny_model.parameters())  # frozen inside
        assert not tiny_model.training
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render(tiny_model, obj.channel("conv2", 1), size=SIZE, steps=4, tries=2, progress=progress)
    assert seen == [(1, 8), (2, 8), (3, 8)]
    assert [p.requires_grad for p in tiny_model.parameters()] == flags
    assert tiny_model.training
    assert all(torch.equal(w, p) for w, p in zip(weights, tiny_model.parameters(), strict=True))
    assert all(p.grad is None for p in tiny_model.parameters())


def test_channels_last_and_mixed_precision_options(tiny_model: TinyNet) -> None:
    goal = _atlas(_directions(2, seed=7))
    plain = render(tiny_model, goal, size=SIZE, steps=3, seed=0)
    cl = render(tiny_model, goal, size=SIZE, steps=3, seed=0, channels_last=True)
    assert torch.allclose(plain.images, cl.images, atol=1e-4)
    assert all(p.is_contiguous() for p in tiny_model.parameters())  # memory format restored
    start = render(tiny_model, goal, size=SIZE, steps=0, seed=0)
    for amp in (torch.bfloat16, torch.float16):  # float16 with dynamic loss scaling
        mixed = render(tiny_model, goal, size=SIZE, steps=3, seed=0, autocast=amp)
        assert mixed.values.dtype == torch.float32  # the final evaluation is full precision
        assert torch.all(mixed.values > start.values)
    with pytest.raises(ValueError, match="autocast must be"):
        render(tiny_model, goal, size=SIZE, steps=1, autocast=torch.float64)


def test_argument_errors(tiny_model: TinyNet) -> None:
    two = obj.channel("conv2", [1, 2])
    with pytest.raises(ValueError, match="batch=3 but the objective"):
        render(tiny_model, two, batch=3, steps=0)
    with pytest.raises(ValueError, match="1 icon_seeds for a batch of 2"):
        render(tiny_model, two, steps=0, icon_seeds=[4])
    with pytest.raises(ValueError, match="tries >= 1"):
        render(tiny_model, two, steps=1, tries=0)
    assert (
        render(tiny_model, obj.channel("conv2", 1), batch=3, size=8, steps=0).images.shape[0] == 3
    )


def test_image_only_objectives_skip_the_model(tiny_model: TinyNet) -> None:
    calls: list[int] = []
    tiny_model.stages["conv1"].register_forward_hook(lambda m, i, o: calls.append(1))
    render(tiny_model, obj.border_penalty(), batch=1, size=SIZE, steps=2)
    assert calls == []


def test_derive_seed_is_stable_and_separates_streams() -> None:
    # The same number in every process and release (not Python's per-process salted hash):
    # a render resumed in another process, or on cached icons, must draw the same streams.
    assert derive_seed(0, 1, "icon", 5) == 5069006453162767640
    assert derive_seed(0, 1, "icon", 5) != derive_seed(0, 1, "icon", 6)
    assert derive_seed(0, 1, "icon", 5) != derive_seed(0, 2, "icon", 5)
    assert 0 <= derive_seed("x") < 2**63
