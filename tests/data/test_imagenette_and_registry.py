"""Imagenette offline (a present tree, a missing one) and data sets named in atlas.toml."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generator.data.folder import FolderSource
from generator.data.imagenette import imagenette_folder, open_imagenette
from generator.data.registry import DatasetSpec, dataset_spec, open_dataset
from generator.data.synthetic import SyntheticWorld
from generator.errors import AtlasError, ConfigError, SetupError, UnknownNameError

from .images import noise_rgb


def _fake_imagenette(root: Path) -> Path:
    folder = imagenette_folder(root, "val", "160px")
    for k, wnid in enumerate(("n01440764", "n03888257")):  # tench, parachute
        (folder / wnid).mkdir(parents=True)
        Image.fromarray(noise_rgb(20, 24, k)).save(folder / wnid / f"ILSVRC_{k}.JPEG")
    return folder


def test_an_unpacked_imagenette_is_used_without_network(tmp_path: Path) -> None:
    folder = _fake_imagenette(tmp_path)
    source = open_imagenette(tmp_path, split="val", size="160px", download=True)
    assert isinstance(source, FolderSource) and source.root == folder
    assert source.class_names == ("tench", "parachute")
    assert [source.label(i) for i in range(len(source))] == [0, 1]
    assert source.read(1).shape == (20, 24, 3)


def test_missing_imagenette_offline_says_what_where_and_how(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision.datasets.imagenette as tv

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no internet")

    monkeypatch.setattr(tv, "download_and_extract_archive", offline)
    with pytest.raises(SetupError) as caught:
        open_imagenette(tmp_path / "data")
    text = str(caught.value)
    assert caught.value.exit_code == 2
    assert str(tmp_path / "data" / "imagenette2-320" / "train") in text
    assert "no internet" in text and "machine with internet" in text and "folder =" in text
    with pytest.raises(SetupError, match="downloading is off"):
        open_imagenette(tmp_path / "data", download=False)
    with pytest.raises(ConfigError, match="unknown Imagenette size"):
        open_imagenette(tmp_path, size="64px")


def test_dataset_tables_are_validated_with_key_value_and_expectation() -> None:
    spec = dataset_spec("imagenet", {"folder": "~/imagenet/train", "resize": "center-crop"})
    assert spec == DatasetSpec(
        "imagenet",
        "folder",
        "center-crop",
        {"folder": "~/imagenet/train", "labels": "auto", "max_pixels": 89_478_485},
    )
    assert dataset_spec("synthetic").options == {"seed": 0, "size": 64, "count": 1_000_000}
    assert dataset_spec("nette", {"kind": "imagenette", "size": "160px"}).options["size"] == "160px"
    cases = [
        ({"folder": "x", "resise": "stretch"}, "did you mean 'resize'"),
        ({"folder": "x", "resize": "crop"}, "invalid value for 'resize'"),
        ({"kind": "synthetic", "size": "64"}, "an integer >= 8"),
        ({"kind": "synthetic", "count": True}, "an integer >= 1"),
        ({"kind": "imagenette", "size": 320}, '"320px"'),
        ({"kind": "tfds"}, "unknown data set kind"),
        ({"labels": "auto"}, "needs a folder or a kind"),
        ({"kind": "folder"}, "needs its folder"),
    ]
    for table, message in cases:
        with pytest.raises(ConfigError, match=message) as caught:
            dataset_spec("mine", table)
        assert "[datasets.mine]" in str(caught.value)


def test_open_dataset_by_name_or_spec(tmp_path: Path, class_tree: Path) -> None:
    tables = {
        "pics": {"folder": class_tree.name},
        "small": {"kind": "synthetic", "size": 16, "seed": 4, "count": 50},
    }
    pics = open_dataset("pics", tables=tables, cache_dir=tmp_path, base_dir=class_tree.parent)
    assert isinstance(pics, FolderSource) and pics.class_names == ("apple", "zebra")
    small = open_dataset("small", tables=tables, cache_dir=tmp_path)
    assert isinstance(small, SyntheticWorld) and (small.size, small.seed, len(small)) == (16, 4, 50)
    builtin = open_dataset("synthetic", tables={}, cache_dir=tmp_path)
    assert isinstance(builtin, SyntheticWorld) and len(builtin) == 1_000_000
    assert np.array_equal(builtin.read(3), SyntheticWorld().read(3))
    _fake_imagenette(tmp_path / "datasets")
    spec = dataset_spec("imagenette", {"split": "val", "size": "160px"})
    nette = open_dataset(spec, tables={}, cache_dir=tmp_path)  # default root: <cache>/datasets
    assert isinstance(nette, FolderSource) and len(nette) == 2
    with pytest.raises(UnknownNameError, match="did you mean 'pics'") as caught:
        open_dataset("picz", tables=tables, cache_dir=tmp_path)
    assert isinstance(caught.value, AtlasError) and "[datasets.picz]" in str(caught.value)
