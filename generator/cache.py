"""Content-hash keys and crash-safe writes, shared by every stage that caches or publishes.

A cached artifact lives under ``<cache>/<stage>/<key>/`` where ``key`` is the digest of
everything that produced it (inputs' digests, parameters, the stage's version). A writer
fills a temporary sibling folder and renames it into place at the end, so a killed process
leaves either the old artifact or none, never half of one. :class:`CacheLayout` names every
folder of the cache, in one place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Bytes read at a time when hashing files.
_CHUNK = 1 << 20


def _canonical(value: Any) -> Any:
    """A JSON-able, order-independent form of ``value`` (dicts sorted, paths as strings)."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # exact: 0.1 and 0.1000000001 must differ
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return _canonical(value.tolist())
    if value is None or isinstance(value, bool | int | str):
        return value
    raise TypeError(f"cannot hash a {type(value).__name__} as a cache key part: {value!r}")


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def digest(*parts: Any, length: int = 16) -> str:
    """A stable hex digest of JSON-able ``parts`` (dict order does not matter)."""
    text = json.dumps(_canonical(list(parts)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def file_digest(path: str | os.PathLike[str], length: int = 16) -> str:
    """The sha256 hex digest of a file's bytes (first ``length`` characters)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()[:length]


def bytes_digest(data: bytes, length: int = 16) -> str:
    """The sha256 hex digest of ``data`` (first ``length`` characters)."""
    return hashlib.sha256(data).hexdigest()[:length]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], value: Any, *, indent: int | None = 1) -> None:
    """Write ``value`` as JSON (sorted keys, so output is deterministic) atomically."""
    atomic_write_text(path, json.dumps(value, indent=indent, sort_keys=True) + "\n")


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it replaces ``final`` in one rename.

    On an exception the temporary folder is removed and ``final`` is left as it was.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; give what mkdir() would
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old: Path | None = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def clean_stale_temporaries(folder: str | os.PathLike[str]) -> int:
    """Remove ``.*.tmp`` leftovers of killed writers directly under ``folder``; return how many."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    for entry in folder.iterdir():
        if entry.name.startswith(".") and (entry.name.endswith(".tmp") or ".old-" in entry.name):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
    return removed


@dataclass(frozen=True)
class CacheLayout:
    """Every folder of a project's cache (``[paths] cache``), named here and nowhere else.

    ``<root>/<stage>/<key>/``: a computed artifact (``activations``, ``whitening``,
    ``layout``, ``grid`` for every ``grid-<size>``, ``icons``, ``receptive``, ``bundle``: a
    computed atlas's bundle, and ``<atlas id>-<key>`` an image atlas's); ``chunks/<key>/`` a
    collection in progress; ``render-runs/<key>/`` an icon render in progress;
    ``experiment/<key>/`` a patch experiment's results; ``tiles/<key>/`` a cut pyramid;
    ``recipe/<key>.json`` the result folder of a recipe (:mod:`generator.freeze.recipe`);
    ``site/`` the incremental build's state; ``datasets/`` downloaded data sets (Imagenette).
    """

    root: Path

    def stage(self, stage: str, key: str) -> Path:
        """A computed artifact's folder (``grid-20`` lives under ``grid/``)."""
        return Path(self.root) / stage.split("-")[0] / key

    def bundles(self) -> Path:
        """The folder of every bundle, computed (``<key>``) or cut from an image."""
        return Path(self.root) / "bundle"

    def chunks(self, run_key: str) -> Path:
        return Path(self.root) / "chunks" / run_key

    def render_run(self, key: str) -> Path:
        return Path(self.root) / "render-runs" / key

    def experiment(self, key: str) -> Path:
        return Path(self.root) / "experiment" / key

    def tiles(self) -> Path:
        return Path(self.root) / "tiles"

    def pyramid(self, key: str) -> Path:
        """A cut pyramid (:func:`generator.keys.pyramid_key`)."""
        return self.tiles() / key

    def recipe(self, recipe_key: str) -> Path:
        """Which cache folder holds the result of a recipe (:mod:`generator.freeze.recipe`):
        how a machine without the compute engine finds what it computed before."""
        return Path(self.root) / "recipe" / f"{recipe_key}.json"

    def site_state(self) -> Path:
        return Path(self.root) / "site"

    def build_state(self) -> Path:
        """The incremental build's state (:mod:`generator.site.state`)."""
        return self.site_state() / "state.json"

    def file_digests(self) -> Path:
        """Input files' digests by size and time, and the bundle each image led to
        (:class:`generator.site.atlases.FileDigests`)."""
        return self.site_state() / "digests.json"

    def datasets(self) -> Path:
        return Path(self.root) / "datasets"
