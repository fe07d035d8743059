"""Patch experiments (METHOD.md 6): compositing pixel for pixel, the flip statistics, the
experiment table, and a whole experiment on the demo model that a second run reproduces."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from generator.atlas.progress import Progress
from generator.config import ComputeConfig
from generator.data.synthetic import SyntheticWorld
from generator.experiments.patch import (
    fit_icon,
    noise_patch,
    paste,
    patch_tensor,
    placement,
    round_half_up,
)
from generator.experiments.results import flip_statistics
from generator.experiments.run import run_experiment
from generator.experiments.spec import (
    CORNERS,
    ExperimentProblems,
    parse_experiment,
)
from generator.site.blocks.patch_results_block import load_results

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny tensors: one thread

WHERE = "content/demo/atlases.toml:9"


def test_placements_follow_the_method() -> None:
    # 0.4 x 224 = 89.6 -> 90 px; corners at pos x (224 - 90) = 0 or 134 per axis
    corners = [placement(0.4, pos, 224) for pos in CORNERS]
    assert [(p.side, p.left, p.top) for p in corners] == [
        (90, 0, 0),
        (90, 134, 0),
        (90, 0, 134),
        (90, 134, 134),
    ]
    assert round_half_up(2.5) == 3 and round_half_up(89.5) == 90 and round(2.5) == 2
    half = placement(0.25, (0.5, 0.5), 10)  # 2.5 -> 3 px; (10 - 3) * 0.5 = 3.5 -> 4
    assert (half.side, half.left, half.top) == (3, 4, 4)
    assert placement(1.0, (1, 1), 64).side == 64 and placement(0.001, (0, 0), 64).side == 1
    with pytest.raises(ValueError, match="ratio"):
        placement(0.0, (0, 0), 64)


def test_paste_replaces_exactly_the_patch_pixels() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(2, 3, 32, 32)).astype(np.float32) / 255
    icon = rng.integers(0, 256, size=(20, 20, 3), dtype=np.uint8)
    where = placement(0.3, (1, 0), 32)  # 9.6 -> 10 px at left 22, top 0
    fitted = fit_icon(icon, where.side)
    before = torch.from_numpy(images)
    out = paste(before, patch_tensor(fitted, torch.device("cpu")), where).numpy()
    expected = images.copy()
    expected[:, :, 0:10, 22:32] = fitted.transpose(2, 0, 1)[None].astype(np.float32) / 255
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(before.numpy(), images)  # the input is untouched
    assert (np.round(out * 255) == out * 255).all()  # still a uint8 image / 255
    with pytest.raises(ValueError, match="patch must be"):
        paste(before, patch_tensor(icon, torch.device("cpu")), where)


def test_icons_are_resized_with_lanczos_and_noise_is_seeded() -> None:
    icon = np.random.default_rng(1).integers(0, 256, size=(80, 80, 3), dtype=np.uint8)
    assert fit_icon(icon, 80) is not icon and np.array_equal(fit_icon(icon, 80), icon)
    reference = Image.fromarray(icon).resize((90, 90), Image.Resampling.LANCZOS)
    np.testing.assert_array_equal(fit_icon(icon, 90), np.asarray(reference))
    a = noise_patch(12, seed=3, draw=0)
    assert a.shape == (12, 12, 3) and a.dtype == np.uint8 and a.std() > 50
    np.testing.assert_array_equal(a, noise_patch(12, seed=3, draw=0))
    assert not np.array_equal(a, noise_patch(12, seed=3, draw=1))
    assert not np.array_equal(a, noise_patch(12, seed=4, draw=0))


def test_flip_statistics() -> None:
    # rows: the icon, then 2 noise patches; 3 placements; 4 images
    flips = np.zeros((3, 3, 4), dtype=bool)
    flips[0, 0] = [1, 0, 0, 0]
    flips[0, 1] = [1, 1, 0, 0]
    flips[0, 2] = [0, 0, 1, 0]
    flips[1, 1] = [0, 0, 0, 1]
    flips[2, 0] = [1, 0, 0, 0]
    flips[2, 2] = [1, 0, 0, 0]
    stats = flip_statistics(flips, None)
    assert stats["best_per_image_rate"] == 0.75  # images 0, 1, 2 flip somewhere
    assert stats["placement_rates"] == [0.25, 0.5, 0.25]
    assert stats["fixed"] == 1 and stats["fixed_rate"] == 0.5  # the best placement
    assert stats["noise_best_rate"] == 0.25  # (1/4 + 1/4) / 2
    assert stats["noise_fixed_rate"] == 0.125  # placement 1: (1/4 + 0) / 2
    chosen = flip_statistics(flips, 2)
    assert chosen["fixed_rate"] == 0.25 and chosen["noise_fixed_rate"] == 0.125
    tie = np.zeros((1, 2, 2), dtype=bool)
    assert (
        flip_statistics(tie, None)["fixed"] == 0
        and flip_statistics(tie, None)["noise_best_rate"] == 0
    )
    none = flip_statistics(np.zeros((3, 3, 0), dtype=bool), None)
    assert none["best_per_image_rate"] == none["noise_fixed_rate"] == 0.0


def test_experiment_tables(tmp_path: Path) -> None:
    one = parse_experiment(
        "e",
        {
            "model": "demo",
            "dataset": "shapes",
            "source": "circle",
            "target": "star",
            "icon": "images/star.png",
            "fixed": {"size": 0.4, "position": [1, 1]},
        },
        WHERE,
        base=tmp_path,
    )
    assert len(one.pairs) == 1 and one.pairs[0].icon.path == tmp_path / "images/star.png"
    assert one.images_per_class == 1000 and one.positions == CORNERS and one.sizes[2] == 0.4
    assert one.fixed == (0.4, (1.0, 1.0)) and len(one.placements()) == 16
    many = parse_experiment(
        "e",
        {
            "model": "demo",
            "dataset": "shapes",
            "sizes": [0.5],
            "positions": [[0, 1]],
            "pairs": [
                {"source": "a", "target": "b", "icon": {"atlas": "x", "cell": [1, 2], "grid": 8}},
                {
                    "source": "c",
                    "target": "d",
                    "icon": {"atlas": "y", "query": {"attributed_to": "d"}},
                },
            ],
        },
        WHERE,
        base=tmp_path,
    )
    assert many.pairs[0].icon.cell == (1, 2) and many.pairs[1].icon.query == {"attributed_to": "d"}
    assert many.atlases == ("x", "y") and many.placements() == [(0.5, (0.0, 1.0))]
    with pytest.raises(ExperimentProblems) as info:
        parse_experiment(
            "bad",
            {
                "model": "demo",
                "sizes": [0.4, 2],
                "fixed": {"size": 0.45, "position": [1, 1]},
                "source": "a",
                "target": "a",
                "icon": {"atlas": "x", "cell": [1, 2], "query": {"top_class": "a"}},
                "sead": 1,
            },
            WHERE,
            base=tmp_path,
        )
    text = info.value.message()
    assert text.startswith(f"{WHERE}: 6 problems in [experiment.bad]")
    for part in (
        "sizes = [0.4, 2]: expected a list of distinct numbers in (0, 1]",
        "sead = 1: expected a known key (did you mean 'seed'?)",
        "dataset = None: expected dataset = ... (required)",
        "target = 'a': expected a class other than the source",
        "(exactly one of cell and query)",
        "fixed = {'size': 0.45, 'position': [1, 1]}: expected {size = <one of sizes>",
    ):
        assert part in text


def config_for(cache: Path) -> SimpleNamespace:
    return SimpleNamespace(
        compute=ComputeConfig(device="cpu", threads=1),
        models={},  # the demo model's committed weights: it knows the synthetic world
        datasets={"shapes": {"kind": "synthetic", "count": 240, "size": 64}},
        paths=SimpleNamespace(cache=cache),
        root=cache.parent,
    )


def run(cache: Path, seed: int) -> dict[str, Any]:
    world = SyntheticWorld(count=240, size=64)
    star = next(world.read(i) for i in range(24) if world.class_names[world.label(i)] == "star")
    table = {
        "model": "demo",
        "dataset": "shapes",
        "seed": seed,
        "images_per_class": 12,
        "sizes": [0.35, 0.5],
        "positions": [[0, 0], [1, 1]],
        "noise_patches": 2,
        "examples": 2,
        "source": "circle",
        "target": "star",
        "icon": "star.png",
    }
    spec = parse_experiment("shapes", table, WHERE, base=cache.parent)
    folder = run_experiment(
        spec, [star], config=config_for(cache), progress=Progress(enabled=False)
    )
    return {"folder": folder, **json.loads((folder / "results.json").read_text())}


def test_an_experiment_runs_and_the_same_seed_reproduces_it(tmp_path: Path) -> None:
    first = run(tmp_path / "a" / "cache", seed=5)
    again = run(tmp_path / "b" / "cache", seed=5)
    (pair,) = first["pairs"]
    assert pair["images_drawn"] == 12 and 0 < pair["images_correct_before"] <= 12
    assert pair["n_patches"] == 4 and len(pair["placements"]) == 4
    assert [p["side_px"] for p in pair["placements"]] == [22, 22, 32, 32]  # 22.4, 32 of 64 px
    assert pair["fixed_rate"] == max(p["rate"] for p in pair["placements"])
    assert pair["best_per_image_rate"] >= pair["fixed_rate"]
    assert pair["noise_best_rate"] >= pair["noise_fixed_rate"]
    for key in ("images_correct_before", "best_per_image_rate", "fixed_rate", "noise_best_rate"):
        assert again["pairs"][0][key] == pair[key]
    assert again["pairs"][0]["placements"] == pair["placements"]
    assert again["pairs"][0]["examples"] == pair["examples"]
    assert len(pair["examples"]) == 2 and pair["examples"][0]["before"][0][0] == "circle"
    with Image.open(first["folder"] / pair["examples"][0]["image"]) as image:
        assert image.size == (64, 64)
    # the patch-results block reads it as it is
    assert load_results(first["folder"] / "results.json", "x")["pairs"][0]["source"] == "circle"
    other = run(tmp_path / "c" / "cache", seed=6)
    drawn = {e["source_index"] for e in pair["examples"]}
    assert drawn != {e["source_index"] for e in other["pairs"][0]["examples"]}
    assert run(tmp_path / "a" / "cache", seed=5)["folder"] == first["folder"]  # cached
