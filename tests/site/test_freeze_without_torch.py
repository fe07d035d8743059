"""The site half on an install without torch, set up as the generated Pages workflow sets it up.

A copy of this repository whose content is a tiny project (one computed atlas, one patch
experiment: ``test_freeze.project``) and whose ``_freeze/`` was written by the full install
here; a fresh virtualenv on ``PATH``; then every ``run:`` step of the workflow that
``atlas deploy --init`` writes, as written (``npm ci``, ``python -m pip install -e .``,
``atlas build --strict``). The site equals the full install's byte for byte, torch is not
importable there, and without the frozen folder the build ends with the clear message.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_freeze import digests, project

from generator.cli import main
from generator.config import load_config
from generator.site.build import build
from generator.site.scaffold import WORKFLOW

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def workflow_steps() -> list[str]:
    """The ``run:`` commands of the workflow's build job, in order."""
    steps = yaml.safe_load(WORKFLOW)["jobs"]["build"]["steps"]
    return [step["run"] for step in steps if "run" in step]


def repository_copy(dest: Path) -> None:
    """The tracked files of this repository (the package, templates, npm manifests) without
    its content and atlas.toml."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if name.startswith(("content/", "tests/", "bench/", ".github/")) or name == "atlas.toml":
            continue
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / name, dest / name)


def run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def torch_free(tmp_path_factory: pytest.TempPathFactory):
    """(project copy, environment with the torch-free venv first on PATH, full-install site)."""
    if shutil.which("git") is None or shutil.which("npm") is None:
        pytest.skip("needs git and npm")
    base = tmp_path_factory.mktemp("torchfree")
    full = project(base / "full")
    build(load_config(full / "atlas.toml"), strict=True, log=None)
    assert main(["--config", str(full / "atlas.toml"), "freeze", "--all"]) == 0
    site = digests(full / "site")

    repo = base / "repo"
    repository_copy(repo)
    for name in ("atlas.toml", "content", "_freeze"):
        src = full / name
        (shutil.copytree if src.is_dir() else shutil.copyfile)(src, repo / name)

    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    return repo, env, site


def test_the_workflow_builds_the_frozen_site_without_torch(torch_free) -> None:
    repo, env, site = torch_free
    steps = workflow_steps()
    assert steps[-1] == "atlas build --strict" and any("pip install -e ." in s for s in steps)
    for step in steps:
        done = run(step, repo, env)
        assert done.returncode == 0, f"{step!r} failed:\n{done.stdout}\n{done.stderr}"
    assert not any(line.startswith("torch") for line in run("pip freeze", repo, env).stdout.split())
    probe = run("python -c 'import torch'", repo, env)
    assert probe.returncode != 0 and "No module named 'torch'" in probe.stderr
    assert digests(repo / "site") == site
    checked = run("atlas check --strict", repo, env)
    assert checked.returncode == 0, checked.stderr


def test_without_the_frozen_folder_the_build_says_what_to_do(torch_free) -> None:
    repo, env, _ = torch_free
    if not (repo / "site").is_dir():
        pytest.skip("the workflow test did not run first")
    shutil.move(repo / "_freeze", repo / "_freeze.away")
    shutil.rmtree(repo / ".atlas-cache")
    try:
        strict = run("atlas build --strict", repo, env)
        assert strict.returncode == 2
        assert "Traceback" not in strict.stderr
        assert "atlas 'four-c' cannot be computed on this machine" in strict.stderr
        assert "content/study/atlases.toml:1 ([atlas.four-c])" in strict.stderr
        assert "the compute engine is not installed (torch" in strict.stderr
        assert "pip install -e '.[compute]'" in strict.stderr
        assert "atlas freeze four-c" in strict.stderr
        lenient = run("atlas build", repo, env)
        assert lenient.returncode == 0, lenient.stderr
        assert "publication 'study' left out" in lenient.stdout + lenient.stderr
        notice = (repo / "site/study/frozen.html").read_text()
        assert "compute engine" in notice
        computing = run("atlas compute --all", repo, env)
        assert computing.returncode == 2 and "Traceback" not in computing.stderr
        assert "needs the compute engine" in computing.stderr
    finally:
        shutil.move(repo / "_freeze.away", repo / "_freeze")
