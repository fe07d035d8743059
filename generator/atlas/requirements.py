"""What a set of computed atlases and experiments needs from the machine, and what it lacks.

When computing a publication fails with a :class:`~generator.errors.SetupError` (weights not
found, an image folder missing), :func:`missing_requirements` checks every model and data set
the publication names, so the build can say everything that is missing at once rather than
one thing per run. Checks are cheap: a model's weights are looked for (never downloaded,
never loaded); a data set is opened (an image folder is listed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from generator.errors import AtlasError, SetupError

if TYPE_CHECKING:
    from generator.config import Config

#: Model kinds whose weights are files looked up by name (user entry points load their own).
_FILE_WEIGHTS = ("inceptionv1", "googlenet", "torchvision", "demo")


@dataclass(frozen=True)
class Missing:
    """One thing the machine lacks: ``subject`` ("model inceptionv1", "data set imagenet")
    and the error saying what, where and how to get it."""

    subject: str
    error: AtlasError

    def line(self) -> str:
        """``subject: what`` (no local paths: safe to publish)."""
        return f"{self.subject}: {self.error.what}"


def missing_requirements(
    models: Iterable[str], datasets: Iterable[str], *, config: Config
) -> list[Missing]:
    """The models (weights) and data sets of these names that cannot be had here, in order.

    ``config`` is the project's :class:`generator.config.Config` (``models``, ``datasets``,
    ``root``, ``paths.cache``).
    """
    from generator.data.registry import open_dataset
    from generator.freeze.resolve import COMPUTE_FIX, compute_engine_missing

    found: list[Missing] = []
    lacking = compute_engine_missing()
    if lacking and models:
        what = f"the compute engine is not installed ({lacking} missing)"
        found.append(Missing("compute engine", SetupError(what, fix=COMPUTE_FIX)))
        models = ()  # their weights are looked for by the compute engine
    else:
        from generator.models.model_spec import RANDOM_WEIGHTS, resolve_spec
        from generator.models.registry import locate_weights
    for name in dict.fromkeys(models):
        try:
            spec = resolve_spec(name, dict(config.models), base_dir=config.root)
            if spec.kind in _FILE_WEIGHTS and spec.weights != RANDOM_WEIGHTS:
                locate_weights(spec, download_missing=False)
        except SetupError as err:
            found.append(Missing(f"model {name}", err))
    for name in dict.fromkeys(datasets):
        try:
            open_dataset(
                name,
                tables=dict(config.datasets),
                cache_dir=config.paths.cache,
                base_dir=config.root,
            )
        except SetupError as err:
            found.append(Missing(f"data set {name}", err))
    return found


def requirements_error(
    publication: str, where: str, missing: list[Missing], first: SetupError
) -> SetupError:
    """One :class:`SetupError` naming everything ``publication`` lacks: ``first``, the error
    that stopped the computation (the atlas or experiment, its file:line, and how to freeze
    it), then what the checks found."""
    if not missing:
        missing = [Missing("setup", first)]
    lines = [f"  {first.what}"] if missing[0].error is not first else []
    if lines and first.where:
        lines.append(f"      where: {first.where}")
    if lines and first.fix:
        lines.append(f"      fix: {first.fix}")
    for item in missing:
        lines.append(f"  - {item.subject}: {item.error.what}")
        for label, value in (
            ("where", item.error.where),
            ("expected", item.error.expected),
            ("fix", item.error.fix),
        ):
            if value:
                lines.append(f"      {label}: {value}")
    return SetupError(
        f"publication {publication!r} cannot be computed on this machine "
        f"({len(missing)} missing):\n" + "\n".join(lines),
        where=where,
        fix="provide what is listed (the publication folder may say how), or build without"
        " --strict to leave the publication out",
    )
