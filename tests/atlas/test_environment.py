"""The compute environment: made once from atlas.toml, opens models and data one way."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from generator.atlas.environment import BATCH_SIZE, ComputeEnvironment
from generator.config import ComputeConfig
from generator.errors import SetupError, UnknownNameError


def config(tmp_path: Path, **compute: object) -> SimpleNamespace:
    return SimpleNamespace(
        compute=ComputeConfig(**compute),  # type: ignore[arg-type]
        models={"demo": {"weights": "random"}},
        datasets={"shapes": {"kind": "synthetic", "count": 24, "size": 32}},
        paths=SimpleNamespace(cache=tmp_path / "cache"),
        root=tmp_path,
    )


def test_from_config_takes_compute_paths_and_tables(tmp_path: Path) -> None:
    env = ComputeEnvironment.from_config(config(tmp_path, device="cpu", threads=1, workers=0))
    assert env.device == torch.device("cpu") and env.threads == 1
    assert env.cache == tmp_path / "cache" and env.root == tmp_path
    assert (env.batch_size, env.workers) == (BATCH_SIZE, 0)  # batch_size absent: the default
    assert dict(env.models) == {"demo": {"weights": "random"}}


def test_a_device_override_wins_and_an_absent_gpu_is_a_setup_error(tmp_path: Path) -> None:
    assert ComputeEnvironment.from_config(
        config(tmp_path, device="auto"), device="cpu"
    ).device == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(SetupError, match="CUDA is not available"):
            ComputeEnvironment.from_config(config(tmp_path, device="cuda"))


def test_models_and_data_open_from_the_tables(tmp_path: Path) -> None:
    env = ComputeEnvironment.from_config(config(tmp_path, device="cpu"))
    model = env.open_model("demo")
    assert next(model.parameters()).device == torch.device("cpu")
    source, resize = env.open_data("shapes")
    assert len(source) == 24 and isinstance(resize, str)
    with pytest.raises(UnknownNameError, match="shapes"):
        env.open_data("shapez")  # the message lists the known names


def test_an_image_folder_is_listed_once_per_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every atlas computed with one environment shares its data sets: a folder of a million
    images is listed once, not once per atlas; a new environment lists it again."""
    from PIL import Image

    import generator.data.folder as folder_module

    for name in ("a", "b"):
        (tmp_path / "images" / name).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "images" / name / "1.png")
    listed: list[Path] = []
    real_scan = folder_module.scan

    def counting_scan(root: Path, *args: object) -> list[tuple[str, int, int]]:
        listed.append(root)
        return real_scan(root, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(folder_module, "scan", counting_scan)
    tables = config(tmp_path, device="cpu")
    tables.datasets = {"pics": {"folder": str(tmp_path / "images")}}
    env = ComputeEnvironment.from_config(tables)
    first = env.open_data("pics")
    assert env.open_data("pics") is first and len(first[0]) == 2
    assert len(listed) == 1
    ComputeEnvironment.from_config(tables).open_data("pics")
    assert len(listed) == 2


def test_threads_capped_sets_and_restores_torch_threads(tmp_path: Path) -> None:
    env = ComputeEnvironment.from_config(config(tmp_path, device="cpu", threads=1))
    before = torch.get_num_threads()
    with env.threads_capped():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
