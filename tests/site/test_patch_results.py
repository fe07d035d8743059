"""Patch-experiment results in articles: the ```` ```patch-results ```` block renders a results
file (format: generator/site/blocks/patch_results_block.py) as an accessible table and a figure of example
images with their top classes; missing or malformed results are errors naming the fix."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from generator.config import load_config
from generator.errors import ContentError
from generator.site.build import build

#: The article's reference table (METHOD.md 6), as results of this format would hold it.
PAIRS = [
    ("snorkel", "scuba diver", 827, 0.850, 0.654, 0.139, 0.042),
    ("grey whale", "great white shark", 874, 0.405, 0.188, 0.113, 0.043),
    ("frying pan", "wok & <pan>", 624, 0.449, 0.256, 0.183, 0.046),
]


def results_doc() -> dict[str, Any]:
    pairs = []
    for i, (source, target, correct, best, fixed, noise_best, noise_fixed) in enumerate(PAIRS):
        pairs.append(
            {
                "source": source,
                "target": target,
                "images_correct_before": correct,
                "best_per_image_rate": best,
                "fixed_rate": fixed,
                "noise_best_rate": noise_best,
                "noise_fixed_rate": noise_fixed,
                "n_patches": 10,
                "icon": f"icons/{i}.png",
                "examples": [
                    {
                        "image": f"examples/{i}-{e}.jpg",
                        "before": [[source, 0.91 - e / 10], [target, 0.03]],
                        "after": [[target, 0.713], [source, 0.12]],
                    }
                    for e in range(3)
                ],
            }
        )
    return {"format": 1, "experiment": "patches", "model": "InceptionV1", "seed": 7,
            "images_per_class": 1000, "pairs": pairs}  # fmt: skip


def write_experiment(folder: Path, doc: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(len(PAIRS)):
        (folder / "icons").mkdir(exist_ok=True)
        Image.new("RGB", (48, 48), (40 * i, 120, 200)).save(folder / f"icons/{i}.png")
        (folder / "examples").mkdir(exist_ok=True)
        for e in range(3):
            Image.new("RGB", (96, 96), (200, 60 * e, 40 * i)).save(folder / f"examples/{i}-{e}.jpg")
    path = folder / "results.json"
    path.write_text(json.dumps(doc))
    return path


BLOCK = """```patch-results
experiment: patches
examples: 2
caption: "Pasting an icon **flips** the class."
```
"""


def project(root: Path, block: str = BLOCK, doc: dict[str, Any] | None = None) -> Path:
    (root / "content/study").mkdir(parents=True, exist_ok=True)
    (root / "atlas.toml").write_text(
        '[site]\ntitle = "Patches"\nsite_url = "https://example.org/repo/"\n\n'
        '[paths]\noutput = "www/repo"\n'
    )
    (root / "content/study/index.md").write_text("---\ntitle: Study\n---\n\nThe study.\n")
    (root / "content/study/patches.md").write_text(
        f"---\ntitle: Patches\n---\n\nIntro.\n\n{block}\nAfter.\n"
    )
    write_experiment(root / "content/study/experiments/patches", doc or results_doc())
    return root


def build_it(root: Path) -> str:
    build(load_config(root / "atlas.toml"), strict=True, log=None)
    return (root / "www/repo/study/patches.html").read_text()


def test_results_render_as_a_table_and_examples(tmp_path: Path) -> None:
    page = build_it(project(tmp_path / "p"))
    table = page[page.index('<table class="patch-table">') : page.index("</table>")]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
    headers = re.findall(r'<th scope="col">(.*?)</th>', rows[0])
    assert headers == [
        "Source → target",
        "Patch",
        "Images correct before",
        "Best corner and size per image",
        "One fixed corner and size",
        "Noise patch (best / fixed)",
    ]
    body = [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S) for row in rows[1:]]
    assert [cells[0] for cells in body] == [
        "snorkel → scuba diver",
        "grey whale → great white shark",
        "frying pan → wok &amp; &lt;pan&gt;",  # escaped
    ]
    assert [cells[2:] for cells in body] == [
        ["827", "85.0%", "65.4%", "13.9% / 4.2%"],
        ["874", "40.5%", "18.8%", "11.3% / 4.3%"],
        ["624", "44.9%", "25.6%", "18.3% / 4.6%"],
    ]
    assert '<img class="patch-icon" src="experiments/patches/icons/0.png"' in body[0][1]
    assert "over 1,000 images per source class" in table
    # examples: two per pair (the block's limit), each with its top classes before and after
    examples = re.findall(
        r'<li class="patch-example">(.*?)</li>\s*(?=<li class="patch-example">|</ul>)', page, re.S
    )
    assert len(examples) == 6
    assert 'src="experiments/patches/examples/0-1.jpg"' in examples[1]
    tops = re.findall(
        r"<li( class=\"patch-target\")?><span>(.*?)</span> <span class=\"patch-p\">(.*?)</span>",
        examples[0],
    )
    target = ' class="patch-target"'  # the target class stands out in both lists
    assert tops == [("", "snorkel", "91.0%"), (target, "scuba diver", "3.0%"),
                    (target, "scuba diver", "71.3%"), ("", "snorkel", "12.0%")]  # fmt: skip
    assert "<dt>Before</dt>" in examples[0] and "<dt>After</dt>" in examples[0]
    assert "Pasting an icon <strong>flips</strong> the class." in page
    assert (
        "10 patch placements (corner and size) tried per image; model InceptionV1; seed 7." in page
    )
    # the images are published beside the page
    assert (tmp_path / "p/www/repo/study/experiments/patches/examples/2-1.jpg").is_file()


def test_changed_results_rebuild_the_page(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    assert "85.0%" in build_it(root)
    doc = results_doc()
    doc["pairs"][0]["best_per_image_rate"] = 0.5
    (root / "content/study/experiments/patches/results.json").write_text(json.dumps(doc))
    page = build_it(root)
    assert "50.0%" in page and "85.0%" not in page


def _break(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    target: Any = doc
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "key"),
    [
        ("format", 2, "format"),
        ("pairs.0.fixed_rate", 1.5, "pairs[0].fixed_rate"),
        ("pairs.1.images_correct_before", -3, "pairs[1].images_correct_before"),
        ("pairs.2.icon", "icons/missing.png", "pairs[2].icon"),
        ("pairs.0.icon", "../../patches.md", "pairs[0].icon"),
        ("pairs.0.examples.1.after", [["wok", "high"]], "pairs[0].examples[1].after"),
        ("pairs.0.target", "", "pairs[0].target"),
    ],
)
def test_malformed_results_name_the_file_and_key(
    tmp_path: Path, path: str, value: Any, key: str
) -> None:
    root = project(tmp_path / "p", doc=_break(results_doc(), path, value))
    with pytest.raises(ContentError) as info:
        build_it(root)
    assert f"malformed at {key}" in info.value.message()
    assert str(info.value.where).endswith(f"experiments/patches/results.json ({key})")


@pytest.mark.parametrize(
    ("block", "message", "line"),
    [
        (BLOCK.replace("experiment: patches", "experiment: nope"), "results are missing", 8),
        (BLOCK.replace("examples: 2", "examples: -1"), "'examples' is invalid", 9),
        (BLOCK.replace("examples: 2", "exmaples: 2"), "did you mean 'examples'?", 7),
        (BLOCK.replace("experiment: patches", "experiment: ../x"), "'experiment' is invalid", 8),
    ],
)
def test_bad_blocks_name_the_line_and_fix(
    tmp_path: Path, block: str, message: str, line: int
) -> None:
    root = project(tmp_path / "p", block=block)
    with pytest.raises(ContentError) as info:
        build_it(root)
    assert message in info.value.message()
    assert re.search(rf"patches\.md:{line}\b", str(info.value.where)), info.value.where
    if "missing" in message:
        assert "experiments/nope/results.json" in str(info.value.expected)
        assert "run the patch experiment" in str(info.value.fix)
