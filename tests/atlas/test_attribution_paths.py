"""Attribution's other paths (issue 17, mutation testing of generator/atlas/attribute.py): a model
that needs the images (hook-based), activation maps in float64 or attached to a graph, the
fallback when forward mode is not implemented, and readouts that carry no graph.

The expected values come from per-class reverse mode (``brute_force_attributions``, the slow
reference) or from the model's own logits, never from the attributor under test."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from generator.atlas.attribute import Attributor, brute_force_attributions, readout
from generator.models.hooked import HookedModel

from .conftest import TinyModel


def hooked_tiny() -> tuple[HookedModel, Tensor, Tensor, Tensor]:
    """A hook-based model (``logits_from`` re-runs the net from the images), a batch of images,
    its mixed3a activations and one position per image."""
    tiny = TinyModel()
    net = nn.Sequential(*tiny.stages.values())
    model = HookedModel(
        net, {"mixed3a": "2"}, tiny.preprocess, tiny.labels, name="t", input_size=16
    )
    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        act = model.forward_to(images, ["mixed3a"])["mixed3a"]
    positions = torch.tensor([[0, 0], [3, 4], [7, 7], [5, 1]])
    return model, images, act, positions


def test_a_model_that_needs_the_images_gets_them_on_every_path() -> None:
    model, images, act, positions = hooked_tiny()
    expected = brute_force_attributions(model, "mixed3a", act, positions, images)
    for method in ("jvp", "double-vjp", "auto"):
        got = Attributor(model, "mixed3a", method=method)(act, positions, images)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * expected.abs().max())
    got = Attributor(model, "mixed3a", measure="readout")(act, positions, images)
    with torch.no_grad():
        for s, (y, x) in enumerate(positions.tolist()):
            filled = act[s, :, y, x][None, :, None, None].expand_as(act[:1]).contiguous()
            blank = torch.zeros_like(act[:1])
            image = images[s : s + 1]
            want = model.logits_from("mixed3a", filled, image) - model.logits_from(
                "mixed3a", blank, image
            )
            torch.testing.assert_close(got[s], want[0], rtol=1e-5, atol=1e-6)


def test_float64_and_graph_attached_maps_are_attributed_as_float32() -> None:
    model = TinyModel()
    images = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    act = model.forward_to(images, ["mixed3a"])["mixed3a"]  # with a graph back to the weights
    assert act.requires_grad
    positions = torch.tensor([[0, 0], [2, 5], [7, 3]])
    expected = brute_force_attributions(model, "mixed3a", act, positions)
    for measure in ("gradient", "readout"):
        attributor = Attributor(model, "mixed3a", measure=measure)
        plain = attributor(act.detach(), positions)
        for variant in (act, act.detach().double()):
            got = attributor(variant, positions)
            assert got.dtype == torch.float32 and not got.requires_grad
            torch.testing.assert_close(got, plain)
        if measure == "gradient":
            torch.testing.assert_close(plain, expected, rtol=1e-4, atol=1e-4 * expected.abs().max())
    assert all(p.grad is None for p in model.parameters())  # nothing flowed into the weights


class _NoForwardMode(nn.Module):
    """Identity whose forward-mode derivative is not implemented (as for some custom ops)."""

    def forward(self, x: Tensor) -> Tensor:
        import torch.autograd.forward_ad as fwAD

        if fwAD.unpack_dual(x).tangent is not None:
            raise NotImplementedError("no forward-mode derivative for this op")
        return x


def test_auto_falls_back_when_forward_mode_is_not_implemented() -> None:
    model = TinyModel()
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        act = model.forward_to(images, ["mixed3a"])["mixed3a"]
    positions = torch.tensor([[1, 1], [6, 2]])
    model.stages["pool1"] = nn.Sequential(_NoForwardMode(), nn.MaxPool2d(3, stride=2, padding=1))
    attributor = Attributor(model, "mixed3a")  # method "auto"
    got = attributor(act, positions)
    assert attributor.method_used == "double-vjp"
    expected = brute_force_attributions(model, "mixed3a", act, positions)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * expected.abs().max())


def test_a_readout_is_detached_and_per_sample() -> None:
    model = TinyModel()
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(7))
    act = model.forward_to(images, ["mixed4a"])["mixed4a"]
    positions = torch.tensor([[0, 3], [2, 1]])
    got = readout(model, "mixed4a", act, positions)
    assert got.shape == (2, 5) and got.dtype == torch.float32 and not got.requires_grad
    with torch.no_grad():
        # mixed4a -> max-pool 2 -> average -> linear: a map filled with h pools to h, so the
        # readout is W h + b - (W 0 + b) = W h
        weight = model.stages["logits"].weight
        for s, (y, x) in enumerate(positions.tolist()):
            torch.testing.assert_close(got[s], weight @ act[s, :, y, x], rtol=1e-5, atol=1e-6)
