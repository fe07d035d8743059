"""The viewer's files: ES modules that import what they use by relative URL, versioned by the
build (no hand-kept digest table), and OpenSeadragon's internals in one adapter that names the
version package.json pins. (Not browser tests: no chromium needed; test_viewer_loading.py
checks the same in a browser.)

A page with atlases holds an import map (generator/site/pages.py ``import_map``) from every
module's URL to ``<url>?v=<digest>``; the digest covers the file and the modules it imports
(found among the build's static files, overrides first), so the entry's URL (``versioned``)
changes whenever any module does and the page is rendered again. These tests fail when a
module can change without its URL changing.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from generator.cache import file_digest
from generator.config import Config, load_config
from generator.site.output import static_sources
from generator.site.pages import (
    import_map,
    module_digest,
    module_graph,
    template_dirs,
    versioned,
)

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "templates" / "static"
ENTRY = "static/atlas-viewer.js"
ADAPTER = "atlas-viewer-osd.js"


def modules() -> list[Path]:
    return sorted(STATIC.glob("atlas-viewer*.js"))


def code_of(path: Path) -> str:
    """The file without its comments (block and line comments; no string holds "/*" or "//")."""
    text = re.sub(r"/\*.*?\*/", "", path.read_text(encoding="utf-8"), flags=re.S)
    return re.sub(r"(^|[^:])//.*$", r"\1", text, flags=re.M)


def in_folder(folder: Path) -> Callable[[str], Path | None]:
    """module_graph's ``source_of`` for the files of one folder: static/<name> -> <name>."""

    def source_of(url: str) -> Path | None:
        path = folder / url.removeprefix("static/")
        return path if path.is_file() else None

    return source_of


def static_of(config: Config) -> dict[str, Path]:
    """The build's static files (output path -> source) of a project."""
    return static_sources(template_dirs(config), None)


def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "atlas.toml").write_text(
        '[site]\ntitle = "Modules"\nsite_url = "https://example.org/repo/"\n', encoding="utf-8"
    )
    return root


def test_every_module_is_imported_from_the_entry_and_versioned_by_its_digests(
    tmp_path: Path,
) -> None:
    mapping = import_map(ENTRY, static_of(load_config(project(tmp_path) / "atlas.toml")))
    names = {f"static/{path.name}" for path in modules()}
    # every module is reached from the entry (none is loaded some other, unversioned way)
    assert set(mapping) == names - {ENTRY}
    for url, target in mapping.items():
        path = STATIC / url.removeprefix("static/")
        graph = module_graph(url, in_folder(STATIC))
        assert target == f"{url}?v={module_digest(graph)}"
        if len(graph) == 1:  # a module that imports nothing: its own file digest
            assert target == f"{url}?v={file_digest(path, 8)}"
    assert set(module_graph(ENTRY, in_folder(STATIC))) == names


def test_a_changed_module_changes_its_url_and_the_entrys(tmp_path: Path) -> None:
    """Edit one module (as a project override and in a copy of the folder): its URL in the
    import map and the entry's URL (part of every page's key) change; unrelated ones do not."""
    root = project(tmp_path)
    config = load_config(root / "atlas.toml")
    static = static_of(config)
    before = import_map(ENTRY, static)
    entry_before = versioned(ENTRY, static)

    override = config.paths.templates / "static" / "atlas-viewer-paint.js"
    override.parent.mkdir(parents=True)
    override.write_text((STATIC / "atlas-viewer-paint.js").read_text() + "\n/* edited */\n")
    overridden = static_of(load_config(root / "atlas.toml"))
    after = import_map(ENTRY, overridden)
    paint, view, util = (f"static/atlas-viewer-{n}.js" for n in ("paint", "view", "util"))
    assert after[paint] != before[paint]
    assert after[view] != before[view]  # view.js imports paint.js
    assert after[util] == before[util]  # util.js imports nothing
    assert versioned(ENTRY, overridden) != entry_before  # the entry is the default's file

    copy = tmp_path / "copy"
    shutil.copytree(STATIC, copy / "static")
    (copy / "static/atlas-viewer-paint.js").write_text(override.read_text())
    assert versioned(ENTRY, static_sources([copy], None)) != entry_before


def test_modules_are_small_es_modules_sharing_nothing_implicitly() -> None:
    for path in modules():
        text = path.read_text(encoding="utf-8")
        code = code_of(path)
        assert text.count("\n") < 500, f"{path.name}: split it"
        assert text.startswith(f"/* {path.name}: "), f"{path.name}: say what it is first"
        # ES modules: no script wrapper, no globals or prototypes extended across files
        assert not re.search(r"^\(function|\.prototype\.\w+\s*=[^=]", code, re.M), path.name
        assert not re.search(r"window\.AtlasViewer|\bAV\.", code), path.name
        assert re.search(r"^export ", code, re.M) or path.name == "atlas-viewer.js", path.name
        for spec in re.findall(r"""(?:\bfrom|\bimport)\s*\(?\s*["']([^"']+)["']""", code):
            assert re.fullmatch(r"\./atlas-viewer-[a-z]+\.js", spec), f"{path.name}: {spec}"
            assert (STATIC / spec[2:]).is_file(), f"{path.name}: {spec} does not exist"


#: The parts of a viewer (atlas-viewer-view.js) and their modules.
PARTS = ("zoom", "cells", "paint", "hover", "tools", "panel", "tour", "linked", "axes")


def api_of(part: str) -> set[str]:
    """The members a part's module lists under "API (view.<part>...):", up to "Emits" or
    "Listens" (what is in brackets or quotes there explains them)."""
    text = (STATIC / f"atlas-viewer-{part}.js").read_text(encoding="utf-8")
    match = re.search(rf"API \(view\.{part}\b[^)]*\):(.*?)(?:Emits|Listens|\*/)", text, re.S)
    assert match, f"atlas-viewer-{part}.js documents no API (view.{part}): ..."
    listed, before = match.group(1), ""
    while listed != before:  # innermost brackets and quotes first
        before, listed = listed, re.sub(r'\([^()]*\)|\{[^{}]*\}|"[^"]*"', " ", listed)
    return set(re.findall(r"[A-Za-z_]\w*", listed))


def test_parts_reach_each_other_only_through_their_documented_api() -> None:
    """A part's state is its own: others use what its module lists under "API (view.<part>)"
    (through the view, or a local name for it such as ``var paint = view.paint``)."""
    apis = {part: api_of(part) for part in PARTS}
    for path in modules():
        code = code_of(path)
        own = path.name.removeprefix("atlas-viewer-").removesuffix(".js")
        holder = r"(?:this|self)" if path.name == "atlas-viewer-view.js" else r"(?:this\.)?view"
        uses = re.findall(rf"\b{holder}\.({'|'.join(PARTS)})\.(\w+)", code)
        for part in PARTS:  # local names: var paint = view.paint, zoom = this.view.zoom
            if re.search(rf"\b{part} = (?:this\.)?view\.{part}\b", code):
                uses += [(part, m) for m in re.findall(rf"(?<![.\w]){part}\.(\w+)", code)]
        for part, member in uses:
            if part != own:
                assert member in apis[part], (
                    f"{path.name} uses view.{part}.{member}: not in its API"
                )


#: OpenSeadragon internals (and non-public members, "._x"): only the adapter may touch them.
INTERNALS = {
    "getTilesToDraw": r"getTilesToDraw",
    "drawer": r"\.drawer\b",
    "drawer.context": r"\.context\b",
    "minPixelRatio assigned": r"\.minPixelRatio\b",
    "gesture settings changed": r"\.gestureSettings",
    "a private member": r"\._[A-Za-z]",
}


def test_openseadragon_internals_only_in_the_adapter() -> None:
    for path in modules():
        if path.name == ADAPTER:
            continue
        code = code_of(path)
        for what, pattern in INTERNALS.items():
            assert not re.search(pattern, code), f"{path.name} uses {what}: move it to {ADAPTER}"
    adapter = code_of(STATIC / ADAPTER)
    for what in ("getTilesToDraw", "drawer.context", "minPixelRatio assigned"):
        assert re.search(INTERNALS[what], adapter), what


def test_the_adapter_expects_the_pinned_openseadragon() -> None:
    match = re.search(r'OSD_VERSION = "([0-9.]+)"', (STATIC / ADAPTER).read_text())
    assert match, f"{ADAPTER} names no OSD_VERSION"
    package = json.loads((ROOT / "package.json").read_text())
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert package["dependencies"]["openseadragon"] == match.group(1)
    assert lock["packages"]["node_modules/openseadragon"]["version"] == match.group(1)
    installed = ROOT / "node_modules/openseadragon/package.json"
    if installed.is_file():  # `npm ci` installs the pin
        assert json.loads(installed.read_text())["version"] == match.group(1)
