"""Attribution's other paths (issue 17, mutation testing of generator/atlas/attribute.py): a model
that needs the images (hook-based), activation maps in float64 or attached to a graph, the
fallback when forward mode is not implemented (and that it sticks), a layer the logits never
read, the defaults, the refusals, the device of the sample index, and readouts that carry no
graph.

The expected values come from per-class reverse mode (``brute_force_attributions``, the slow
reference) or from the model's own logits, never from the attributor under test."""

from __future__ import annotations

import logging
import re

import pytest
import torch
from torch import Tensor, nn

from generator.atlas.attribute import (
    Attributor,
    _sample_index,
    brute_force_attributions,
    position_tangent,
    readout,
)
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
    """Identity whose forward-mode derivative is not implemented (as for some custom ops);
    counts the forward-mode passes it refused."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0

    def forward(self, x: Tensor) -> Tensor:
        import torch.autograd.forward_ad as fwAD

        if fwAD.unpack_dual(x).tangent is not None:
            self.refused += 1
            raise NotImplementedError("no forward-mode derivative for this op")
        return x


def test_auto_falls_back_when_forward_mode_is_not_implemented(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = TinyModel()
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        act = model.forward_to(images, ["mixed3a"])["mixed3a"]
    positions = torch.tensor([[1, 1], [6, 2]])
    refusing = _NoForwardMode()
    model.stages["pool1"] = nn.Sequential(refusing, nn.MaxPool2d(3, stride=2, padding=1))
    attributor = Attributor(model, "mixed3a")  # method "auto"
    caplog.set_level(logging.INFO, logger="generator.atlas.attribute")
    got = attributor(act, positions)
    assert attributor.method_used == "double-vjp"
    expected = brute_force_attributions(model, "mixed3a", act, positions)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * expected.abs().max())
    # The fallback is said once, with the reason, and sticks: the next batch does not try
    # forward mode again.
    again = attributor(act.flip(0), positions.flip(0))
    torch.testing.assert_close(again, got.flip(0))
    assert refusing.refused == 1 and attributor.method_used == "double-vjp"
    assert caplog.messages == [
        "forward-mode attribution failed (no forward-mode derivative for this op);"
        " using the double-vjp trick"
    ]


def test_the_fallback_gives_a_model_that_needs_the_images_its_images() -> None:
    tiny = TinyModel()
    tiny.stages["pool1"] = nn.Sequential(_NoForwardMode(), nn.MaxPool2d(3, stride=2, padding=1))
    model = HookedModel(
        nn.Sequential(*tiny.stages.values()),
        {"mixed3a": "2"},
        tiny.preprocess,
        tiny.labels,
        name="t",
        input_size=16,
    )
    images = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        act = model.forward_to(images, ["mixed3a"])["mixed3a"]
    positions = torch.tensor([[0, 7], [4, 4], [7, 0]])
    attributor = Attributor(model, "mixed3a")
    got = attributor(act, positions, images)
    assert attributor.method_used == "double-vjp"
    expected = brute_force_attributions(model, "mixed3a", act, positions, images)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * expected.abs().max())


class _AuxiliaryBranch(nn.Module):
    """A classifier that also computes a branch its logits never read (like InceptionV1's
    auxiliary heads): the tiny model's stages as the trunk, one convolution beside them."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Sequential(*TinyModel().stages.values())
        self.aux = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        self.aux(x)
        return self.trunk(x)  # type: ignore[no-any-return]


def test_a_layer_the_logits_never_read_gets_zero_attributions() -> None:
    tiny = TinyModel()
    model = HookedModel(
        _AuxiliaryBranch(), {"aux": "aux"}, tiny.preprocess, tiny.labels, name="aux", input_size=16
    )
    images = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        act = model.forward_to(images, ["aux"])["aux"]
    assert act.abs().sum() > 0
    positions = torch.tensor([[0, 0], [5, 9], [15, 15]])
    for measure in ("gradient", "readout"):
        attributor = Attributor(model, "aux", measure=measure)
        got = attributor(act, positions, images)
        assert got.dtype == torch.float32 and torch.equal(got, torch.zeros(3, 5))
    assert attributor.method_used is None  # the readout has no method
    gradient = Attributor(model, "aux", method="jvp")
    gradient(act, positions, images)
    assert gradient.method_used == "jvp"


def test_the_defaults_are_the_articles_gradient_through_smooth_max_pools() -> None:
    model = TinyModel()
    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(10))
    with torch.no_grad():
        act = model.forward_to(images, ["mixed3a"])["mixed3a"]
    positions = torch.tensor([[0, 0], [3, 4], [7, 7], [2, 6]])
    attributor = Attributor(model, "mixed3a")
    assert attributor.method_used is None  # nothing attributed yet
    got = attributor(act, positions)
    assert attributor.method_used == "jvp"  # "auto" tries forward mode first
    smooth = brute_force_attributions(model, "mixed3a", act, positions, smooth_maxpool=True)
    hard = brute_force_attributions(model, "mixed3a", act, positions, smooth_maxpool=False)
    torch.testing.assert_close(got, smooth, rtol=1e-4, atol=1e-4 * smooth.abs().max())
    assert (got - hard).abs().max() > 1e-2 * hard.abs().max()


def test_unknown_methods_and_measures_are_refused_with_the_choices() -> None:
    model = TinyModel()
    methods = "attribution method must be one of ('auto', 'jvp', 'double-vjp'), got 'fd'"
    with pytest.raises(ValueError, match=f"^{re.escape(methods)}$"):
        Attributor(model, "mixed3a", method="fd")
    measures = "attribution measure must be one of ('gradient', 'readout'), got 'saliency'"
    with pytest.raises(ValueError, match=f"^{re.escape(measures)}$"):
        Attributor(model, "mixed3a", measure="saliency")


def test_the_sample_index_lives_on_the_activation_device() -> None:
    # Positions come from the CPU; the activation may live elsewhere (here the meta device, a
    # second device every torch build has): the index follows the activation, so no indexing
    # mixes devices (positions on a GPU would not index an activation on the CPU).
    activation = torch.empty(3, 4, 5, 5, device="meta")
    positions = torch.tensor([[0, 0], [2, 3], [4, 4]])
    rows, _, ys, xs = _sample_index(activation, positions)
    assert [t.device.type for t in (rows, ys, xs)] == ["meta"] * 3
    assert position_tangent(activation, positions).device.type == "meta"
    # On one device: row s of activation[index] is sample s's vector at its position.
    values = torch.rand(3, 4, 5, 5)
    expected = torch.stack([values[s, :, y, x] for s, (y, x) in enumerate(positions.tolist())])
    assert torch.equal(values[_sample_index(values, positions)], expected)


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
