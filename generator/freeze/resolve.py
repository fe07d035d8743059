"""Where a build takes a computed result from: the cache, then the frozen folder, then computing.

Where the compute engine runs (torch installed, weights and data at hand), the result's full
key decides (:func:`generator.atlas.bundle_stage.compute_bundle`,
:func:`generator.experiments.run.run_experiment`): the cache folder of that key, else a frozen
entry computed under the same key (copied into the cache, every file checked), else computing
it -- saying so when a frozen entry exists but is stale.

Where it cannot (:func:`compute_engine_missing`, or a :class:`~generator.errors.SetupError`
such as missing weights; :meth:`Results.resolve` tries), :meth:`Results.without_compute`
decides by recipe
(:mod:`generator.freeze.recipe`):

1. a frozen entry of the same recipe: its cache folder, or the entry copied into the cache;
2. a result this cache computed for the same recipe (the recipe index, ``<cache>/recipe/``);
3. a stale frozen entry: published with a warning naming what changed (``--strict``: error);
4. nothing: a :class:`SetupError` naming the result, its file:line, what is missing and the
   fix, which leaves the publication out (or fails a strict build).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from generator import seal
from generator.cache import CacheLayout, atomic_write_json
from generator.errors import ContentError, SetupError
from generator.freeze.compare import changes, plain
from generator.freeze.store import FrozenEntry
from generator.keys import recipe_key

#: The packages the compute engine cannot run without.
COMPUTE_PACKAGES = ("torch", "torchvision")

COMPUTE_FIX = "install the compute extras: pip install -e '.[compute]'"


def compute_engine_missing() -> str | None:
    """None when the compute engine's packages are installed, else which are not (found
    without importing them)."""
    missing = [name for name in COMPUTE_PACKAGES if importlib.util.find_spec(name) is None]
    return ", ".join(missing) if missing else None


def no_compute_engine(where: str) -> SetupError:
    """The error of a result (declared at ``where``) that needs the compute engine, on a
    machine without it."""
    return SetupError(
        f"the compute engine is not installed ({compute_engine_missing()} missing)",
        where=where,
        fix=COMPUTE_FIX,
    )


def freeze_fix(kind: str, entry_id: str) -> str:
    """How to repair or make a frozen entry."""
    return (
        f"run `atlas freeze {entry_id}` where the {kind} was computed (a machine with the"
        " compute engine, weights and data) and commit the frozen folder"
    )


@dataclass(frozen=True)
class Wanted:
    """A computed result a build needs, as it is known before computing.

    Attributes:
        kind: ``"atlas"`` or ``"experiment"``; entry_id: its id; where: its table's file:line.
        recipe: its recipe (:mod:`generator.freeze.recipe`); frozen: its frozen entry, if any.
        frozen_at: where its frozen entry would be.
        folder_of: the cache folder of a key; marker: a file every complete result folder
            holds.
    """

    kind: str
    entry_id: str
    where: str
    recipe: dict[str, object]
    frozen: FrozenEntry | None
    frozen_at: Path
    folder_of: Callable[[str], Path]
    marker: str


class Results:
    """Computed results as a build finds them without computing (see the module doc).

    ``log`` receives warnings; ``strict`` turns a stale frozen entry into an error."""

    def __init__(self, cache: Path, *, strict: bool, log: Callable[[str], None]) -> None:
        self.layout = CacheLayout(cache)
        self.strict = strict
        self.log = log

    def remember(self, recipe: dict[str, object], folder: Path) -> None:
        """Record that ``folder`` (in the cache) holds the result of ``recipe``."""
        rel = folder.resolve().relative_to(Path(self.layout.root).resolve())
        atomic_write_json(self.layout.recipe(recipe_key(recipe)), {"folder": rel.as_posix()})

    def recalled(self, recipe: dict[str, object], marker: str) -> Path | None:
        """The cache folder recorded for ``recipe``, when it still holds ``marker``."""
        index = self.layout.recipe(recipe_key(recipe))
        try:
            rel = Path(json.loads(index.read_text())["folder"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if rel.is_absolute() or ".." in rel.parts:
            return None
        folder = Path(self.layout.root) / rel
        return folder if (folder / marker).is_file() and seal.check(folder) is None else None

    def resolve(self, wanted: Wanted, compute: Callable[[], Path]) -> Path:
        """The cache folder of a result: ``compute()``'s (cached or computed, and remembered
        by its recipe) where the compute engine is installed and the machine has what it
        needs, else as :meth:`without_compute` finds it."""
        try:
            if compute_engine_missing():
                raise no_compute_engine(wanted.where)
            folder = compute()
        except SetupError as err:
            return self.without_compute(wanted, cannot=err)
        self.remember(wanted.recipe, folder)
        return folder

    def without_compute(self, wanted: Wanted, *, cannot: SetupError) -> Path:
        """The cache folder of a result this machine cannot compute (see the module doc);
        ``cannot``: why computing is impossible here."""
        kind, entry_id, recipe, frozen = wanted.kind, wanted.entry_id, wanted.recipe, wanted.frozen
        key = recipe_key(recipe)
        if frozen is not None and frozen.recipe_key == key:
            return self._take(frozen, wanted, recipe)
        recalled = self.recalled(recipe, wanted.marker)
        if recalled is not None:
            return recalled
        if frozen is not None:
            changed = changes(frozen.recipe, recipe) or ["(the recipe's digest)"]
            shown = "; ".join(changed[:6]) + (
                f"; and {len(changed) - 6} more" if len(changed) > 6 else ""
            )
            error = SetupError(
                f"the frozen {kind} {entry_id!r} is stale (changed since it was frozen: {shown})"
                f", and this machine cannot compute it: {cannot.what}",
                where=wanted.where,
                expected=f"a frozen entry of the current spec in {frozen.folder}",
                fix=freeze_fix(kind, entry_id) + "; or build without --strict to publish the"
                " stale one",
            )
            if self.strict:
                raise error
            self.log(f"warning: publishing a stale frozen {kind}:\n{error.message()}")
            return self._take(frozen, wanted, recipe=None)
        raise SetupError(
            f"{kind} {entry_id!r} cannot be computed on this machine ({cannot.what}) and has"
            " no frozen results",
            where=wanted.where,
            expected="the compute engine with the model's weights and the data set, or a"
            f" frozen entry in {wanted.frozen_at}",
            fix=f"{COMPUTE_FIX} (and provide what is missing), or {freeze_fix(kind, entry_id)}",
        )

    def _take(self, frozen: FrozenEntry, wanted: Wanted, recipe: dict[str, object] | None) -> Path:
        """The cache folder of ``frozen``'s key, copied from the frozen folder when absent."""
        folder = wanted.folder_of(frozen.key)
        if not (folder / wanted.marker).is_file() or seal.check(folder) is not None:
            seal.discard(folder)
            take_frozen(frozen, folder, wanted.kind)
            self.log(f"{wanted.kind} {frozen.id}: taken from the frozen folder ({frozen.folder})")
        if recipe is not None:
            self.remember(recipe, folder)
        return folder


def take_frozen(frozen: FrozenEntry, folder: Path, kind: str) -> None:
    """Copy a frozen entry into its cache folder, every file checked (a damaged one is an
    error naming it; nothing reaches the cache), and seal it as every cache entry is."""
    try:
        frozen.copy_into(folder, fix=freeze_fix(kind, frozen.id))
    except ContentError as err:
        err.fix = (
            f"restore the file (git checkout -- {err.where}), or {freeze_fix(kind, frozen.id)}"
        )
        err.args = (err.message(),)
        raise
    seal.seal(folder)


def stale_message(kind: str, entry_id: str, frozen: FrozenEntry, inputs: object) -> str:
    """What a machine that can compute says before recomputing a stale frozen entry."""
    changed = changes(frozen.inputs, plain(inputs)) if frozen.inputs is not None else []
    shown = "; ".join(changed[:6]) if changed else "its key (model weights, data or settings)"
    return (
        f"{kind} {entry_id}: the frozen entry ({frozen.folder}) is stale (changed: {shown});"
        f" recomputing -- `atlas freeze {entry_id}` refreshes it"
    )
