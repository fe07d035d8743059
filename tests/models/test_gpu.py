"""The models on a CUDA device agree with the CPU (the CUDA tests are marked gpu: deselected by
default, run with ``pytest -m gpu``; without a CUDA device they skip).

The attribution comparison (relaxed max pools, forward mode: what ``atlas compute`` runs on a
GPU) also runs on the CPU in the default suite, as a batch against its samples one at a time,
so the comparison itself is exercised everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from torch import Tensor

from generator.atlas.attribute import Attributor
from generator.models.base import AtlasModel
from generator.models.model_spec import parse_model_spec
from generator.models.registry import load_model

CPU = torch.device("cpu")


def on_cuda(test: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a test gpu, skip it without a CUDA device, and run it with exact float32 matmuls."""
    test = pytest.mark.usefixtures("exact_matmuls")(test)
    test = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")(test)
    return pytest.mark.gpu(test)


@pytest.fixture
def exact_matmuls() -> Iterator[None]:
    """TF32 would make GPU/CPU differences a matter of 1e-3; compare full float32 instead."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.cpu() - b.cpu()).abs().max() / b.abs().max().clamp_min(1e-30))


@on_cuda
@pytest.mark.parametrize(
    "spec",
    [
        "inceptionv1",
        "googlenet",
        "demo",
        parse_model_spec("r", {"torchvision": "resnet18", "weights": "random", "input_size": 96}),
    ],
)
def test_cuda_matches_cpu_for_every_layer(spec):
    cuda = torch.device("cuda")
    on_cpu = load_model(spec, device=CPU, weights="random")
    on_gpu = load_model(spec, device=cuda, weights="random")
    size = on_cpu.input_size
    images = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    layers = list(on_cpu.layer_names)
    with torch.no_grad():
        expected = on_cpu.forward_to(images, layers)
        got = on_gpu.forward_to(images.to(cuda), layers)
    for name in layers:
        assert got[name].device.type == "cuda"
        assert relative_error(got[name], expected[name]) < 1e-4, name


# --- attribution: relaxed max pools, forward mode ----------------------------------------------


def centre_attributions(model: AtlasModel, layer: str, images: Tensor, batch_size: int) -> Tensor:
    """The article's attributions ``[N, K]`` of the ``layer`` vector at the centre of each image
    (relaxed max pools, forward mode), ``batch_size`` images at a time, on the model's device."""
    device = next(model.parameters()).device
    attributor = Attributor(model, layer, smooth_maxpool=True, method="jvp")
    parts = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].to(device)
        with torch.no_grad():
            activation = model.forward_to(batch, [layer])[layer]
        h, w = activation.shape[-2:]
        positions = torch.tensor([[h // 2, w // 2]] * len(batch))
        parts.append(attributor(activation, positions))
    assert all(not m._forward_hooks for m in model.modules())  # the relaxation's hooks are gone
    return torch.cat(parts)


def assert_same_attributions(got: Tensor, expected: Tensor) -> None:
    """Equal up to float32 rounding (another summation order: a batch, another device): within
    1e-4 of the largest value, as the layer comparisons above, plus 1e-4 of each value."""
    scale = expected.abs().max().item()
    assert scale > 0, "degenerate reference: every attribution is zero"
    torch.testing.assert_close(got.cpu(), expected, rtol=1e-4, atol=1e-4 * scale)


def _images(n: int, size: int) -> Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))


def test_attributions_of_a_batch_match_each_image_alone() -> None:
    """The CPU counterpart of the CUDA comparison below: samples of a batch must not interact
    (relaxation, batch norm in eval mode), so a batch gives each image's own attributions."""
    model = load_model("demo", device=CPU)  # the committed weights: attributions far from zero
    images = _images(4, model.input_size)
    alone = centre_attributions(model, "mixed4c", images, batch_size=1)
    together = centre_attributions(model, "mixed4c", images, batch_size=4)
    assert together.shape == (4, len(model.labels))
    assert_same_attributions(together, alone)


@on_cuda
@pytest.mark.parametrize("name", ["inceptionv1", "demo"])
def test_cuda_attributions_match_the_cpu(name: str) -> None:
    cuda = torch.device("cuda")
    on_cpu = load_model(name, device=CPU, weights="random")
    on_gpu = load_model(name, device=cuda, weights="random")
    images = _images(2, on_cpu.input_size)
    expected = centre_attributions(on_cpu, "mixed4c", images, batch_size=2)
    got = centre_attributions(on_gpu, "mixed4c", images, batch_size=2)
    assert got.device.type == "cuda"
    assert_same_attributions(got, expected)
