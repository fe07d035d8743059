"""Data sets by name: ``[datasets.<name>]`` tables of atlas.toml, and two built-in names.

A table says what kind of source a name stands for and its options::

    [datasets.imagenet]
    folder = "~/data/imagenet/train"    # an image folder (flat or class subfolders)
    resize = "stretch"                  # or "center-crop"

    [datasets.nette]
    kind = "imagenette"                 # torchvision's Imagenette, downloaded when online
    root = "~/data"                     # default: <cache>/datasets
    size = "320px"                      # full | 320px | 160px

    [datasets.synthetic]                # the built-in demo world, with other options
    size = 96
    seed = 1

``synthetic`` and ``imagenette`` work without a table. :func:`dataset_spec` validates a table
(every problem names the key, the value and what was expected); :func:`open_dataset` turns a
spec or a name into an :class:`ImageSource`. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.cache import CacheLayout
from generator.data.base import ImageSource
from generator.errors import ConfigError, unknown_name

KINDS = ("folder", "imagenette", "synthetic")
RESIZE_MODES = ("stretch", "center-crop")  # same as loader.RESIZE_MODES (no torch import here)

#: Keys each kind accepts (besides "kind" and "resize"), with their defaults.
_OPTIONS: dict[str, dict[str, Any]] = {
    "folder": {"folder": None, "labels": "auto", "max_pixels": 89_478_485},
    "imagenette": {"root": None, "split": "train", "size": "320px", "download": True},
    "synthetic": {"seed": 0, "size": 64, "count": 1_000_000},
}

#: Names usable without a table, and the kind they stand for.
BUILTINS = {"synthetic": "synthetic", "imagenette": "imagenette"}

#: Allowed values of string options.
_CHOICES = {
    "labels": ("auto", "folders", "none"),
    "split": ("train", "val"),
    "resize": RESIZE_MODES,
}


@dataclass(frozen=True)
class DatasetSpec:
    """A validated data set declaration.

    Attributes:
        name: the name atlas specs use (``dataset = "imagenet"``).
        kind: "folder", "imagenette" or "synthetic".
        resize: how images are fitted to the model's input, "stretch" or "center-crop".
        options: the kind's options, defaults filled in (see the module docstring).
    """

    name: str
    kind: str
    resize: str = "stretch"
    options: dict[str, Any] = field(default_factory=dict)


def _where(name: str, key: str | None = None) -> str:
    return f"atlas.toml [datasets.{name}]" + (f" {key}" if key else "")


def _check_value(name: str, kind: str, key: str, value: Any) -> Any:
    """``value`` if it fits ``key`` of ``kind``, else a :class:`ConfigError`."""
    default = _OPTIONS[kind].get(key, "stretch")
    if key == "size" and kind == "imagenette":
        ok, expected = value in ("full", "320px", "160px"), '"full", "320px" or "160px"'
    elif key in _CHOICES:
        ok, expected = value in _CHOICES[key], " | ".join(f'"{c}"' for c in _CHOICES[key])
    elif isinstance(default, bool):
        ok, expected = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        lowest = 0 if key == "seed" else (8 if key == "size" else 1)
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= lowest
        expected = f"an integer >= {lowest}"
    else:  # paths
        ok, expected = isinstance(value, str) and value.strip() != "", "a path (a string)"
    if not ok:
        raise ConfigError(
            f"invalid value for {key!r}",
            where=_where(name, key),
            expected=expected,
            got=repr(value),
            fix=f"set {key} to {expected}",
        )
    return value


def dataset_spec(name: str, table: dict[str, Any] | None = None) -> DatasetSpec:
    """Validate ``[datasets.<name>]`` (``table``; None for a built-in name with no table)."""
    table = dict(table or {})
    kind = table.pop("kind", None)
    if kind is None:
        kind = "folder" if "folder" in table else BUILTINS.get(name)
    if kind is None:
        raise ConfigError(
            "a data set needs a folder or a kind",
            where=_where(name),
            expected=f'folder = "path/to/images", or kind = one of {", ".join(KINDS)}',
            got=f"keys {sorted(table)}" if table else "an empty table",
            fix=f'add folder = "..." to [datasets.{name}]',
        )
    if kind not in KINDS:
        raise ConfigError(
            f"unknown data set kind {kind!r}",
            where=_where(name, "kind"),
            expected=" | ".join(f'"{k}"' for k in KINDS),
            got=repr(kind),
        )
    resize = _check_value(name, kind, "resize", table.pop("resize", "stretch"))
    allowed = _OPTIONS[kind]
    for key in table:
        if key not in allowed:
            err = unknown_name(
                f"key for a {kind} data set", key, [*allowed, "kind", "resize"], where=_where(name)
            )
            raise ConfigError(
                err.what, where=err.where, expected=err.expected, got=err.got, fix=err.fix
            )
    options = {
        k: _check_value(name, kind, k, table[k]) if k in table else d for k, d in allowed.items()
    }
    if kind == "folder" and options["folder"] is None:
        raise ConfigError(
            "a folder data set needs its folder",
            where=_where(name, "folder"),
            expected='folder = "path/to/images"',
            got="nothing",
        )
    return DatasetSpec(name=name, kind=kind, resize=resize, options=options)


def open_dataset(
    spec_or_name: DatasetSpec | str,
    *,
    tables: dict[str, Any],
    cache_dir: Path,
    base_dir: Path | None = None,
) -> ImageSource:
    """The source a spec (or a name, looked up in ``tables`` = atlas.toml's ``[datasets]``) names.

    Relative folder and root paths are taken from ``base_dir`` (atlas.toml's folder; default:
    the working directory). Imagenette without a ``root`` lives in ``<cache_dir>/datasets``.
    """
    if isinstance(spec_or_name, DatasetSpec):
        spec = spec_or_name
    else:
        name = spec_or_name
        if name not in tables and name not in BUILTINS:
            raise unknown_name(
                "data set",
                name,
                sorted({*tables, *BUILTINS}),
                fix=f'add a [datasets.{name}] table with folder = "..." to atlas.toml',
            )
        spec = dataset_spec(name, tables.get(name))
    opts = spec.options

    def resolve(path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() or base_dir is None else base_dir / p

    if spec.kind == "folder":
        from generator.data.folder import FolderSource

        return FolderSource(
            resolve(opts["folder"]),
            labels=opts["labels"],
            max_pixels=opts["max_pixels"],
            name=spec.name,
        )
    if spec.kind == "imagenette":
        from generator.data.imagenette import open_imagenette

        root = resolve(opts["root"]) if opts["root"] else CacheLayout(Path(cache_dir)).datasets()
        return open_imagenette(
            root, split=opts["split"], size=opts["size"], download=opts["download"]
        )
    from generator.data.synthetic import SyntheticWorld

    return SyntheticWorld(seed=opts["seed"], size=opts["size"], count=opts["count"])
