"""``atlas check``: validate without writing the site, then verify the built site on disk.

1. The whole build up to writing (config, front matter, atlas blocks and ids, citations,
   assets, internal links and anchors, duplicate outputs) via :func:`build.prepare`.
2. The existing output folder, if any: every file an HTML page links to exists (the site may
   have been edited or half-copied), and every tile each ``atlas.dzi`` implies exists. Anchors
   into a notice page (a publication left out of the build, :mod:`generator.site.skipped`) are
   accepted unchecked, as the build accepts them: the page exists, its sections do not.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from generator import seal
from generator.config import Config
from generator.errors import ContentError
from generator.lock import project_lock
from generator.site.build import prepare
from generator.site.links import PageLinks, check_links, scan_html
from generator.site.skipped import accept_anchors, notice_pages


@dataclass
class CheckReport:
    """What ``atlas check`` looked at."""

    pages: int = 0
    built_files: int = 0
    tiles_checked: int = 0
    problems: list[str] = field(default_factory=list)


def check_site(
    config: Config, *, strict: bool = False, log: Callable[[str], None] = print
) -> CheckReport:
    """Validate the sources and the built output; raise a ContentError listing problems."""
    with project_lock(config.paths.cache, "atlas check", log=log, output=config.paths.output):
        prepared = prepare(config, strict=strict, log=log)
        report = CheckReport(pages=len(prepared.pages))
        output = config.paths.output
        if output.is_dir():
            report.built_files, report.tiles_checked = check_output(output)
        damaged = audit_cache(config)  # then every byte, against the digests of the cache
    if damaged:
        raise ContentError(
            f"{len(damaged)} damaged cache entr{'y' if len(damaged) == 1 else 'ies'} (every file"
            " is checked against the digest recorded when it was written):\n"
            + "\n".join(f"  - {line}" for line in damaged),
            where=str(config.paths.cache),
            fix="run `atlas build`: it recomputes and republishes each of them",
        )
    if output.is_dir():
        log(
            f"checked {report.pages} pages and the built {output}: {report.built_files:,} files,"
            f" {report.tiles_checked:,} tiles, every link and tile present, every cached byte"
            " as written"
        )
    else:
        log(f"checked {report.pages} pages; {output} is not built yet (run `atlas build`)")
    return report


def audit_cache(config: Config) -> list[str]:
    """Every sealed cache entry and published atlas checked in full (:func:`generator.seal.
    audit`); one line per damaged one, each discarded or marked for the next build."""
    from generator.cache import CacheLayout

    damaged = seal.audit(config.paths.cache)
    state = CacheLayout(config.paths.cache).site_state()
    for at in sorted(state.glob("atlas-*.seal")):
        folder = config.paths.output / "atlases" / at.name[len("atlas-") : -len(".seal")]
        if folder.is_dir():
            damage = seal.audit_published(folder, at)
            if damage is not None:
                damaged.append(f"{folder}: {damage} (the next build publishes it again)")
    return damaged


def check_output(output: Path) -> tuple[int, int]:
    """Check links between the built files and every .dzi's tiles; returns (files, tiles)."""
    from generator.tiles import check_dzi
    from generator.tiles.dzi import dzi_tile_paths

    files: set[str] = set()
    for folder, _dirs, names in os.walk(output):
        rel = Path(folder).relative_to(output).as_posix()
        prefix = "" if rel == "." else f"{rel}/"
        files.update(prefix + name for name in names)
    pages = {}
    for rel in sorted(f for f in files if f.endswith(".html") and f != "404.html"):
        ids, refs = scan_html((output / rel).read_text(encoding="utf-8"))
        pages[rel] = PageLinks(str(output / rel), ids, [(ref, None) for ref in refs])
    check_links(accept_anchors(pages, notice_pages(pages), files), files)
    tiles = 0
    missing: list[str] = []
    for rel in sorted(f for f in files if f.endswith(".dzi")):
        dzi = output / rel
        tiles += len(dzi_tile_paths(dzi))
        missing.extend(f"{Path(rel).parent.as_posix()}/{m}" for m in check_dzi(dzi))
    if missing:
        raise ContentError(
            f"{len(missing)} tile(s) missing from the built site, e.g. {', '.join(missing[:5])}",
            where=str(output),
            expected="every tile the .dzi descriptors imply",
            fix="rebuild with `atlas build` (and do not edit site/ by hand)",
        )
    return len(files), tiles
