"""The render loop on a CUDA device (marked gpu: deselected by default, run with -m gpu)."""

from __future__ import annotations

import pytest
import torch

from generator.optvis import objectives as obj
from generator.optvis.render import render

from .conftest import TinyNet

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

SIZE = 24


def _goal(n: int = 4) -> obj.Objective:
    directions = torch.rand((n, 16), generator=torch.Generator().manual_seed(0))
    return obj.atlas_direction("conv3", 4 * directions) + 0.01 * obj.border_penalty()


def test_the_start_is_the_same_on_every_device() -> None:
    """Noise is drawn from CPU generators: zero steps give the same images on CPU and GPU
    (up to the rounding of cuFFT against the CPU's FFT)."""
    cpu = render(TinyNet(), _goal(), size=SIZE, steps=0, seed=3)
    gpu = render(TinyNet().cuda(), _goal(), size=SIZE, steps=0, seed=3)
    assert torch.allclose(cpu.images, gpu.images, atol=1e-6)
    assert torch.allclose(cpu.values, gpu.values, rtol=1e-4, atol=1e-6)


def test_cuda_render_runs_and_follows_the_cpu_render() -> None:
    model = TinyNet().cuda()
    result = render(model, _goal(), size=SIZE, steps=10, seed=1)
    assert result.images.device.type == "cpu" and result.values.device.type == "cpu"
    cpu = render(TinyNet(), _goal(), size=SIZE, steps=10, seed=1)
    # same randomness, float arithmetic of different kernels: close, not equal
    assert (result.images - cpu.images).abs().mean() < 0.02
    assert all(p.requires_grad for p in model.parameters())
    assert all(len(m._forward_hooks) == 0 for m in model.modules())


@pytest.mark.parametrize("amp", [torch.bfloat16, torch.float16])
def test_mixed_precision_and_channels_last_raise_the_objective(amp: torch.dtype) -> None:
    model = TinyNet().cuda()
    start = render(model, _goal(), size=SIZE, steps=0, seed=2)
    result = render(model, _goal(), size=SIZE, steps=10, seed=2, autocast=amp, channels_last=True)
    assert torch.all(result.values > start.values)
    assert all(p.is_contiguous() for p in model.parameters())


def test_a_cuda_generator_seeds_the_render() -> None:
    model = TinyNet().cuda()
    a = render(model, _goal(2), size=SIZE, steps=2, seed=torch.Generator("cuda").manual_seed(4))
    b = render(model, _goal(2), size=SIZE, steps=2, seed=torch.Generator("cuda").manual_seed(4))
    assert torch.allclose(a.images, b.images, atol=1e-5)
