"""The recipe of a computed result: its inputs as far as they can be known without torch.

A computed atlas's cache key (:func:`generator.keys.bundle_keys`) names the
model's weights and the data set's sample list, which only the compute engine can read. A
machine without it (GitHub Actions building from ``_freeze/``) still knows:

- ``spec``: the ``[atlas.<id>]`` or ``[experiment.<id>]`` table as parsed (every setting, its
  defaults filled in; not the file:line it came from), and an experiment's icons by digest;
- ``model`` and ``dataset``: how they are declared (a ``[models.<name>]`` /
  ``[datasets.<name>]`` table of atlas.toml as written, or a built-in name);
- ``code``: the version of every stage and file format that produced the result.

The recipe is the same on every machine (no absolute paths, no file times). A frozen entry
whose recipe differs from the spec's is stale, and :func:`changes` says what changed. What the
recipe cannot see (new weights behind the same declaration) the full key catches wherever the
compute engine is installed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from generator.freeze.compare import plain
from generator.keys import (
    BUNDLE_VERSION,
    COLLECT_VERSION,
    EXPERIMENT_VERSION,
    RECEPTIVE_VERSION,
    RENDER_VERSION,
    STAGE_VERSIONS,
    icon_digest,
)

if TYPE_CHECKING:
    from generator.atlas.spec import ComputedAtlasSpec
    from generator.config import Config
    from generator.experiments.spec import ExperimentSpec

#: Version of the recipe itself (its parts and how they are written).
RECIPE_VERSION = 1


def atlas_recipe(spec: ComputedAtlasSpec, config: Config) -> dict[str, Any]:
    """The recipe of a computed atlas (see the module doc)."""
    from generator.bundle import BUNDLE_FORMAT
    from generator.bundle.viewerdata import VIEWERDATA_FORMAT
    from generator.icons.store import ICONS_FORMAT

    return plain(
        {
            "recipe": RECIPE_VERSION,
            "kind": "atlas",
            "spec": spec.described(),
            "model": declaration(config.models, spec.model),
            "dataset": declaration(config.datasets, spec.dataset),
            "code": {
                "bundle": BUNDLE_VERSION,
                "bundle_format": BUNDLE_FORMAT,
                "viewerdata": VIEWERDATA_FORMAT,
                "collect": COLLECT_VERSION,
                "stages": dict(STAGE_VERSIONS),
                "render": RENDER_VERSION,
                "icons": ICONS_FORMAT,
                "receptive": RECEPTIVE_VERSION,
            },
        }
    )


def experiment_recipe(
    spec: ExperimentSpec, icons: Sequence[np.ndarray], config: Config
) -> dict[str, Any]:
    """The recipe of a patch experiment: its settings, its icons' pixels (by digest; an icon
    cut from an atlas changes when the atlas does), model, data set and code versions."""
    from generator.experiments.results import RESULTS_FORMAT

    described = dataclasses.asdict(spec)
    for name in ("where", "pairs", "batch_size"):
        described.pop(name)
    pairs = [
        {
            "source": pair.source,
            "target": pair.target,
            "icon": [list(icon.shape), icon_digest(icon)],
        }
        for pair, icon in zip(spec.pairs, icons, strict=True)
    ]
    return plain(
        {
            "recipe": RECIPE_VERSION,
            "kind": "experiment",
            "spec": {**described, "pairs": pairs},
            "model": declaration(config.models, spec.model),
            "dataset": declaration(config.datasets, spec.dataset),
            "code": {"experiment": EXPERIMENT_VERSION, "results": RESULTS_FORMAT},
        }
    )


def declaration(tables: Any, name: str) -> dict[str, Any]:
    """How a model or data set ``name`` is declared: its atlas.toml table as written, or
    ``{"builtin": name}``."""
    table = dict(tables or {}).get(name)
    if isinstance(table, dict):
        return {"name": name, "table": plain(table)}
    return {"builtin": name}
