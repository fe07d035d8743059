"""The output side of a build: which file goes where, static files, size budget, safety.

:class:`OutputPlan` is filled before anything is written; it refuses two sources for one output
path. The budget is checked on the finished temporary folder, before it replaces ``site/``.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from generator.cache import CacheLayout
from generator.config import Config
from generator.errors import BudgetError, ConfigError, ContentError, SetupError
from generator.site.state import STATE_FILE, built_output

#: Where OpenSeadragon's browser build lives inside node_modules.
OSD_BUILD = Path("node_modules/openseadragon/build/openseadragon")

#: The OpenSeadragon files the site ships (the minified script and its button images).
OSD_FILES = ("openseadragon.min.js",)


@dataclass
class OutputPlan:
    """Every output path (site-root relative, POSIX) and the source that writes it."""

    sources: dict[str, str] = field(default_factory=dict)
    _folded: dict[str, str] = field(default_factory=dict)

    def claim(self, path: str, source: str) -> None:
        """Reserve ``path`` for ``source``; a second claim on a path is a ContentError.

        Paths are compared ignoring case: they would collide on macOS and Windows checkouts.
        """
        other_path = self._folded.get(path.lower())
        if other_path is not None:
            raise ContentError(
                f"two sources write the same output path {path!r}",
                where=source,
                got=f"{other_path} is also written by {self.sources[other_path]}",
                expected="one source per output file (paths are compared ignoring case)",
                fix="rename one of them, or give one page another 'slug:' in its front matter",
            )
        self.sources[path] = source
        self._folded[path.lower()] = path

    def files(self) -> set[str]:
        return set(self.sources)


def find_openseadragon(config: Config) -> Path:
    """OpenSeadragon's build folder from the project's or the generator's node_modules."""
    from generator.site.pages import TEMPLATES

    candidates = [config.root / OSD_BUILD, TEMPLATES.parent / OSD_BUILD]
    for folder in candidates:
        if (folder / "openseadragon.min.js").is_file():
            return folder
    raise SetupError(
        "OpenSeadragon is not installed (pages with atlases need it)",
        where=str(candidates[0]),
        expected="node_modules/openseadragon from package.json",
        fix=f"run `npm ci` in {TEMPLATES.parent}",
    )


def static_sources(template_dirs: list[Path], osd: Path | None) -> dict[str, Path]:
    """Output path -> source of every static file (override folders win over the defaults)."""
    files: dict[str, Path] = {}
    for folder in reversed(template_dirs):  # defaults first, overrides replace them
        static = folder / "static"
        if static.is_dir():
            for path in sorted(static.rglob("*")):
                if path.is_file() and not path.name.startswith("."):
                    files[f"static/{path.relative_to(static).as_posix()}"] = path
    if osd is not None:
        for name in OSD_FILES:
            files[f"static/openseadragon/{name}"] = osd / name
        for image in sorted((osd / "images").glob("*.png")):
            files[f"static/openseadragon/images/{image.name}"] = image
    return files


def versioned(url: str, source: Path) -> str:
    """``static/x.css?v=<digest>``: browsers refetch a static file only when it changed.

    The digest of a JavaScript module covers the modules it imports by relative URL too
    (found next to it; :func:`generator.site.pages.module_graph`), so a page that loads the
    viewer's entry module changes, and is rendered again with a new import map, whenever any
    of the viewer's modules does.
    """
    from generator.site.pages import module_digest, module_graph

    def beside(module: str) -> Path | None:
        path = source.parent / posixpath.relpath(module, posixpath.dirname(url))
        return path if path.is_file() else None

    return f"{url}?v={module_digest(module_graph(url, beside))}"


def check_output_folder(config: Config) -> None:
    """Refuse an output folder whose replacement would destroy the project or foreign files:
    a non-empty folder is replaced only when the build state in the cache names it
    (:func:`generator.site.state.built_output`), which no folder the tool did not write has."""
    out = config.paths.output
    protected = [config.root, config.paths.content, config.paths.templates, config.paths.cache]
    if any(p == out or p.is_relative_to(out) for p in protected) or out.is_relative_to(
        config.paths.content
    ):
        raise ConfigError(
            "the output folder would replace the project or its sources",
            where=f"{config.path} [paths] output",
            expected='a folder of its own, e.g. "site"',
            got=str(out),
            fix='set [paths] output = "site"',
        )
    if out.is_dir() and any(out.iterdir()):
        state = CacheLayout(config.paths.cache).site_state() / STATE_FILE
        if built_output(state) != str(out):  # only a folder this project's build wrote
            raise ConfigError(
                "refusing to replace a folder that atlas did not build",
                where=str(out),
                expected=f"an empty folder, or the one the last build wrote (recorded in {state})",
                fix=f"move {out} away, or set [paths] output to another folder (if an earlier"
                " `atlas build` wrote it and the cache was deleted since, delete the folder)",
            )


def clean_leftovers(output: Path) -> None:
    """Remove temporary folders of builds that were killed (``.site.*.tmp``, ``.site.old-*``)."""
    parent = output.parent
    if not parent.is_dir():
        return
    for entry in parent.iterdir():
        name = entry.name
        if name.startswith(f".{output.name}.") and (name.endswith(".tmp") or ".old-" in name):
            shutil.rmtree(entry, ignore_errors=True)


def measure(folder: Path) -> tuple[int, int, dict[str, int]]:
    """(files, bytes, bytes per top-level part such as ``atlases/<id>``) under ``folder``.

    Hard-linked files count fully: the deployed site holds a copy of each.
    """
    files = total = 0
    parts: dict[str, int] = {}
    for root, _dirs, names in os.walk(folder):
        rel = Path(root).relative_to(folder).parts
        part = "/".join(rel[:2]) if rel[:1] == ("atlases",) else (rel[0] if rel else "(root)")
        for name in names:
            size = os.stat(os.path.join(root, name)).st_size
            files += 1
            total += size
            parts[part] = parts.get(part, 0) + size
    return files, total, parts


def human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{count} B"  # pragma: no cover - the loop always returns


def check_budget(config: Config, files: int, total: int, parts: dict[str, int]) -> None:
    """Raise a BudgetError naming the largest parts when the site exceeds ``[budget]``."""
    budget = config.budget
    if files <= budget.max_files and total <= budget.max_bytes:
        return
    largest = sorted(parts.items(), key=lambda kv: -kv[1])[:5]
    raise BudgetError(
        f"the site is {human_bytes(total)} in {files:,} files, over its budget"
        f" ({human_bytes(budget.max_bytes)}, {budget.max_files:,} files);"
        f" largest parts: " + ", ".join(f"{name} {human_bytes(size)}" for name, size in largest),
        where=f"{config.path} [budget]",
        expected=f"at most {budget.max_bytes:,} bytes and {budget.max_files:,} files",
        got=f"{total:,} bytes, {files:,} files",
        fix='lower [tiles] quality or use format = "webp", publish fewer or smaller atlases,'
        " or raise [budget] max_bytes / max_files in atlas.toml; site/ was left as it was",
    )
