"""Atlas rendering on CUDA (``pytest -m gpu``): the same icons as the CPU within float noise,
mixed precision keeps fidelity, the batch heuristic reads device memory, resume works."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from generator.atlas.progress import Progress
from generator.icons.batching import MAX_BATCH, choose_batch_size
from generator.icons.render_icons import render_icons
from generator.icons.settings import RenderSettings

from ._render_kit import ConvNet, sample_grids

pytestmark = pytest.mark.gpu

LAYER = "mixed4a"


class Interrupted(Exception):
    """Stands in for Ctrl-C / a killed process."""


@pytest.fixture(scope="module")
def cuda() -> torch.device:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return torch.device("cuda")


@pytest.fixture(scope="module")
def grids() -> dict[int, Any]:
    return sample_grids(ConvNet(), LAYER, [2, 4], images=48)[2]


def run(
    model: ConvNet, grids: dict[int, Any], device: torch.device, folder: Path, **changes: Any
) -> dict[int, Any]:
    settings = RenderSettings(**{"icon_size": 32, "steps": 32, "tries": 1, **changes})
    return render_icons(
        model.to(device),
        LAYER,
        grids,
        whitening=None,
        settings=settings,
        run_dir=folder,
        key="gpu",
        device=device,
        progress=Progress(enabled=False),
    )


def test_cuda_icons_match_the_cpu_and_mixed_precision_keeps_fidelity(
    cuda: torch.device, grids: dict[int, Any], tmp_path: Path
) -> None:
    cpu = run(ConvNet(), grids, torch.device("cpu"), tmp_path / "cpu", channels_last=False)
    gpu = run(ConvNet(), grids, cuda, tmp_path / "gpu", channels_last=False)
    mixed = run(ConvNet(), grids, cuda, tmp_path / "bf16", autocast="bf16", channels_last=True)
    for size in grids:
        # same randomness; float differences (TF32 convolutions) may move pixels a little
        assert np.abs(gpu[size].fidelity - cpu[size].fidelity).mean() < 0.02
        assert abs(float(mixed[size].fidelity.mean() - cpu[size].fidelity.mean())) < 0.03


def test_batch_heuristic_reads_device_memory(cuda: torch.device) -> None:
    plan = choose_batch_size(ConvNet().to(cuda), LAYER, 32, cuda)
    assert 1 <= plan.size <= MAX_BATCH["cuda"] and "device memory" in plan.why


def test_an_interrupted_cuda_render_resumes(
    cuda: torch.device, grids: dict[int, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import generator.optvis.render as optvis

    whole = run(ConvNet(), grids, cuda, tmp_path / "whole", batch_size=5)
    real, calls = optvis.render, []

    def stop_after_one(*args: Any, **kwargs: Any) -> Any:
        if calls:
            raise Interrupted
        calls.append(len(kwargs["icon_seeds"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(optvis, "render", stop_after_one)
    with pytest.raises(Interrupted):
        run(ConvNet(), grids, cuda, tmp_path / "run", batch_size=5)
    monkeypatch.undo()
    resumed = run(ConvNet(), grids, cuda, tmp_path / "run", batch_size=7)
    for size in grids:
        assert np.array_equal(resumed[size].cells, whole[size].cells)
        assert np.abs(resumed[size].fidelity - whole[size].fidelity).max() < 0.02
