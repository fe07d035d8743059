"""Our InceptionV1: layer tables, geometry, truncated forwards, logits_from, relaxation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from generator.errors import AtlasError, UnknownNameError
from generator.models.base import relaxed_max_pool
from generator.models.inception import (
    LUCID,
    TORCHVISION,
    InceptionConfig,
    build_inceptionv1,
    probe_layer_infos,
)
from generator.models.layers import SameConv2d, SameMaxPool2d, same_padding

#: METHOD.md section 1: (channels, side at 224 px) of the atlas layers.
ARTICLE_TABLE = {
    "mixed3a": (256, 28),
    "mixed3b": (480, 28),
    "mixed4b": (512, 14),
    "mixed4c": (512, 14),
    "mixed4d": (528, 14),
    "mixed4e": (832, 14),
    "mixed5a": (832, 7),
    "mixed5b": (1024, 7),
}


def small(**changes) -> nn.Module:
    """A quarter-width Lucid InceptionV1 on 64 px inputs: the full graph, cheap to run."""
    return build_inceptionv1(LUCID, width=0.25, input_size=64, **changes).eval()


@pytest.mark.parametrize("config, mixed4a, logits", [(LUCID, 508, 1008), (TORCHVISION, 512, 1000)])
def test_layer_table_matches_the_article(config, mixed4a, logits):
    infos = {i.name: (i.channels, i.size) for i in probe_layer_infos(config)}
    for name, facts in ARTICLE_TABLE.items():
        assert infos[name] == facts, name
    assert infos["mixed4a"] == (mixed4a, 14)
    assert infos["conv2d0"] == (64, 112)
    assert infos["logits"] == (logits, 1)
    assert list(infos) == [
        "conv2d0", "conv2d1", "conv2d2", "mixed3a", "mixed3b", "mixed4a", "mixed4b",
        "mixed4c", "mixed4d", "mixed4e", "mixed5a", "mixed5b", "logits",
    ]  # fmt: skip


def test_layer_infos_match_a_real_forward():
    model = small()
    images = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        out = model.forward_to(images, list(model.layer_names))
    for info in model.layer_infos:
        shape = out[info.name].shape
        assert shape[1] == info.channels
        assert (shape[-1] if len(shape) == 4 else 1) == info.size
    assert model.layer("mixed3a").channels == 64  # 256 / 4


@pytest.mark.parametrize("size, kernel, stride", [(224, 7, 2), (112, 3, 2), (7, 3, 2), (65, 3, 1)])
def test_same_padding_is_tensorflows(size, kernel, stride):
    before, after = same_padding(size, kernel, stride)
    out = math.ceil(size / stride)
    assert before + after == max((out - 1) * stride + kernel - size, 0)
    assert after - before in (0, 1)


@pytest.mark.parametrize("side", [63, 64, 65, 97])
def test_same_modules_give_ceil_of_side_over_stride(side):
    x = torch.rand(1, 2, side, side + 1)
    conv = SameConv2d(2, 3, 7, stride=2)
    pool = SameMaxPool2d(3, 2)
    expected = [math.ceil(side / 2), math.ceil((side + 1) / 2)]
    assert list(conv(x).shape[-2:]) == expected
    assert list(pool(x).shape[-2:]) == expected
    # The pool equals an explicit -inf pad (TF SAME) followed by an unpadded pool.
    (top, bottom), (left, right) = same_padding(side, 3, 2), same_padding(side + 1, 3, 2)
    padded = nn.functional.pad(x, (left, right, top, bottom), value=float("-inf"))
    assert torch.equal(pool(x), nn.functional.max_pool2d(padded, 3, 2))


def test_odd_input_sizes_run_end_to_end():
    model = small()
    with torch.no_grad():
        logits = model(torch.rand(2, 3, 71, 71))
    assert logits.shape == (2, 1008)


def test_truncated_forward_does_not_run_later_stages():
    model = small()
    calls: list[str] = []
    handles = [
        stage.register_forward_hook(lambda m, i, o, name=name: calls.append(name))
        for name, stage in model.stages.items()
    ]
    try:
        with torch.no_grad():
            out = model.forward_to(torch.rand(1, 3, 64, 64), ["mixed3b", "conv2d1"])
    finally:
        for handle in handles:
            handle.remove()
    assert set(out) == {"mixed3b", "conv2d1"}
    assert calls[-1] == "mixed3b"
    assert "mixed4a" not in calls and "logits" not in calls


@pytest.mark.parametrize("layer", ["conv2d2", "mixed3b", "mixed4c", "mixed5b"])
def test_logits_from_a_layer_equals_the_full_forward(layer):
    model = small(norm="batch")
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        activation = model.forward_to(images, [layer])[layer]
        assert torch.allclose(model.logits_from(layer, activation), model(images), atol=1e-6)


def test_relaxed_max_pool_keeps_values_and_changes_gradients():
    model = small()
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))

    def activation_and_gradient() -> tuple[torch.Tensor, torch.Tensor]:
        x = images.clone().requires_grad_(True)
        out = model.forward_to(x, ["mixed3a"])["mixed3a"]
        out.sum().backward()
        assert x.grad is not None
        return out.detach(), x.grad

    hard_value, hard_grad = activation_and_gradient()
    with relaxed_max_pool(model):
        soft_value, soft_grad = activation_and_gradient()
    assert torch.allclose(hard_value, soft_value, atol=1e-6)
    assert not torch.allclose(hard_grad, soft_grad, atol=1e-6)
    assert all(not m._forward_hooks for m in model.modules())
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 13


def test_preprocessing_ranges():
    images = torch.tensor([0.0, 1.0]).view(1, 1, 1, 2).expand(1, 3, 1, 2)
    lucid = build_inceptionv1(LUCID, width=0.1, input_size=32).preprocess(images)
    assert lucid.min() == -117 and lucid.max() == 138
    google = build_inceptionv1(TORCHVISION, width=0.1, input_size=32).preprocess(images)
    assert torch.allclose(google[..., 0], torch.tensor(-1.0), atol=1e-6)
    assert torch.allclose(google[..., 1], torch.tensor(1.0), atol=1e-6)


def test_norm_options_change_the_graph():
    lrn = build_inceptionv1(LUCID, width=0.1, input_size=32)
    batch = build_inceptionv1(LUCID, width=0.1, input_size=32, norm="batch")
    plain = build_inceptionv1(LUCID, width=0.1, input_size=32, norm="none")
    assert "localresponsenorm0" in lrn.stages and "localresponsenorm1" in lrn.stages
    assert "localresponsenorm0" not in batch.stages and "localresponsenorm0" not in plain.stages
    assert any(isinstance(m, nn.BatchNorm2d) for m in batch.modules())
    assert batch.stages["conv2d0"].conv.bias is None
    assert plain.stages["conv2d0"].conv.bias is not None


def test_random_init_is_seeded_and_leaves_the_global_generator_alone():
    torch.manual_seed(99)
    before = torch.random.get_rng_state()
    a = build_inceptionv1(LUCID, width=0.1, input_size=32, seed=7)
    assert torch.equal(torch.random.get_rng_state(), before)
    b = build_inceptionv1(LUCID, width=0.1, input_size=32, seed=7)
    c = build_inceptionv1(LUCID, width=0.1, input_size=32, seed=8)
    w = "stages.mixed4c.b3x3.conv.weight"
    assert torch.equal(a.state_dict()[w], b.state_dict()[w])
    assert not torch.equal(a.state_dict()[w], c.state_dict()[w])


def test_unknown_layer_lists_valid_ones_and_suggests_the_closest():
    model = build_inceptionv1(LUCID, width=0.1, input_size=32)
    with pytest.raises(UnknownNameError) as err:
        model.forward_to(torch.rand(1, 3, 32, 32), ["mixed4f"])
    message = err.value.message()
    assert "did you mean 'mixed4" in message
    assert "mixed5b" in message and "conv2d0" in message


@pytest.mark.parametrize(
    "changes, key",
    [({"norm": "group"}, "norm"), ({"width": 0}, "width"), ({"input_size": 8}, "input_size")],
)
def test_invalid_architecture_names_the_key(changes, key):
    with pytest.raises(AtlasError) as err:
        InceptionConfig(**changes)
    assert key in err.value.message() and "expected" in err.value.message()
