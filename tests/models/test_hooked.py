"""Hook-based models (torchvision classifiers, user models): truncation and hook hygiene."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from generator.errors import AtlasError, UnknownNameError
from generator.models.hooked import HookedModel, state_dict_digest
from generator.models.torchvision_models import ImageNorm


@pytest.fixture(scope="module")
def resnet() -> HookedModel:
    from torchvision.models import resnet18

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = resnet18(weights=None, num_classes=10)
    return HookedModel(
        net.eval(),
        {"stage2": "layer2", "stage3": "layer3", "stage4": "layer4"},
        ImageNorm((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        [f"c{i}" for i in range(10)],
        name="resnet18",
        input_size=64,
    ).eval()


def no_hooks_left(model: nn.Module) -> bool:
    return all(not m._forward_hooks for m in model.modules())


def test_layer_infos_come_from_a_probe(resnet):
    infos = {i.name: (i.channels, i.size) for i in resnet.layer_infos}
    assert infos == {"stage2": (128, 8), "stage3": (256, 4), "stage4": (512, 2), "logits": (10, 1)}
    assert resnet.layer_names == ("stage2", "stage3", "stage4", "logits")
    assert len(resnet.weights_digest) == 16


def test_truncated_forward_stops_after_the_deepest_layer(resnet):
    calls: list[str] = []
    handles = [
        resnet.net.get_submodule(path).register_forward_hook(
            lambda m, i, o, p=path: calls.append(p)
        )
        for path in ("layer2", "layer3", "layer4", "fc")
    ]
    try:
        with torch.no_grad():
            out = resnet.forward_to(torch.rand(2, 3, 64, 64), ["stage2"])
    finally:
        for handle in handles:
            handle.remove()
    assert calls == ["layer2"]
    assert out["stage2"].shape == (2, 128, 8, 8)
    assert no_hooks_left(resnet)


def test_forward_to_with_logits_returns_everything(resnet):
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        out = resnet.forward_to(images, ["stage3", "logits"])
        assert torch.allclose(out["logits"], resnet.net(resnet.preprocess(images)))
    assert out["stage3"].shape == (2, 256, 4, 4)
    assert no_hooks_left(resnet)


@pytest.mark.parametrize("layer", ["stage2", "stage4"])
def test_logits_from_substitutes_the_activation(resnet, layer):
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        activation = resnet.forward_to(images, [layer])[layer]
        assert torch.allclose(resnet.logits_from(layer, activation, images), resnet(images))
        zeros = resnet.logits_from(layer, torch.zeros_like(activation), images)
    assert not torch.allclose(zeros, resnet(images))
    if layer == "stage4":  # nothing but the classifier's bias is left
        assert torch.allclose(zeros, resnet.net.fc.bias.expand(2, -1))
    assert no_hooks_left(resnet)


def test_forward_mode_through_logits_from(resnet):
    """Attribution differentiates logits_from in forward mode; the hooks must allow it, and
    one JVP must equal activation x gradient of every logit (reverse mode, class by class)."""
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        activation = resnet.forward_to(images, ["stage3"])["stage3"]
    tangent = torch.zeros_like(activation)
    tangent[0, :, 1, 2] = activation[0, :, 1, 2]
    _, jvp = torch.func.jvp(
        lambda a: resnet.logits_from("stage3", a, images), (activation,), (tangent,)
    )
    leaf = activation.clone().requires_grad_(True)
    logits = resnet.logits_from("stage3", leaf, images)
    brute = torch.stack(
        [
            (torch.autograd.grad(logits[0, c], leaf, retain_graph=True)[0] * tangent).sum()
            for c in range(logits.shape[1])
        ]
    )
    assert torch.allclose(jvp[0], brute, atol=1e-5, rtol=1e-4)
    assert no_hooks_left(resnet)


def test_hooks_are_removed_when_the_forward_fails(resnet):
    with pytest.raises(RuntimeError):
        resnet.forward_to(torch.rand(1, 4, 64, 64), ["stage3"])  # 4 channels: conv1 fails
    assert no_hooks_left(resnet)
    with pytest.raises(ValueError, match="does not match"):
        resnet.logits_from("stage3", torch.zeros(1, 3, 3, 3), torch.rand(1, 3, 64, 64))
    assert no_hooks_left(resnet)


def test_logits_from_needs_images(resnet):
    with pytest.raises(ValueError, match="need `images`"):
        resnet.logits_from("stage2", torch.zeros(1, 128, 8, 8))


def test_unknown_module_path_suggests_the_closest(resnet):
    with pytest.raises(UnknownNameError) as err:
        HookedModel(resnet.net, {"s5": "layer5"}, lambda x: x, ["a"] * 10, name="toy")
    message = err.value.message()
    assert "did you mean 'layer4'" in message and "conv1" in message


def test_label_count_must_match_the_logits():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(AtlasError, match="4 logits but 3 labels"):
        HookedModel(net, {"conv": "0"}, lambda x: x, ["a", "b", "c"], name="toy", input_size=16)


def test_state_dict_digest_follows_the_weights():
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    assert state_dict_digest(a) == state_dict_digest(b)
    with torch.no_grad():
        b.bias.add_(1)
    assert state_dict_digest(a) != state_dict_digest(b)
