"""Run a slow collection in a subprocess, for the kill -9 resume test.

Usage: ``python -m atlas._collect_worker RUN_DIR`` with ``tests/`` on ``sys.path``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from generator.atlas.collect import Sampling, collect

from .conftest import TinyModel, TinySource, simple_batches

#: Options shared by the worker and the test's uninterrupted reference run.
OPTIONS: dict[str, Any] = {
    "layers": ["mixed3a", "mixed4a"],
    "run_key": "kill-test",
    "chunk_images": 8,
}
SAMPLING = Sampling(positions=2, seed=3)
BATCH_SIZE = 4


def batches_of(source: TinySource, delay: float = 0.0) -> Any:
    def batches(indices: Sequence[int]) -> Iterator[Any]:
        for batch in simple_batches(
            source, indices, size=16, batch_size=BATCH_SIZE, device=torch.device("cpu")
        ):
            time.sleep(delay)
            yield batch

    return batches


def main(run_dir: str) -> None:
    torch.set_num_threads(1)
    source = TinySource()
    collect(
        TinyModel(),
        batches_of(source, delay=0.25),
        list(range(len(source))),
        run_dir=run_dir,
        device=torch.device("cpu"),
        sampling=SAMPLING,
        **OPTIONS,
    )


if __name__ == "__main__":
    main(sys.argv[1])
