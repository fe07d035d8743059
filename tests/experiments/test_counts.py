"""Patch experiments count what METHOD.md 6 says, on a case whose flips are known.

The model (``_count_model.QuadrantNet``, plugged in as a user entry point) decides by the mean
colour of each 8 x 8 quadrant of 16 px images, so which placement of a cyan icon turns which
rose into a tulip (the target), a violet (a third class) or nothing can be worked out by hand:
the table :data:`ROSES` says it, the numpy reference below recomputes it from the model's rule
(and the documented pasting and noise rules), and the experiment's ``results.json`` must agree
with both. Every rate is non-zero and ``predicted != source`` differs from ``== target``.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image

from generator.atlas.progress import Progress
from generator.config import ComputeConfig
from generator.experiments.results import flip_statistics
from generator.experiments.run import run_experiment
from generator.experiments.spec import parse_experiment

from . import _count_model as cm

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny tensors: one thread

WHERE = "content/study/atlases.toml:1"

#: Noise seed. Its two 8 px noise patches differ in mean red and cyan, so a rose anchored by
#: a red quadrant turns tulip under the noise at its anchor when the rest of its cyan levels
#: sum above ~0.75 (draw 0) or ~0.96 (draw 1): image "TL + some cyan" (0.86) flips in draw 0
#: only, so the two draws' rates differ.
SEED = 20
NOISE = 2

#: The experiment's placements, size-major (``ExperimentSpec.placements``), by hand: side
#: ``0.5 * 16 = 8`` or ``0.25 * 16 = 4`` px, top-left corner ``position * (16 - side)``.
SIZES = (0.5, 0.25)
POSITIONS = ((0, 0), (1, 0), (1, 1))  # TL, TR, BR
PLACEMENTS = [  # (name, side, left, top)
    ("0.5@TL", 8, 0, 0),
    ("0.5@TR", 8, 8, 0),
    ("0.5@BR", 8, 8, 8),
    ("0.25@TL", 4, 0, 0),
    ("0.25@TR", 4, 12, 0),
    ("0.25@BR", 4, 12, 12),
]
NAMES = [p[0] for p in PLACEMENTS]
SPECS = [(size, position) for size in SIZES for position in POSITIONS]
DESCRIBED = [f"{size:g} at ({x}, {y})" for size, (x, y) in SPECS]

#: The icon: pure cyan.
ICON = np.zeros((16, 16, 3), dtype=np.uint8)
ICON[..., 1:] = 255

RED, cyan = cm.RED, cm.cyan

#: The rose images: (what it is, quadrants, class before, icon placements that make a tulip,
#: icon placements that make a violet). Worked by hand from the rule (rose = 0.3 + red of
#: TL/TR/BR; tulip = 0.6 * cyan of TL/TR/BR; violet = 1.5 * cyan of BR; lily = 3 * red of BL - 1).
ROSES: list[tuple[str, dict[str, tuple[int, int, int]], str, set[str], set[str]]] = [
    # covering the red anchor with cyan: rose 0.3 < tulip >= 0.6; cyan BR: violet 1.5 > 1.3
    ("TL anchor", dict(TL=RED, TR=cyan(60), BR=cyan(40)), "rose", {"0.5@TL"}, {"0.5@BR"}),
    ("TL + some cyan", dict(TL=RED, TR=cyan(130), BR=cyan(90)), "rose", {"0.5@TL"}, {"0.5@BR"}),
    # a lily before (3 - 1 = 2 > 1.3): not counted
    ("lily", dict(TR=RED, BL=RED), "lily", set(), set()),
    # so much cyan elsewhere that a quarter of the anchor covered is enough (1.09 > 1.05)
    (
        "TL + cyan",
        dict(TL=RED, TR=cyan(250), BR=cyan(150)),
        "rose",
        {"0.5@TL", "0.25@TL"},
        {"0.5@BR"},
    ),
    ("TR anchor", dict(TR=RED, TL=cyan(30), BR=cyan(20)), "rose", {"0.5@TR"}, {"0.5@BR"}),
    (
        "TR + cyan",
        dict(TR=RED, TL=cyan(240), BR=cyan(200)),
        "rose",
        {"0.5@TR", "0.25@TR"},
        {"0.5@BR"},
    ),
    # a violet before (1.5 * 240 / 255 = 1.41 > 1.3): not counted
    ("violet", dict(TL=RED, BR=cyan(240)), "violet", set(), set()),
    # covering a BR anchor makes a violet (1.5 > 0.95): it falls, but never to the target
    ("BR anchor", dict(BR=RED, TL=cyan(100), TR=cyan(50)), "rose", set(), {"0.5@BR"}),
    # ... unless the rest is cyan enough: tulip 1.72 > violet 1.5
    ("BR + cyan", dict(BR=RED, TL=cyan(240), TR=cyan(236)), "rose", {"0.5@BR", "0.25@BR"}, set()),
    # no anchor: rose 0.3 only just beats tulip 0.21; any cyan flips it, in BR to violet
    (
        "no anchor",
        dict(TL=cyan(90)),
        "rose",
        {"0.5@TL", "0.5@TR", "0.25@TL", "0.25@TR"},
        {"0.5@BR", "0.25@BR"},
    ),
]
ROSE_IMAGES = np.stack([cm.quadrant_image(**quadrants) for _, quadrants, *_ in ROSES])

#: Images of another class, listed before the roses (so rose indices start at 2).
DAISIES = np.stack([cm.quadrant_image(BL=RED), cm.quadrant_image(TL=cyan(255))])


# -- the independent reference ---------------------------------------------------------------


def fitted(patch: np.ndarray, side: int) -> np.ndarray:
    """The icon at ``side`` px: Lanczos (patch.py's documented rule), as is when it fits."""
    if patch.shape[:2] == (side, side):
        return patch
    resized = Image.fromarray(patch).resize((side, side), Image.Resampling.LANCZOS)
    return np.asarray(resized)


def noise(side: int, draw: int) -> np.ndarray:
    """Noise patch ``draw`` (patch.py's documented rule: uniform bytes of rng([seed, draw, w]))."""
    rng = np.random.default_rng([SEED, draw, side])
    return rng.integers(0, 256, size=(side, side, 3), dtype=np.uint8)


def patched_logits(images: np.ndarray, draw: int) -> np.ndarray:
    """``[P, N, 4]`` reference logits of ``images`` with patch ``draw`` (0: the icon) pasted at
    each placement: the patch replaces ``[top, top + side) x [left, left + side)``."""
    out = []
    for _, side, left, top in PLACEMENTS:
        patch = fitted(ICON, side) if draw == 0 else noise(side, draw - 1)
        pasted = images.copy()
        pasted[:, top : top + side, left : left + side] = patch
        out.append(cm.reference_logits(pasted))
    return np.stack(out)


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def second_gap(logits: np.ndarray) -> float:
    """Smallest gap between the top two logits: float32 must not be able to swap them."""
    top2 = np.sort(logits, axis=-1)[..., -2:]
    return float((top2[..., 1] - top2[..., 0]).min())


def reference(target: int) -> dict[str, Any]:
    """What the experiment must find for ``rose -> LABELS[target]``, counted here by the
    definitions of METHOD.md 6 (module doc of generator/experiments/run.py)."""
    before = cm.reference_logits(ROSE_IMAGES)
    assert second_gap(before) > 1e-3
    correct = [i for i in range(len(ROSES)) if before[i].argmax() == cm.ROSE]
    images = ROSE_IMAGES[correct]
    logits = [patched_logits(images, d) for d in range(1 + NOISE)]  # [P, n, 4] each
    assert min(second_gap(x) for x in logits) > 1e-3
    flips = [
        [[bool(x[p, i].argmax() == target) for i in range(len(correct))] for p in range(6)]
        for x in logits
    ]
    return {
        "correct": correct,
        "flips": flips,  # [draw][placement][image]
        "classes": logits[0].argmax(axis=-1),  # [P, n] the icon's
        "target_p": softmax(logits[0])[..., target],  # [P, n]
        "probs": softmax(logits[0]),
    }


def rates_by_definition(flips: list[list[list[bool]]], fixed: int | None) -> dict[str, Any]:
    """The article's table, counted with plain loops."""
    icon, noises = flips[0], flips[1:]
    n = len(icon[0])
    placement_rates = [sum(row) / n for row in icon]
    chosen = placement_rates.index(max(placement_rates)) if fixed is None else fixed
    per_image = sum(any(row[i] for row in icon) for i in range(n)) / n
    noise_best = sum(sum(any(row[i] for row in d) for i in range(n)) / n for d in noises)
    noise_fixed = sum(sum(d[chosen]) / n for d in noises)
    return {
        "images_correct_before": n,
        "placement_rates": placement_rates,
        "fixed": chosen,
        "best_per_image_rate": per_image,
        "fixed_rate": placement_rates[chosen],
        "noise_best_rate": noise_best / len(noises),
        "noise_fixed_rate": noise_fixed / len(noises),
    }


# -- the experiment --------------------------------------------------------------------------


def write_dataset(root: Path) -> Path:
    folder = root / "flowers"
    for name, images in (("daisy", DAISIES), ("rose", ROSE_IMAGES)):
        (folder / name).mkdir(parents=True)
        for k, image in enumerate(images):
            Image.fromarray(image).save(folder / name / f"{k:02d}.png")
    return folder


def run(tmp_path: Path, fixed: dict[str, Any] | None = None) -> dict[str, Any]:
    root = tmp_path / "project"
    root.mkdir()
    Image.fromarray(ICON).save(root / "icon.png")
    folder = write_dataset(root)
    config = SimpleNamespace(
        compute=ComputeConfig(device="cpu", threads=1),
        models={"quadrants": {"entry": f"{cm.__name__}:build"}},
        datasets={"flowers": {"folder": str(folder)}},
        paths=SimpleNamespace(cache=root / ".atlas-cache"),
        root=root,
    )
    table: dict[str, Any] = {
        "model": "quadrants",
        "dataset": "flowers",
        "seed": SEED,
        "images_per_class": 100,
        "sizes": list(SIZES),
        "positions": [list(p) for p in POSITIONS],
        "noise_patches": NOISE,
        "examples": 24,
        "batch_size": 3,  # several batches: rows are filled batch by batch
        "pairs": [
            {"source": "rose", "target": "tulip", "icon": "icon.png"},
            {"source": "rose", "target": "violet", "icon": "icon.png"},
        ],
    }
    if fixed is not None:
        table["fixed"] = fixed
    spec = parse_experiment("flowers", table, WHERE, base=root)
    out = run_experiment(spec, [ICON, ICON], config=config, progress=Progress(enabled=False))
    return json.loads((out / "results.json").read_text())


@pytest.fixture(scope="module")
def best_fixed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run(tmp_path_factory.mktemp("best"))


def test_the_hand_worked_table_is_what_the_rule_gives() -> None:
    """The reference's flips are the table's (so the numbers below are not circular)."""
    ref = reference(cm.TULIP)
    before = cm.reference_logits(ROSE_IMAGES).argmax(axis=1)
    assert [cm.LABELS[c] for c in before] == [row[2] for row in ROSES]
    assert ref["correct"] == [0, 1, 3, 4, 5, 7, 8, 9]
    for column, i in enumerate(ref["correct"]):
        tulips = {NAMES[p] for p in range(6) if ref["classes"][p, column] == cm.TULIP}
        violets = {NAMES[p] for p in range(6) if ref["classes"][p, column] == cm.VIOLET}
        assert (tulips, violets) == (ROSES[i][3], ROSES[i][4]), ROSES[i][0]
    # the icon flips 7 of 8 roses somewhere, at most 4 at any one placement; 7 of 8 fall
    # to violet at 0.5@BR, which counting "no longer a rose" would take for a flip
    counts = rates_by_definition(ref["flips"], None)
    assert counts["best_per_image_rate"] == 7 / 8
    assert counts["placement_rates"] == [4 / 8, 3 / 8, 1 / 8, 2 / 8, 2 / 8, 1 / 8]
    # noise at a rose's anchor flips "TL + some cyan" in draw 0 only, "TL + cyan",
    # "TR + cyan" and "BR + cyan" in both
    noise_flipped = [
        {ROSES[i][0] for c, i in enumerate(ref["correct"]) if any(row[c] for row in draw)}
        for draw in ref["flips"][1:]
    ]
    assert noise_flipped == [
        {"TL + some cyan", "TL + cyan", "TR + cyan", "BR + cyan"},
        {"TL + cyan", "TR + cyan", "BR + cyan"},
    ]
    assert counts["noise_best_rate"] == (4 / 8 + 3 / 8) / 2


def check_pair(pair: dict[str, Any], target: int, fixed: int | None) -> None:
    ref = reference(target)
    expected = rates_by_definition(ref["flips"], fixed)
    assert pair["images_drawn"] == len(ROSES)
    assert pair["images_correct_before"] == expected["images_correct_before"] == 8
    for key in ("best_per_image_rate", "fixed_rate", "noise_best_rate", "noise_fixed_rate"):
        assert pair[key] == pytest.approx(expected[key], abs=1e-12), key
    assert [p["rate"] for p in pair["placements"]] == pytest.approx(expected["placement_rates"])
    assert [(p["side_px"], p["left"], p["top"]) for p in pair["placements"]] == [
        p[1:] for p in PLACEMENTS
    ]
    size, position = SPECS[expected["fixed"]]
    side = PLACEMENTS[expected["fixed"]][1]
    assert pair["fixed"] == {"size": size, "position": list(position), "side_px": side}


def test_rates_of_a_pair_with_known_flips(best_fixed: dict[str, Any]) -> None:
    tulip, violet = best_fixed["pairs"]
    check_pair(tulip, cm.TULIP, None)
    # by hand: 7 of 8 tulips somewhere; the best placement 0.5@TL turns 4 of 8; noise 7/16
    # and (2/8 + 1/8) / 2 at 0.5@TL
    assert (tulip["best_per_image_rate"], tulip["fixed_rate"]) == (7 / 8, 4 / 8)
    assert (tulip["noise_best_rate"], tulip["noise_fixed_rate"]) == (7 / 16, 3 / 16)
    assert (tulip["fixed"]["size"], tulip["fixed"]["position"]) == (0.5, [0, 0])
    check_pair(violet, cm.VIOLET, None)
    # rose -> violet: 0.5@BR (7 of 8) is the best; "BR + cyan" never becomes a violet
    assert (violet["best_per_image_rate"], violet["fixed_rate"]) == (7 / 8, 7 / 8)
    assert (violet["fixed"]["size"], violet["fixed"]["position"]) == (0.5, [1, 1])


def test_rates_at_a_fixed_placement(tmp_path: Path) -> None:
    results = run(tmp_path, fixed={"size": 0.5, "position": [1, 0]})
    tulip, violet = results["pairs"]
    check_pair(tulip, cm.TULIP, 1)
    check_pair(violet, cm.VIOLET, 1)
    # by hand, 0.5@TR: 3 of 8 tulips, noise flips "TR + cyan" in both draws; no violets
    assert (tulip["fixed_rate"], tulip["noise_fixed_rate"]) == (3 / 8, 1 / 8)
    assert tulip["best_per_image_rate"] == 7 / 8
    assert (violet["fixed_rate"], violet["noise_fixed_rate"]) == (0.0, 0.0)


def test_examples_come_flipped_first_then_by_target_probability(
    best_fixed: dict[str, Any],
) -> None:
    for pair, target in zip(best_fixed["pairs"], (cm.TULIP, cm.VIOLET), strict=True):
        ref = reference(target)
        best = ref["target_p"].argmax(axis=0)  # each image's placement of highest p(target)
        columns = range(len(ref["correct"]))
        p_best = [float(ref["target_p"][best[c], c]) for c in columns]
        flipped = [bool(ref["classes"][best[c], c] == target) for c in columns]
        # unambiguous: no two placements of an image, nor two images, share a probability
        ordered = np.sort(ref["target_p"], axis=0)
        assert (ordered[-1] - ordered[-2]).min() > 1e-4
        assert np.diff(np.sort(p_best)).min() > 1e-4
        order = sorted(columns, key=lambda c: (not flipped[c], -p_best[c]))
        assert sum(flipped) >= 2 and not all(flipped)
        examples = pair["examples"]
        assert len(examples) == len(order)
        # folder order: daisies (0, 1), then the roses
        assert [e["source_index"] for e in examples] == [2 + ref["correct"][c] for c in order]
        assert [e["placement"] for e in examples] == [DESCRIBED[best[c]] for c in order]
        for e, c in zip(examples, order, strict=True):
            assert e["before"][0][0] == "rose"
            after = ref["probs"][best[c], c]
            assert e["after"][0][0] == cm.LABELS[int(after.argmax())]
            assert e["after"][0][1] == pytest.approx(float(after.max()), abs=1e-4)
            assert (e["after"][0][0] == cm.LABELS[target]) == flipped[c]


# -- flip_statistics on hand-made flips ------------------------------------------------------


def test_flip_statistics_with_three_noise_draws() -> None:
    # [1 + 3 draws, 3 placements, 5 images]
    icon = [[1, 0, 0, 1, 0], [0, 1, 1, 0, 0], [1, 1, 0, 0, 0]]
    draws = [
        [[0, 0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],  # any: 1 of 5
        [[1, 0, 0, 0, 0], [1, 0, 0, 1, 1], [0, 1, 0, 0, 0]],  # any: 4 of 5
        [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],  # none
    ]
    flips = np.array([icon, *draws], dtype=bool)
    stats = flip_statistics(flips, None)
    # icon: images 0..3 flip somewhere (4/5); placement rates 2/5, 2/5, 2/5: a three-way
    # tie, the first placement is the fixed one
    assert stats["best_per_image_rate"] == pytest.approx(4 / 5)
    assert stats["placement_rates"] == pytest.approx([2 / 5, 2 / 5, 2 / 5])
    assert stats["fixed"] == 0 and stats["fixed_rate"] == pytest.approx(2 / 5)
    assert stats["noise_best_rate"] == pytest.approx((1 / 5 + 4 / 5 + 0) / 3)
    assert stats["noise_fixed_rate"] == pytest.approx((1 / 5 + 1 / 5 + 0) / 3)  # placement 0
    at_two = flip_statistics(flips, 2)
    assert at_two["fixed"] == 2 and at_two["fixed_rate"] == pytest.approx(2 / 5)
    assert at_two["noise_fixed_rate"] == pytest.approx((0 + 1 / 5 + 0) / 3)  # placement 2
    at_one = flip_statistics(flips, 1)
    assert at_one["noise_fixed_rate"] == pytest.approx((0 + 3 / 5 + 0) / 3)
    assert at_one["best_per_image_rate"] == stats["best_per_image_rate"]  # fixed changes no best


def test_flip_statistics_ties_go_to_the_first_best_placement() -> None:
    flips = np.zeros((2, 4, 4), dtype=bool)
    flips[0, 1] = [1, 1, 0, 0]  # 2/4
    flips[0, 3] = [0, 0, 1, 1]  # 2/4, later
    flips[0, 0] = [1, 0, 0, 0]  # 1/4
    flips[1, 3] = [1, 1, 1, 0]  # noise at placement 3 only
    stats = flip_statistics(flips, None)
    assert stats["fixed"] == 1 and stats["fixed_rate"] == 0.5
    assert stats["best_per_image_rate"] == 1.0
    assert stats["noise_best_rate"] == 0.75 and stats["noise_fixed_rate"] == 0.0
    assert flip_statistics(flips, 3)["noise_fixed_rate"] == 0.75


def test_flip_statistics_without_images_or_noise() -> None:
    empty = flip_statistics(np.zeros((3, 4, 0), dtype=bool), None)
    assert empty == {
        "best_per_image_rate": 0.0,
        "fixed_rate": 0.0,
        "noise_best_rate": 0.0,
        "noise_fixed_rate": 0.0,
        "fixed": 0,
        "placement_rates": [0.0, 0.0, 0.0, 0.0],
    }
    assert flip_statistics(np.zeros((1, 2, 0), dtype=bool), 1)["fixed"] == 1
    alone = np.array([[[1, 0, 1], [0, 0, 1]]], dtype=bool)  # the icon only: no noise draws
    stats = flip_statistics(alone, None)
    assert stats["noise_best_rate"] == 0.0 and stats["noise_fixed_rate"] == 0.0
    assert stats["best_per_image_rate"] == pytest.approx(2 / 3)
    assert stats["placement_rates"] == pytest.approx([2 / 3, 1 / 3])
