"""The output side of a build: which file goes where, static files, size budget, safety.

:class:`OutputPlan` is filled before anything is written; it refuses two sources for one output
path. The budget is checked on the finished temporary folder, before it replaces ``site/``.
"""

from __future__ import annotations

import heapq
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from generator.cache import CacheLayout
from generator.config import Config
from generator.errors import BudgetError, ConfigError, ContentError, SetupError
from generator.paths import confine
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
                    # a template folder's static file, every symlink followed, stays in it
                    confine(path, folder, where=str(path), what="a static file", error=ConfigError)
                    files[f"static/{path.relative_to(static).as_posix()}"] = path
    if osd is not None:
        for name in OSD_FILES:
            files[f"static/openseadragon/{name}"] = osd / name
        for image in sorted((osd / "images").glob("*.png")):
            files[f"static/openseadragon/images/{image.name}"] = image
    return files


#: A file every build writes into the site: the output folder is this tool's to replace.
OWNER_FILE = ".atlas-build"
OWNER_TEXT = "Written by `atlas build`; the next build replaces this whole folder.\n"


def owned(out: Path) -> bool:
    """Whether ``out`` holds the file every build writes (:data:`OWNER_FILE`)."""
    try:
        return (out / OWNER_FILE).read_text() == OWNER_TEXT
    except (OSError, UnicodeDecodeError):
        return False


def check_output_folder(config: Config) -> None:
    """Refuse an output folder whose replacement would destroy the project or foreign files:
    a non-empty folder is replaced only when a build wrote it: it holds :data:`OWNER_FILE`,
    or the build state in the cache names it (:func:`generator.site.state.built_output`; a
    site built before the marker existed)."""
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
        if not owned(out) and built_output(state) != str(out):  # only a folder a build wrote
            raise ConfigError(
                "refusing to replace a folder that atlas did not build",
                where=str(out),
                expected=f"an empty folder, or one a build wrote (it holds {OWNER_FILE})",
                fix=f"move {out} away, or set [paths] output to another folder",
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


#: How many of the largest files :func:`measure` remembers (a budget error names them).
LARGEST_FILES = 5

#: The name :func:`by_publication` gives to what no publication owns: root pages, static
#: files, the feed and sitemap.
SHARED = "(shared)"


@dataclass(frozen=True)
class SiteSize:
    """What a built site weighs (hard-linked files count fully: the deployed site holds a
    copy of each).

    Attributes:
        files: how many files.
        bytes: their total size.
        parts: bytes per top-level part: ``atlases/<id>``, a publication's folder,
            ``static``, ``(root)`` (the files at the top).
        largest: the :data:`LARGEST_FILES` largest files as (site-relative POSIX path, bytes),
            largest first.
    """

    files: int
    bytes: int
    parts: dict[str, int]
    largest: tuple[tuple[str, int], ...]


def part_of(folder: tuple[str, ...]) -> str:
    """The part (see :class:`SiteSize`) of the files in ``folder`` (site-relative parts)."""
    if folder[:1] == ("atlases",):
        return "/".join(folder[:2])
    return folder[0] if folder else "(root)"


def measure(folder: Path) -> SiteSize:
    """Files, bytes, bytes per part and the largest files under ``folder``."""
    files = total = 0
    parts: dict[str, int] = {}
    largest: list[tuple[int, str]] = []  # a min-heap of the largest (size, path)
    for root, _dirs, names in os.walk(folder):
        rel = Path(root).relative_to(folder).parts
        part = part_of(rel)
        for name in names:
            size = os.stat(os.path.join(root, name)).st_size
            files += 1
            total += size
            parts[part] = parts.get(part, 0) + size
            item = (size, "/".join((*rel, name)))
            if len(largest) < LARGEST_FILES:
                heapq.heappush(largest, item)
            elif item > largest[0]:
                heapq.heapreplace(largest, item)
    ordered = sorted(largest, key=lambda item: (-item[0], item[1]))
    return SiteSize(files, total, parts, tuple((path, size) for size, path in ordered))


def by_publication(
    parts: Mapping[str, int], publications: Iterable[str], atlases: Mapping[str, str]
) -> dict[str, int]:
    """Bytes per publication (its folder and its atlases; ``atlases``: atlas id ->
    publication), largest first; the rest under :data:`SHARED`."""
    owners = owners_of(publications, atlases)
    sizes: dict[str, int] = {name: 0 for name in publications}
    for part, size in parts.items():
        owner = owners.get(part, SHARED)
        sizes[owner] = sizes.get(owner, 0) + size
    return dict(sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])))


def owners_of(publications: Iterable[str], atlases: Mapping[str, str]) -> dict[str, str]:
    """Part (see :class:`SiteSize`) -> the publication it belongs to."""
    owners = {name: name for name in publications}
    owners.update({f"atlases/{atlas_id}": pub for atlas_id, pub in atlases.items()})
    return owners


def human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{count} B"  # pragma: no cover - the loop always returns


def check_budget(
    config: Config, size: SiteSize, owners: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """Raise a BudgetError when a file or the site exceeds ``[budget]``, naming the files or
    the largest parts (and their publications: ``owners``, part -> publication); return a
    warning when the site passes ``warn_fraction`` of ``max_bytes``."""
    budget = config.budget
    owners = owners or {}

    def owned(path: str) -> str:
        owner = owners.get(part_of(tuple(path.split("/")[:-1])))
        return f" (publication {owner!r})" if owner else ""

    too_big = [(path, n) for path, n in size.largest if n > budget.max_file_bytes]
    if too_big:
        path, n = too_big[0]
        raise BudgetError(
            f"{path}{owned(path)} is {human_bytes(n)}, over the largest file the budget allows"
            f" ({human_bytes(budget.max_file_bytes)}); GitHub refuses files over 100 MiB",
            where=f"{config.path} [budget] max_file_bytes",
            expected=f"files of at most {budget.max_file_bytes:,} bytes",
            got=", ".join(f"{p}{owned(p)} {b:,} bytes" for p, b in too_big),
            fix="make the file smaller (an atlas image: fewer or smaller icons, [tiles] quality),"
            " or raise [budget] max_file_bytes in atlas.toml; site/ was left as it was",
        )
    largest = sorted(size.parts.items(), key=lambda kv: -kv[1])[:5]
    parts = ", ".join(f"{name}{_of(name, owners)} {human_bytes(n)}" for name, n in largest)
    if size.files > budget.max_files or size.bytes > budget.max_bytes:
        raise BudgetError(
            f"the site is {human_bytes(size.bytes)} in {size.files:,} files, over its budget"
            f" ({human_bytes(budget.max_bytes)}, {budget.max_files:,} files);"
            f" largest parts: {parts}",
            where=f"{config.path} [budget]",
            expected=f"at most {budget.max_bytes:,} bytes and {budget.max_files:,} files",
            got=f"{size.bytes:,} bytes, {size.files:,} files",
            fix='lower [tiles] quality or use format = "webp", publish fewer or smaller atlases'
            " (the largest parts above: e.g. leave 160 out of an atlas's grids, or give it fewer"
            " dataset examples, render.examples), or raise [budget] max_bytes / max_files in"
            " atlas.toml; site/ was left as it was",
        )
    if size.bytes > budget.warn_fraction * budget.max_bytes:
        share = size.bytes / budget.max_bytes
        return (
            f"the site is {human_bytes(size.bytes)}, {share:.0%} of its budget"
            f" ({human_bytes(budget.max_bytes)}, [budget] max_bytes; the warning starts at"
            f" warn_fraction = {budget.warn_fraction:g}); largest parts: {parts}",
        )
    return ()


def _of(part: str, owners: Mapping[str, str]) -> str:
    owner = owners.get(part)
    return f" ({owner})" if owner and owner != part else ""
