"""The InceptionV1 publication (content/inceptionv1/) as committed: its specs and class names
fit the model, every page renders with stand-in atlases (every tour query resolves, every link
and anchor holds), and without weights or ImageNet it is left out with a notice, or fails the
build with --strict, while the rest of the site builds."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sitekit import snapshot
from tourkit import make_bundle

from generator.atlas.experiment_spec import ExperimentSpec
from generator.atlas.spec import parse_computed_atlas
from generator.bundle import AtlasBundle
from generator.cli import main
from generator.config import load_config
from generator.models.labels import lucid_labels
from generator.site import atlases as atlas_specs
from generator.site.build import build
from generator.site.experiments import read_experiments

ROOT = Path(__file__).resolve().parents[2]
PUBLICATION = ROOT / "content/inceptionv1"
LAYERS = ("mixed3b", "mixed4a", "mixed4b", "mixed4c", "mixed4d", "mixed4e", "mixed5b")


def copy_site(root: Path) -> Path:
    """The repository's atlas.toml with the InceptionV1 and getting-started publications."""
    (root / "content").mkdir(parents=True)
    shutil.copy(ROOT / "atlas.toml", root / "atlas.toml")
    shutil.copy(ROOT / "content/index.md", root / "content/index.md")
    for name in ("inceptionv1", "getting-started"):
        shutil.copytree(ROOT / "content" / name, root / "content" / name)
    return root


def tables() -> dict[str, Any]:
    import tomllib

    return tomllib.loads((PUBLICATION / "atlases.toml").read_text())


def query_classes() -> set[str]:
    """Every class name the publication's pages and specs name (tour queries, layers block)."""
    names: set[str] = set()
    for page in PUBLICATION.glob("*.md"):
        text = page.read_text()
        for listed in re.findall(r"top_class: \[([^\]]*)\]", text, re.S):
            names |= {n.strip() for n in listed.replace("\n", " ").split(",")}
        names |= {n.strip() for n in re.findall(r"attributed_to: ([^,}\n]+)", text)}
        names |= {n.strip() for n in re.findall(r"^class: (.+)$", text, re.M)}
    for table in tables()["atlas"].values():
        names |= set(table.get("classes", [])) | ({table["class"]} if "class" in table else set())
    for experiment in tables()["experiment"].values():
        for pair in experiment["pairs"]:
            names |= {pair["source"], pair["target"], pair["icon"]["query"]["attributed_to"]}
    return names


def test_specs_parse_and_name_the_models_classes() -> None:
    config = load_config(ROOT / "atlas.toml")
    specs = [
        parse_computed_atlas(atlas_id, table, "atlases.toml", config=config)
        for atlas_id, table in tables()["atlas"].items()
    ]
    assert {s.layer for s in specs if s.kind == "layer"} == set(LAYERS)
    assert {s.classes for s in specs if s.kind != "layer"} == {
        ("snorkel",),
        ("fireboat",),
        ("snorkel", "scuba diver"),
        ("grey whale", "great white shark"),
        ("frying pan", "wok"),
        ("fireboat", "streetcar"),
    }
    assert {(s.samples, s.positions, s.seed) for s in specs} == {(100_000, 1, 0)}  # one pass
    assert {s.grids for s in specs if s.kind == "layer"} == {(20, 40, 80)}
    (experiment,) = read_experiments(PUBLICATION / "atlases.toml")
    assert [(p.source, p.target) for p in experiment.pairs] == [
        ("snorkel", "scuba diver"),
        ("grey whale", "great white shark"),
        ("frying pan", "wok"),
    ]
    assert experiment.images_per_class == 1000 and experiment.noise_patches == 10
    names = query_classes()
    assert {"head cabbage", "steam locomotive", "golden retriever"} <= names
    lucid = set(lucid_labels())
    assert sorted(names - lucid) == []
    from torchvision.models import GoogLeNet_Weights

    torchvision = set(GoogLeNet_Weights.IMAGENET1K_V1.meta["categories"])
    assert sorted(names - torchvision) == []  # [models.inceptionv1] model = "googlenet" works too


def stand_in(root: Path, atlas_id: str, kind: str, classes: list[str]) -> AtlasBundle:
    """An 8 x 8 atlas whose cells cycle through ``classes`` as top classes, each cell
    attributing positively to all of them (so every query of the pages finds cells)."""
    labels = lucid_labels()
    index = [labels.index(name) for name in classes]
    cells = [(m % 8, m // 8, 10, [index[m % len(index)]]) for m in range(64)]
    attributions = np.zeros((64, len(labels)), dtype=np.float32)
    attributions[:, index] = 0.1
    for m, (_, _, _, top) in enumerate(cells):
        attributions[m, top[0]] = 1.0
    bundle = make_bundle(
        root / atlas_id, atlas_id, {8: cells}, labels, attributions={8: attributions}
    )
    info: dict[str, Any] = {"layer": "mixed5b", "model": "inceptionv1"}
    if kind == "comparison":
        info["axes"] = {"x": ["left", "right"], "y": "similar activations close together"}
    bundle = dataclasses.replace(bundle, kind=kind, info=info)
    bundle.save()
    return AtlasBundle.load(bundle.root)


def fake_experiment(folder: Path) -> Any:
    def run(spec: ExperimentSpec, icons: list[np.ndarray], **_: Any) -> Path:
        out = folder / spec.id
        (out / "icons").mkdir(parents=True, exist_ok=True)
        pairs = []
        for k, (pair, icon) in enumerate(zip(spec.pairs, icons, strict=True)):
            Image.fromarray(icon).save(out / f"icons/{k}.png")
            pairs.append(
                {
                    "source": pair.source,
                    "target": pair.target,
                    "images_correct_before": 800,
                    "best_per_image_rate": 0.5,
                    "fixed_rate": 0.25,
                    "noise_best_rate": 0.1,
                    "noise_fixed_rate": 0.05,
                    "n_patches": len(spec.placements()),
                    "icon": f"icons/{k}.png",
                    "examples": [],
                }
            )
        (out / "results.json").write_text(json.dumps({"format": 1, "pairs": pairs}))
        return out

    return run


def test_every_page_renders_with_stand_in_atlases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = copy_site(tmp_path / "site")
    classes = sorted(query_classes())
    bundles = {
        atlas_id: stand_in(tmp_path / "bundles", atlas_id, table.get("kind", "layer"), classes)
        for atlas_id, table in tables()["atlas"].items()
    }
    monkeypatch.setattr(atlas_specs, "computed_bundle", lambda spec, config: bundles[spec.id])
    import generator.atlas.experiments as experiments

    monkeypatch.setattr(experiments, "run_experiment", fake_experiment(tmp_path / "results"))
    report = build(load_config(root / "atlas.toml"), strict=True, log=None)
    assert report.warnings == ()
    site = root / "site/inceptionv1"
    pages = sorted(p.name for p in site.glob("*.html"))
    assert pages == [
        "building.html",
        "classes.html",
        "index.html",
        "layers.html",
        "overview.html",
        "patches.html",
    ]
    layers = (site / "layers.html").read_text()
    assert all(f'id="v1-{layer}"' in layers for layer in LAYERS if layer != "mixed4c")
    assert 'id="layers-mixed4c"' in layers and 'id="cabbage-layers"' in layers
    classes_page = (site / "classes.html").read_text()
    assert all(f'id="{i}"' in classes_page for i in ("v1-snorkel-scuba", "v1-pan-wok"))
    patches = (site / "patches.html").read_text()
    assert "snorkel → scuba diver" in patches and "85.0%" in patches  # the article's table too
    assert (site / "experiments/v1-patches/icons/2.png").is_file()
    assert (root / "site/getting-started/writing.html").is_file()


@pytest.fixture
def no_weights_no_imagenet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # [datasets.imagenet] is ~/data/...
    monkeypatch.setenv("ATLAS_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


@pytest.mark.usefixtures("no_weights_no_imagenet")
def test_without_weights_it_is_left_out_and_strict_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_site(tmp_path / "site")
    config = str(root / "atlas.toml")
    assert main(["--config", config, "build"]) == 0
    out = capsys.readouterr().out
    assert "publication 'inceptionv1' left out" in out
    assert "run `atlas weights fetch inceptionv1`" in out and "image folder not found" in out
    site = root / "site"
    overview = (site / "inceptionv1/overview.html").read_text()
    assert "Not built here." in overview and "no weights for model" in overview
    assert (site / "getting-started/writing.html").is_file()
    assert (site / "atlases/colour-grid/viewer.json").is_file()
    assert not any((site / "atlases").glob("v1-*"))
    before = snapshot(site)
    assert main(["--config", config, "build", "--strict"]) == 2
    err = capsys.readouterr().err
    assert "publication 'inceptionv1' cannot be computed on this machine (2 missing)" in err
    assert snapshot(site) == before
