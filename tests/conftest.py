"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: The project root (the folder holding pyproject.toml).
ROOT = Path(__file__).resolve().parent.parent

#: Read-only data beside the checkout; absent on a fresh clone, so tests using it skip.
SHARED = ROOT.parent / "shared"

#: Where tests leave artifacts a person should look at (screenshots, sample atlases).
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the checkout; tests that need it skip cleanly when it is absent."""
    if not (SHARED / "docs").is_dir():
        pytest.skip("../shared is not present (fresh clone): skipping a test that uses it")
    return SHARED


@pytest.fixture(scope="session")
def reference_atlas(shared_dir: Path) -> Path:
    """The article's published 20x20 mixed4c atlas (1600 px, 80 px cells)."""
    path = shared_dir / "reference" / "distill_mixed4c_grid20_1M.jpg"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return path


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """torch on one CPU thread for the test, restored afterwards: the tests' tensors are tiny,
    and two OpenMP threads on a busy 2-core machine were measured 5x slower than one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The demo publication built at toy scale, once per session (tests/site/demokit.py):
    the site tests of it and the browser tests share one build (~35 s of CPU)."""
    if str(ROOT / "tests/site") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests/site"))
    from demokit import build_demo

    return build_demo(tmp_path_factory.mktemp("demo-build") / "project")


def pytest_configure(config: pytest.Config) -> None:
    # Tests are small; two threads per process keeps the suite predictable on 2-core machines.
    os.environ.setdefault("OMP_NUM_THREADS", "2")
