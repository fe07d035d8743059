"""One writer per project (generator/lock.py): concurrent builds take turns, a killed holder
frees the lock, and what a killed writer left is cleaned up or restored, never lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from sitekit import make_project, snapshot

from generator.config import load_config
from generator.errors import SetupError
from generator.lock import project_lock, recover
from generator.site.build import build

ROOT = Path(__file__).resolve().parents[2]

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from generator.lock import project_lock
    with project_lock(Path(sys.argv[1]), "atlas build", log=None):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


def hold(cache: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process holding the project lock for ``seconds`` (returns once it holds it)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(cache), str(seconds)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait()
    assert proc.stdout is not None
    proc.stdout.close()


def test_a_second_command_waits_and_names_the_holder(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    holder = hold(cache, 30)
    try:
        said: list[str] = []
        busy = pytest.raises(SetupError, match="the project is busy")
        with busy as info, project_lock(cache, "atlas compute", wait=0.3, log=said.append):
            pass
        assert f"atlas build (pid {holder.pid} on " in info.value.what
        assert info.value.where == str(cache / "lock")
        assert said == [
            f"waiting for atlas build (pid {holder.pid} on {os.uname().nodename}, since "
            + said[0].split("since ")[1]
        ]
    finally:
        stop(holder)


def test_a_killed_holder_leaves_the_project_free(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    holder = hold(cache, 60)
    os.kill(holder.pid, signal.SIGKILL)
    stop(holder)
    start = time.monotonic()
    with project_lock(cache, "atlas build", wait=5, log=None):
        assert (cache / "lock").read_text().startswith('{"command": "atlas build"')
    assert time.monotonic() - start < 2
    assert (cache / "lock").read_text() == ""  # released: nobody named


def test_the_lock_is_reentrant_and_serializes_threads(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    order: list[str] = []
    with project_lock(cache, "atlas deploy", log=None):
        with project_lock(cache, "atlas build", log=None):  # deploy builds: no deadlock
            order.append("nested")

        def other() -> None:
            with project_lock(cache, "atlas build", log=None):
                order.append("thread")

        thread = threading.Thread(target=other)
        thread.start()
        time.sleep(0.3)
        order.append("main done")
    thread.join(5)
    assert order == ["nested", "main done", "thread"]


def test_recover_restores_a_swap_killed_between_its_renames(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    bundles = cache / "bundle"
    (bundles / ".k1.old-123").mkdir(parents=True)  # k1 gone: restore it
    (bundles / ".k1.old-123" / "bundle.json").write_text("old")
    (bundles / "k2").mkdir()  # k2 present: its old copy goes
    (bundles / ".k2.old-7").mkdir()
    (bundles / ".k3.abc.tmp").mkdir()  # a writer's temporary folder
    (cache / "site").mkdir()
    (cache / "site" / ".state.json.x1.tmp").write_text("{")
    (cache / ".scratch-q.tmp").mkdir()
    (cache / "tiles").mkdir()
    (cache / "tiles" / "kept.tmp").write_text("not a temporary: no leading dot")
    assert recover(cache) == 5
    assert (bundles / "k1" / "bundle.json").read_text() == "old"
    assert sorted(p.name for p in bundles.iterdir()) == ["k1", "k2"]
    assert list((cache / "site").iterdir()) == []
    assert sorted(p.name for p in cache.iterdir()) == ["bundle", "site", "tiles"]
    assert (cache / "tiles" / "kept.tmp").is_file()


def test_a_build_killed_mid_swap_is_restored_then_rebuilt(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    config = load_config(root / "atlas.toml")
    build(config, log=None)
    site = snapshot(root / "site")
    # Killed between "site -> .site.old-<pid>" and ".site.<x>.tmp -> site".
    os.replace(root / "site", root / ".site.old-4242")
    (root / ".site.abc.tmp").mkdir()
    (root / ".notes.tmp").write_text("a user's file beside the site")
    with project_lock(config.paths.cache, "atlas build", log=None, output=config.paths.output):
        assert snapshot(root / "site") == site  # the old site is back, not deleted
    assert not (root / ".site.abc.tmp").exists() and not (root / ".site.old-4242").exists()
    assert (root / ".notes.tmp").is_file()  # only the output's own leftovers are touched
    build(config, log=None)
    assert snapshot(root / "site") == site


def test_concurrent_builds_take_turns_and_leave_a_whole_site(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    build(load_config(root / "atlas.toml"), log=None)
    expected = snapshot(root / "site")
    command = [sys.executable, "-m", "generator.cli", "--config", str(root / "atlas.toml"), "build"]
    for round_ in range(3):
        (root / "content/study/index.md").write_text(
            (root / "content/study/index.md").read_text() + f"\nRound {round_}.\n"
        )
        procs = [
            subprocess.Popen(
                command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        outputs = [proc.communicate(timeout=300) for proc in procs]
        for proc, (_out, err) in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, err
            assert "Traceback" not in err
        got = snapshot(root / "site")
        assert set(got) == set(expected)
        assert f"Round {round_}." in got["study/index.html"].decode()
    leftovers = [p.name for p in root.iterdir() if p.name.startswith(".site")]
    assert leftovers == []
