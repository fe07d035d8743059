"""The viewer's module table: atlas-viewer.js loads its modules as ``<name>?v=<digest>``, so the
digests it lists must be the files' own (else browsers could mix an old module with a new core).
Run this file as a script to rewrite the table after editing a module:
``python tests/browser/test_viewer_assets.py``. (Not a browser test: no chromium needed.)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from generator.cache import file_digest

STATIC = Path(__file__).resolve().parents[2] / "templates" / "static"
CORE = STATIC / "atlas-viewer.js"
ENTRY = re.compile(r'"(atlas-viewer-[a-z]+\.js)": "([0-9a-f]{8})"')


def listed() -> dict[str, str]:
    return dict(ENTRY.findall(CORE.read_text(encoding="utf-8")))


def actual() -> dict[str, str]:
    return {path.name: file_digest(path, 8) for path in sorted(STATIC.glob("atlas-viewer-*.js"))}


def test_module_table_lists_every_module_with_its_digest() -> None:
    assert listed() == actual(), "run: python tests/browser/test_viewer_assets.py"


def test_modules_are_small_plain_scripts() -> None:
    for path in [CORE, *STATIC.glob("atlas-viewer-*.js")]:
        text = path.read_text(encoding="utf-8")
        assert text.count("\n") < 500, f"{path.name}: split it"
        assert '"use strict"' in text and not re.search(r"^\s*(import|export)\s", text, re.M)


if __name__ == "__main__":
    text = CORE.read_text(encoding="utf-8")
    for name, value in actual().items():
        text, count = re.subn(
            rf'"{re.escape(name)}": "[0-9a-f]{{8}}"', f'"{name}": "{value}"', text
        )
        if count != 1:
            sys.exit(f"{name} is not listed once in {CORE}")
    CORE.write_text(text, encoding="utf-8")
    print("updated", CORE)
