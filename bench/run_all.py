"""Run the benchmarks one after another (``make bench``), each in its own process.

    python bench/run_all.py                 # every CPU benchmark with its defaults (long: ~1 h)
    python bench/run_all.py --list          # what would run, with each one's command
    python bench/run_all.py --only tiles site_build

Each benchmark prints the Markdown tables that go into bench/RESULTS.md; its whole output is
also kept in ``bench/out/<name>.log``. They run one at a time because each one times itself
and this machine has few cores. The GPU benchmarks (``render_gpu``, ``collect_scale``) run
only where CUDA is available (on a lent device machine, run ``bash bench/gpu_session.sh``
instead: it adds the GPU tests and the list of cached weights). A failing benchmark does not
stop the others; the exit status is 1 if any failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"


@dataclass(frozen=True)
class Bench:
    name: str
    args: tuple[str, ...]
    what: str
    gpu: bool = False

    @property
    def command(self) -> list[str]:
        return [sys.executable, f"bench/{self.name}.py", *self.args]


BENCHES = (
    Bench("data", (), "images/s from the synthetic world and image folders"),
    Bench("tiles", (), "Deep Zoom pyramids: 12800 px atlas, semantic zoom"),
    Bench("site_build", (), "site build: 50 articles full, no-change, incremental"),
    Bench("collect", (), "activations and attributions; our layout against umap-learn"),
    Bench("neighbors", (), "our exact neighbours against scikit-learn's brute force"),
    Bench(
        "layout_scale",
        ("--n", "1000000", "--dim", "128", "--backend", "landmarks"),
        "a million 128-d vectors laid out by the landmarks back end",
    ),
    Bench(
        "atlas_scale",
        ("--samples", "10000", "--json", "bench/out/atlas_scale-10k.json"),
        "a demo-model atlas of 10,000 samples, grids to 160: seconds and peak RSS per stage",
    ),
    Bench(
        "stream_grids",
        ("--n", "1000000", "--channels", "128", "--classes", "1000", "--compare"),
        "whitening and grids of a million samples: streamed against in memory",
    ),
    Bench(
        "big_level",
        ("--samples", "60000", "--steps", "2", "--json", "bench/out/big_level.json"),
        "a 160 x 160 level of 25,600 cells: rendered, killed and resumed, published, budget",
    ),
    Bench("render", (), "our feature visualization against torch-lucent's render_vis"),
    Bench("render_cpu", ("--out", "bench/out/render_cpu.json"), "icon rendering on the CPU"),
    Bench("ray_render", ("--out", "bench/out/ray_render.json"), "icon rendering on Ray workers"),
    Bench("demo_train", (), "demo model training and forward cost"),
    Bench("demo", (), "the demo publication, cold and warm, and its quality checks"),
    Bench("class_atlases", (), "a class atlas of every demo class"),
    Bench("render_gpu", ("--out", "bench/out/render_gpu.json"), "icon rendering on a GPU", True),
    Bench(
        "collect_scale",
        ("--json", "bench/out/collect_scale.json"),
        "InceptionV1 collection from 20,000 JPEGs on a GPU, decoding included (1M goal)",
        True,
    ),
)


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    names = [b.name for b in BENCHES]
    parser.add_argument("--only", nargs="+", choices=names, metavar="NAME", help=", ".join(names))
    parser.add_argument("--list", action="store_true", help="print what would run, run nothing")
    args = parser.parse_args(argv)
    chosen = [b for b in BENCHES if args.only is None or b.name in args.only]
    cuda = cuda_available()
    if args.list:
        for b in chosen:
            skip = "  (skipped: no CUDA here)" if b.gpu and not cuda else ""
            print(f"{b.name:<14} {b.what}{skip}\n{'':<14} {' '.join(b.command[1:])}")
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    results: list[tuple[str, str, float]] = []
    for b in chosen:
        if b.gpu and not cuda:
            results.append((b.name, "skipped (no CUDA)", 0.0))
            continue
        log = OUT / f"{b.name}.log"
        print(f"== {b.name}: {b.what}\n   {' '.join(b.command[1:])}  (log: {log})", flush=True)
        start = time.perf_counter()
        with log.open("w") as sink:
            proc = subprocess.Popen(
                b.command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            assert proc.stdout is not None
            for line in proc.stdout:
                sys.stdout.write(line)
                sink.write(line)
            rc = proc.wait()
        results.append((b.name, "ok" if rc == 0 else f"exit {rc}", time.perf_counter() - start))
    print("\n| benchmark | result | wall |\n|---|---|---|")
    for name, result, wall in results:
        print(f"| {name} | {result} | {wall:.0f} s |")
    return 0 if all(r in ("ok", "skipped (no CUDA)") for _, r, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
