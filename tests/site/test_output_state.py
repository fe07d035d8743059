"""The output plan, size accounting and budget, and the saved build state."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from sitekit import write

from generator.config import load_config
from generator.errors import BudgetError, ContentError, SetupError
from generator.site.output import (
    SHARED,
    OutputPlan,
    by_publication,
    check_budget,
    human_bytes,
    measure,
    owners_of,
)
from generator.site.state import BuildState, PageState


def test_output_plan_refuses_a_second_writer_ignoring_case() -> None:
    plan = OutputPlan()
    plan.claim("pub/a.html", "content/pub/a.md")
    plan.claim("pub/b.html", "content/pub/b.md")
    with pytest.raises(ContentError, match="two sources write the same output path") as info:
        plan.claim("pub/A.html", "content/pub/A.md")
    assert info.value.where == "content/pub/A.md"
    assert "content/pub/a.md" in (info.value.got or "")
    assert plan.files() == {"pub/a.html", "pub/b.html"}


def test_measure_and_budget(tmp_path: Path) -> None:
    write(tmp_path / "index.html", "x" * 100)
    write(tmp_path / "atlases/big/tile.jpg", "x" * 5000)
    write(tmp_path / "atlases/small/tile.jpg", "x" * 10)
    size = measure(tmp_path)
    assert (size.files, size.bytes) == (3, 5110)
    assert size.parts == {"(root)": 100, "atlases/big": 5000, "atlases/small": 10}
    assert size.largest == (("atlases/big/tile.jpg", 5000), ("index.html", 100), (
        "atlases/small/tile.jpg", 10))  # fmt: skip
    assert [human_bytes(n) for n in (999, 5110, 2_500_000, 3 * 10**9)] == [
        "999 B",
        "5.1 KB",
        "2.5 MB",
        "3.0 GB",
    ]
    write(
        tmp_path / "atlas.toml",
        '[site]\ntitle = "T"\nsite_url = "https://e.org/"\n[budget]\nmax_bytes = 5000\n',
    )
    config = load_config(tmp_path / "atlas.toml")
    with pytest.raises(BudgetError, match=r"largest parts: atlases/big 5\.0 KB, \(root\) 100 B"):
        check_budget(config, size)
    assert check_budget(config, dataclasses.replace(size, bytes=3750)) == ()  # 75%: no warning
    assert check_budget(config, dataclasses.replace(size, bytes=5000))  # at the limit: a warning


def test_budget_warns_past_its_fraction_and_names_files_over_the_file_limit(
    tmp_path: Path,
) -> None:
    write(tmp_path / "study/index.html", "x" * 300)
    write(tmp_path / "atlases/grid/fallback.jpg", "x" * 2500)
    write(tmp_path / "static/site.css", "x" * 1200)
    size = measure(tmp_path)
    owners = owners_of(["study"], {"grid": "study"})
    assert by_publication(size.parts, ["study"], {"grid": "study"}) == {
        "study": 2800,
        SHARED: 1200,
    }
    budget = "[budget]\nmax_bytes = 5000\nwarn_fraction = 0.5\nmax_file_bytes = 2000\n"
    write(tmp_path / "atlas.toml", f'[site]\ntitle = "T"\nsite_url = "https://e.org/"\n{budget}')
    config = load_config(tmp_path / "atlas.toml")
    with pytest.raises(BudgetError) as info:
        check_budget(config, size, owners)
    assert info.value.what.startswith("atlases/grid/fallback.jpg (publication 'study') is 2.5 KB")
    assert info.value.where == f"{config.path} [budget] max_file_bytes"
    assert "site/ was left as it was" in (info.value.fix or "")
    config = dataclasses.replace(
        config, budget=dataclasses.replace(config.budget, max_file_bytes=2500)
    )  # at the file limit is fine
    (warning,) = check_budget(config, size, owners)
    assert warning.startswith("the site is 4.0 KB, 80% of its budget (5.0 KB")
    assert "atlases/grid (study) 2.5 KB" in warning
    config = dataclasses.replace(
        config, budget=dataclasses.replace(config.budget, warn_fraction=0.8)
    )
    assert check_budget(config, size, owners) == ()  # 80% is not over 0.8


def test_state_round_trips_and_belongs_to_one_output(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    state = BuildState(tmp_path / "state.json", str(site))
    state.pages["a.html"] = PageState("k", "d", ["x"], [("b.html#x", 3)], "a.md")
    state.atlases["grid"] = "key"
    state.save()
    loaded = BuildState.load(tmp_path / "state.json", site)
    assert loaded.pages == state.pages and loaded.atlases == {"grid": "key"}
    assert BuildState.load(tmp_path / "state.json", tmp_path / "other").pages == {}
    site.rmdir()
    assert BuildState.load(tmp_path / "state.json", site).pages == {}  # no output: no reuse


def test_missing_openseadragon_says_to_run_npm_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import generator.site.output as output

    write(tmp_path / "atlas.toml", '[site]\ntitle = "T"\nsite_url = "https://e.org/"\n')
    config = load_config(tmp_path / "atlas.toml")
    assert output.find_openseadragon(config).name == "openseadragon"
    monkeypatch.setattr(output, "OSD_BUILD", Path("node_modules/nowhere"))
    with pytest.raises(SetupError, match="OpenSeadragon is not installed") as info:
        output.find_openseadragon(config)
    assert "npm ci" in (info.value.fix or "")


def test_two_identical_builds_record_the_same_state(tmp_path: Path) -> None:
    """The build state's keys are content digests, not file times: a build from scratch of
    the same sources records the same state (the probe found every key differing)."""
    import shutil
    import time

    from sitekit import make_project

    from generator.config import load_config
    from generator.site.build import build

    root = make_project(tmp_path / "p")
    build(load_config(root / "atlas.toml"), log=None)
    first = (root / ".atlas-cache/site/state.json").read_text()
    time.sleep(0.05)  # new files get new times
    shutil.rmtree(root / ".atlas-cache")
    shutil.rmtree(root / "site")
    build(load_config(root / "atlas.toml"), log=None)
    assert (root / ".atlas-cache/site/state.json").read_text() == first
