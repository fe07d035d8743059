"""The statistics and files of a patch experiment (METHOD.md 6; :mod:`generator.experiments.run`
measures, this module counts and writes).

:func:`flip_statistics` turns ``flips [1 + noise, P, n]`` (row 0: the icon, then each noise
patch; ``P`` placements; ``n`` images classified correctly before) into the rates the article's
table reports; :func:`write_pair` writes a pair's icon and example images and returns its entry
of ``results.json`` (the format ``generator/site/blocks/patch_results_block.py`` reads, plus ``icon_source``,
``images_drawn``, ``fixed`` and ``placements``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from generator.experiments.patch import Placement
from generator.experiments.spec import PairSpec

#: The results format (generator/site/blocks/patch_results_block.py RESULTS_FORMAT).
RESULTS_FORMAT = 1


def flip_statistics(flips: np.ndarray, fixed: int | None) -> dict[str, Any]:
    """The rates of the module doc from ``flips [1 + noise, P, n] bool`` (row 0: the icon).

    Returns ``best_per_image_rate``, ``fixed_rate``, ``noise_best_rate``, ``noise_fixed_rate``,
    ``fixed`` (the placement index used) and ``placement_rates [P]`` (the icon's rate per
    placement), rates as floats in [0, 1].
    """
    _, placements, n = flips.shape
    if n == 0:
        rates = np.zeros(placements)
        chosen = 0 if fixed is None else fixed
        return {
            "best_per_image_rate": 0.0,
            "fixed_rate": 0.0,
            "noise_best_rate": 0.0,
            "noise_fixed_rate": 0.0,
            "fixed": chosen,
            "placement_rates": rates.tolist(),
        }
    rates = flips[0].mean(axis=1)
    chosen = int(np.argmax(rates)) if fixed is None else fixed
    noise = flips[1:]
    has_noise = noise.shape[0] > 0
    return {
        "best_per_image_rate": float(flips[0].any(axis=0).mean()),
        "fixed_rate": float(rates[chosen]),
        "noise_best_rate": float(noise.any(axis=1).mean(axis=1).mean()) if has_noise else 0.0,
        "noise_fixed_rate": float(noise[:, chosen].mean()) if has_noise else 0.0,
        "fixed": chosen,
        "placement_rates": [float(r) for r in rates],
    }


@dataclasses.dataclass(frozen=True)
class PairResult:
    """What measuring one pair found (see :meth:`generator.experiments.measure.PairRunner.measure`)."""

    drawn: int
    correct: int
    stats: dict[str, Any]
    placements: list[Placement]
    examples: list[dict[str, Any]]


def write_pair(
    folder: Path,
    k: int,
    pair: PairSpec,
    icon: np.ndarray,
    result: PairResult,
) -> dict[str, Any]:
    """Write pair ``k``'s icon and examples into ``folder``; return its ``pairs[k]`` entry."""
    from PIL import Image

    icon_name = f"icons/{k}.png"
    Image.fromarray(np.ascontiguousarray(icon[..., :3])).save(folder / icon_name)
    examples = []
    for e, example in enumerate(result.examples):
        name = f"examples/{k}-{e}.jpg"
        Image.fromarray(example["pixels"]).save(folder / name, quality=90)
        examples.append(
            {
                "image": name,
                "before": example["before"],
                "after": example["after"],
                "placement": example["placement"],
                "source_index": example["source_index"],
            }
        )
    stats = result.stats
    fixed = result.placements[stats["fixed"]]
    return {
        "source": pair.source,
        "target": pair.target,
        "icon_source": pair.icon.describe(),
        "images_drawn": result.drawn,
        "images_correct_before": result.correct,
        "best_per_image_rate": stats["best_per_image_rate"],
        "fixed_rate": stats["fixed_rate"],
        "noise_best_rate": stats["noise_best_rate"],
        "noise_fixed_rate": stats["noise_fixed_rate"],
        "n_patches": len(result.placements),
        "fixed": {"size": fixed.ratio, "position": list(fixed.position), "side_px": fixed.side},
        "placements": [
            {
                "size": p.ratio,
                "position": list(p.position),
                "side_px": p.side,
                "left": p.left,
                "top": p.top,
                "rate": rate,
            }
            for p, rate in zip(result.placements, stats["placement_rates"], strict=True)
        ],
        "icon": icon_name,
        "examples": examples,
    }
