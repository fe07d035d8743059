"""Site build benchmark: a full build of 50 articles with 3 cached pyramids, a no-change
rebuild, a one-page incremental rebuild, and the weight of an article page without tiles.

Goals (issue 2, on the 2-core machine): full build < 3 s, incremental < 0.5 s, article page
weight without tiles < 300 KB (as served, gzip-compressed like GitHub Pages does; the raw size
is reported too).

    python bench/site_build.py [--articles 50] [--atlases 3] [--side 1600] [--repeat 5]
    python bench/site_build.py --scale 500,2000,10000    # how rebuilds grow with the pages

"Full build" = no previous site/ and no build state, but the atlas bundles and pyramids are in
the cache (cut once before timing). The project is written under bench/out/site-build/.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "site"))

from sitekit import draw_grid, write  # noqa: E402

from generator.config import load_config  # noqa: E402
from generator.site.build import build  # noqa: E402

PARAGRAPH = (
    "Each cell of an activation atlas averages the activations that fell into it and shows a "
    "feature visualization of that average [@carter2019]. Reading across the atlas, one sees "
    "how the layer arranges what it has learned, from textures to object parts.[^{n}] "
)


def article(n: int, atlas: str, side: int) -> str:
    """An article of ~1,500 words: headings, citations, a footnote, a table, an atlas tour."""
    q = side // 4
    body = [
        f"---\ntitle: Article {n}\ndescription: Benchmark article {n}.\n"
        f"date: 2024-01-{1 + n % 28:02d}\nauthors: [Bench]\norder: {n}\n---\n"
    ]
    for section in range(6):
        body.append(f"## Section {section}\n")
        body.extend(PARAGRAPH.replace("{n}", f"{section}") + "\n" for _ in range(4))
        if section == 2:
            body.append(
                f"```atlas\nid: {atlas}\nheight: 480\nview: [0, 0, {side}, {side}]\n"
                f'caption: "Atlas {atlas}, article {n}."\ntour:\n'
                + "".join(
                    f'  - rect: [{i * q}, {i * q}, {q}, {q}]\n    caption: "Stop *{i}*."\n'
                    for i in range(3)
                )
                + "```\n"
            )
            body.append(f"Zoom to [a corner](#atlas:{atlas}?xywh=0,0,{q},{q}).\n")
        if section == 4:
            body.append("| a | b | c |\n|---|---|---|\n" + "| 1 | 2 | 3 |\n" * 8)
    body.extend(f"[^{s}]: Footnote {s}.\n" for s in range(6))
    return "\n".join(body)


def make_project(root: Path, articles: int, atlases: int, side: int) -> None:
    shutil.rmtree(root, ignore_errors=True)
    write(
        root / "atlas.toml",
        '[site]\ntitle = "Bench"\nsite_url = "https://example.org/bench/"\n',
    )
    write(root / "content/index.md", "---\ntitle: Bench\n---\n\nThe benchmark site.\n")
    names = [f"atlas{i}" for i in range(atlases)]
    for pub in ("alpha", "beta"):
        folder = root / "content" / pub
        write(folder / "index.md", f"---\ntitle: {pub}\n---\n\nPublication {pub}.\n")
        write(
            folder / "references.bib",
            "@article{carter2019, author={Carter, Shan}, title={Activation Atlas}, year=2019}\n",
        )
    grid = 20
    for i, name in enumerate(names):
        pub = ("alpha", "beta")[i % 2]
        draw_grid(root / "content" / pub / "images" / f"{name}.png", grid=grid, icon=side // grid)
        toml = root / "content" / pub / "atlases.toml"
        previous = toml.read_text() if toml.exists() else ""
        write(
            toml,
            previous + f'[atlas.{name}]\nimage = "images/{name}.png"\ngrid = {grid}\n'
            f"icon_size = {side // grid}\n\n",
        )
    for n in range(articles):
        pub = ("alpha", "beta")[n % 2]
        write(root / "content" / pub / f"article-{n:02d}.md", article(n, names[n % atlases], side))


def timed(config_path: Path) -> tuple[float, float, int]:
    """(wall s, CPU s of this process, pages rendered) of one build."""
    started, cpu = time.perf_counter(), time.process_time()
    report = build(load_config(config_path), log=None)
    return time.perf_counter() - started, time.process_time() - cpu, report.rendered


def page_weight(site: Path, page: str) -> tuple[int, int, list[str]]:
    """(raw bytes, gzip bytes, files) an article loads with its viewer running, tiles excluded:
    the page, its stylesheets, icon, scripts and images, OpenSeadragon, viewer.json, the .dzi
    and the cells documents (not the fallback image, which loads only without JavaScript)."""
    html = (site / page).read_text()
    visible = re.sub(r"<noscript>.*?</noscript>", "", html, flags=re.DOTALL)
    refs = re.findall(r'<link [^>]*rel="(?:stylesheet|icon)"[^>]*href="([^"]+)"', visible)
    refs += re.findall(r'<(?:script|img)\b[^>]*?\ssrc="([^"]+)"', visible)
    refs += re.findall(r'data-openseadragon="([^"]+)"', visible)
    base = Path(page).parent
    files = [page, *((base / ref.split("?")[0]).as_posix() for ref in refs)]
    for manifest in re.findall(r'"manifest":"([^"]+)"', html):
        viewer = (base / manifest).as_posix()
        doc = json.loads((site / os.path.normpath(viewer)).read_text())
        files += [viewer, str(Path(viewer).parent / doc["dzi"])]
        files += [str(Path(viewer).parent / level["cells"]) for level in doc["levels"]]
    files = sorted({os.path.normpath(f) for f in files})
    raw = sum((site / f).stat().st_size for f in files)
    packed = sum(len(gzip.compress((site / f).read_bytes(), 6)) for f in files)
    return raw, packed, files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=50)
    parser.add_argument("--atlases", type=int, default=3)
    parser.add_argument("--side", type=int, default=1600, help="atlas image side in px")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--scale",
        default=None,
        help="comma-separated article counts: time a full build, a no-change rebuild and a"
        " one-article rebuild at each (atlases of 400 px), to show rebuilds grow linearly",
    )
    args = parser.parse_args()
    if args.scale:
        scale([int(n) for n in args.scale.split(",")], args.atlases, min(args.repeat, 3))
        return

    root = ROOT / "bench" / "out" / "site-build"
    make_project(root, args.articles, args.atlases, args.side)
    config = root / "atlas.toml"
    started = time.perf_counter()
    build(load_config(config), log=None)  # cuts the pyramids into the cache
    cold = time.perf_counter() - started

    full = []
    for _ in range(args.repeat):
        shutil.rmtree(root / "site")
        shutil.rmtree(root / ".atlas-cache" / "site")
        full.append(timed(config))
    unchanged = [timed(config) for _ in range(args.repeat)]
    incremental = []
    target = root / "content/alpha/article-00.md"
    for i in range(args.repeat):
        target.write_text(target.read_text() + f"\nAn edit, number {i}.\n")
        incremental.append(timed(config))

    site = root / "site"
    files = [p for p in site.rglob("*") if p.is_file()]
    raw, packed, loaded = page_weight(site, "alpha/article-00.html")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average"
          f" {os.getloadavg()[0]:.1f}, {platform.python_implementation()}"
          f" {platform.python_version()}, {platform.platform()}")  # fmt: skip
    print(f"project: {args.articles} articles, {args.atlases} atlases of {args.side} px")
    print(f"site: {len(files):,} files, {sum(p.stat().st_size for p in files) / 1e6:.1f} MB")
    print(f"first build (cuts pyramids): {cold:.2f} s")

    def row(name: str, runs: list[tuple[float, float, int]]) -> None:
        walls = ", ".join(f"{wall:.2f}" for wall, _, _ in runs)
        print(f"{name}: median {statistics.median(r[0] for r in runs):.2f} s wall,"
              f" best {min(r[0] for r in runs):.2f} s ({walls}),"
              f" {statistics.median(r[1] for r in runs):.2f} s CPU; pages rendered {runs[0][2]}")  # fmt: skip

    row("full build, cached pyramids", full)
    row("rebuild, nothing changed", unchanged)
    row("rebuild, one article edited", incremental)
    print(f"article page weight without tiles: {raw / 1000:.1f} KB raw, {packed / 1000:.1f} KB gzip"
          f" ({len(loaded)} files: {', '.join(loaded)})")  # fmt: skip


def scale(counts: list[int], atlases: int, repeat: int) -> None:
    """Rebuild times at several site sizes, per page (a linear build keeps them flat)."""
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average"
          f" {os.getloadavg()[0]:.1f}, Python {platform.python_version()}")  # fmt: skip
    for count in counts:
        root = ROOT / "bench" / "out" / f"site-scale-{count}"
        make_project(root, count, atlases, 400)
        config = root / "atlas.toml"
        full, _, _ = timed(config)
        unchanged = min(timed(config)[0] for _ in range(repeat))
        target = root / "content/alpha/article-00.md"
        edited = []
        for i in range(repeat):
            target.write_text(target.read_text() + f"\nAn edit, number {i}.\n")
            edited.append(timed(config)[0])
        pages = count + 3
        print(f"{pages:>6} pages: full {full:7.1f} s; nothing changed {unchanged:6.2f} s"
              f" ({1000 * unchanged / pages:.2f} ms/page); one article edited {min(edited):6.2f} s"
              f" ({1000 * min(edited) / pages:.2f} ms/page)")  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
