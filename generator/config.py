"""``atlas.toml``: a declarative, typed schema and the validation that reports every problem.

The schema is data (:data:`SCHEMA`): one :class:`Key` per setting, grouped by table. Loading
checks every key against it and collects *all* problems before failing, each reported with its
key, the value found, and what was expected. Unknown keys and tables are warnings (listed in
:attr:`Config.warnings`); ``atlas build --strict`` turns warnings into a failure.

``[compute]`` is typed like the rest (:class:`ComputeConfig`). The ``[models.<name>]`` and
``[datasets.<name>]`` tables belong to the compute half's registries: they are checked only
loosely here (right shapes) and passed through raw.

Paths are relative to the folder holding ``atlas.toml``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator.checks import choice, integer, number, string, text
from generator.errors import ConfigError, closest, excerpt, shown, where_at
from generator.textfiles import load_toml

if TYPE_CHECKING:
    from generator.tiles import TileSettings

#: The file name looked for in the working folder and its parents.
CONFIG_NAME = "atlas.toml"

#: GitHub Pages' published-site limit (1 GB) and a file count well below its practical limits.
DEFAULT_MAX_BYTES = 1_000_000_000
DEFAULT_MAX_FILES = 200_000
#: The build warns when the site passes this fraction of ``max_bytes`` (room to grow, not a limit).
DEFAULT_WARN_FRACTION = 0.75
#: GitHub refuses files over 100 MiB in a pushed branch (the gh-pages branch included); 100 MB
#: keeps a margin below it.
DEFAULT_MAX_FILE_BYTES = 100_000_000


@dataclass(frozen=True)
class Key:
    """One setting of the schema.

    Attributes:
        name: the key inside its table.
        check: returns the value converted, or raises ``ValueError(expectation)``.
        default: the value used when the key is absent (ignored when ``required``).
        doc: one line for humans (shown by error messages and the scaffold).
        required: whether a missing key is an error.
    """

    name: str
    check: Callable[[Any], Any]
    default: Any
    doc: str
    required: bool = False


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("a list of strings")
    return tuple(value)


def _url(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", value):
        raise ValueError('an absolute http(s) URL, e.g. "https://user.github.io/repo/"')
    return value if value.endswith("/") else value + "/"


def _folder(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise ValueError("a folder path (relative to atlas.toml)")
    return value


def _device(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", value):
        raise ValueError('"auto", "cpu", "cuda", "cuda:N" or "mps"')
    return value


def _cluster(value: Any) -> str:
    """``[compute] cluster``: see :mod:`generator.cluster.session`."""
    if not isinstance(value, str) or not re.fullmatch(
        r"none|local|auto|(ray://)?[A-Za-z0-9_.\-]+:\d{1,5}", value
    ):
        raise ValueError('"none", "local", "auto" or a Ray address ("ray://host:10001")')
    return value


#: The schema of ``atlas.toml``: table -> keys. Tile defaults: 254 px + 1 px overlap makes
#: 256 px tiles, the Deep Zoom convention; JPEG quality 85 keeps icons crisp at ~1/3 the bytes.
SCHEMA: dict[str, tuple[Key, ...]] = {
    "site": (
        Key("title", text, None, "the site's title", required=True),
        Key("description", string, "", "one sentence shown on the index page and in the feed"),
        Key("authors", _strings, (), "default authors of articles"),
        Key("site_url", _url, None, "absolute URL of the published site", required=True),
        Key("language", text, "en", "the pages' language (html lang)"),
    ),
    "paths": (
        Key("content", _folder, "content", "folder of publications"),
        Key("output", _folder, "site", "folder the site is built into"),
        Key("templates", _folder, "overrides", "folder whose templates override the defaults"),
        Key("cache", _folder, ".atlas-cache", "folder for cached pyramids and build state"),
        Key("freeze", _folder, "_freeze", "folder of frozen results (`atlas freeze`), committed"),
    ),
    "tiles": (
        Key("tile_size", integer(64, 4096), 254, "tile side in px (without overlap)"),
        Key("overlap", integer(0, 16), 1, "tile overlap in px"),
        Key("format", choice("jpg", "webp", "png"), "jpg", "tile image format"),
        Key("quality", integer(1, 100), 85, "JPEG/WebP quality"),
    ),
    "budget": (
        Key("max_bytes", integer(1, 1 << 50), DEFAULT_MAX_BYTES, "largest site in bytes"),
        Key("max_files", integer(1, 1 << 40), DEFAULT_MAX_FILES, "most files in the site"),
        Key(
            "warn_fraction",
            number(0, 1),
            DEFAULT_WARN_FRACTION,
            "warn when the site passes this fraction of max_bytes",
        ),
        Key(
            "max_file_bytes",
            integer(1, 1 << 50),
            DEFAULT_MAX_FILE_BYTES,
            "largest single file in bytes",
        ),
    ),
    "compute": (
        Key("device", _device, "auto", "where atlases are computed (auto: CUDA when available)"),
        Key(
            "threads",
            integer(1, 4096),
            None,
            "CPU threads of torch and the OpenMP/BLAS pools (absent: torch's own choice)",
        ),
        Key("batch_size", integer(1, 1 << 20), None, "images per batch when collecting"),
        Key("workers", integer(0, 1024), None, "image-loading worker processes"),
        Key(
            "cluster",
            _cluster,
            "none",
            "collection, icons, examples and patch experiments on Ray: none | local | auto | "
            "a Ray address",
        ),
        Key(
            "cluster_workers",
            integer(1, 4096),
            None,
            "Ray workers (absent: one per GPU, or one per CPU core)",
        ),
    ),
}

#: Tables owned by the compute half's registries: checked loosely, passed through raw.
PASSTHROUGH = ("models", "datasets")


@dataclass(frozen=True)
class SiteConfig:
    """``[site]``: what readers see about the site as a whole."""

    title: str
    description: str
    authors: tuple[str, ...]
    site_url: str
    language: str


@dataclass(frozen=True)
class PathsConfig:
    """``[paths]``, resolved to absolute paths."""

    content: Path
    output: Path
    templates: Path
    cache: Path
    freeze: Path


@dataclass(frozen=True)
class TilesConfig:
    """``[tiles]``: how atlas images are cut into Deep Zoom pyramids."""

    tile_size: int
    overlap: int
    format: str
    quality: int


@dataclass(frozen=True)
class BudgetConfig:
    """``[budget]``: the build fails when the site grows beyond these, and warns when it
    passes ``warn_fraction`` of ``max_bytes``."""

    max_bytes: int
    max_files: int
    warn_fraction: float
    max_file_bytes: int


@dataclass(frozen=True)
class ComputeConfig:
    """``[compute]``: where and with what the compute stages run (None: the stage's default)."""

    device: str = "auto"
    threads: int | None = None
    batch_size: int | None = None
    workers: int | None = None
    cluster: str = "none"
    cluster_workers: int | None = None


@dataclass(frozen=True)
class Config:
    """A validated ``atlas.toml``.

    Attributes:
        root: the project folder (holding ``atlas.toml``); relative paths start here.
        path: the config file.
        compute: ``[compute]``, typed.
        models, datasets: the model and data-set registries' raw tables (loosely checked).
        warnings: unknown keys and tables, one message each (``--strict`` fails on them).
        raw: the whole parsed file, for digests.
    """

    root: Path
    path: Path
    site: SiteConfig
    paths: PathsConfig
    tiles: TilesConfig
    budget: BudgetConfig
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)

    def tile_settings(self) -> TileSettings:
        """The :class:`generator.tiles.TileSettings` of ``[tiles]``."""
        from generator.tiles import TileSettings

        t = self.tiles
        return TileSettings(
            tile_size=t.tile_size, overlap=t.overlap, format=t.format, quality=t.quality
        )


def find_config(explicit: str | Path | None = None, start: Path | None = None) -> Path:
    """The config file: ``explicit`` if given, else ``atlas.toml`` here or in a parent folder."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(
                "config file not found", where=str(path), fix="pass the path of an atlas.toml"
            )
        return path.resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder / CONFIG_NAME
    raise ConfigError(
        f"no {CONFIG_NAME} in {here} or any folder above it",
        fix="run `atlas new <publication>` to start a project here, or pass --config PATH",
    )


def key_lines(text: str) -> dict[tuple[str, str], int]:
    """Line numbers of ``key =`` lines by (table, key), and of table headers by (table, "")."""
    lines: dict[tuple[str, str], int] = {}
    table = ""
    for line_number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        header = re.match(r"\[\s*([^\]]+?)\s*\]", stripped)
        if header:
            table = header.group(1).replace('"', "")
            lines.setdefault((table, ""), line_number)
            continue
        assignment = re.match(r'"?([A-Za-z0-9_.-]+)"?\s*=', stripped)
        if assignment:
            lines.setdefault((table, assignment.group(1)), line_number)
    return lines


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate ``atlas.toml`` (found by :func:`find_config` when ``path`` is None).

    Raises a :class:`ConfigError` listing every invalid or missing key; unknown keys become
    :attr:`Config.warnings`.
    """
    file = find_config(path)
    text, raw = load_toml(file)  # size, encoding and nesting limits: generator.textfiles
    lines = key_lines(text)

    def where(table: str, key: str = "") -> str:
        line = lines.get((table, key)) or lines.get((table, ""))
        return where_at(file, line)

    problems: list[str] = []
    warnings: list[str] = []
    values: dict[str, dict[str, Any]] = {}
    for table, keys in SCHEMA.items():
        given = raw.get(table, {})
        if not isinstance(given, dict):
            problems.append(f"{where(table)}: [{table}] must be a table, got {shown(given)}")
            given = {}
        values[table] = {}
        for key in keys:
            if key.name not in given:
                if key.required:
                    problems.append(
                        f"{file}: [{table}] {key.name} is missing; expected {key.doc}"
                        f" ({_expectation(key)})"
                    )
                values[table][key.name] = key.default
                continue
            value = given[key.name]
            try:
                values[table][key.name] = key.check(value)
            except ValueError as err:
                problems.append(
                    f"{where(table, key.name)}: [{table}] {key.name} = {shown(value)};"
                    f" expected {err}"
                )
        names = [k.name for k in keys]
        for unknown in sorted(set(given) - set(names)):
            guess = closest(unknown, names)
            hint = f" (did you mean {guess!r}?)" if guess else ""
            warnings.append(
                f"{where(table, unknown)}: unknown key [{table}] {excerpt(unknown)}{hint}"
            )
    passthrough = _check_passthrough(raw, where, problems)
    known = set(SCHEMA) | set(PASSTHROUGH)
    for unknown in sorted(set(raw) - known):
        guess = closest(unknown, known)
        hint = f" (did you mean [{guess}]?)" if guess else ""
        warnings.append(
            f"{where(unknown)}: unknown table [{excerpt(unknown)}]{hint}; it is ignored"
        )
    if problems:
        raise _problems_error(file, problems)
    root = file.parent
    paths = {k: (root / v).resolve() for k, v in values["paths"].items()}
    for name, folder in paths.items():
        if folder.exists() and not folder.is_dir():  # every [paths] key names a folder
            raise ConfigError(
                f"[paths] {name} names a file, not a folder",
                where=f"{file} [paths] {name}",
                expected="a folder (or a path where one can be made)",
                got=str(folder),
                fix=f"point [paths] {name} at a folder",
            )
    return Config(
        root=root,
        path=file,
        site=SiteConfig(**values["site"]),
        paths=PathsConfig(**paths),
        tiles=TilesConfig(**values["tiles"]),
        budget=BudgetConfig(**values["budget"]),
        compute=ComputeConfig(**values["compute"]),
        models=passthrough["models"],
        datasets=passthrough["datasets"],
        warnings=tuple(warnings),
        raw=raw,
    )


def _expectation(key: Key) -> str:
    try:
        key.check(object())
    except ValueError as err:
        return str(err)
    return "any value"  # pragma: no cover - every check rejects an arbitrary object


def _check_passthrough(
    raw: dict[str, Any], where: Callable[..., str], problems: list[str]
) -> dict[str, Any]:
    """Loose checks of the registries' tables; returns them raw (copied)."""
    out: dict[str, Any] = {}
    for table in PASSTHROUGH:
        given = raw.get(table, {})
        if not isinstance(given, dict):
            problems.append(f"{where(table)}: [{table}] must be a table of tables")
            given = {}
        for name, entry in given.items():
            if not isinstance(entry, dict):
                problems.append(
                    f"{where(f'{table}.{name}')}: [{table}.{name}] must be a table"
                    f" (e.g. [{table}.{name}] with keys), got {shown(entry)}"
                )
        out[table] = {n: dict(e) for n, e in given.items() if isinstance(e, dict)}
    return out


def _problems_error(file: Path, problems: list[str]) -> ConfigError:
    if len(problems) == 1:
        what = problems[0]
    else:
        what = f"{len(problems)} problems in {file}:\n" + "\n".join(f"  - {p}" for p in problems)
    return ConfigError(
        what,
        fix=f"edit {file} (every key is described in docs/ARCHITECTURE.md, 'Configuration')",
    )
