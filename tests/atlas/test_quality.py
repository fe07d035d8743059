"""Quality checks on cached bundles: neighbour agreement, class-atlas icons classified by the
model, fidelity against noise, the report, and ``atlas quality`` (which computes no bundle)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor, nn

from generator.atlas.artifacts import Grid
from generator.atlas.commands import find_atlas_tables
from generator.atlas.compose import ComposeSettings, icon_edges, write_bundle
from generator.atlas.environment import ComputeEnvironment
from generator.atlas.progress import Progress
from generator.atlas.quality import (
    AGREEMENT_MIN,
    CLASSIFIED_MIN,
    FIDELITY_MARGIN,
    QualityReport,
    assess_bundle,
    cached_bundle,
    class_atlas_classification,
    fidelity_check,
    icon_crops,
    level_agreement,
    neighbour_agreement,
    noise_fidelity,
)
from generator.atlas.spec import parse_computed_atlas
from generator.bundle import AtlasBundle
from generator.cli import main
from generator.config import load_config
from generator.icons.store import Icons
from generator.models.base import LayerInfo, StagedModel

from ._project_kit import write_project

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny tensors: one thread

CPU = torch.device("cpu")


class MeanColour(nn.Module):
    """``[B, 3, h, w] -> [B, 4]``: each colour's mean, then a placeholder logit of 10."""

    def forward(self, x: Tensor) -> Tensor:
        means = x.mean(dim=(-2, -1))
        return torch.cat([means, torch.full_like(means[:, :1], 10.0)], dim=1)


class ColourModel(StagedModel):
    """A model whose answers are known: ``mixed3b`` and ``mixed4c`` are the image itself (3
    channels) and the class is the colour with the largest mean; the largest logit is a placeholder ("dummy 0"),
    which must never win."""

    def __init__(self) -> None:
        super().__init__()
        self.name, self.input_size = "colour", 8
        self.labels = ("red", "green", "blue", "dummy 0")
        self.stages = nn.ModuleDict(
            {"mixed3b": nn.Identity(), "mixed4c": nn.Identity(), "logits": MeanColour()}
        )
        self.layer_infos = (
            LayerInfo("mixed3b", 3, 8),
            LayerInfo("mixed4c", 3, 8),
            LayerInfo("logits", 4, 1),
        )

    def preprocess(self, images: Tensor) -> Tensor:
        return images


def icon(colour: tuple[int, int, int], size: int = 8) -> np.ndarray:
    """A ``size`` px icon of ``colour`` with a 2 px grey square at the top left (so a crop
    that is off by a pixel shows)."""
    image = np.empty((size, size, 3), np.uint8)
    image[:] = colour
    image[:2, :2] = 128
    return image


def tiny_bundle(
    root: Path,
    *,
    kind: str,
    grid: int,
    cells: Sequence[tuple[int, int]],
    tops: Sequence[int],
    images: np.ndarray,
    labels: Sequence[str],
    info: dict[str, Any],
    directions: np.ndarray | None = None,
    density: float | None = None,
    atlas_id: str = "toy",
) -> AtlasBundle:
    """A one-level bundle written by the compose stage from hand-made cells and icons."""
    m = len(cells)
    order = sorted(range(m), key=lambda i: (cells[i][1], cells[i][0]))  # Grid's cell order
    xy = np.array([cells[i] for i in order], np.int64).reshape(m, 2)
    top = np.array([[tops[i]] for i in order], np.int64).reshape(m, 1)
    if directions is None:
        directions = np.ones((m, 3), np.float32)
    counts = np.arange(1, m + 1, dtype=np.int64)
    level = Grid(
        size=grid,
        min_count=0,
        cells=xy,
        counts=counts,
        directions=directions[order].astype(np.float32),
        attributions=None,
        top_classes=top,
        top_values=np.ones(top.shape, np.float32),
        sample_cell=np.repeat(np.arange(m), counts),
        n_samples=int(counts.sum()),
    )
    icons = Icons(
        grid=grid,
        cells=xy,
        images=images[order],
        values=np.ones(m, np.float32),
        fidelity=np.full(m, 0.9, np.float32),
        best_try=np.zeros(m, np.int64),
    )
    root.mkdir(parents=True)
    return write_bundle(
        root,
        atlas_id=atlas_id,
        title="Toy",
        grids={grid: level},
        icons={grid: icons},
        labels=labels,
        info={"density": density, **info},
        settings=ComposeSettings(density=density),
        kind=kind,
        progress=Progress(enabled=False),
    )


RED, GREEN, BLUE = (200, 10, 10), (10, 200, 10), (10, 10, 200)
#: A direction noise is far from (noise pixels are positive: mean cosine about 0).
RED_NOT_GREEN = np.array([1.0, -1.0, 0.0], np.float32)


def class_bundle(root: Path, density: float | None = None) -> AtlasBundle:
    """A class atlas of "red" on a 3 x 3 grid: two red icons, one green, one blue."""
    images = np.stack([icon(RED), icon(GREEN), icon(RED), icon(BLUE)])
    return tiny_bundle(
        root,
        kind="class",
        grid=3,
        cells=[(0, 0), (2, 0), (1, 1), (2, 2)],
        tops=[0, 0, 0, 0],
        images=images,
        labels=ColourModel().labels,
        info={"class": "red", "layer": "mixed4c", "fidelity": {"all": {"n": 4, "mean": 0.9}}},
        directions=np.tile(RED_NOT_GREEN, (4, 1)),
        density=density,
    )


# -- neighbour agreement ---------------------------------------------------------------------


def test_neighbour_agreement_counts_majorities_and_isolated_cells() -> None:
    rows = [
        [0, 0, 5, [0], [1.0]],  # neighbours 0, 0, 1: agrees
        [1, 0, 5, [0], [1.0]],  # 0, 0, 1: agrees
        [0, 1, 5, [0], [1.0]],  # 0, 0, 1: agrees
        [1, 1, 5, [1], [1.0]],  # 0, 0, 0 (the cell without a class is no neighbour): no
        [2, 2, 0, [], []],  # no top class: not an occupied cell for this measure
        [3, 3, 5, [2], [1.0]],  # isolated: counted, never agreeing
    ]
    found = neighbour_agreement(rows, grid=4)
    assert (found.cells, found.agreeing, found.isolated) == (5, 3, 1)
    assert found.fraction == pytest.approx(0.6)


def test_a_tie_is_not_a_majority() -> None:
    rows = [[0, 0, 1, [0], [1.0]], [1, 0, 1, [0], [1.0]], [2, 0, 1, [1], [1.0]]]
    found = neighbour_agreement(rows)  # (1, 0) has one neighbour of its class, one not
    assert (found.cells, found.agreeing, found.isolated) == (3, 1, 0)
    assert neighbour_agreement([]).fraction == 0.0


def test_level_agreement_reads_the_bundle_cells_document(tmp_path: Path) -> None:
    # the same cells as above, given as (xbin, ybin) with row = G - 1 - ybin
    cells = [(0, 3), (1, 3), (0, 2), (1, 2), (3, 0)]
    bundle = tiny_bundle(
        tmp_path / "b",
        kind="layer",
        grid=4,
        cells=cells,
        tops=[0, 0, 0, 1, 2],
        images=np.stack([icon(RED)] * 5),
        labels=("a", "b", "c"),
        info={"layer": "mixed4c"},
    )
    found = level_agreement(bundle, 4)
    assert (found.cells, found.agreeing, found.isolated) == (5, 3, 1)


# -- icons classified by the model -----------------------------------------------------------


def test_icons_are_cut_from_the_level_image_at_their_cells(tmp_path: Path) -> None:
    bundle = class_bundle(tmp_path / "b")
    crops = icon_crops(bundle, 3)
    # cells document order = (ybin, xbin) order: (0,0) red, (2,0) green, (1,1) red, (2,2) blue
    expected = [icon(RED), icon(GREEN), icon(RED), icon(BLUE)]
    assert len(crops) == 4
    for crop, want in zip(crops, expected, strict=True):
        assert crop.shape == (8, 8, 3) and np.array_equal(crop, want)


def test_density_scaled_icons_are_cut_at_their_own_edge(tmp_path: Path) -> None:
    bundle = class_bundle(tmp_path / "b", density=0.2)
    edges = icon_edges(np.arange(1, 5), 10, 3, 8, 0.2).tolist()  # counts 1..4 of 10 samples
    assert edges == [3, 5, 6, 7]
    crops = icon_crops(bundle, 3)
    assert [c.shape[0] for c in crops] == edges
    resized = Image.fromarray(icon(RED)).resize((3, 3), Image.Resampling.LANCZOS)
    assert np.array_equal(crops[0], np.asarray(resized))


def test_class_atlas_icons_classified_with_the_confusion_top_3(tmp_path: Path) -> None:
    found = class_atlas_classification(class_bundle(tmp_path / "b"), ColourModel(), device=CPU)
    assert (found.atlas, found.class_name, found.n) == ("toy", "red", 4)
    assert found.fraction == 0.5  # the placeholder logit (10) never wins
    assert found.confusion == (("red", 0.5), ("green", 0.25), ("blue", 0.25))  # ties: index


# -- fidelity --------------------------------------------------------------------------------


def test_noise_fidelity_is_the_mean_cosine_of_noise_at_the_layer_centre() -> None:
    directions = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 1], [0, 0, 1], [1, 2, 0]], np.float32)
    got = noise_fidelity(ColourModel(), "mixed4c", directions, 5, device=CPU, seed=3, limit=3)
    # limit 3 of 5: directions 0, 2, 4; noise bytes from default_rng(3); centre pixel (2, 2)
    noise = np.random.default_rng(3).integers(0, 256, (3, 5, 5, 3), dtype=np.uint8)
    centre = noise[:, 2, 2].astype(np.float64) / 255
    chosen = directions[[0, 2, 4]].astype(np.float64)
    cos = (centre * chosen).sum(1) / np.linalg.norm(centre, axis=1) / np.linalg.norm(chosen, axis=1)
    assert got == pytest.approx(cos.mean(), rel=1e-5)


def test_fidelity_must_beat_noise_by_the_margin() -> None:
    summary = {"n": 10, "mean": 0.6, "median": 0.62, "min": 0.1}
    passed = fidelity_check(summary, noise=0.4)
    assert passed.threshold == pytest.approx(0.4 + FIDELITY_MARGIN) and passed.passed
    assert (passed.n, passed.median) == (10, 0.62)
    assert fidelity_check(summary, noise=0.5).passed is False
    assert fidelity_check(summary, noise=None).passed is None


# -- the report ------------------------------------------------------------------------------


def test_a_class_atlas_below_70_percent_is_a_failure_in_the_report(tmp_path: Path) -> None:
    model = ColourModel()
    measures = assess_bundle(class_bundle(tmp_path / "b"), model, device=CPU)
    assert [m.name for m in measures] == ["classified as red", "icon fidelity (mean)"]
    classified, fidelity = measures
    assert classified.value == 0.5 and classified.threshold == CLASSIFIED_MIN
    assert classified.passed is False and "top-3: red 50%, green 25%, blue 25%" in classified.detail
    noise = noise_fidelity(model, "mixed4c", np.tile(RED_NOT_GREEN, (4, 1)), 8, device=CPU)
    assert fidelity.threshold == pytest.approx(noise + FIDELITY_MARGIN) and fidelity.value == 0.9
    assert abs(noise) < 0.5 and fidelity.passed
    report = QualityReport(tuple(measures), ("a note",))
    assert report.failures == (classified,)
    table = report.table()
    assert "MISSED" in table and "a note" in table and "1 of 2 checks met" in table


@pytest.mark.parametrize(
    ("layer", "grid", "checked"),
    [("mixed4c", 20, True), ("mixed3b", 20, False), ("mixed4c", 10, False)],
)
def test_agreement_is_checked_at_20x20_of_mixed4c_only(
    tmp_path: Path, layer: str, grid: int, checked: bool
) -> None:
    bundle = tiny_bundle(
        tmp_path / "b",
        kind="layer",
        grid=grid,
        cells=[(0, 0), (1, 0)],
        tops=[1, 1],
        images=np.stack([icon(RED), icon(GREEN)]),
        labels=ColourModel().labels,
        info={"layer": layer, "fidelity": {"all": {"n": 2, "mean": 0.9}}},
    )
    agreement = assess_bundle(bundle, ColourModel(), device=CPU)[0]
    assert agreement.name == f"neighbour agreement {grid}x{grid}" and agreement.value == 1.0
    assert agreement.threshold == (AGREEMENT_MIN if checked else None)


# -- atlas quality ---------------------------------------------------------------------------


ATLASES = """
[atlas.four-c]
model = "demo"
layer = "mixed4c"
dataset = "shapes"
samples = 20
grids = [20]

[atlas.picture]
image = "picture.png"
grid = 2
icon_size = 4
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    pub = write_project(tmp_path, ATLASES)
    Image.new("RGB", (8, 8)).save(pub / "picture.png")
    return tmp_path


def test_atlas_quality_names_a_missing_bundle_and_computes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--config", str(project / "atlas.toml"), "quality"])
    err = capsys.readouterr().err
    assert code == 2
    assert "no cached bundle for 1 atlas(es): four-c" in err and "`atlas build`" in err
    assert not (project / "cache" / "bundle").exists()


def test_atlas_quality_reads_the_bundle_the_pipeline_would_find(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config(project / "atlas.toml")
    entry = find_atlas_tables(config.paths.content)["four-c"]
    spec = parse_computed_atlas("four-c", entry.table, entry.where, config=config)
    env = ComputeEnvironment.from_config(config)
    assert env.device == CPU
    folder, sources = cached_bundle(spec, env)
    channels = sources.model.layer("mixed4c").channels
    rng = np.random.default_rng(0)
    tiny_bundle(
        folder,
        kind="layer",
        grid=20,
        cells=[(0, 0), (1, 0), (0, 1), (5, 5)],  # three agree, one isolated: 0.75
        tops=[3, 3, 3, 4],
        images=rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8),
        labels=sources.model.labels,
        info={"layer": "mixed4c", "fidelity": {"all": {"n": 4, "mean": -1.0, "median": -1.0}}},
        directions=rng.random((4, channels)).astype(np.float32),
        atlas_id="four-c",
    )
    args = ["--config", str(project / "atlas.toml"), "quality"]
    assert main(args) == 0  # a missed threshold fails only with --check
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()]
    agreement = "four-c layer neighbour agreement 20x20 0.750 >= 0.600 ok 3/4 cells agree,"
    assert [*agreement.split(), "1", "isolated"] in rows
    fidelity = "four-c layer icon fidelity (mean) -1.000 >="
    assert any(row[: len(fidelity.split())] == fidelity.split() and "MISSED" in row for row in rows)
    assert "picture: a precomputed image, nothing to measure" in out
    assert main([*args, "--check", "four-c"]) == 1
    assert main([*args, "--check", "picture"]) == 0  # nothing measured, nothing missed
