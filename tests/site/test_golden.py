"""Golden output: a fresh build of tests/site/golden/src must equal tests/site/golden/expected.

Regenerate after an intended change (see tests/site/golden/README.md):
``ATLAS_UPDATE_GOLDEN=1 pytest tests/site/test_golden.py -p no:cacheprovider``.
"""

from __future__ import annotations

import difflib
import os
import shutil
from pathlib import Path

from sitekit import draw_grid

from generator.config import load_config
from generator.site.build import build

GOLDEN = Path(__file__).resolve().parent / "golden"

#: Output files compared byte for byte.
COMPARED = (".html", ".xml")


def _listing(site: Path) -> str:
    """Every output path except tiles and OpenSeadragon's own files, one per line."""
    paths = []
    for path in sorted(site.rglob("*")):
        rel = path.relative_to(site).as_posix()
        if path.is_file() and "/atlas_files/" not in rel and "static/openseadragon/" not in rel:
            paths.append(rel)
    return "\n".join(paths) + "\n"


def _outputs(site: Path) -> dict[str, str]:
    texts = {"FILES.txt": _listing(site)}
    for path in sorted(site.rglob("*")):
        if path.suffix in COMPARED:
            texts[path.relative_to(site).as_posix()] = path.read_text(encoding="utf-8")
    return texts


def test_golden_site(tmp_path: Path) -> None:
    project = tmp_path / "golden"
    shutil.copytree(GOLDEN / "src", project)
    draw_grid(project / "content/study/images/grid.png")
    build(load_config(project / "atlas.toml"), strict=True, log=None)
    actual = _outputs(project / "site")
    expected_dir = GOLDEN / "expected"
    if os.environ.get("ATLAS_UPDATE_GOLDEN") == "1":
        shutil.rmtree(expected_dir, ignore_errors=True)
        for rel, text in actual.items():
            (expected_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (expected_dir / rel).write_text(text, encoding="utf-8")
    expected = {
        p.relative_to(expected_dir).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(expected_dir.rglob("*"))
        if p.is_file()
    }
    assert sorted(actual) == sorted(expected)
    for rel, text in expected.items():
        if actual[rel] != text:
            diff = "".join(
                difflib.unified_diff(
                    text.splitlines(keepends=True),
                    actual[rel].splitlines(keepends=True),
                    f"expected/{rel}",
                    f"built/{rel}",
                )
            )
            raise AssertionError(f"{rel} differs from the golden output:\n{diff}")
