"""Icon rendering on a local Ray cluster (two CPU workers) gives the bundle a build without Ray
gives, byte for byte: when it runs straight through, when a worker process is killed while it
renders, and when an interrupted cluster render resumes. The straight run crops the dataset
examples on the workers too (test_cluster_examples.py compares them over several groups).

One Ray session (conftest's ``ray_session``) serves these tests, test_cluster_collect.py and
test_cluster_examples.py (starting Ray takes 5..20 s here); every render starts its own two
workers. The reference bundle is built once, without Ray.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from generator.atlas.bundle_stage import compute_bundle
from generator.atlas.progress import Progress
from generator.atlas.spec import parse_computed_atlas
from generator.bundle import AtlasBundle
from generator.cluster.session import ClusterPlan, Workers, connect, plan_cluster
from generator.config import ComputeConfig
from generator.errors import SetupError
from generator.icons.store import RenderRun

from ._project_kit import DEMO_ATLAS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: test_bundle.py's atlas with its icons in batches of 2 (8 batches of its 16 kept cells)
#: and enough steps that a batch takes a moment.
TABLE: dict[str, Any] = {
    **DEMO_ATLAS,
    "render": {**DEMO_ATLAS["render"], "steps": 12, "batch_size": 2},
}


def demo_config(cache: Path, cluster: str, images: int) -> Any:
    """A project's config: the demo model (random weights), a synthetic data set ``shapes`` of
    ``images`` images, one CPU thread, ``cluster`` with 2 workers."""
    return SimpleNamespace(
        compute=ComputeConfig(device="cpu", threads=1, cluster=cluster, cluster_workers=2),
        models={"demo": {"weights": "random"}},
        datasets={"shapes": {"kind": "synthetic", "count": images, "size": 64}},
        paths=SimpleNamespace(cache=cache),
        root=cache.parent,
    )


def build(cache: Path, cluster: str = "none", stream: io.StringIO | None = None) -> AtlasBundle:
    config = demo_config(cache, cluster, 60)
    spec = parse_computed_atlas("demo-4c", TABLE, "content/demo/atlases.toml:1")
    progress = Progress(stream or io.StringIO(), log_interval=0.0)
    return compute_bundle(spec, config=config, progress=progress)


def digests(bundle: AtlasBundle) -> dict[str, str]:
    """sha256 of every file of the bundle, by its path inside it."""
    root = bundle.root
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def kept(bundle: AtlasBundle) -> int:
    """Icons of the bundle: the kept cells of every level."""
    return sum(level["kept"] for level in bundle.info["grids"].values())


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The bundle built without Ray."""
    return digests(build(tmp_path_factory.mktemp("local") / ".atlas-cache"))


def test_a_cluster_build_equals_the_local_build(
    ray_session: Any, reference: dict[str, str], tmp_path: Path
) -> None:
    log = io.StringIO()
    bundle = build(tmp_path / ".atlas-cache", "local", log)
    assert digests(bundle) == reference
    lines, icons = log.getvalue(), kept(bundle)
    batches = -(-icons // 2)
    assert f"render: {batches} batch(es) on 2 of 2 Ray worker(s), 1 CPU thread(s) each" in lines
    assert f"render: {icons}/{icons} icons" in lines
    assert f"{batches}/{batches} batches, 2/2 workers alive" in lines
    # the dataset examples too: the 60 images are fewer than a group (GROUP_IMAGES)
    assert "examples: 1 group(s) on 1 of 2 Ray worker(s), 1 CPU thread(s) each" in lines
    assert "1/1 groups, 1/1 workers alive" in lines


def test_workers_are_sized_to_the_cluster(ray_session: Any) -> None:
    """The module's session has 2 CPUs and no GPU: never more workers than it can hold."""
    assert connect(ClusterPlan(None, workers=5, gpus=False)) == Workers(2, gpus=False, threads=1)
    assert connect(ClusterPlan(None, workers=None, gpus=False)) == Workers(2, False, 1)
    assert connect(ClusterPlan(None, workers=1, gpus=False)) == Workers(1, False, 2)
    assert connect(ClusterPlan(None, workers=1, gpus=False, threads=4)).threads == 4
    with pytest.raises(SetupError, match="has no GPU"):
        connect(ClusterPlan(None, workers=None, gpus=True))


def processes_named(name: bytes) -> list[int]:
    """Process ids of this session's Ray workers of actor class ``name``: descendants of this
    process (its Ray started here) whose command line names it (read from /proc)."""
    parents, commands = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            commands[int(stat.parent.name)] = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        parents[int(stat.parent.name)] = int(fields[1])

    def descends(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == os.getpid():
                return True
        return False

    return [pid for pid, command in commands.items() if name in command and descends(pid)]


@contextlib.contextmanager
def killing_a_worker(folder: Path, pattern: str, at_least: int, name: bytes) -> Iterator[list[int]]:
    """While the block runs: once ``at_least`` files of ``folder`` match ``pattern``, SIGKILL
    one of this session's Ray workers whose command line names ``name`` (Ray titles a busy
    worker ``ray::<class>.<method>``). Yields the process ids killed (filled when the block
    ends). Skips the test where there is no /proc."""
    with killing_a_worker_when(
        lambda: folder.is_dir() and len(list(folder.glob(pattern))) >= at_least, name
    ) as killed:
        yield killed


@contextlib.contextmanager
def killing_a_worker_when(ready: Callable[[], bool], name: bytes) -> Iterator[list[int]]:
    """:func:`killing_a_worker` once ``ready()`` is true (polled every 10 ms, for 2 minutes)."""
    if not Path("/proc/self/stat").is_file():
        pytest.skip("finds the worker processes through /proc")
    killed: list[int] = []

    def kill() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if ready():
                pids = processes_named(name)
                if pids:
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])
                    return
            time.sleep(0.01)

    killer = threading.Thread(target=kill)
    killer.start()
    try:
        yield killed
    finally:
        killer.join()


@pytest.mark.slow
def test_a_worker_killed_while_rendering_is_restarted_and_the_bundle_is_the_same(
    ray_session: Any, reference: dict[str, str], tmp_path: Path
) -> None:
    cache = tmp_path / ".atlas-cache"
    log = io.StringIO()
    with killing_a_worker(cache / "render-runs", "*/part-*.npz", 1, b"RenderWorker") as killed:
        bundle = build(cache, "local", log)
    assert killed, "no render worker was found to kill"
    assert digests(bundle) == reference
    assert "restart(s)" in log.getvalue()  # the killed worker answered again from a new process


class Interrupted(Exception):
    """Stands in for Ctrl-C of the driver."""


@pytest.mark.slow
def test_an_interrupted_cluster_render_resumes_to_the_same_bundle(
    ray_session: Any,
    reference: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = tmp_path / ".atlas-cache"
    real_save = RenderRun.save
    saved: list[int] = []

    def save_three_then_stop(self: RenderRun, ids: Any, results: Any) -> Path:
        if len(saved) == 3:
            raise Interrupted
        saved.append(len(ids))
        return real_save(self, ids, results)

    monkeypatch.setattr(RenderRun, "save", save_three_then_stop)
    with pytest.raises(Interrupted):
        build(cache, "local")
    monkeypatch.setattr(RenderRun, "save", real_save)
    assert len(list((cache / "render-runs").glob("*/part-*.npz"))) == 3
    log = io.StringIO()
    bundle = build(cache, "local", log)
    icons = kept(bundle)
    assert f"resuming, 6 of {icons} icons already done" in log.getvalue()
    assert f"render: {-(-(icons - 6) // 2)} batch(es)" in log.getvalue()  # none again
    assert digests(bundle) == reference


def test_the_cluster_values_make_plans() -> None:
    import torch

    here = torch.device("cpu")
    assert plan_cluster("none", workers=4, device=here) is None
    assert plan_cluster("auto", workers=None, device=here) is None  # no GPUs: no Ray
    pytest.importorskip("ray")
    assert plan_cluster("local", workers=2, device=here, threads=1) == ClusterPlan(
        address=None, workers=2, gpus=False, threads=1
    )
    assert plan_cluster("ray://head:10001", workers=None, device=here) == ClusterPlan(
        address="ray://head:10001", workers=None, gpus=False
    )


def test_without_ray_none_works_and_a_cluster_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import sys

    import torch

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as when not installed
    here = torch.device("cpu")
    assert plan_cluster("none", workers=None, device=here) is None
    for value in ("local", "ray://head:10001"):
        with pytest.raises(SetupError, match=r"pip install -e '\.\[cluster\]'") as caught:
            plan_cluster(value, workers=None, device=here)
        assert f'cluster = "{value}"' in caught.value.what


def test_cluster_values_are_checked_in_atlas_toml_and_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from generator.cli import main, make_parser
    from generator.cluster.options import with_cluster_options
    from generator.config import load_config
    from generator.errors import ConfigError

    from ._project_kit import TINY_PROJECT_CONFIG, write_project

    def project(cluster: str) -> Path:
        folder = tmp_path / cluster.replace("/", "_").replace(":", "_")
        folder.mkdir()
        config = TINY_PROJECT_CONFIG.replace("threads = 1", f'threads = 1\ncluster = "{cluster}"')
        write_project(folder, "")
        (folder / "atlas.toml").write_text(config)
        return folder / "atlas.toml"

    with pytest.raises(ConfigError, match=r"cluster = 'head'; expected \"none\", \"local\""):
        load_config(project("head"))
    config = load_config(project("ray://head:10001"))
    assert config.compute.cluster == "ray://head:10001" and config.compute.cluster_workers is None
    args = make_parser().parse_args(["build", "--cluster", "local", "--cluster-workers", "3"])
    replaced = with_cluster_options(config, args)
    assert (replaced.compute.cluster, replaced.compute.cluster_workers) == ("local", 3)
    assert replaced.compute.threads == config.compute.threads == 1
    plain = project("none")
    for bad in (["--cluster", "everywhere"], ["--cluster-workers", "0"]):
        with pytest.raises(SystemExit) as exited:
            main(["compute", "--config", str(plain), *bad, "--all"])
        assert exited.value.code == 2
        assert "expected" in capsys.readouterr().err
