"""Several atlases' icons in one queue on a local Ray cluster (two CPU workers): one pool
renders the batches of every level of both atlases, and each atlas's bundle then finds its
render finished and equals, byte for byte, the bundle built without Ray.

Two atlases of the demo model (random weights) on two layers, as test_cluster.py builds one.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest

from generator.atlas.bundle_stage import compute_bundle
from generator.atlas.progress import Progress
from generator.atlas.render_queue import render_queue
from generator.atlas.spec import ComputedAtlasSpec, parse_computed_atlas

from .test_cluster import TABLE, demo_config, digests

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: test_cluster.py's atlas (mixed4c) and the same on mixed3b, 4 steps a batch of 2.
SPECS = [
    parse_computed_atlas(
        f"demo-{layer}",
        {**TABLE, "layer": layer, "render": {**TABLE["render"], "steps": 4}},
        "content/demo/atlases.toml:1",
    )
    for layer in ("mixed4c", "mixed3b")
]


def bundles(cache: Path, cluster: str, log: io.StringIO) -> list[dict[str, str]]:
    config = demo_config(cache, cluster, 60)
    progress = Progress(log, log_interval=0.0)
    render_queue(SPECS, config, progress=progress)
    return [digests(compute_bundle(s, config=config, progress=progress)) for s in SPECS]


def test_without_a_cluster_the_queue_does_nothing(tmp_path: Path) -> None:
    config = demo_config(tmp_path / ".atlas-cache", "none", 60)
    assert render_queue(SPECS, config, progress=Progress(io.StringIO())) == 0
    assert not (tmp_path / ".atlas-cache").exists()  # nothing computed, nothing written


def test_every_atlas_renders_in_one_queue_to_the_bundles_built_without_ray(
    ray_session: Any, tmp_path: Path
) -> None:
    local = bundles(tmp_path / "local" / ".atlas-cache", "none", io.StringIO())
    log = io.StringIO()
    cluster = bundles(tmp_path / "ray" / ".atlas-cache", "local", log)
    assert cluster == local
    text = log.getvalue()
    queue = re.search(r"render: one queue of (\d+) batch\(es\), ([\d,]+) icons, from 2 atlas", text)
    assert queue, text
    batches, icons = int(queue.group(1)), int(queue.group(2).replace(",", ""))
    assert f"render: {batches} batch(es) on 2 of 2 Ray worker(s)" in text
    assert len(re.findall(r"render: \d+ batch\(es\) on", text)) == 1  # one pool for both
    assert f"{batches}/{batches} batches, 2/2 workers alive" in text
    done = [int(n) for n in re.findall(r"render: resuming, (\d+) of \1 icons already done", text)]
    assert len(done) == 2 and sum(done) == icons  # each bundle found its render finished


@pytest.mark.slow
def test_a_queue_worker_killed_mid_render_is_restarted_and_the_bundles_are_the_same(
    ray_session: Any, tmp_path: Path
) -> None:
    from .test_cluster import killing_a_worker

    local = bundles(tmp_path / "local" / ".atlas-cache", "none", io.StringIO())
    cache = tmp_path / "ray" / ".atlas-cache"
    log = io.StringIO()
    with killing_a_worker(cache / "render-runs", "*/part-*.npz", 2, b"RenderWorker") as killed:
        cluster = bundles(cache, "local", log)
    assert killed, "no queue worker was found to kill"
    assert cluster == local
    assert "restart(s)" in log.getvalue()


def test_an_atlas_already_cached_stays_out_of_the_queue(ray_session: Any, tmp_path: Path) -> None:
    cache = tmp_path / ".atlas-cache"
    config = demo_config(cache, "none", 60)
    first: ComputedAtlasSpec = SPECS[0]
    compute_bundle(first, config=config, progress=Progress(io.StringIO()))
    log = io.StringIO()
    rendered = render_queue(
        SPECS, demo_config(cache, "local", 60), progress=Progress(log, log_interval=0.0)
    )
    assert "from 1 atlas(es): demo-mixed3b" in log.getvalue()
    assert rendered > 0


def test_a_wrong_spec_stays_out_of_the_queue_and_a_compute_error_stops_it(
    ray_session: Any, tmp_path: Path
) -> None:
    """A spec that cannot start (unknown layer) is left to its own compute, which reports it;
    an error while an atlas's grids are computed (damaged weights: NaN) stops the queue at
    once, instead of being swallowed and computed again by the atlas's own compute."""
    import torch

    from generator.errors import AtlasError
    from generator.models.demo import save_model
    from generator.models.registry import load_model

    wrong = parse_computed_atlas(
        "demo-wrong", {**TABLE, "layer": "mixed9z"}, "content/demo/atlases.toml:9"
    )
    log = io.StringIO()
    config = demo_config(tmp_path / "ok" / ".atlas-cache", "local", 60)
    assert render_queue([wrong, SPECS[1]], config, progress=Progress(log, log_interval=0.0)) > 0
    assert "from 1 atlas(es): demo-mixed3b" in log.getvalue()

    model = load_model("demo", device=torch.device("cpu"), weights="random")
    with torch.no_grad():  # damaged weights: one NaN in the first convolution
        next(model.parameters()).view(-1)[0] = float("nan")
    save_model(model, tmp_path / "nan.pt")  # type: ignore[arg-type]
    config = demo_config(tmp_path / "nan" / ".atlas-cache", "local", 60)
    config.models = {"demo": {"weights": str(tmp_path / "nan.pt")}}
    with pytest.raises(AtlasError, match="NaN or infinite"):
        render_queue(SPECS, config, progress=Progress(io.StringIO()))


ATLASES = "".join(
    f"""
[atlas.q-{layer}]
title = "{layer}"
model = "demo"
layer = "{layer}"
dataset = "shapes"
samples = 30
positions = 2
seed = 1
grids = [2, 4]
min_count = 1
layout = {{ method = "tsne", perplexity = 5 }}
render = {{ preset = "tiny", steps = 2, batch_size = 4, examples = 2, example_px = 16 }}
"""
    for layer in ("mixed4c", "mixed3b")
)

PAGE = """---
title: Two atlases
description: Both rendered in one queue.
---

```atlas
id: q-mixed4c
```

```atlas
id: q-mixed3b
```
"""


def test_a_site_build_on_a_cluster_renders_every_atlas_in_one_queue(
    ray_session: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from generator.cli import main

    from ._project_kit import write_project

    pub = write_project(tmp_path, ATLASES)
    (pub / "index.md").write_text(PAGE)
    (tmp_path / "content" / "index.md").write_text(
        "---\ntitle: Home\ndescription: One publication.\n---\n\n[Two atlases](pub/index.md)\n"
    )
    config = str(tmp_path / "atlas.toml")
    args = ["--config", config, "build", "--cluster", "local", "--cluster-workers", "2"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert re.search(r"render: one queue of \d+ batch\(es\), [\d,]+ icons, from 2 atlas", err), err
    assert len(re.findall(r"render: \d+ batch\(es\) on", err)) == 1
    for atlas in ("q-mixed4c", "q-mixed3b"):
        assert (tmp_path / "site" / "atlases" / atlas / "viewer.json").is_file()
