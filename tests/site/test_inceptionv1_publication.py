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

from generator.atlas.spec import parse_computed_atlas
from generator.bundle import AtlasBundle
from generator.cli import main
from generator.config import load_config
from generator.experiments.spec import ExperimentSpec
from generator.models.labels import lucid_labels
from generator.site import atlases as atlas_specs
from generator.site.build import build
from generator.site.build_experiments import read_experiments
from generator.specs import read_spec_file

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
    (experiment,) = read_experiments(read_spec_file(PUBLICATION / "atlases.toml"))
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
    monkeypatch.setattr(
        atlas_specs, "computed_bundle", lambda spec, config, results: bundles[spec.id]
    )
    import generator.experiments.run as experiments

    config = load_config(root / "atlas.toml")
    # results land in the cache, as run_experiment's (a build remembers them by recipe there)
    monkeypatch.setattr(experiments, "run_experiment", fake_experiment(config.paths.cache / "x"))
    report = build(config, strict=True, log=None)
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


def shrink(text: str) -> str:
    """The publication's atlases.toml at toy scale: the same atlases, kinds, classes, icon
    queries and experiment, on 24 images, tiny icons and t-SNE layouts."""
    tiny = 'render = { preset = "tiny", steps = 2, icon_size = 24, examples = 1, example_px = 16 }'
    blocks = []
    for block in text.split("\n\n"):
        if "[atlas." in block:
            block = re.sub(r"render = \{[^}]*\}\n?", "", block).rstrip()
            block = block.replace("samples = 100000", "samples = 24")
            block = block.replace("grids = [20, 40, 80]", "grids = [2, 4]")
            block += f'\n{tiny}\nlayout = {{ method = "tsne", perplexity = 5 }}\nmin_count = 0'
            if "kind =" in block:
                block += "\ngrids = [2]\nfilter = { top = 12 }"
        blocks.append(block)
    text = "\n\n".join(blocks)
    for old, new in (
        ("images_per_class = 1000", "images_per_class = 4"),
        ("sizes = [0.2, 0.3, 0.4, 0.5]", "sizes = [0.4]"),
        ("positions = [[0, 0], [1, 0], [0, 1], [1, 1]]", "positions = [[1, 1]]"),
        ("noise_patches = 10", "noise_patches = 1"),
        ("examples = 4\n", "examples = 1\n"),
    ):
        text = text.replace(old, new)
    return text


def random_inception(path: Path, positive: list[str]) -> None:
    """Random Lucid-format weights whose logits of ``positive`` classes read mixed5b with
    non-negative weights (random weights give each class one sign for every image; these
    classes must have samples attributed to them)."""
    import torch

    from generator.models.formats import export_state_dict
    from generator.models.inception import LUCID, build_inceptionv1

    torch.manual_seed(0)
    labels = lucid_labels()
    state = export_state_dict(build_inceptionv1(LUCID, labels=labels), "lucid")
    weight = state["softmax2_pre_activation_matmul.weight"]  # [1008, 1024]
    for name in positive:
        weight[labels.index(name)] = weight[labels.index(name)].abs() * 3
    torch.save(state, path)


def fake_imagenet(folder: Path, classes: list[str]) -> None:
    """Six synthetic images per class, in WordNet-id folders as ImageNet's train/."""
    from generator.data.synthetic import SyntheticWorld
    from generator.models.labels import lucid_classes

    wnid = {name: w for w, name in lucid_classes() if w}
    world = SyntheticWorld(size=64, count=1000)
    for k, name in enumerate(classes):
        (folder / wnid[name]).mkdir(parents=True)
        for i in range(6):
            image = Image.fromarray(world.read(6 * k + i)).resize((96, 80))
            image.save(folder / wnid[name] / f"{i}.JPEG")


@pytest.mark.slow
def test_the_publication_computes_on_random_weights_and_toy_data(tmp_path: Path) -> None:
    """The mechanics end to end (several minutes on a CPU): every atlas, class atlas,
    comparison and the patch experiment of the committed specs, computed with InceptionV1
    itself (random weights) from a toy ImageNet folder, then the pages (tour stops made
    rectangles: random weights label no cell as a dog)."""
    from threadpoolctl import threadpool_limits

    root = copy_site(tmp_path / "site")
    classes = sorted({c for t in tables()["atlas"].values() for c in t.get("classes", [])})
    random_inception(tmp_path / "inception5h.pth", classes)
    fake_imagenet(tmp_path / "imagenet", classes)
    config = (root / "atlas.toml").read_text()
    config = config.replace('folder = "~/data/imagenet/train"', f'folder = "{tmp_path}/imagenet"')
    config = config.replace('device = "auto"', 'device = "cpu"\nthreads = 1')
    config += f'\n[models.inceptionv1]\nweights = "{tmp_path}/inception5h.pth"\n'
    (root / "atlas.toml").write_text(config)
    spec = root / "content/inceptionv1/atlases.toml"
    spec.write_text(shrink(spec.read_text()))
    for page in (root / "content/inceptionv1").glob("*.md"):
        text = re.sub(r"query: \{[^}]*\}", "rect: [0, 0, 24, 24]", page.read_text())
        text = re.sub(r"\n *mark: [^\n]*", "", text)
        text = text.replace(
            "class: head cabbage\n",
            "class: head cabbage\nviews: {"
            + ", ".join(
                f"v1-{layer}: [0, 0, 48, 48]" for layer in ("mixed3b", "mixed4c", "mixed5b")
            )
            + "}\n",
        )
        page.write_text(text)
    with threadpool_limits(1):
        report = build(load_config(root / "atlas.toml"), strict=True, log=None)
    assert report.atlases == 14  # 13 computed + getting-started's image
    site = root / "site"
    for atlas_id, table in tables()["atlas"].items():
        manifest = json.loads((site / "atlases" / atlas_id / "viewer.json").read_text())
        assert manifest["kind"] == table.get("kind", "layer")
    manifest = json.loads((site / "atlases/v1-pan-wok/viewer.json").read_text())
    assert manifest["info"]["axes"]["x"] == ["frying pan", "wok"]
    results = json.loads((site / "inceptionv1/experiments/v1-patches/results.json").read_text())
    assert [p["source"] for p in results["pairs"]] == ["snorkel", "grey whale", "frying pan"]
    assert all(p["images_drawn"] == 4 for p in results["pairs"])
    assert "snorkel → scuba diver" in (site / "inceptionv1/patches.html").read_text()
