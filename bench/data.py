"""Benchmark: how fast images come out of generator/data, and whether the synthetic world is learnable.

1. The synthetic world: ``render_batch`` images/s on one core at 64 px (batches of 1, 64, 256)
   and at 224 px; goal: thousands per second at 64 px.
2. Image folders: decoding ImageNet-sized JPEGs (500x375, quality 90) and fitting them to
   224 px, per image and through ``iterate_batches`` with 0 and 2 workers.
3. ``--learn SECONDS``: a quick learnability check. A 4-layer CNN (16-32-64-96 channels,
   batch norm, ~90k parameters) trains on freshly drawn synthetic images for SECONDS of wall
   time, then is scored on 2,000 images it never saw (indices 900,000+); chance is 1/12.

Usage: ``python bench/data.py [--images 200] [--learn 120] [--threads 2]``; prints Markdown
tables for bench/RESULTS.md ("## Data"). ``--device cuda --workers 8`` trains on a GPU instead.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generator.data.folder import FolderSource
from generator.data.loader import fit_image, iterate_batches
from generator.data.synthetic import CLASS_NAMES, SyntheticWorld, render_batch


def rate(fn: object, count: int, repeats: int = 3) -> float:
    """Best of ``repeats`` runs of ``fn()`` (which handles ``count`` images), in images/s."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return count / best


def bench_synthetic() -> list[tuple[str, float]]:
    rows = []
    render_batch(np.arange(64))  # warm-up
    for size, batch, total in ((64, 1, 300), (64, 64, 2048), (64, 256, 2048), (224, 64, 256)):
        chunks = [np.arange(k, k + batch) for k in range(0, total, batch)]
        r = rate(lambda c=chunks, s=size: [render_batch(ch, size=s) for ch in c], total)
        rows.append((f"render_batch {size} px, batches of {batch}", r))
    return rows


def bench_folder(n_images: int) -> list[tuple[str, float]]:
    import torch
    from PIL import Image

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        base = (rng.random((375 // 25 + 1, 500 // 25 + 1, 3)) * 255).astype(np.uint8)
        photo = np.asarray(Image.fromarray(base).resize((500, 375), Image.Resampling.BICUBIC))
        for i in range(n_images):  # photo-like content: smooth colour fields plus grain
            grain = rng.integers(-12, 13, size=photo.shape)
            img = np.clip(photo.astype(int) + grain, 0, 255).astype(np.uint8)
            Image.fromarray(img).save(Path(tmp) / f"{i:05d}.jpg", quality=90)
        source = FolderSource(tmp)
        rows.append(
            (
                "decode 500x375 JPEG",
                rate(lambda: [source.read(i) for i in range(n_images)], n_images),
            )
        )
        rows.append(
            (
                "decode + stretch to 224",
                rate(lambda: [fit_image(source.read(i), 224) for i in range(n_images)], n_images),
            )
        )
        cpu = torch.device("cpu")
        for workers in (0, 2):
            run = lambda w=workers: list(  # noqa: E731
                iterate_batches(source, range(n_images), size=224, device=cpu, workers=w)
            )
            rows.append((f"iterate_batches 224 px, workers={workers}", rate(run, n_images, 2)))
    world = SyntheticWorld()
    for workers in (0, 2):
        run = lambda w=workers: list(  # noqa: E731
            iterate_batches(world, range(4096), size=64, device=cpu, batch_size=256, workers=w)
        )
        rows.append((f"iterate_batches synthetic 64 px, workers={workers}", rate(run, 4096, 2)))
    return rows


def learn(seconds: float, device_name: str, workers: int) -> tuple[float, int, int]:
    """Train the quick CNN for ``seconds``; (fresh accuracy, steps, images seen)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    device = torch.device(device_name)

    def block(cin: int, cout: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )

    net = nn.Sequential(
        block(3, 16), block(16, 32), block(32, 64), block(64, 96),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(96, len(CLASS_NAMES)),
    ).to(device)  # fmt: skip
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    world = SyntheticWorld(seed=0)
    steps = seen = 0
    start = time.perf_counter()
    stream = iterate_batches(
        world, range(900_000), size=64, device=device, batch_size=128, workers=workers
    )
    for batch in stream:
        loss = nn.functional.cross_entropy(net(batch.images), batch.labels.to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps, seen = steps + 1, seen + len(batch)
        if time.perf_counter() - start > seconds:
            break
    stream.close()
    net.eval()
    correct = 0
    with torch.no_grad():
        for batch in iterate_batches(
            world, range(900_000, 902_000), size=64, device=device, batch_size=500
        ):
            pred = net(batch.images).argmax(1).cpu()
            correct += int((pred == batch.labels).sum())
    return correct / 2000, steps, seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="JPEGs to decode")
    parser.add_argument(
        "--learn", type=float, default=0.0, help="seconds of CNN training (0: skip)"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=0, help="loader workers while learning")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    rows = bench_synthetic() + bench_folder(args.images)
    print("| what | images/s |\n|---|---|")
    for what, r in rows:
        print(f"| {what} | {r:,.0f} |")
    if args.learn > 0:
        acc, steps, seen = learn(args.learn, args.device, args.workers)
        print(f"\nlearnability: {steps} steps, {seen:,} images in {args.learn:.0f} s on {args.device}: "
              f"accuracy on 2,000 fresh images {acc:.1%} (chance {1 / len(CLASS_NAMES):.1%})")  # fmt: skip


if __name__ == "__main__":
    main()
