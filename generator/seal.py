"""Seals: what a cache entry held when it was written, so a damaged one is found when read.

A cache entry is a folder (``<cache>/<stage>/<key>/``) written whole and renamed into place.
:func:`seal` then records, beside it in ``<key>.seal``, every file's size, modification time and
sha256. :func:`check` compares an entry with its seal: a missing or resized file is damage; a
file whose time changed is hashed again and compared (so a file damaged in place, even at the
same size, is found; a file whose time is the same is trusted without reading it: cheap for
an unchanged build, which reads no big file). ``full=True`` hashes every file (``atlas
check``).

An entry without a seal (written before seals existed, or by a writer killed between the rename
and the seal) is checked only for readability by whoever loads it.

Published files are hard links into the cache (no second copy of every tile on disk), so
damage to the cache is damage to the live site until the next build, which finds it here,
discards the entry, recomputes it and publishes fresh files.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from generator.cache import atomic_write_json

T = TypeVar("T")

#: Version of the seal file.
SEAL_FORMAT = 1

_CHUNK = 1 << 20


def seal_path(folder: Path) -> Path:
    """Where the seal of ``folder`` is kept (beside it: nothing inside an entry changes)."""
    return folder.with_name(folder.name + ".seal")


def seal(folder: Path, at: Path | None = None) -> None:
    """Record every file of ``folder`` (size, mtime, sha256) in its seal (``at``, default
    :func:`seal_path`)."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            stat = path.stat()
            files[path.relative_to(folder).as_posix()] = [
                stat.st_size,
                stat.st_mtime_ns,
                _sha256(path),
            ]
    atomic_write_json(at or seal_path(folder), {"format": SEAL_FORMAT, "files": files}, indent=None)


def check(folder: Path, *, full: bool = False, at: Path | None = None) -> str | None:
    """What is wrong with ``folder`` against its seal (``"<file>: <what>"``), or None when it
    matches or has no seal. See the module doc for what is hashed."""
    at = at or seal_path(folder)
    try:
        doc = json.loads(at.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return f"{at.name}: unreadable"
    if not isinstance(doc, dict) or doc.get("format") != SEAL_FORMAT:
        return f"{at.name}: unknown format"
    files = doc.get("files")
    if not isinstance(files, dict):
        return f"{at.name}: damaged"
    for rel, facts in files.items():
        path = folder / rel
        try:
            size, mtime, sha = facts
            stat = path.stat()
        except FileNotFoundError:
            return f"{rel}: missing"
        except (OSError, ValueError, TypeError):
            return f"{rel}: unreadable"
        if stat.st_size != size:
            return f"{rel}: {stat.st_size:,} bytes, sealed with {size:,}"
        if (full or stat.st_mtime_ns != mtime) and _sha256(path) != sha:
            return f"{rel}: its bytes changed since it was written"
    return None


class Damaged(Exception):
    """A cache entry that does not match its seal, or that its loader cannot read; the
    message says what is wrong (at most 200 characters)."""


def read(folder: Path, load: Callable[[Path], T]) -> T:
    """``load(folder)`` when ``folder`` matches its seal (:func:`check`) and loads; else
    :class:`Damaged` with what is wrong (whatever the loader raised: any unreadable entry is
    recomputed by the caller, after :func:`discard`)."""
    from generator.errors import AtlasError

    damage = check(folder)
    if damage is None:
        try:
            return load(folder)
        except Exception as err:
            damage = err.what if isinstance(err, AtlasError) else f"{type(err).__name__}: {err}"
    raise Damaged(damage[:200])


def discard(folder: Path) -> None:
    """Remove a damaged entry and its seal (the next read recomputes it)."""
    shutil.rmtree(folder, ignore_errors=True)
    seal_path(folder).unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def unseal_orphans(stage_folder: Path) -> int:
    """Remove seals whose entry is gone (a cache entry deleted by hand); returns how many."""
    removed = 0
    if not stage_folder.is_dir():
        return 0
    for entry in stage_folder.iterdir():
        if entry.name.endswith(".seal") and not entry.with_name(entry.name[:-5]).exists():
            entry.unlink(missing_ok=True)
            removed += 1
    return removed


def audit(cache: Path) -> list[str]:
    """Check every sealed entry of the cache in full (every file hashed: ``atlas check``).

    A damaged cache entry is discarded (the next build recomputes it); a damaged published
    atlas (its seal under ``site/``, the entry a build reuses) is marked damaged so the next
    build publishes it again. Returns one line per damaged entry."""
    found = []
    for at in sorted(Path(cache).glob("*/*.seal")):
        if at.parent.name == "site":
            continue  # published atlases: their folders are in the output, checked below
        folder = at.with_name(at.name[: -len(".seal")])
        damage = check(folder, full=True) if folder.is_dir() else None
        if damage is not None:
            found.append(f"{folder}: {damage} (discarded: the next build recomputes it)")
            discard(folder)
    return found


def audit_published(folder: Path, at: Path) -> str | None:
    """Check a published atlas folder in full against its seal ``at``; when damaged, mark the
    seal so the next build publishes it again."""
    damage = check(folder, full=True, at=at)
    if damage is not None:
        atomic_write_json(at, {"format": SEAL_FORMAT, "files": "damaged"})
    return damage


def content_digests(folder: Path, names: list[str]) -> list[tuple[str, str]]:
    """``(name, sha256)`` of each existing file ``names`` of ``folder``: from its seal when
    the file's size and time are the ones sealed (nothing read), else hashed now. Keys made
    from these are the same for the same bytes, whatever the files' times."""
    try:
        sealed = json.loads(seal_path(folder).read_text()).get("files", {})
    except (OSError, ValueError, AttributeError):
        sealed = {}
    found = []
    for name in names:
        path = folder / name
        if not path.is_file():
            continue
        stat = path.stat()
        facts = sealed.get(name) if isinstance(sealed, dict) else None
        if isinstance(facts, list) and facts[:2] == [stat.st_size, stat.st_mtime_ns]:
            found.append((name, str(facts[2])))
        else:
            found.append((name, _sha256(path)))
    return found
