"""load_model: weights found, checked and digested; clear errors when they are not there."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

from generator.cache import file_digest
from generator.errors import AtlasError, UnknownNameError, WeightsError
from generator.models import registry
from generator.models.formats import export_state_dict
from generator.models.inception import LUCID, TORCHVISION, build_inceptionv1
from generator.models.model_spec import WeightSource, parse_model_spec

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def lucid_file(tmp_path_factory) -> Path:
    """A Lucid-format state_dict (random weights, seed 11) saved as a file."""
    path = tmp_path_factory.mktemp("weights") / "inception5h.pth"
    torch.save(export_state_dict(build_inceptionv1(LUCID, seed=11), "lucid"), path)
    return path


def frozen(model: torch.nn.Module) -> bool:
    return not model.training and not any(p.requires_grad for p in model.parameters())


def test_lucid_weights_load_from_torch_home(lucid_file, weights_env):
    target = weights_env / "hub" / "checkpoints" / "inception5h.pth"
    target.parent.mkdir(parents=True)
    target.write_bytes(lucid_file.read_bytes())
    model = registry.load_model("inceptionv1", device=CPU)
    assert frozen(model)
    assert model.weights_digest == file_digest(target)
    assert model.identity() == f"inceptionv1:{file_digest(target)}"
    assert model.labels[0] == "dummy" and model.labels[1] == "kit fox"
    assert model.labels[1000] == "dumbbell" and len(model.labels) == 1008
    expected = export_state_dict(build_inceptionv1(LUCID, seed=11), "lucid")
    got = export_state_dict(model, "lucid")
    assert torch.equal(
        got["mixed4c_1x1_pre_relu_conv.weight"], expected["mixed4c_1x1_pre_relu_conv.weight"]
    )


def test_missing_lucid_weights_say_where_we_looked_and_how_to_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("ATLAS_WEIGHTS_DIR", str(tmp_path / "mine"))
    with pytest.raises(WeightsError) as err:
        registry.load_model("inceptionv1", device=CPU)
    message = err.value.message()
    assert err.value.exit_code == 2
    assert str(tmp_path / "mine" / "inception5h.pth") in message
    assert "hub/checkpoints/inception5h.pth" in message
    assert "atlas weights fetch inceptionv1" in message
    assert "[models.inceptionv1]" in message
    assert "conv2d0_pre_relu_conv.weight" in message  # what we expected


def test_wrong_state_dict_names_the_keys_and_shapes(lucid_file, tmp_path):
    state = torch.load(lucid_file, weights_only=True)
    state["mixed4a_3x3_pre_relu_conv.weight"] = torch.zeros(208, 96, 3, 3)  # torchvision's 4a
    del state["conv2d0_pre_relu_conv.bias"]
    state["aux_logits.weight"] = torch.zeros(3)
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    with pytest.raises(WeightsError) as err:
        registry.load_model("inceptionv1", device=CPU, weights=bad)
    message = err.value.message()
    assert str(bad) in message
    assert "1 missing: conv2d0_pre_relu_conv.bias [64]" in message
    assert "1 unexpected: aux_logits.weight [3]" in message
    assert (
        "mixed4a_3x3_pre_relu_conv.weight is [208, 96, 3, 3], expected [204, 96, 3, 3]" in message
    )
    assert "atlas weights fetch inceptionv1" in message


def test_a_torchvision_file_given_as_lucid_weights_is_rejected(tmp_path):
    file = tmp_path / "googlenet.pth"
    torch.save(
        export_state_dict(build_inceptionv1(TORCHVISION, width=0.1, input_size=32), "torchvision"),
        file,
    )
    with pytest.raises(
        WeightsError, match=r"missing: conv2d0_pre_relu_conv.weight .*\(\+\d+ more\)"
    ):
        registry.load_model("inceptionv1", device=CPU, weights=file)


def test_unreadable_weights_file(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read the weights file"):
        registry.load_model("inceptionv1", device=CPU, weights=junk)


def test_googlenet_from_a_local_file(tmp_path):
    from torchvision.models import googlenet

    file = tmp_path / "googlenet-local.pth"
    torch.save(googlenet(weights=None, aux_logits=True, init_weights=False).state_dict(), file)
    spec = parse_model_spec("googlenet", {"weights": str(file)})
    model = registry.load_model(spec, device=CPU)
    assert frozen(model)
    assert model.labels[0] == "tench" and len(model.labels) == 1000
    assert model.layer("mixed4a").channels == 512
    assert model.weights_digest == file_digest(file)


def test_googlenet_offline_first_use_is_a_clear_error(monkeypatch):
    offline = WeightSource(
        url="http://127.0.0.1:9/googlenet-1378be20.pth",
        filename="googlenet-1378be20.pth",
        sha256_prefix="1378be20",
    )
    monkeypatch.setattr(registry, "GOOGLENET_SOURCE", offline)
    with pytest.raises(WeightsError) as err:
        registry.load_model("googlenet", device=CPU)
    assert "could not download" in err.value.message() and "needs internet" in err.value.message()
    with pytest.raises(WeightsError, match="no weights for model 'googlenet'"):
        registry.load_model("googlenet", device=CPU, download_missing=False)


def test_random_weights_for_benchmarks():
    model = registry.load_model("inceptionv1", device=CPU, weights="random")
    assert frozen(model) and model.weights_digest == "random-init-seed0"
    spec = parse_model_spec(
        "resnet", {"torchvision": "resnet18", "weights": "random", "input_size": 64}
    )
    resnet = registry.load_model(spec, device=CPU)
    assert frozen(resnet) and resnet.layer_names == (
        "layer1",
        "layer2",
        "layer3",
        "layer4",
        "logits",
    )
    assert resnet.labels[0] == "tench" and resnet.input_size == 64


def test_torchvision_weights_file_of_another_architecture(tmp_path):
    from torchvision.models import resnet18

    file = tmp_path / "r18.pth"
    torch.save(resnet18(weights=None).state_dict(), file)
    spec = parse_model_spec("r", {"torchvision": "resnet34", "weights": str(file)})
    with pytest.raises(WeightsError, match=r"missing: layer1\.2\.conv1\.weight"):
        registry.load_model(spec, device=CPU)


def test_unknown_model_and_unknown_torchvision_architecture():
    with pytest.raises(UnknownNameError, match="did you mean 'googlenet'"):
        registry.load_model("googlnet", device=CPU)
    with pytest.raises(UnknownNameError, match="did you mean 'resnet50'"):
        registry.load_model("torchvision:resnet05", device=CPU, weights="random")


def test_user_entry_point(tmp_path, monkeypatch):
    (tmp_path / "my_models.py").write_text(
        textwrap.dedent(
            """
            import torch
            from torch import nn
            from generator.models.hooked import UserModel

            def tiny(classes=3, checkpoint=None):
                torch.manual_seed(0)
                net = nn.Sequential(
                    nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                    nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
                    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, classes),
                )
                return UserModel(
                    module=net,
                    layers={"early": "1", "late": "3"},
                    preprocess=lambda images: images * 2 - 1,
                    labels=[f"thing {i}" for i in range(classes)],
                    input_size=32,
                    weights_file=checkpoint,
                )
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    checkpoint = tmp_path / "ckpt.bin"
    checkpoint.write_bytes(b"weights")
    spec = parse_model_spec(
        "mine",
        {"entry": "my_models:tiny", "options": {"classes": 4, "checkpoint": str(checkpoint)}},
    )
    model = registry.load_model(spec, device=CPU)
    assert frozen(model)
    assert [(i.name, i.channels, i.size) for i in model.layer_infos] == [
        ("early", 8, 32),
        ("late", 16, 16),
        ("logits", 4, 1),
    ]
    assert model.weights_digest == file_digest(checkpoint)
    out = model.forward_to(torch.rand(2, 3, 32, 32), ["late"])
    assert out["late"].shape == (2, 16, 16, 16)


def test_broken_entry_point_is_a_setup_error():
    spec = parse_model_spec("mine", {"entry": "no_such_package_here:build"})
    with pytest.raises(AtlasError) as err:
        registry.load_model(spec, device=CPU)
    assert err.value.exit_code == 2 and "cannot import the model entry point" in err.value.message()


def test_random_demo_model_has_one_logit_per_class_of_the_world():
    from generator.data.world import CLASS_NAMES

    model = registry.load_model("demo", device=CPU, weights="random")
    assert model.labels == CLASS_NAMES
    logits = model(torch.rand(2, 3, model.input_size, model.input_size))
    assert logits.shape == (2, len(CLASS_NAMES))
