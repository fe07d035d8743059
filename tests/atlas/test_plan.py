"""``atlas compute --plan``: disk and memory per stage from the spec and the model's shapes,
against what the stages then write; refusing to start when the disk cannot hold them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from generator.atlas.plan import check_disk, landmarks_memory, npz_bytes, plan_atlas
from generator.cli import main
from generator.errors import SetupError

from ._project_kit import write_project

ATLASES = """
[atlas.four-c]
model = "demo"
layer = "mixed4c"
dataset = "shapes"
samples = 30
positions = 2
grids = [2, 4]
min_count = 0
layout = { method = "tsne" }
render = { preset = "tiny", icon_size = 16, steps = 2, examples = 1, example_px = 16 }
"""

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def sizes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*.np[yz]"))


def rows(text: str) -> dict[str, float]:
    """The disk column (MB) of each stage row of a printed plan."""
    found = {}
    for line in text.splitlines():
        match = re.match(r"\s+(\S+)\s+(?:<=)?\s*([\d,.]+)\s", line)
        if match and match.group(1) not in ("stage", "total"):
            found[match.group(1)] = float(match.group(2).replace(",", ""))
    return found


def test_the_plan_is_printed_and_matches_what_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, ATLASES)
    config = str(tmp_path / "atlas.toml")
    assert main(["--config", config, "compute", "--plan", "four-c"]) == 0
    out, _ = capsys.readouterr()
    assert out.startswith("atlas four-c:") and "60 vectors of 128 channels" in out
    assert not (tmp_path / "cache" / "activations").exists()  # nothing computed
    assert set(rows(out)) == {
        "collect",
        "whitening",
        "layout",
        "grid-2",
        "grid-4",
        "icons",
        "bundle",
        "tiles",
    }

    assert main(["--config", config, "compute", "--bundle", "four-c"]) == 0
    capsys.readouterr()
    # The same figures, computed from the numbers, against the files written.
    plan = plan_atlas(
        "four-c", samples=30, positions=2, channels=128, classes=12, attribution=True,
        float16=False, whiten=True, grids=[2, 4], top_classes=5, n_neighbors=150,
        icon_size=16, examples=1, example_px=16,
    )  # fmt: skip
    by_stage = {s.stage: s for s in plan.stages}
    cache = tmp_path / "cache"
    for stage, folder in (
        ("collect", "activations"),
        ("whitening", "whitening"),
        ("layout", "layout"),
    ):
        (written,) = [sizes(f) for f in (cache / folder).iterdir() if f.is_dir()]
        assert by_stage[stage].exact
        assert written <= by_stage[stage].disk <= written + 5 * 50, stage  # npz headers
    (acts,) = [f for f in (cache / "activations").iterdir() if f.is_dir()]
    assert sizes(acts) == by_stage["collect"].disk  # .npy files: exact to the byte
    grids = sorted(sizes(f) for f in (cache / "grid").iterdir() if f.is_dir())
    assert grids[0] <= by_stage["grid-2"].disk and grids[1] <= by_stage["grid-4"].disk
    (icons,) = [sizes(f) for f in (cache / "icons").iterdir() if f.is_dir()]
    assert icons <= by_stage["icons"].disk
    (bundle,) = [f for f in (cache / "bundle").iterdir() if f.is_dir()]
    written = sum(p.stat().st_size for p in bundle.rglob("*") if p.suffix != ".json")
    assert written <= by_stage["bundle"].disk
    # Planned again: the stages now cached are named, and nothing is left to write.
    assert main(["--config", config, "compute", "--plan", "four-c"]) == 0
    out, _ = capsys.readouterr()
    assert "cached already: bundle, collect, grid-2, grid-4, icons, layout, whitening" in out
    assert "still to write: 0.0 MB" in out


def test_exact_sizes_of_the_collect_stage() -> None:
    plan = plan_atlas(
        "a", samples=1_000_000, positions=1, channels=1024, classes=1000, attribution=True,
        float16=True, whiten=True, grids=[20, 40, 80, 160], top_classes=5, n_neighbors=50,
        icon_size=80, examples=4, example_px=64,
    )  # fmt: skip
    collect = plan.stages[0]
    n = 1_000_000
    assert collect.disk == n * 1024 * 2 + n * 1000 * 2 + n * 8 * 4 + 5 * 128  # .npy headers
    assert collect.scratch == n * 1024 * 2 + n * 1000 * 2 + n * 8 * 4 + 5 * 300  # the chunks
    # streamed: one chunk of 2,048 images' rows (and a copy), not the million rows
    assert collect.memory == 2048 * 2024 * 4 * 2 + n * 32
    whitening = next(s for s in plan.stages if s.stage == "whitening")
    assert whitening.memory == 131072 * 1024 * 8 + 3 * 1024 * 1024 * 8  # a block of rows
    grid160 = next(s for s in plan.stages if s.stage == "grid-160")
    assert grid160.note == "<= 25,600 cells" and grid160.exact
    assert npz_bytes((10, 4)) == 40 + 300
    assert "peak memory" in plan.render()


def test_the_landmarks_layout_is_planned_by_what_it_holds() -> None:
    """The landmarks back end streams the vectors: its plan holds the landmarks and a block,
    not the million rows in float32 (4 GB) and their neighbour graph."""
    numbers = dict(
        samples=1_000_000, positions=1, channels=1024, classes=1000, attribution=True,
        float16=True, whiten=True, grids=[20, 40, 80, 160], top_classes=5, n_neighbors=50,
        icon_size=80, examples=4, example_px=64,
    )  # fmt: skip
    full = next(s for s in plan_atlas("a", **numbers).stages if s.stage == "layout")
    lean = next(
        s for s in plan_atlas("a", landmarks=20_000, **numbers).stages if s.stage == "layout"
    )
    assert full.memory > 1_000_000 * 1024 * 4 and full.note == "UMAP/t-SNE"
    assert lean.memory == landmarks_memory(1_000_000, 1024, 2, 20_000, 50) < 1e9
    assert lean.note == "UMAP of 20,000 landmarks, the rest placed"
    assert lean.disk == full.disk and lean.exact
    few = plan_atlas("b", landmarks=20_000, **{**numbers, "samples": 5_000})
    assert "UMAP of 5,000 landmarks" in next(s.note for s in few.stages if s.stage == "layout")


def test_compute_refuses_when_the_disk_cannot_hold_it(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="needs") as info:
        check_disk(tmp_path / "cache", 1 << 60, "atlas four-c")
    assert info.value.exit_code == 2 and "--plan" in str(info.value.fix)
    check_disk(tmp_path / "cache", 1, "atlas four-c")  # room: no error
