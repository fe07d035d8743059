"""Which model an atlas uses, and where its weights are: parsed and validated without torch.

A model is named by an atlas spec's ``model = "..."`` and, optionally, configured by an
``atlas.toml`` table ``[models.<name>]``:

* built in: ``inceptionv1`` (Lucid's, the article's), ``googlenet`` (torchvision's
  IMAGENET1K_V1), ``demo`` (the small committed model), ``torchvision:<architecture>``;
* ``[models.<name>] torchvision = "resnet50"`` with ``layers = {"layer3" = "layer3"}``;
* ``[models.<name>] entry = "package.module:function"`` with ``options = {...}`` (a user's own
  model; see :mod:`generator.models.hooked`).

Keys of a table: ``weights`` (a file; ``"random"`` for seeded random weights; for torchvision
models also a weights name such as ``"IMAGENET1K_V2"``), ``model`` (the built-in it
configures), ``torchvision``, ``layers``, ``input_size``, ``labels`` (a file, one class name
per line), ``entry``, ``options``. Paths are relative to the folder holding ``atlas.toml``.

Weights of ``inceptionv1`` are looked up in this order: an explicit path, ``[models.inceptionv1]
weights``, ``$ATLAS_WEIGHTS_DIR/inception5h.pth``, ``$TORCH_HOME/hub/checkpoints/
inception5h.pth`` (``TORCH_HOME`` defaults to ``$XDG_CACHE_HOME/torch`` or ``~/.cache/torch``,
as in torch.hub). torchvision weights follow the same order with their own file names.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.errors import ConfigError, WeightsError, closest, unknown_name

#: The models every project has, with a one-line description.
BUILTINS: dict[str, str] = {
    "inceptionv1": "Lucid's InceptionV1 (inception5h), the article's network",
    "googlenet": "torchvision's GoogLeNet (InceptionV1), IMAGENET1K_V1 weights",
    "demo": "the small demo InceptionV1 (width 0.25, 64 px), trained by `atlas train-demo`",
}

#: Prefix of built-in names for any torchvision classifier (``torchvision:resnet50``).
TORCHVISION_PREFIX = "torchvision:"

#: ``weights`` value that asks for seeded random weights (benchmarks, tests).
RANDOM_WEIGHTS = "random"

#: Keys each kind of model table accepts.
ALLOWED_KEYS: dict[str, tuple[str, ...]] = {
    "inceptionv1": ("model", "weights"),
    "googlenet": ("model", "weights"),
    "demo": ("model", "weights"),
    "torchvision": ("torchvision", "weights", "layers", "input_size", "labels"),
    "entry": ("entry", "options"),
}

_ENTRY = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")
_ARCH = re.compile(r"^[a-z][a-z0-9_]*$")
_WEIGHTS_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


@dataclass(frozen=True)
class WeightSource:
    """Where a model's published weights come from.

    Attributes:
        url: the download address.
        filename: the file's name in a weights folder (torch.hub's convention).
        sha256: the full hex digest, when pinned here.
        sha256_prefix: the digest's prefix carried in torchvision file names
            (``googlenet-1378be20.pth``), checked as torch.hub does.
        note: what else is checked, shown by ``atlas weights fetch``.
    """

    url: str
    filename: str
    sha256: str | None = None
    sha256_prefix: str | None = None
    note: str = ""


#: Lucid's InceptionV1 as a PyTorch state_dict, published with the PyTorch ports (the
#: address torch-lucent uses). Its sha256 is not pinned here because it could not be verified
#: from this workplace; when a person pins it (``sha256=...``) every fetch checks it. Until
#: then a fetched file is accepted only if its keys and shapes are exactly Lucid's.
LUCID_SOURCE = WeightSource(
    url="https://github.com/ProGamerGov/pytorch-old-tensorflow-models/raw/master/inception5h.pth",
    filename="inception5h.pth",
    note="checksum not pinned; keys and shapes are checked against the architecture",
)

#: torchvision's GoogLeNet IMAGENET1K_V1 (``GoogLeNet_Weights.IMAGENET1K_V1.url``, 49.7 MB).
GOOGLENET_SOURCE = WeightSource(
    url="https://download.pytorch.org/models/googlenet-1378be20.pth",
    filename="googlenet-1378be20.pth",
    sha256_prefix="1378be20",
)

#: Committed weights of the demo model (package data).
DEMO_WEIGHTS = Path(__file__).resolve().parent / "weights" / "demo.pt"


@dataclass(frozen=True)
class ModelSpec:
    """A model to load, validated.

    Attributes:
        name: the name atlas specs use (``inceptionv1``, ``torchvision:resnet50``, ``mine``).
        kind: ``inceptionv1 | googlenet | demo | torchvision | entry``.
        weights: a resolved file path, ``"random"``, a torchvision weights name, or None
            (look in the default places).
        arch: the torchvision architecture (kind ``torchvision``).
        entry: ``"package.module:function"`` (kind ``entry``).
        layers: layer name -> submodule path (kind ``torchvision``; empty: the defaults).
        options: keyword arguments for the entry point.
        input_size: overrides the default input side (kind ``torchvision``).
        labels: a label file (kind ``torchvision``).
        where: where the spec came from, for messages.
    """

    name: str
    kind: str
    weights: str | None = None
    arch: str | None = None
    entry: str | None = None
    layers: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    input_size: int | None = None
    labels: str | None = None
    where: str = "built-in"

    @property
    def weights_is_file(self) -> bool:
        """True when ``weights`` names a file (not "random" or a torchvision weights name)."""
        return self.weights not in (None, RANDOM_WEIGHTS) and self.weights_name is None

    @property
    def weights_name(self) -> str | None:
        """A torchvision weights name (``"IMAGENET1K_V2"``, ``"DEFAULT"``) or None."""
        w = self.weights
        return (
            w if w is not None and _WEIGHTS_NAME.match(w) and self.kind == "torchvision" else None
        )


def _bad(where: str, key: str, value: Any, expected: str, fix: str | None = None) -> ConfigError:
    return ConfigError(
        f"invalid value for {key}",
        where=f"{where} {key}",
        expected=expected,
        got=repr(value),
        fix=fix,
        exit_code=2,
    )


def _path(value: str, base_dir: Path | None) -> str:
    path = Path(value).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return str(path)


def parse_model_spec(
    name: str,
    table: Mapping[str, Any] | None = None,
    *,
    base_dir: str | Path | None = None,
    where: str | None = None,
) -> ModelSpec:
    """Validate a model name and its ``[models.<name>]`` table (None: a built-in name alone).

    Raises a :class:`ConfigError` (exit 2) naming the key, the value and what was expected.
    """
    table = dict(table or {})
    where = where or f"[models.{name}]"
    base = Path(base_dir) if base_dir is not None else None
    if "entry" in table:
        kind = "entry"
    elif "torchvision" in table or name.startswith(TORCHVISION_PREFIX):
        kind = "torchvision"
    elif "model" in table:
        kind = table["model"]
        if kind not in BUILTINS:
            raise _bad(where, "model", kind, "one of " + ", ".join(BUILTINS))
    elif name in BUILTINS:
        kind = name
    elif table:
        raise ConfigError(
            f"model {name!r} is not built in, so its table must say what it is",
            where=where,
            expected='entry = "package.module:function", torchvision = "<architecture>"'
            ' or model = "inceptionv1" | "googlenet" | "demo"',
            exit_code=2,
        )
    else:
        raise unknown_name(
            "model",
            name,
            [*BUILTINS, "torchvision:<architecture>"],
            fix=f"use a built-in name, or define [models.{name}] in atlas.toml"
            ' (entry = "package.module:function" or torchvision = "<architecture>")',
        )
    allowed = ALLOWED_KEYS[kind]
    for key in table:
        if key not in allowed:
            guess = closest(key, allowed)
            raise ConfigError(
                f"unknown key {key!r} for a {kind} model"
                + (f" (did you mean {guess!r}?)" if guess else ""),
                where=f"{where} {key}",
                expected="one of " + ", ".join(allowed),
                got=repr(key),
                exit_code=2,
            )
    spec: dict[str, Any] = {"name": name, "kind": kind, "where": where}

    weights = table.get("weights")
    if weights is not None:
        if not isinstance(weights, str) or not weights.strip():
            raise _bad(where, "weights", weights, 'a file path or "random"')
        is_name = kind == "torchvision" and _WEIGHTS_NAME.match(weights)
        spec["weights"] = weights if is_name or weights == RANDOM_WEIGHTS else _path(weights, base)

    if kind == "entry":
        entry = table["entry"]
        if not isinstance(entry, str) or not _ENTRY.match(entry):
            raise _bad(where, "entry", entry, '"package.module:function"')
        spec["entry"] = entry
        options = table.get("options", {})
        if not isinstance(options, Mapping):
            raise _bad(where, "options", options, "a table of keyword arguments")
        spec["options"] = dict(options)
    if kind == "torchvision":
        arch = table.get("torchvision", name.removeprefix(TORCHVISION_PREFIX))
        if not isinstance(arch, str) or not _ARCH.match(arch):
            raise _bad(where, "torchvision", arch, "a torchvision model name such as resnet50")
        spec["arch"] = arch
        layers = table.get("layers", {})
        if not isinstance(layers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) and k and v for k, v in layers.items()
        ):
            raise _bad(where, "layers", layers, 'a table of layer name = "module.path"')
        spec["layers"] = dict(layers)
        size = table.get("input_size")
        if size is not None and (
            isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= 4096
        ):
            raise _bad(where, "input_size", size, "an integer in [16, 4096]")
        spec["input_size"] = size
        labels = table.get("labels")
        if labels is not None:
            if not isinstance(labels, str) or not labels.strip():
                raise _bad(where, "labels", labels, "a text file with one class name per line")
            spec["labels"] = _path(labels, base)
    return ModelSpec(**spec)


def model_specs(
    tables: Mapping[str, Mapping[str, Any]] | None = None, *, base_dir: str | Path | None = None
) -> dict[str, ModelSpec]:
    """Every model a project can name: the built-ins, then its ``[models.*]`` tables."""
    tables = tables or {}
    specs = {name: parse_model_spec(name) for name in BUILTINS if name not in tables}
    for name, table in tables.items():
        specs[name] = parse_model_spec(name, table, base_dir=base_dir)
    return specs


def resolve_spec(
    name: str,
    tables: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    base_dir: str | Path | None = None,
) -> ModelSpec:
    """The spec of model ``name``: its table in ``tables`` if any, else a built-in name."""
    table = (tables or {}).get(name)
    return parse_model_spec(name, table, base_dir=base_dir)


# -- where weights live -----------------------------------------------------------------------


def torch_home() -> Path:
    """``$TORCH_HOME``, else ``$XDG_CACHE_HOME/torch``, else ``~/.cache/torch`` (torch.hub's rule)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "torch"
    return Path(os.environ.get("TORCH_HOME", str(default))).expanduser()


def hub_checkpoints() -> Path:
    """The folder torch.hub and torchvision download weights to."""
    return torch_home() / "hub" / "checkpoints"


def weights_dirs() -> list[tuple[Path, str]]:
    """Folders searched for weight files by name, each with its reason: ``$ATLAS_WEIGHTS_DIR``
    (when set), then torch.hub's checkpoints folder."""
    dirs = []
    if os.environ.get("ATLAS_WEIGHTS_DIR"):
        dirs.append((Path(os.environ["ATLAS_WEIGHTS_DIR"]).expanduser(), "$ATLAS_WEIGHTS_DIR"))
    dirs.append((hub_checkpoints(), "$TORCH_HOME/hub/checkpoints"))
    return dirs


def default_places(filename: str) -> list[tuple[Path, str]]:
    """``filename`` in each of :func:`weights_dirs`, with the reason it is looked at."""
    return [(folder / filename, why) for folder, why in weights_dirs()]


def fetch_destination(filename: str) -> Path:
    """Where ``atlas weights fetch`` writes: ``$ATLAS_WEIGHTS_DIR`` if set, else torch.hub's."""
    return weights_dirs()[0][0] / filename


@dataclass(frozen=True)
class WeightsLookup:
    """The outcome of looking for a weights file.

    Attributes:
        found: the file to load, or None.
        looked: every path considered, in order, with the reason it was considered.
    """

    found: Path | None
    looked: tuple[tuple[Path, str], ...]

    def describe(self) -> str:
        return "; ".join(f"{path} ({why})" for path, why in self.looked)


def find_weights(
    spec: ModelSpec,
    places: list[tuple[Path, str]],
    explicit: str | Path | None = None,
) -> WeightsLookup:
    """Look for ``spec``'s weights: ``explicit``, else the spec's ``weights`` file, else the
    first existing file of ``places`` (see :func:`default_places`). A file named explicitly or
    in the spec must exist (a :class:`WeightsError` otherwise); when only ``places`` are
    searched, ``found`` may be None.
    """
    named: tuple[Path, str] | None = None
    if explicit is not None:
        named = (Path(explicit).expanduser(), "given explicitly")
    elif spec.weights_is_file:
        named = (Path(str(spec.weights)), f"{spec.where} weights")
    if named is not None:
        path, why = named
        if not path.is_file():
            raise WeightsError(
                f"weights file for model {spec.name!r} not found",
                where=f"{path} ({why})",
                expected="an existing weights file",
                fix=f"fix the path, or run `atlas weights fetch {spec.name}`",
            )
        return WeightsLookup(path, (named,))
    for i, (path, _) in enumerate(places):
        if path.is_file():
            return WeightsLookup(path, tuple(places[: i + 1]))
    return WeightsLookup(None, tuple(places))
