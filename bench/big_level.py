"""Benchmark: a 160 x 160 level with tens of thousands of occupied cells, from the samples to the
published site: rendered in batches, interrupted and resumed, tiled, measured against the
Pages budget (issue 15, "grids to 160 and beyond").

The demo model's layers cluster tightly, so its UMAP layouts keep at most ~2,000 of the 25,600
cells of a 160 x 160 grid (bench/RESULTS.md, "Atlas at scale"); the article's mixed4c atlas
keeps tens of thousands. To reach those counts on the demo model, this benchmark lays the
samples out with a *spread* layout: the first two principal components of the activations,
each replaced by its rank (both axes uniform on [0, 1], similar vectors still
close; the second axis ranked within each of 160 strips of the first, so every strip fills
evenly), saved into the cache as the layout stage's artifact under the stage's own key. Every
other step is the product's code path:

1. a temporary project: the repository's ``atlas.toml`` and one publication, ``big`` (a page
   showing the atlas ``big``: the demo model's ``--layer`` over ``--samples`` images of the
   synthetic world, grids 20, 40, 80, 160, ``min_count = 0``, icons of ``--icon`` px and
   ``--steps`` steps, dataset examples);
2. collection (in this process, as ``atlas compute`` runs it), then the spread layout;
3. ``atlas compute --bundle big`` killed (SIGKILL) once ``--kill-after`` icons of its render
   are done, then run again to the end: it must report that it resumes (icons done, batches);
4. ``atlas build``: the published bytes and files of the atlas, per kind (tiles, cell blocks,
   dataset-example sheets, heat maps), against ``[budget]``; then ``atlas build`` again with
   ``[budget] max_bytes`` at half the site, which must fail naming the atlas to trim.

Prints Markdown tables and, last, ``big_level cells=M icons=I render_s=S site_mb=B files=F``;
``--json OUT`` keeps every figure.

    python bench/big_level.py --samples 60000 [--icon 16] [--steps 8] [--kill-after 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.demo import ROOT, machine, run_atlas

GRIDS = [20, 40, 80, 160]
RENDER_DONE = re.compile(r"^render: ([\d,]+)/([\d,]+) icons")


def atlas_table(samples: int, layer: str, icon: int, steps: int) -> str:
    return (
        "[atlas.big]\n"
        'title = "A 160 x 160 level"\nmodel = "demo"\n'
        f'layer = "{layer}"\ndataset = "synthetic"\nsamples = {samples}\n'
        f"grids = {GRIDS}\nmin_count = 0\nwhiten = false\nfloat16 = true\n"
        'attribution = { measure = "readout" }\n'
        f"render = {{ icon_size = {icon}, steps = {steps}, tries = 1, border = false }}\n"
    )


PAGE = """---
title: A 160 x 160 level
description: Tens of thousands of cells in one atlas.
---

```atlas
id: big
height: 600
caption: "Every level, to 160 x 160."
```
"""


def make_project(project: Path, args: argparse.Namespace) -> None:
    text = (ROOT / "atlas.toml").read_text()
    # only this benchmark's publication: the repository's other content stays out
    (project / "atlas.toml").write_text(text)
    big = project / "content" / "big"
    big.mkdir(parents=True, exist_ok=True)
    (big / "atlases.toml").write_text(atlas_table(args.samples, args.layer, args.icon, args.steps))
    (big / "index.md").write_text(PAGE)
    (project / "content" / "index.md").write_text(
        "---\ntitle: Big\ndescription: One publication.\n---\n\n[The atlas](big/index.md)\n"
    )


def spread_layout(vectors: np.ndarray, columns: int = GRIDS[-1]) -> np.ndarray:
    """``[N, 2] float32`` in [0, 1]: x the rank of the first principal component; y, within
    each of ``columns`` strips of equal x rank, the rank of the second (both axes uniform and
    every strip filled evenly, so the finest grid's cells are about equally occupied; similar
    vectors still sit close)."""
    x = np.asarray(vectors, dtype=np.float64)
    x = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(x[:: max(1, len(x) // 20000)], full_matrices=False)
    pcs = x @ vt[:2].T
    n = len(x)
    order = np.argsort(pcs[:, 0], kind="stable")
    xy = np.empty((n, 2), dtype=np.float64)
    xy[order, 0] = (np.arange(n) + 0.5) / n
    for strip in np.array_split(order, columns):
        inner = strip[np.argsort(pcs[strip, 1], kind="stable")]
        xy[inner, 1] = (np.arange(len(inner)) + 0.5) / len(inner)
    return xy.astype(np.float32)


def collect_and_lay_out(project: Path) -> dict[str, float]:
    """Collect the atlas's activations and put the spread layout into the cache."""
    from generator.atlas.artifacts import Layout
    from generator.atlas.environment import ComputeEnvironment
    from generator.atlas.progress import Progress
    from generator.atlas.spec import parse_computed_atlas
    from generator.atlas.stages import StageCache, collect_activations, open_sources
    from generator.config import load_config
    from generator.keys import StageKeys

    config = load_config(project / "atlas.toml")
    table = tomllib.loads((project / "content/big/atlases.toml").read_text())["atlas"]["big"]
    spec = parse_computed_atlas("big", table, "content/big/atlases.toml:1")
    env = ComputeEnvironment.from_config(config)
    progress = Progress(sys.stderr, log_interval=10.0)
    started = time.perf_counter()
    with env.threads_capped():
        sources = open_sources(spec, env)
        acts = collect_activations(
            [spec],
            sources,
            cache_dir=env.cache,
            device=env.device,
            progress=progress,
            batch_size=env.batch_size,
            workers=env.workers,
        )[spec.layer]
    collected = time.perf_counter() - started
    started = time.perf_counter()
    xy = spread_layout(acts.vectors)
    keys = StageKeys.of(spec, sources)
    cache = StageCache(env.cache, progress, keys)
    cache.put(
        "layout",
        Layout(xy, "umap", {"spread": "PCA 1 rank, PCA 2 rank in 160 strips"}),
        Layout.save,
    )
    return {"collect_s": collected, "layout_s": time.perf_counter() - started}


def compute_killed(project: Path, kill_after: int) -> dict[str, Any]:
    """``atlas compute --bundle big``, SIGKILLed once ``kill_after`` icons are rendered."""
    command = [sys.executable, "-m", "generator.cli", "--config", str(project / "atlas.toml")]
    proc = subprocess.Popen(
        [*command, "compute", "--bundle", "big"],
        cwd=project,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    assert proc.stdout is not None
    started, done, total = time.perf_counter(), 0, 0
    for line in proc.stdout:
        print(f"  [{time.perf_counter() - started:6.1f}s] {line.rstrip()}", file=sys.stderr)
        hit = RENDER_DONE.match(line.strip())
        if hit:
            done, total = (int(v.replace(",", "")) for v in hit.groups())
            if done >= kill_after and done < total:
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait()
    return {"killed_at_icons": done, "icons": total, "seconds": time.perf_counter() - started}


def published(site: Path) -> dict[str, dict[str, int]]:
    """Bytes and files of the atlas in the built site, by kind."""
    kinds: dict[str, dict[str, int]] = defaultdict(lambda: {"bytes": 0, "files": 0})
    atlas = next((site / "atlases").iterdir())
    for path in atlas.rglob("*"):
        if not path.is_file():
            continue
        rel = path.relative_to(atlas).as_posix()
        level = re.search(r"(?:level|cells|examples|heatmap)-(\d+)", rel)
        kind = (
            "tiles"
            if "_files/" in rel or rel.endswith(".dzi")
            else "cell blocks"
            if rel.startswith("cells")
            else "example sheets"
            if rel.startswith("examples")
            else "heat maps"
            if rel.startswith("heatmap")
            else "other"
        )
        key = f"{kind} {level.group(1)}" if level else kind
        kinds[key]["bytes"] += path.stat().st_size
        kinds[key]["files"] += 1
    return dict(sorted(kinds.items()))


def over_budget(project: Path, site_bytes: int) -> str:
    """``atlas build`` with ``[budget] max_bytes`` at half the site: the error it prints (it
    must fail and name the atlas's part); atlas.toml is restored afterwards."""
    toml = project / "atlas.toml"
    original = toml.read_text()
    lowered, count = re.subn(r"(?m)^max_bytes = .*$", f"max_bytes = {site_bytes // 2}", original)
    assert count == 1, "atlas.toml has no [budget] max_bytes line"
    toml.write_text(lowered)
    try:
        run = run_atlas(project, "build")
    finally:
        toml.write_text(original)
    text = "\n".join(line for _, line in run.lines)
    if run.code == 0 or "over its budget" not in text:
        raise SystemExit(f"a build over its budget did not fail as it should:\n{text}")
    return next(line for line in text.splitlines() if "over its budget" in line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=60_000)
    parser.add_argument("--layer", default="mixed4c")
    parser.add_argument("--icon", type=int, default=16)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--kill-after", type=int, default=3000)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="keep the project here (a kept project's cached activations are reused)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        project = args.keep or Path(tmp) / "project"
        project.mkdir(parents=True, exist_ok=True)
        make_project(project, args)
        first = collect_and_lay_out(project)
        killed = compute_killed(project, args.kill_after)
        resumed = run_atlas(project, "compute", "--bundle", "big", sample_rss=True)
        log = "\n".join(line for _, line in resumed.lines)
        if resumed.code != 0:
            print(log, file=sys.stderr)
            return 1
        resume = re.search(r"render: resuming, ([\d,]+) of ([\d,]+) icons already done", log)
        batches = re.search(r"render: (\d+) icons per batch", log)
        cells = {
            int(g): int(n.replace(",", ""))
            for g, n in re.findall(r"grid (\d+)x\d+: ([\d,]+) cells kept", log)
        }
        build = run_atlas(project, "build")
        if build.code != 0:
            print("\n".join(line for _, line in build.lines), file=sys.stderr)
            return 1
        from generator.config import load_config

        budget = load_config(project / "atlas.toml").budget
        parts = published(project / "site")
        site_bytes = sum(p.stat().st_size for p in (project / "site").rglob("*") if p.is_file())
        site_files = sum(1 for p in (project / "site").rglob("*") if p.is_file())
        refused = over_budget(project, site_bytes)
    peak = max((rss for _, rss in resumed.rss), default=0) / 1e9
    result = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "args": {k: v for k, v in vars(args).items() if k not in ("json", "keep")},
        "collect_and_layout": first,
        "killed": killed,
        "resumed_at": resume.group(0) if resume else None,
        "batch": batches.group(1) if batches else None,
        "compute_after_kill_s": resumed.wall,
        "compute_peak_rss_gb": peak,
        "build_s": build.wall,
        "cells": cells,
        "published": parts,
        "site_bytes": site_bytes,
        "site_files": site_files,
        "over_budget_error": refused,
        "budget": {
            "max_bytes": budget.max_bytes,
            "max_files": budget.max_files,
            "max_file_bytes": budget.max_file_bytes,
        },
    }
    print(json.dumps(result, indent=1))
    print(f"over budget (max_bytes = half the site): {refused}")
    print("| part | MB | files |\n|---|---|---|")
    for name, row in parts.items():
        print(f"| {name} | {row['bytes'] / 1e6:.2f} | {row['files']:,} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    print(
        f"big_level cells={cells.get(160, 0)} icons={killed['icons']}"
        f" render_s={resumed.wall:.1f} site_mb={site_bytes / 1e6:.1f} files={site_files}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
