"""Patch-experiment results in an article: a ```` ```patch-results ```` block -> a table and a
figure of example images with their top classes (METHOD.md 6, the article's "human-designed
adversarial examples").

The block (YAML)::

    ```patch-results
    experiment: snorkel-scuba   # experiments/<id>/results.json in this page's publication
    figure: patches             # the figure's HTML id (default: patch-<experiment>)
    examples: 4                 # example images shown per pair (default 4; 0: the table only)
    caption: "Markdown"
    ```

The results are those of the ``[experiment.<id>]`` table of the publication's atlases.toml,
computed when the site builds (:mod:`generator.site.build_experiments`; published at
``<publication>/experiments/<id>/``), else a committed ``experiments/<id>/results.json``
(everything under the publication folder is published beside the pages, so the images it names
are too). The format (the computed file adds more keys: ``images_drawn``, ``fixed``,
``placements``, per example ``placement``; extra keys are ignored here)::

    {"format": 1, "experiment": "snorkel-scuba", "model": "InceptionV1", "seed": 0,
     "images_per_class": 1000,
     "pairs": [{"source": "snorkel", "target": "scuba diver",
                "images_correct_before": 827,       # source images classified correctly
                "best_per_image_rate": 0.850,       # fraction flipped to target, best corner
                "fixed_rate": 0.654,                #   and size per image / one fixed placement
                "noise_best_rate": 0.139,           # the same with a random-noise patch
                "noise_fixed_rate": 0.042,
                "n_patches": 10,                    # placements tried per image
                "icon": "icons/snorkel-scuba.png",  # the patch (relative to results.json)
                "examples": [{"image": "examples/snorkel-0.jpg",   # the patched image
                              "before": [["snorkel", 0.91], ["scuba diver", 0.03]],
                              "after": [["scuba diver", 0.713], ["snorkel", 0.12]]}]}]}

Rates and probabilities are fractions in [0, 1] (shown as percentages, one decimal); the
top-class lists are [class name, probability] pairs, most probable first. ``model``, ``seed``
and ``images_per_class`` are optional. A missing or malformed file is a ContentError naming
the block's line, the file and the key.
"""

from __future__ import annotations

import json
import math
import posixpath
import re
from pathlib import Path
from typing import Any

from generator.errors import ContentError, excerpt
from generator.errors import shown as shown_value
from generator.paths import confine, is_relative, within
from generator.site.blocks.blockyaml import check_keys, load_block
from generator.site.mdext import PageContext
from generator.textfiles import MAX_NESTING, MAX_RESULTS_BYTES, nesting, read_text

PATCH_KEYS = {
    "experiment": "an experiment id: an [experiment.<id>] of the publication's atlases.toml,"
    " or experiments/<id>/results.json in the publication",
    "figure": "an HTML id: a letter, then letters, digits, '-' or '_'",
    "examples": "an integer from 0 to 24: example images shown per pair",
    "caption": "a Markdown string",
}
RESULTS_FORMAT = 1
RATES = ("best_per_image_rate", "fixed_rate", "noise_best_rate", "noise_fixed_rate")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_FIGURE_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def results_path(page_source: Path, experiment: str) -> Path:
    """Where an experiment's results live: ``<publication>/experiments/<id>/results.json``."""
    return page_source.parent / "experiments" / experiment / "results.json"


def experiment_inputs(publication: Path) -> list[tuple[str, int, int]]:
    """(path, size, mtime) of every results file of a publication: part of its pages' keys."""
    found = []
    for path in sorted((publication / "experiments").glob("*/results.json")):
        stat = path.stat()
        found.append((path.as_posix(), stat.st_size, stat.st_mtime_ns))
    return found


def render_patch_results(text: str, line: int, ctx: PageContext) -> str:
    """The HTML of a patch-results block (``partials/patch-results.html``)."""
    block = load_block(
        text, source=str(ctx.page.source), line=line, kind="patch-results", keys="experiment"
    )
    data = block.data
    check_keys(data, PATCH_KEYS, block.where(), "patch-results block")

    def bad(key: str) -> ContentError:
        return ContentError(
            f"patch-results key '{key}' is invalid",
            where=block.where(key),
            expected=PATCH_KEYS[key],
            got=shown_value(data.get(key, "<missing>")),
            fix=f"set '{key}' to {PATCH_KEYS[key]}",
        )

    experiment = data.get("experiment")
    if not isinstance(experiment, str) or not _ID.fullmatch(experiment):
        raise bad("experiment")
    figure = data.get("figure", f"patch-{experiment}")
    if not isinstance(figure, str) or not _FIGURE_ID.fullmatch(figure):
        raise bad("figure")
    shown = data.get("examples", 4)
    if isinstance(shown, bool) or not isinstance(shown, int) or not 0 <= shown <= 24:
        raise bad("examples")
    caption = data.get("caption", "")
    if not isinstance(caption, str):
        raise bad("caption")
    computed = ctx.figures.experiments.get((ctx.page.publication or "", experiment))
    path = computed or results_path(ctx.page.source, experiment)
    if computed is None and path.exists():  # committed: it must be the publication's own
        confine(
            path,
            ctx.page.source.parent,
            where=block.where("experiment"),
            what=f"the results file of experiment {experiment!r}",
        )
    results = load_results(path, block.where("experiment"))
    base = posixpath.dirname(ctx.page.rel)
    folder = (f"{base}/" if base else "") + f"experiments/{experiment}/"

    def url(rel: str) -> str:
        return ctx.page_link(posixpath.normpath(folder + rel))

    pairs = []
    for pair in results["pairs"]:
        examples = [
            {**example, "url": url(example["image"])} for example in pair["examples"][:shown]
        ]
        pairs.append({**pair, "icon_url": url(pair["icon"]), "shown": examples})
    return ctx.figures.render_partial(
        "partials/patch-results.html",
        figure=figure,
        results=results,
        pairs=pairs,
        patches=pairs[0]["n_patches"] if len({p["n_patches"] for p in pairs}) == 1 else None,
        caption=ctx.figures.caption_html(caption, ctx) if caption else "",
        percent=percent,
    )


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def load_results(path: Path, where: str) -> dict[str, Any]:
    """Read and validate a results file (the format in the module docstring)."""
    if not path.is_file():
        raise ContentError(
            "the patch experiment's results are missing",
            where=where,
            expected=f"a results file at {path}",
            fix="run the patch experiment: declare it as an [experiment.<id>] table in the"
            " publication's atlases.toml (computed when the site builds), or commit its"
            " experiments/<id>/results.json; or fix 'experiment'",
        )
    text = read_text(path, limit=MAX_RESULTS_BYTES, error=ContentError, kind="results file")
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise ContentError(
            f"the results file is not valid JSON: {excerpt(str(err), 200)}",
            where=str(path),
            fix="rerun the experiment",
        ) from None
    if nesting(doc) > MAX_NESTING:
        raise ContentError(
            "the results file nests arrays and objects too deeply",
            where=str(path),
            expected=f"at most {MAX_NESTING} levels (the format has 5)",
            fix="rerun the experiment",
        )
    check = _Checker(path)
    check.that(isinstance(doc, dict), "the document", doc, "a JSON object")
    check.that(
        doc.get("format") == RESULTS_FORMAT, "format", doc.get("format"), f"{RESULTS_FORMAT}"
    )
    pairs = doc.get("pairs")
    check.that(isinstance(pairs, list) and pairs, "pairs", pairs, "a non-empty list of pairs")
    for i, pair in enumerate(pairs):
        key = f"pairs[{i}]"
        check.that(isinstance(pair, dict), key, pair, "an object")
        for name in ("source", "target", "icon"):
            check.that(
                isinstance(pair.get(name), str) and pair[name],
                f"{key}.{name}",
                pair.get(name),
                "a non-empty string",
            )
        for name in ("images_correct_before", "n_patches"):
            value = pair.get(name)
            check.that(_count(value), f"{key}.{name}", value, "an integer >= 0")
        for name in RATES:
            check.that(
                _fraction(pair.get(name)), f"{key}.{name}", pair.get(name), "a fraction in [0, 1]"
            )
        check.image(pair["icon"], f"{key}.icon")
        examples = pair.get("examples", [])
        check.that(isinstance(examples, list), f"{key}.examples", examples, "a list")
        for j, example in enumerate(examples):
            at = f"{key}.examples[{j}]"
            check.that(
                isinstance(example, dict) and isinstance(example.get("image"), str),
                at,
                example,
                "{image, before, after}",
            )
            check.image(example["image"], f"{at}.image")
            for when in ("before", "after"):
                top = example.get(when)
                check.that(
                    _top_list(top), f"{at}.{when}", top, "a list of [class name, probability]"
                )
    return doc


class _Checker:
    def __init__(self, path: Path) -> None:
        self.path = path

    def that(self, ok: Any, key: str, got: Any, expected: str) -> None:
        if not ok:
            raise ContentError(
                f"the patch results are malformed at {key}",
                where=f"{self.path} ({key})",
                expected=expected,
                got=shown_value(got),
                fix="rerun the patch experiment, or correct the file (format: generator/site/blocks/patch_results_block.py)",
            )

    def image(self, rel: str, key: str) -> None:
        folder = self.path.parent.resolve()
        target = folder / rel
        inside = is_relative(rel) and within(target, folder)  # the site's one confinement rule
        self.that(inside and target.is_file(), key, rel, f"an image file inside {folder}")


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _fraction(value: Any) -> bool:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return ok and math.isfinite(value) and 0 <= value <= 1


def _top_list(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, list)
        and len(item) == 2
        and isinstance(item[0], str)
        and _fraction(item[1])
        for item in value
    )
