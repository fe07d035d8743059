"""``[compute] threads`` caps every CPU thread pool of the compute stages: torch's, the OpenMP
and BLAS runtimes already loaded, and an OpenMP runtime loaded inside the block (scikit-learn's,
imported by the t-SNE layout). Run in a fresh interpreter, so that nothing is loaded before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from generator.config import load_config
from generator.errors import ConfigError

PROBE = """
import json, os
import torch
from threadpoolctl import threadpool_info
from generator.atlas.environment import torch_threads

torch.set_num_threads(2)
with torch_threads(1):
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads  # loaded inside
    inside = {
        "torch": torch.get_num_threads(),
        "sklearn_openmp": _openmp_effective_n_threads(),
        "pools": sorted({p["num_threads"] for p in threadpool_info()}),
    }
after = {"torch": torch.get_num_threads(), "omp_env": os.environ.get("OMP_NUM_THREADS")}
print(json.dumps({"inside": inside, "after": after}))
"""


def test_one_thread_caps_torch_openmp_and_blas_and_restores_torch() -> None:
    env_free = {k: v for k, v in __import__("os").environ.items() if k != "OMP_NUM_THREADS"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env_free, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["inside"] == {"torch": 1, "sklearn_openmp": 1, "pools": [1]}
    assert result["after"] == {"torch": 2, "omp_env": None}


@pytest.mark.parametrize("bad", ["0", "-1", "1.5", '"2"', "true"])
def test_bad_thread_counts_are_config_errors(bad: str, tmp_path: Path) -> None:
    config = tmp_path / "atlas.toml"
    config.write_text(
        f'[site]\ntitle = "T"\nsite_url = "https://example.org/"\n\n[compute]\nthreads = {bad}\n'
    )
    with pytest.raises(ConfigError, match=r"atlas.toml:6: \[compute\] threads = .*integer"):
        load_config(config)
