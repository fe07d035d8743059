"""Benchmark: memory of the whitening and grid stages over a million samples (issue 15).

Seeded activations of ``--n`` samples x ``--channels`` channels with attributions to
``--classes`` classes are written as the cache stores them (float16 ``.npy`` files,
:meth:`generator.atlas.artifacts.Activations.save`), then, each in a fresh child process:

* ``streamed``: loaded as the pipeline loads them (memory-mapped, float16), whitening and the
  grids ``--grids`` computed (:func:`generator.atlas.grid.whitening`, ``make_grid``);
* ``in-memory`` (with ``--compare``): the same after converting every array to float32 in
  memory first, which is what the pipeline did before activations were streamed.

With ``--layout L`` the grids rest on a real layout instead of random positions: the
landmarks back end (``L`` landmarks; UMAP 50 neighbours, min_dist 0.05, cosine, seed 0) over
the memory-mapped float16 vectors, as the pipeline runs it above 100,000 samples, so the child
runs every stage of an atlas between collection and rendering (whitening, layout, grids).

Reported per child: seconds, the peak of its anonymous memory (``RssAnon``, sampled every
0.1 s: what the stage itself holds) and its peak resident set (``VmHWM``: that plus the pages
of the memory-mapped files it read, which the kernel may drop at any time).

    python bench/stream_grids.py --n 1000000 --channels 1024 --classes 1000 [--compare]
        [--layout 2000]

The last line: ``stream_grids n=N channels=C classes=K anon_gb=A seconds=S``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generator.atlas.artifacts import Activations, row_blocks


def write(folder: Path, n: int, channels: int, classes: int, seed: int = 0) -> None:
    """Seeded activations as the cache stores them, written a block of rows at a time."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name, width in (("vectors", channels), ("attributions", classes)):
        out = np.lib.format.open_memmap(
            folder / f"{name}.raw.npy", mode="w+", dtype=np.float16, shape=(n, width)
        )
        for rows in row_blocks(n, 65536):
            block = rng.gamma(0.5, 1.0, (rows.stop - rows.start, width))
            out[rows] = block if name == "vectors" else block - 0.5
        out.flush()
        arrays[name] = np.load(folder / f"{name}.raw.npy", mmap_mode="r")
    Activations(
        layer="bench",
        vectors=arrays["vectors"],
        image_index=np.arange(n, dtype=np.int64),
        positions=np.zeros((n, 2), dtype=np.int64),
        labels=np.zeros(n, dtype=np.int64),
        layer_hw=(1, 1),
        attributions=arrays["attributions"],
    ).save(folder / "activations", float16=True)
    for name in ("vectors", "attributions"):
        (folder / f"{name}.raw.npy").unlink()


CHILD = """
import json, sys, threading, time
from pathlib import Path
import numpy as np
from generator.atlas.artifacts import Activations, Layout
from generator.atlas.grid import make_grid, whitening
from generator.atlas.layout import LayoutParams, compute_layout
from generator.atlas.layout_backends import LayoutBackend

def status(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0

peak = [0]
done = threading.Event()
def sample():
    while not done.wait(0.1):
        peak[0] = max(peak[0], status("RssAnon"))
threading.Thread(target=sample, daemon=True).start()

folder, mode, grids = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
landmarks = int(sys.argv[4])
start = time.perf_counter()
acts = Activations.load(folder / "activations")
if mode == "in-memory":
    acts = Activations(
        layer=acts.layer, vectors=np.array(acts.vectors, dtype=np.float32),
        image_index=acts.image_index, positions=acts.positions, labels=acts.labels,
        layer_hw=acts.layer_hw, attributions=np.array(acts.attributions, dtype=np.float32))
whitening(acts)
laid = time.perf_counter()
if landmarks:
    layout = compute_layout(
        acts.vectors, LayoutParams(n_neighbors=50, min_dist=0.05, metric="cosine"), seed=0,
        backend=LayoutBackend("landmarks", landmarks=landmarks))
else:
    layout = Layout(np.random.default_rng(1).random((acts.count, 2)).astype(np.float32), "umap")
laid = time.perf_counter() - laid
cells = [int(make_grid(acts, layout, g, min_count=3).counts.size) for g in grids]
seconds = time.perf_counter() - start
done.set()
peak[0] = max(peak[0], status("RssAnon"))
print(json.dumps({"seconds": seconds, "layout_seconds": laid, "anon_gb": peak[0] / 1e9,
                  "hwm_gb": status("VmHWM") / 1e9, "cells": cells}))
"""


def measure(folder: Path, mode: str, grids: list[int], landmarks: int) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), mode, json.dumps(grids), str(landmarks)],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--channels", type=int, default=1024)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--grids", type=int, nargs="+", default=[20, 40, 80, 160])
    parser.add_argument("--compare", action="store_true", help="also the in-memory path")
    parser.add_argument(
        "--layout", type=int, default=0, metavar="L", help="lay out with L landmarks first"
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        write(Path(tmp), args.n, args.channels, args.classes)
        print(f"# data written in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        modes = ["streamed", "in-memory"] if args.compare else ["streamed"]
        rows = {mode: measure(Path(tmp), mode, args.grids, args.layout) for mode in modes}
    print(f"# n {args.n:,}, channels {args.channels}, classes {args.classes}, grids {args.grids}")
    print(f"# layout: {f'landmarks ({args.layout})' if args.layout else 'random positions'}")
    print("| path | seconds | layout s | cells | peak anonymous GB | peak RSS GB (mapped pages) |")
    print("|---|---|---|---|---|---|")
    for mode, row in rows.items():
        print(
            f"| {mode} | {row['seconds']:.1f} | {row['layout_seconds']:.1f} | {row['cells']} |"
            f" {row['anon_gb']:.2f} | {row['hwm_gb']:.2f} |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"args": vars(args) | {"json": None}, "rows": rows}))
    streamed = rows["streamed"]
    print(
        f"stream_grids n={args.n} channels={args.channels} classes={args.classes}"
        f" anon_gb={streamed['anon_gb']:.2f} seconds={streamed['seconds']:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
