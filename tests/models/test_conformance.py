"""Both weight formats load into our InceptionV1 and reproduce the reference networks' layers."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from generator.models.formats import export_state_dict, load_in_format
from generator.models.inception import LAYER_NAMES, LUCID, TORCHVISION, build_inceptionv1
from generator.models.layers import LRN_ALPHA, LRN_BETA, LRN_K, LRN_SIZE

#: Lucid names of the layers torch-lucent exposes as modules (ReLUs and concatenations).
LUCENT_LAYERS = [name for name in LAYER_NAMES if name != "logits"]

#: torchvision module -> our layer name.
TORCHVISION_LAYERS = {
    "conv1": "conv2d0",
    "conv2": "conv2d1",
    "conv3": "conv2d2",
    **{
        f"inception{b}": f"mixed{b}" for b in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")
    },
    "fc": "logits",
}


def capture(model: nn.Module, modules: dict[str, str]) -> tuple[dict[str, Tensor], list]:
    """Forward hooks storing the output of ``model.<path>`` as ``outputs[name]``."""
    outputs: dict[str, Tensor] = {}
    handles = []
    for path, name in modules.items():

        def hook(module: nn.Module, inputs: object, output: Tensor, name: str = name) -> None:
            outputs[name] = output

        handles.append(model.get_submodule(path).register_forward_hook(hook))
    return outputs, handles


def relative_error(ours: Tensor, reference: Tensor) -> float:
    return float((ours - reference).abs().max() / reference.abs().max().clamp_min(1e-30))


def test_lucid_state_dict_reproduces_lucent_layers(lucent_reference, corrected_lrn):
    """A state_dict of torch-lucent's (random) InceptionV1 loads into ours, and every layer
    matches lucent's (with its LRN corrected) at 224 px, where its fixed pads are TF SAME."""
    ours = build_inceptionv1(LUCID)
    load_in_format(ours, lucent_reference.state_dict(), "lucid", where="lucent")
    ours.eval()
    modules = {name: name for name in LUCENT_LAYERS}
    modules["softmax2_pre_activation_matmul"] = "logits"
    reference, handles = capture(lucent_reference, modules)
    images = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad():
            lucent_reference(images * 255 - 117)
            got = ours.forward_to(images, list(LAYER_NAMES))
    finally:
        for handle in handles:
            handle.remove()
    for name in LAYER_NAMES:
        assert got[name].shape == reference[name].shape, name
        assert reference[name].abs().max() > 0, f"{name}: degenerate reference"
        assert relative_error(got[name], reference[name]) < 1e-5, name


def test_lucent_lrn_parameters_are_wrong_and_ours_are_lucids(lucent_reference):
    """Without the correction lucent's conv2d1 differs from ours (its LRN is size 9, k 1)."""
    assert (LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K) == (11, 0.0011, 0.5, 2.0)
    ours = build_inceptionv1(LUCID).eval()
    load_in_format(ours, lucent_reference.state_dict(), "lucid", where="lucent")
    stop = RuntimeError("stop after conv2d1")
    seen: dict[str, Tensor] = {}

    def hook(module: nn.Module, inputs: object, output: Tensor) -> None:
        seen["conv2d1"] = output
        raise stop

    handle = lucent_reference.conv2d1.register_forward_hook(hook)
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    try:
        with torch.no_grad(), pytest.raises(RuntimeError, match="stop after conv2d1"):
            lucent_reference(images * 255 - 117)
    finally:
        handle.remove()
    with torch.no_grad():
        mine = ours.forward_to(images, ["conv2d1"])["conv2d1"]
    assert relative_error(mine, seen["conv2d1"]) > 1e-3


def test_lucid_export_round_trips_to_lucent_keys(lucent_reference):
    ours = build_inceptionv1(LUCID, seed=3)
    exported = export_state_dict(ours, "lucid")
    assert set(exported) == set(lucent_reference.state_dict())
    assert exported["mixed4a_3x3_pre_relu_conv.weight"].shape == (204, 96, 3, 3)
    assert exported["softmax2_pre_activation_matmul.weight"].shape == (1008, 1024)
    again = build_inceptionv1(LUCID, seed=4)
    load_in_format(again, exported, "lucid", where="export")
    for key, value in ours.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key


def randomize_batch_norm(model: nn.Module, generator: torch.Generator) -> None:
    """Non-trivial batch-norm statistics, so the comparison exercises them."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.rand(n, generator=generator) - 0.5)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.rand(n, generator=generator) * 0.4 - 0.2)


@pytest.mark.parametrize("transform_input", [True, False])
def test_torchvision_state_dict_reproduces_googlenet(transform_input):
    """torchvision's googlenet and ours agree on every mapped layer and the logits."""
    from torchvision.models import googlenet

    generator = torch.Generator().manual_seed(5)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        reference = googlenet(
            weights=None, aux_logits=False, init_weights=True, transform_input=transform_input
        )
    randomize_batch_norm(reference, generator)
    reference = reference.eval()
    preprocess = "googlenet" if transform_input else "imagenet"
    ours = build_inceptionv1(TORCHVISION, preprocess=preprocess)
    load_in_format(ours, reference.state_dict(), "torchvision", where="torchvision")
    ours = ours.eval()
    outputs, handles = capture(reference, TORCHVISION_LAYERS)
    # 95 px: odd sides exercise the ceil-mode pools' partial windows.
    images = torch.rand(2, 3, 95, 95, generator=generator)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    try:
        with torch.no_grad():
            reference_logits = reference((images - mean) / std)
            got = ours.forward_to(images, list(LAYER_NAMES))
    finally:
        for handle in handles:
            handle.remove()
    # Same kernels in the same order: float32 agrees to rounding.
    assert relative_error(got["logits"], reference_logits) < 1e-5
    for name in LAYER_NAMES:
        assert got[name].shape == outputs[name].shape, name
        assert relative_error(got[name], outputs[name]) < 1e-5, name
    assert got["mixed4a"].shape[1] == 512


def test_torchvision_files_with_aux_heads_and_old_batch_norm_keys_load():
    """Published googlenet files carry aux1/aux2 (ignored) and may lack num_batches_tracked."""
    from torchvision.models import googlenet

    reference = googlenet(weights=None, aux_logits=True, init_weights=False)
    state = {k: v for k, v in reference.state_dict().items() if "num_batches_tracked" not in k}
    assert any(k.startswith("aux1.") for k in state)
    ours = build_inceptionv1(TORCHVISION)
    load_in_format(ours, state, "torchvision", where="file")
    assert torch.equal(ours.stages["logits"].fc.weight, reference.fc.weight)
