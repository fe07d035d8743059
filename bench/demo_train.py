"""Benchmark: the cost of training and running the demo model on this CPU.

1. Training throughput: short ``train_demo`` runs (the real recipe, ``--steps`` steps of 128
   images) with 1 and 2 torch threads, the next batch drawn in a background thread or not;
   images/s of wall time and per CPU-second (the CPU figure is the one that survives a busy
   machine; wall time depends on what else runs).
2. Forward cost of the trained model: FLOPs per 64 px image and milliseconds per image in
   eval mode (batches of 1 and 64) with 1 and 2 threads: what feature visualization and
   activation collection will pay per pass.

The full training run is ``atlas train-demo`` itself; its facts (time, CPU, load, accuracy) are
in ``generator/models/weights/demo.json``.

Usage: ``python bench/demo_train.py [--steps 40] [--weights PATH]``; prints Markdown tables
for bench/RESULTS.md ("## Demo model training") and the load average around each part.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from generator.models import registry
from generator.models.train import forward_flops, process_cpu_seconds, train_demo
from generator.models.train_settings import TrainSettings


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def bench_training(steps: int) -> list[str]:
    rows = ["| torch threads | prefetch | images/s (wall) | images per CPU-s | load avg after |",
            "|---|---|---|---|---|"]  # fmt: skip
    for threads in (1, 2):
        for prefetch in (True, False):
            settings = TrainSettings(
                steps=steps, threads=threads, prefetch=prefetch, val_every=0, final_val_images=1
            )
            start, cpu = time.perf_counter(), process_cpu_seconds()
            train_demo(settings, stream=None)
            wall, cpu = time.perf_counter() - start, process_cpu_seconds() - cpu
            images = steps * settings.batch_size
            rows.append(
                f"| {threads} | {'yes' if prefetch else 'no'} | {images / wall:.0f} | "
                f"{images / cpu:.0f} | {load()} |"
            )
            print(rows[-1], file=sys.stderr)
    return rows


def bench_forward(weights: str | None) -> list[str]:
    model = registry.load_model("demo", device=torch.device("cpu"), weights=weights)
    size = model.input_size
    flops = forward_flops(model, size)
    rows = [f"Forward FLOPs per {size} px image: {flops / 1e6:.1f} M "
            f"(multiply-add = 2; {sum(p.numel() for p in model.parameters()):,} parameters).",
            "", "| torch threads | batch | ms per image | load avg after |", "|---|---|---|---|"]  # fmt: skip
    before = torch.get_num_threads()
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for batch, repeats in ((1, 50), (64, 5)):
            images = torch.rand(batch, 3, size, size)
            with torch.no_grad():
                model(images)
                best = float("inf")
                for _ in range(repeats):
                    start = time.perf_counter()
                    model(images)
                    best = min(best, time.perf_counter() - start)
            rows.append(f"| {threads} | {batch} | {best / batch * 1000:.2f} | {load()} |")
            print(rows[-1], file=sys.stderr)
    torch.set_num_threads(before)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="steps per training variant")
    parser.add_argument("--weights", default=None, help="a demo model file (default: committed)")
    args = parser.parse_args()
    print(f"load average at start: {load()}; torch {torch.__version__}; {os.cpu_count()} CPUs\n")
    print("\n".join(bench_training(args.steps)))
    print()
    print("\n".join(bench_forward(args.weights)))


if __name__ == "__main__":
    main()
