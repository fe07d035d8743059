"""The output plan, size accounting and budget, and the saved build state."""

from __future__ import annotations

from pathlib import Path

import pytest
from sitekit import write

from generator.config import load_config
from generator.errors import BudgetError, ContentError, SetupError
from generator.site.output import OutputPlan, check_budget, human_bytes, measure
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
    files, total, parts = measure(tmp_path)
    assert (files, total) == (3, 5110)
    assert parts == {"(root)": 100, "atlases/big": 5000, "atlases/small": 10}
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
        check_budget(config, files, total, parts)
    check_budget(config, files, 5000, parts)  # at the limit is fine


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
