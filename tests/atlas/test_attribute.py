"""Attribution: one forward-mode pass equals per-class reverse mode, with and without relaxation."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch.func import jvp
from torch.utils._python_dispatch import TorchDispatchMode

from generator.atlas.attribute import Attributor, brute_force_attributions, position_tangent
from generator.atlas.tangents import input_tangents_only
from generator.models.registry import load_model

from .conftest import TinyModel


def _samples(model: TinyModel, layer: str, n: int = 6, seed: int = 1) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, 16, 16, generator=generator)
    with torch.no_grad():
        act = model.forward_to(images, [layer])[layer]
    h, w = act.shape[-2:]
    positions = torch.stack(
        [
            torch.randint(0, h, (n,), generator=generator),
            torch.randint(0, w, (n,), generator=generator),
        ],
        dim=1,
    )
    return act, positions


def test_position_tangent_is_the_vector_at_the_position_and_zero_elsewhere() -> None:
    act = torch.rand(3, 4, 5, 5)
    positions = torch.tensor([[0, 0], [2, 3], [4, 4]])
    tangent = position_tangent(act, positions)
    for s, (y, x) in enumerate(positions.tolist()):
        assert torch.equal(tangent[s, :, y, x], act[s, :, y, x])
        assert torch.count_nonzero(tangent[s]) == torch.count_nonzero(act[s, :, y, x])


@pytest.mark.parametrize("layer", ["conv2d0", "mixed3a", "mixed4a"])
@pytest.mark.parametrize("smooth", [False, True])
@pytest.mark.parametrize("method", ["jvp", "double-vjp"])
def test_matches_brute_force_per_class_autograd(layer: str, smooth: bool, method: str) -> None:
    model = TinyModel()
    act, positions = _samples(model, layer)
    expected = brute_force_attributions(model, layer, act, positions, smooth_maxpool=smooth)
    attributor = Attributor(model, layer, smooth_maxpool=smooth, method=method)
    got = attributor(act, positions)
    assert got.shape == (6, 5) and got.dtype == torch.float32
    assert attributor.method_used == method
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


def test_the_relaxation_changes_attributions_through_max_pools() -> None:
    model = TinyModel()
    act, positions = _samples(model, "mixed3a")
    hard = Attributor(model, "mixed3a", smooth_maxpool=False)(act, positions)
    smooth = Attributor(model, "mixed3a", smooth_maxpool=True)(act, positions)
    assert (hard - smooth).abs().max() > 1e-2 * hard.abs().max()
    # ... and leaves no hooks behind.
    assert all(not m._forward_hooks for m in model.modules())


def test_attribution_is_linear_in_the_activation_for_a_relu_free_head() -> None:
    """For a linear continuation, attr_c = h . W_c / (h*w) exactly (avg pool then linear)."""
    model = TinyModel()
    act, positions = _samples(model, "mixed4a")
    # mixed4a -> max-pool 2 -> global average -> linear: with the hard max the gradient at
    # (y, x) is W_c / 4 where (y, x) is the max of its 2x2 window, else 0.
    got = Attributor(model, "mixed4a", smooth_maxpool=False)(act, positions)
    weight = model.stages["logits"].weight  # [K, C]
    for s, (y, x) in enumerate(positions.tolist()):
        window = act[s, :, (y // 2) * 2 : (y // 2) * 2 + 2, (x // 2) * 2 : (x // 2) * 2 + 2]
        is_max = (act[s, :, y, x] == window.flatten(1).max(dim=1).values).float()
        expected = (weight * (act[s, :, y, x] * is_max)[None, :]).sum(dim=1) / 4
        torch.testing.assert_close(got[s], expected.detach(), rtol=1e-5, atol=1e-5)


class _NoForwardAD(torch.autograd.Function):
    """Identity whose derivative is defined only in reverse mode (so torch.func.jvp fails)."""

    @staticmethod
    def forward(ctx: object, x: Tensor) -> Tensor:  # type: ignore[override]
        return x.clone()

    @staticmethod
    def backward(ctx: object, grad: Tensor) -> Tensor:  # type: ignore[override]
        return grad * 1.0


class _Identity(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return _NoForwardAD.apply(x)  # type: ignore[no-any-return]


def test_auto_falls_back_to_double_vjp_when_jvp_fails() -> None:
    model = TinyModel()
    act, positions = _samples(model, "mixed3a")
    model.stages["pool1"] = nn.Sequential(_Identity(), nn.MaxPool2d(3, stride=2, padding=1))
    with pytest.raises(RuntimeError):
        Attributor(model, "mixed3a", method="jvp")(act, positions)
    attributor = Attributor(model, "mixed3a", method="auto")
    got = attributor(act, positions)
    assert attributor.method_used == "double-vjp"
    expected = brute_force_attributions(model, "mixed3a", act, positions)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())
    # The fallback sticks: the next batch goes straight to double-vjp.
    attributor(act, positions)
    assert attributor.method_used == "double-vjp"


def test_unknown_layer_and_method_are_refused() -> None:
    model = TinyModel()
    with pytest.raises(Exception, match="unknown layer 'mixed9z'"):
        Attributor(model, "mixed9z")
    with pytest.raises(ValueError, match="method"):
        Attributor(model, "mixed3a", method="finite-differences")


class _CountConvolutions(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func.overloadpacket is torch.ops.aten.convolution:
            self.count += 1
        return func(*args, **(kwargs or {}))


def test_lean_tangent_rules_skip_the_zero_weight_convolution_only_within_the_block() -> None:
    model = TinyModel()
    act, _ = _samples(model, "mixed3a", n=2)

    def convolutions(lean: bool) -> tuple[int, Tensor]:
        counter = _CountConvolutions()
        context = input_tangents_only() if lean else contextlib.nullcontext()
        with torch.no_grad(), context, counter:
            out = jvp(lambda a: model.logits_from("mixed3a", a), (act,), (act,))[1]
        return counter.count, out

    (plain, expected), (lean, got) = convolutions(False), convolutions(True)
    assert (plain, lean) == (3, 2)  # mixed4a's one convolution: primal, input and weight tangents
    torch.testing.assert_close(got, expected)
    with torch.no_grad(), input_tangents_only() as mode:
        model(torch.rand(1, 3, 16, 16))
    assert mode.switched == 3  # the three convolutions
    # Outside the block nothing is intercepted any more.
    counter = _CountConvolutions()
    with torch.no_grad(), counter:
        jvp(lambda a: model.logits_from("mixed3a", a), (act,), (act,))
    assert counter.count == 3


def test_a_batch_norm_model_from_the_registry_matches_brute_force() -> None:
    model = load_model("demo", device=torch.device("cpu"), weights="random")
    images = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        act = model.forward_to(images, ["mixed4a"])["mixed4a"]
    positions = torch.tensor([[0, 0], [1, 2], [3, 3]])
    expected = brute_force_attributions(model, "mixed4a", act, positions)
    got = Attributor(model, "mixed4a", method="jvp")(act, positions)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


def test_readout_is_the_filled_map_minus_the_zero_map() -> None:
    model = TinyModel().eval()
    act, positions = _samples(model, "mixed3a")
    got = Attributor(model, "mixed3a", measure="readout")(act, positions)
    assert got.shape == (6, 5) and got.dtype == torch.float32
    with torch.no_grad():
        blank = model.logits_from("mixed3a", torch.zeros_like(act[:1]))[0]
        for s, (y, x) in enumerate(positions.tolist()):
            filled = act[s, :, y, x][None, :, None, None].expand_as(act[:1]).contiguous()
            expected = model.logits_from("mixed3a", filled)[0] - blank
            torch.testing.assert_close(got[s], expected, rtol=1e-5, atol=1e-6)
    # Only the vector counts: the rest of its map and where it sat do not.
    moved = torch.rand_like(act)
    moved[torch.arange(6), :, 0, 0] = act[torch.arange(6), :, positions[:, 0], positions[:, 1]]
    again = Attributor(model, "mixed3a", measure="readout")(moved, torch.zeros_like(positions))
    torch.testing.assert_close(again, got)


def test_readout_equals_positions_times_the_gradient_where_the_rest_is_linear() -> None:
    # mixed5b -> global average pool -> linear classifier: logit_c(F_h) - logit_c(F_0) = W_c.h,
    # and the article's attribution at one of the h*w positions is W_c.h / (h*w).
    model = load_model("demo", device=torch.device("cpu"))  # the committed, trained weights
    images = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        act = model.forward_to(images, ["mixed5b"])["mixed5b"]
    positions = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]])
    gradient = Attributor(model, "mixed5b")(act, positions)
    readout = Attributor(model, "mixed5b", measure="readout")(act, positions)
    positions_per_map = act.shape[2] * act.shape[3]
    torch.testing.assert_close(
        readout, gradient * positions_per_map, rtol=1e-4, atol=1e-4 * readout.abs().max().item()
    )


def test_on_the_demo_model_the_readout_names_the_image_class_where_the_gradient_does_not() -> None:
    # The reason the measure exists (see generator.atlas.attribute): batch norm's shifts make
    # the trained demo model far from linear after mixed4c.
    from generator.data.synthetic import SyntheticWorld

    model = load_model("demo", device=torch.device("cpu"))
    world = SyntheticWorld()
    indices = list(range(5_000, 5_144))
    images = torch.as_tensor(world.read_batch(indices)).permute(0, 3, 1, 2).float() / 255
    labels = torch.as_tensor([world.label(i) for i in indices])
    with torch.no_grad():
        act = model.forward_to(images, ["mixed4c"])["mixed4c"]
    positions = torch.stack([torch.arange(144) % 4, (torch.arange(144) // 4) % 4], dim=1)
    gradient = Attributor(model, "mixed4c")(act, positions).argmax(dim=1)
    readout = Attributor(model, "mixed4c", measure="readout")(act, positions).argmax(dim=1)
    assert (readout == labels).float().mean() >= 0.6
    assert (gradient == labels).float().mean() <= 0.4


def test_unknown_measure_is_refused() -> None:
    with pytest.raises(ValueError, match="measure"):
        Attributor(TinyModel(), "mixed3a", measure="saliency")
