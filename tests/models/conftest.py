"""Fixtures of the model tests: an isolated weights environment and reference networks."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from peers import missing_peer
from torch import nn


@pytest.fixture(autouse=True)
def weights_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test sees an empty TORCH_HOME and no ATLAS_WEIGHTS_DIR (never the real cache)."""
    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.delenv("ATLAS_WEIGHTS_DIR", raising=False)
    return home


@pytest.fixture(scope="session")
def lucent_module() -> object:
    """torch-lucent's module that defines its Lucid InceptionV1 (a dev-only dependency).

    Without it the conformance tests skip on a developer's machine, but fail in CI
    (``CI=true``, as ``.ci/run`` runs), where ``make test`` installs it: a missing peer must
    not hide the only independent check of the Lucid format."""
    try:
        importlib.import_module("lucent")
    except ImportError as error:
        missing_peer(f"torch-lucent is not importable ({error}): pip install -e '.[bench]'")
    return importlib.import_module("lucent.modelzoo.inceptionv1.InceptionV1")


@pytest.fixture(scope="session")
def lucent_reference(lucent_module: object) -> nn.Module:
    """torch-lucent's InceptionV1 with random weights drawn from a fixed seed, eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        model = lucent_module.InceptionV1(pretrained=False, redirected_ReLU=False)  # type: ignore[attr-defined]
    return model.eval()


class _CorrectedLRN:
    """Stands in for ``torch.nn.functional`` inside lucent's module: everything passes through
    except ``local_response_norm``, whose hard-coded (wrong) parameters are replaced by
    Lucid's: size 11, alpha 0.0011, beta 0.5, k 2 (METHOD.md section 7)."""

    def __getattr__(self, name: str) -> object:
        return getattr(torch.nn.functional, name)

    @staticmethod
    def local_response_norm(x: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        return torch.nn.functional.local_response_norm(x, 11, alpha=0.0011, beta=0.5, k=2.0)


@pytest.fixture
def corrected_lrn(lucent_module: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Within the test, lucent's InceptionV1 uses the correct LRN parameters."""
    monkeypatch.setattr(lucent_module, "F", _CorrectedLRN())
    yield
