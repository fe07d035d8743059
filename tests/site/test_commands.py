"""`atlas new`, `atlas deploy`, `atlas check` and `atlas serve` (the dev server)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from sitekit import write

from generator.cli import main
from generator.errors import AtlasError, SetupError
from generator.site.scaffold import WORKFLOW, WORKFLOW_PATH
from generator.site.serve import RELOAD_PATH, DevServer, check_loopback

ROOT = Path(__file__).resolve().parents[2]


def test_new_scaffolds_a_project_that_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["new", "my-study/first-look"]) == 0
    assert "created" in capsys.readouterr().out
    for rel in ("atlas.toml", "content/my-study/index.md", "content/my-study/first-look.md"):
        assert (tmp_path / rel).is_file(), rel
    assert main(["new", "my-study/second"]) == 0  # inside the project now: no new atlas.toml
    assert main(["build", "--strict"]) == 0
    page = (tmp_path / "site/my-study/first-look.html").read_text()
    assert "<h1>First look</h1>" in page
    assert main(["new", "my-study/first-look"]) == 1  # never overwrites
    assert main(["new", "Bad Name"]) == 1
    assert "cannot scaffold" in capsys.readouterr().err


def test_deploy_init_writes_the_pages_workflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "atlas.toml", '[site]\ntitle = "T"\nsite_url = "https://e.org/"\n')
    monkeypatch.chdir(tmp_path)
    assert main(["deploy", "--init"]) == 0
    assert "wrote" in capsys.readouterr().out
    text = (tmp_path / WORKFLOW_PATH).read_text()
    workflow = yaml.safe_load(text)
    steps = [s.get("uses", s.get("run")) for s in workflow["jobs"]["build"]["steps"]]
    assert "atlas build --strict" in steps
    # the runner builds from the committed _freeze/ folder: the site half only, no torch
    assert "python -m pip install -e ." in steps and "npm ci --no-audit --no-fund" in steps
    assert "torch" not in " ".join(s for s in steps if s.startswith(("python", "pip")))
    assert "[compute]" not in " ".join(steps) and "_freeze/" in text
    assert "actions/upload-pages-artifact@v3" in steps
    assert workflow["jobs"]["deploy"]["steps"][0]["uses"] == "actions/deploy-pages@v4"
    assert workflow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    assert main(["deploy", "--init"]) == 0  # identical: nothing to do
    (tmp_path / WORKFLOW_PATH).write_text("name: mine\n")
    assert main(["deploy", "--init"]) == 1
    assert main(["deploy", "--init", "--force"]) == 0
    assert (tmp_path / WORKFLOW_PATH).read_text() == WORKFLOW


def test_repository_ships_the_generated_workflow() -> None:
    assert (ROOT / WORKFLOW_PATH).read_text() == WORKFLOW


def test_check_verifies_links_and_tiles_of_the_built_site(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(project / "atlas.toml")
    assert main(["--config", config, "check"]) == 0
    assert "not built yet" in capsys.readouterr().out
    assert main(["--config", config, "build"]) == 0
    assert main(["--config", config, "check"]) == 0
    assert "every link and tile present" in capsys.readouterr().out
    tile = sorted((project / "site/atlases/grid/atlas_files").rglob("*.png"))[-1]
    tile.unlink()
    assert main(["--config", config, "check"]) == 1
    assert "tile(s) missing from the built site" in capsys.readouterr().err
    (project / "site/static/site.js").unlink()
    assert main(["--config", config, "check"]) == 1
    assert "static/site.js" in capsys.readouterr().err


def test_serve_refuses_addresses_other_than_loopback() -> None:
    check_loopback("127.0.0.1")
    check_loopback("localhost")
    with pytest.raises(SetupError, match="only listens on this machine"):
        check_loopback("0.0.0.0")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_dev_server_serves_rebuilds_and_reports_errors(project: Path) -> None:
    server = DevServer(project / "atlas.toml", "127.0.0.1", 0, log=lambda _m: None)
    server.start()
    try:
        status, page = _get(server.url + "study/first-look.html")
        assert status == 200
        assert RELOAD_PATH in page and page.index(RELOAD_PATH) < page.index("</body>")
        assert json.loads(_get(server.url + RELOAD_PATH.lstrip("/"))[1]) == {
            "generation": 1,
            "error": None,
        }
        assert _get(server.url + "study/")[0] == 200
        assert _get(server.url + "nowhere.html")[0] == 404

        article = project / "content/study/first-look.md"
        article.write_text(article.read_text().replace("## Overview", "## Changed"))
        assert server.poll_once()
        assert server.generation == 2
        assert "Changed" in _get(server.url + "study/first-look.html")[1]
        assert not server.poll_once()  # nothing changed since

        article.write_text(article.read_text().replace("title: First look", "title: [broken"))
        assert not server.poll_once()
        status_doc = json.loads(_get(server.url + RELOAD_PATH.lstrip("/"))[1])
        assert status_doc["generation"] == 2 and "malformed front matter" in status_doc["error"]
        assert "Changed" in _get(server.url + "study/first-look.html")[1]  # old site kept
    finally:
        server.stop()


def test_serve_command_rejects_a_public_host(project: Path) -> None:
    with pytest.raises(AtlasError):
        DevServer(project / "atlas.toml", "0.0.0.0", 0)
