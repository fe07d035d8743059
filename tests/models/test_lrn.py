"""Our LocalResponseNorm is torch's function (faster on the CPU), values and gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from generator.models.layers import (
    LRN_ALPHA,
    LRN_BETA,
    LRN_K,
    LRN_SIZE,
    LocalResponseNorm,
    channel_window_sum,
)


@pytest.mark.parametrize("channels", [1, 5, 11, 64, 192])
def test_lrn_matches_torch_in_value_and_gradient(channels: int) -> None:
    generator = torch.Generator().manual_seed(channels)
    x = (torch.randn(2, channels, 5, 4, generator=generator) * 80).relu().requires_grad_(True)
    ours = LocalResponseNorm()(x)
    reference = nn.functional.local_response_norm(
        x.double(), LRN_SIZE, alpha=LRN_ALPHA, beta=LRN_BETA, k=LRN_K
    )
    error = (ours.double() - reference).abs().max() / reference.abs().max()
    assert error.item() < 1e-6
    weights = torch.randn(ours.shape, generator=generator, dtype=torch.float64)
    (grad,) = torch.autograd.grad((ours.double() * weights).sum(), x)
    (expected,) = torch.autograd.grad((reference * weights).sum(), x)
    assert ((grad.double() - expected).abs().max() / expected.abs().max()).item() < 1e-5


def test_lrn_with_another_beta_uses_pow() -> None:
    lrn = LocalResponseNorm()
    lrn.beta = 0.75
    x = torch.rand(1, 7, 3, 3) * 10
    expected = nn.functional.local_response_norm(x, LRN_SIZE, alpha=LRN_ALPHA, beta=0.75, k=LRN_K)
    torch.testing.assert_close(lrn(x), expected)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 11, 13])
def test_channel_window_sum_is_a_sliding_sum(n: int) -> None:
    padded = torch.randn(2, 6 + n - 1, 2, 2, dtype=torch.float64)
    direct = torch.stack([padded[:, c : c + n].sum(1) for c in range(6)], 1)
    torch.testing.assert_close(channel_window_sum(padded, n), direct)
