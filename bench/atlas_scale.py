"""Benchmark: one demo-model atlas at N samples, wall time and peak RSS per stage (issue 15).

The repository's ``atlas.toml`` and ``content/`` are copied into a temporary project (its cache
starts empty) with one more atlas, ``scale``: the demo model's ``--layer`` over ``--samples``
images of the synthetic world (one position each, attributions on, float16 storage), grids
``--grids`` (the article's 20, 40, 80, 160 by default), landmarks layout when ``auto`` picks
it, icons of the demo preset (``--steps`` overrides the steps). Then:

1. ``atlas compute --bundle scale``, its log lines timestamped and the resident memory of the
   process sampled every 0.2 s (``/proc/<pid>/status``); each log line closes the stage it
   reports (collect, layout, grids, render, examples, compose), so a stage's seconds are the
   time before its line and its peak RSS the largest sample in that time;
2. tiles: the finest level image of the bundle cut into a Deep Zoom pyramid
   (``generator.tiles.tile_image``), timed, with its own peak RSS.

Prints a Markdown row per stage and, last, ``atlas_scale n=N seconds=S peak_rss_gb=R``;
``--json OUT`` keeps every figure. Run it at 10k, 100k and 1M and compare the growth of each
stage (bench/RESULTS.md, "Atlas at scale").

    python bench/atlas_scale.py --samples 10000 [--grids 20 40 80 160] [--steps 64]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.demo import ROOT, Run, copy_project, machine, run_atlas, stage_spans

#: Log line -> the stage whose work the time before it was (first match wins).
STAGES = (
    (re.compile(r"^collect "), "collect"),
    (re.compile(r"^layout: done"), "layout"),
    (re.compile(r"^\s+grid \d+x\d+: "), "grids"),
    (re.compile(r"^render"), "render"),
    (re.compile(r"^examples"), "examples"),
    (re.compile(r"^(compose: |atlas \S+: bundle written)"), "compose"),
)
OTHER = "other (start-up, cache look-ups, selection)"


def atlas_table(samples: int, grids: list[int], layer: str, steps: int | None) -> str:
    render = '{ preset = "demo"' + (f", steps = {steps}" if steps else "") + " }"
    return (
        "[atlas.scale]\n"
        'title = "Scale"\nmodel = "demo"\n'
        f'layer = "{layer}"\ndataset = "synthetic"\nsamples = {samples}\n'
        f"grids = {grids}\nmin_count = 3\nwhiten = false\nfloat16 = true\n"
        'attribution = { measure = "readout" }\n'
        'layout = { n_neighbors = 50, min_dist = 0.05, metric = "cosine" }\n'
        f"render = {render}\n"
    )


def per_stage(run: Run) -> dict[str, dict[str, float]]:
    """Seconds and peak RSS (GB) per stage (:func:`bench.demo.stage_spans`)."""
    stages: dict[str, dict[str, float]] = {}
    for name, start, end in stage_spans(run, STAGES, OTHER):
        row = stages.setdefault(name, {"seconds": 0.0, "peak_rss_gb": 0.0})
        row["seconds"] += end - start
        peak = max((rss for when, rss in run.rss if start <= when <= end), default=0)
        row["peak_rss_gb"] = max(row["peak_rss_gb"], peak / 1e9)
    return stages


def tile_finest(project: Path) -> dict[str, float]:
    """Cut the finest level of the computed bundle, in a child process: seconds, peak RSS."""
    (bundle,) = [p for p in (project / ".atlas-cache" / "bundle").iterdir() if p.is_dir()]
    code = (
        "import sys, time, resource;"
        "from pathlib import Path;"
        "from generator.bundle import AtlasBundle;"
        "from generator.tiles import TileSettings, tile_image;"
        f"b = AtlasBundle.load({str(bundle)!r});"
        "level = max(b.levels, key=lambda l: l.grid);"
        "t = time.perf_counter();"
        f"tile_image(Path({str(bundle)!r}) / level.image, Path(sys.argv[1]), TileSettings());"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    with tempfile.TemporaryDirectory() as out:
        result = subprocess.run(
            [sys.executable, "-c", code, str(Path(out) / "finest")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    seconds, max_kb = result.stdout.split()[-2:]
    return {"seconds": float(seconds), "peak_rss_gb": int(max_kb) * 1024 / 1e9}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--grids", type=int, nargs="+", default=[20, 40, 80, 160])
    parser.add_argument("--layer", default="mixed4c")
    parser.add_argument("--steps", type=int, default=None, help="icon steps (demo preset: 64)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="keep the project here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        project = args.keep or Path(tmp) / "project"
        project.mkdir(parents=True, exist_ok=True)
        copy_project(project)
        (project / "content" / "scale").mkdir(exist_ok=True)
        (project / "content" / "scale" / "atlases.toml").write_text(
            atlas_table(args.samples, args.grids, args.layer, args.steps)
        )
        started = time.perf_counter()
        run = run_atlas(project, "compute", "--bundle", "scale", sample_rss=True)
        if run.code != 0:
            print(f"atlas compute failed (exit {run.code})", file=sys.stderr)
            return run.code
        stages = per_stage(run)
        stages["tiles"] = tile_finest(project)
        total = time.perf_counter() - started
    peak = max(row["peak_rss_gb"] for row in stages.values())
    print(f"# {machine()}")
    print(f"# samples {args.samples:,}, grids {args.grids}, layer {args.layer}")
    print("| stage | seconds | peak RSS GB |")
    print("|---|---|---|")
    for name, row in stages.items():
        print(f"| {name} | {row['seconds']:.1f} | {row['peak_rss_gb']:.2f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc: dict[str, Any] = {
            "samples": args.samples,
            "grids": args.grids,
            "layer": args.layer,
            "steps": args.steps,
            "stages": stages,
            "seconds": total,
            "children_max_rss_gb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            * 1024
            / 1e9,
        }
        args.json.write_text(json.dumps(doc, indent=1))
    print(f"atlas_scale n={args.samples} seconds={total:.1f} peak_rss_gb={peak:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
