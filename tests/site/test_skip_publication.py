"""A publication whose computed atlases need weights or images this machine lacks is left out
of a build, with a notice in place of each page and everything missing named; ``--strict``
makes it a failure (exit 2) that leaves site/ as it was."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from sitekit import CONFIG, make_project, snapshot, write

from generator.cli import main
from generator.config import load_config
from generator.errors import ContentError, SetupError
from generator.site.build import build
from generator.site.check import check_output, check_site

HEAVY_ATLASES = """\
[atlas.mixed4c]
model = "inceptionv1"
layer = "mixed4c"
dataset = "imagenet"

[experiment.patches]
model = "inceptionv1"
dataset = "imagenet"
source = "snorkel"
target = "scuba diver"
icon = { atlas = "mixed4c", query = { attributed_to = "scuba diver" } }
"""

HEAVY_ARTICLE = """\
---
title: The big atlas
description: mixed4c of InceptionV1.
---

## Layers

```atlas
id: mixed4c
```

```patch-results
experiment: patches
```
"""


@pytest.fixture
def no_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No InceptionV1 weights anywhere the lookup goes."""
    monkeypatch.setenv("ATLAS_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def two_publications(root: Path) -> Path:
    make_project(root)
    write(root / "atlas.toml", CONFIG + '\n[datasets.imagenet]\nfolder = "data/imagenet/train"\n')
    heavy = root / "content/heavy"
    write(heavy / "index.md", "---\ntitle: Heavy\n---\n\nSee [the atlas](big.md).\n")
    write(heavy / "big.md", HEAVY_ARTICLE)
    write(heavy / "atlases.toml", HEAVY_ATLASES)
    write(
        root / "content/study/links.md",
        "---\ntitle: Links\n---\n\n[Heavy](../heavy/index.md), [its layers](../heavy/big.md#layers).\n",
    )
    return root


MISSING = (
    "model inceptionv1: no weights for model 'inceptionv1'",
    "data set imagenet: image folder not found",
)


@pytest.mark.usefixtures("no_weights")
def test_without_weights_the_publication_is_left_out_with_a_notice(tmp_path: Path) -> None:
    root = two_publications(tmp_path / "p")
    said: list[str] = []
    report = build(load_config(root / "atlas.toml"), log=said.append)
    assert any("publication 'heavy' left out" in w for w in report.warnings)
    printed = "\n".join(said)
    assert "run `atlas weights fetch inceptionv1`" in printed  # the fix, in the build's output
    assert "data/imagenet/train" in printed
    site = root / "site"
    for page in ("heavy/index.html", "heavy/big.html"):
        text = (site / page).read_text()
        assert "Not built here." in text and all(html.escape(line) in text for line in MISSING)
        assert str(tmp_path) not in text  # no paths of the building machine
    assert "<title>The big atlas" in (site / "heavy/big.html").read_text()
    assert not (site / "atlases/mixed4c").exists() and (site / "atlases/grid/viewer.json").is_file()
    assert "Test site" in (site / "index.html").read_text()
    assert 'href="../heavy/big.html#layers"' in (site / "study/links.html").read_text()


@pytest.mark.usefixtures("no_weights")
def test_strict_makes_missing_weights_a_failure_that_writes_nothing(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    build(load_config(root / "atlas.toml"), strict=True, log=None)
    before = snapshot(root / "site")
    two_publications(root)
    with pytest.raises(SetupError) as info:
        build(load_config(root / "atlas.toml"), strict=True, log=None)
    text = info.value.message()
    assert "publication 'heavy' cannot be computed on this machine (2 missing)" in text
    assert all(line.split(": ", 1)[1] in text for line in MISSING)
    assert info.value.exit_code == 2
    assert snapshot(root / "site") == before


@pytest.mark.usefixtures("no_weights")
def test_atlas_build_strict_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = two_publications(tmp_path / "p")
    assert main(["--config", str(root / "atlas.toml"), "build", "--strict"]) == 2
    assert "no weights for model 'inceptionv1'" in capsys.readouterr().err
    assert main(["--config", str(root / "atlas.toml"), "build"]) == 0


@pytest.mark.usefixtures("no_weights")
def test_atlas_check_accepts_anchors_into_notice_pages_as_the_build_does(tmp_path: Path) -> None:
    root = two_publications(tmp_path / "p")
    config = load_config(root / "atlas.toml")
    build(config, log=None)  # accepts ../heavy/big.html#layers (a notice page stands in)
    site = root / "site"
    assert 'id="publication-skipped"' in (site / "heavy/big.html").read_text()
    report = check_site(
        config, log=lambda _: None
    )  # the built site: the same link, the same answer
    assert report.built_files > 0 and report.problems == []
    assert main(["--config", str(root / "atlas.toml"), "check"]) == 0
    # anchors into pages that were built are still checked
    links = site / "study/links.html"
    links.write_text(
        links.read_text().replace("</main>", '<a href="first-look.html#nowhere">x</a></main>')
    )
    with pytest.raises(ContentError, match=r"no anchor #nowhere in study/first-look\.html"):
        check_output(site)
