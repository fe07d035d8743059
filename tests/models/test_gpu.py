"""The models on a CUDA device agree with the CPU (run with ``pytest -m gpu``)."""

from __future__ import annotations

import pytest
import torch

from generator.models.base import relaxed_max_pool
from generator.models.registry import load_model
from generator.models.spec import parse_model_spec

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def exact_matmuls():
    """TF32 would make GPU/CPU differences a matter of 1e-3; compare full float32 instead."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.cpu() - b.cpu()).abs().max() / b.abs().max().clamp_min(1e-30))


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


def test_relaxed_max_pool_and_forward_mode_on_cuda():
    cuda = torch.device("cuda")
    model = load_model("inceptionv1", device=cuda, weights="random")
    images = torch.rand(2, 3, 224, 224, device=cuda)
    with torch.no_grad():
        activation = model.forward_to(images, ["mixed4c"])["mixed4c"]
    tangent = torch.zeros_like(activation)
    tangent[:, :, 7, 7] = activation[:, :, 7, 7]
    with relaxed_max_pool(model):
        logits, jvp = torch.func.jvp(
            lambda a: model.logits_from("mixed4c", a), (activation,), (tangent,)
        )
    assert logits.shape == jvp.shape == (2, 1008)
    assert torch.isfinite(jvp).all()
    assert all(not m._forward_hooks for m in model.modules())
