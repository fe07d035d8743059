"""The frozen folder (``[paths] freeze``, default ``_freeze/``): entries written, read, checked.

::

    _freeze/
      .gitattributes                   # Git LFS lines for files over 50 MB (a suggestion)
      atlas/<atlas id>/                # a computed atlas's bundle, without inputs.json
        freeze.json                    # the manifest
        bundle.json  level-<G>.png  cells-<G>.json  examples-<G>/  heatmap-<G>/ ...
      experiment/<publication>/<experiment id>/
        freeze.json  results.json  icons/  examples/

``freeze.json``: ``format``, ``kind`` (atlas | experiment), ``id``, ``publication``,
``recipe`` and ``recipe_key`` (:mod:`generator.freeze.recipe`), ``key`` (the cache key the
result was computed under: its cache folder's name), ``inputs`` (the parts of that key, when
the result records them), ``files`` (path -> ``{"sha256", "bytes"}``) and ``bytes``.

An entry is copied into the cache (:meth:`FrozenEntry.copy_into`) before a build uses it, each
file checked against its digest on the way: a damaged file is an error naming it, and nothing
of the entry reaches the cache or the site.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.cache import atomic_dir, atomic_write_json, atomic_write_text
from generator.errors import ConfigError, ContentError

#: Version of the manifest and the folder's layout.
FREEZE_FORMAT = 1

#: The manifest's file name in each entry.
MANIFEST = "freeze.json"

#: GitHub refuses files over 100 MB in a push.
MAX_FILE_BYTES = 100 * 1000 * 1000

#: Files over this are listed in ``.gitattributes`` as Git LFS candidates.
LFS_SUGGEST_BYTES = 50 * 1000 * 1000

#: What is never frozen: the site does not read it (a bundle's key parts are in the manifest).
NOT_FROZEN = ("inputs.json",)

_CHUNK = 1 << 20


@dataclass(frozen=True)
class FrozenEntry:
    """One entry of the frozen folder, its manifest read (not yet its files checked)."""

    folder: Path
    kind: str
    id: str
    publication: str
    recipe: dict[str, Any]
    recipe_key: str
    key: str
    inputs: dict[str, Any] | None
    files: dict[str, dict[str, Any]]

    @property
    def bytes(self) -> int:
        return sum(int(f["bytes"]) for f in self.files.values())

    def copy_into(self, dest: Path, *, fix: str) -> None:
        """Copy every file of the manifest into ``dest`` (replaced in one rename), checking each
        one's size and digest; a damaged or missing file raises a :class:`ContentError` naming
        it, and ``dest`` is left as it was. ``fix`` says how to repair the entry."""
        with atomic_dir(dest) as tmp:
            for rel, facts in sorted(self.files.items()):
                src = self.folder / rel
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    got = _copy_hashing(src, target)
                except OSError as err:
                    raise ContentError(
                        f"a file of the frozen {self.kind} {self.id!r} cannot be read ({err})",
                        where=str(src),
                        fix=fix,
                    ) from err
                if got != (facts["sha256"], int(facts["bytes"])):
                    raise ContentError(
                        f"a file of the frozen {self.kind} {self.id!r} is damaged: its digest"
                        " does not match the manifest",
                        where=str(src),
                        expected=f"{facts['bytes']} bytes, sha256 {facts['sha256'][:16]}...",
                        got=f"{got[1]} bytes, sha256 {got[0][:16]}...",
                        fix=fix,
                    )
            if self.inputs is not None:
                atomic_write_json(tmp / "inputs.json", self.inputs)


class FrozenStore:
    """The frozen folder of a project (see the module doc)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def atlas_folder(self, atlas_id: str) -> Path:
        return self.root / "atlas" / atlas_id

    def experiment_folder(self, publication: str, experiment_id: str) -> Path:
        return self.root / "experiment" / publication / experiment_id

    def atlas(self, atlas_id: str) -> FrozenEntry | None:
        """The frozen entry of atlas ``atlas_id``, or None when there is none."""
        return read_entry(self.atlas_folder(atlas_id))

    def experiment(self, publication: str, experiment_id: str) -> FrozenEntry | None:
        """The frozen entry of an experiment, or None when there is none."""
        return read_entry(self.experiment_folder(publication, experiment_id))

    def entries(self) -> Iterator[FrozenEntry]:
        """Every entry of the folder (each manifest read)."""
        for manifest in sorted(self.root.glob(f"*/**/{MANIFEST}")):
            entry = read_entry(manifest.parent)
            if entry is not None:
                yield entry

    def write(
        self,
        folder: Path,
        source: Path,
        *,
        kind: str,
        entry_id: str,
        publication: str,
        recipe: dict[str, Any],
        recipe_key: str,
        key: str,
        inputs: dict[str, Any] | None,
    ) -> FrozenEntry:
        """Freeze the files of ``source`` (a cache folder) into ``folder``, replacing what was
        there in one rename; refuses files over :data:`MAX_FILE_BYTES`."""
        files: dict[str, dict[str, Any]] = {}
        with atomic_dir(folder) as tmp:
            for path in sorted(source.rglob("*")):
                rel = path.relative_to(source).as_posix()
                if not path.is_file() or rel in NOT_FROZEN:
                    continue
                size = path.stat().st_size
                if size > MAX_FILE_BYTES:
                    raise ConfigError(
                        f"{kind} {entry_id!r} has a file of {size / 1e6:.1f} MB, over GitHub's"
                        f" {MAX_FILE_BYTES / 1e6:.0f} MB limit for a file in a push",
                        where=str(path),
                        expected=f"files of at most {MAX_FILE_BYTES:,} bytes",
                        fix="use smaller grids or icon_size (a level image grows with"
                        " grid x icon_size squared), or fewer dataset examples",
                    )
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                sha, copied = _copy_hashing(path, target)
                files[rel] = {"sha256": sha, "bytes": copied}
            manifest = {
                "format": FREEZE_FORMAT,
                "kind": kind,
                "id": entry_id,
                "publication": publication,
                "recipe": recipe,
                "recipe_key": recipe_key,
                "key": key,
                "inputs": inputs,
                "files": files,
                "bytes": sum(f["bytes"] for f in files.values()),
            }
            atomic_write_json(tmp / MANIFEST, manifest)
        entry = read_entry(folder)
        assert entry is not None
        return entry

    def write_gitattributes(self) -> list[str]:
        """(Re)write ``.gitattributes``: a Git LFS line for every frozen file over
        :data:`LFS_SUGGEST_BYTES`; returns those paths."""
        big = [
            (entry.folder / rel).relative_to(self.root).as_posix()
            for entry in self.entries()
            for rel, facts in sorted(entry.files.items())
            if int(facts["bytes"]) > LFS_SUGGEST_BYTES
        ]
        lines = [
            "# Written by `atlas freeze`. Files over 50 MB are listed for Git LFS",
            "# (https://git-lfs.com): run `git lfs install` once, or delete these lines.",
            *(f"{path} filter=lfs diff=lfs merge=lfs -text" for path in big),
        ]
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.root / ".gitattributes", "\n".join(lines) + "\n")
        return big

    def remove(self, folder: Path) -> None:
        """Delete an entry folder (an id no longer declared)."""
        shutil.rmtree(folder)
        parent = folder.parent
        if parent != self.root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()


def read_entry(folder: Path) -> FrozenEntry | None:
    """The entry in ``folder``, or None when the folder does not exist; a folder whose
    manifest is missing or unreadable is an error naming it."""
    if not folder.is_dir():
        return None
    manifest = folder / MANIFEST
    fix = (
        "run `atlas freeze` again where the atlas was computed, or delete the folder"
        " (then the build computes it, or leaves its publication out)"
    )
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ContentError("a frozen entry has no manifest", where=str(manifest), fix=fix) from None
    except (OSError, ValueError) as err:
        raise ContentError(
            f"the frozen entry's manifest cannot be read ({str(err)[:200]})",
            where=str(manifest),
            fix=fix,
        ) from err
    if not isinstance(doc, dict) or doc.get("format") != FREEZE_FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ContentError(
            "the frozen entry's manifest has an unknown format",
            where=str(manifest),
            expected=f"format {FREEZE_FORMAT}",
            got=str(got)[:80],
            fix=fix,
        )
    try:
        files = {str(rel): dict(facts) for rel, facts in doc["files"].items()}
        for rel, facts in files.items():
            if (
                Path(rel).is_absolute()
                or ".." in Path(rel).parts
                or not isinstance(facts.get("sha256"), str)
                or not isinstance(facts.get("bytes"), int)
            ):
                raise ValueError(f"bad file entry {rel!r}")
        return FrozenEntry(
            folder=folder,
            kind=str(doc["kind"]),
            id=str(doc["id"]),
            publication=str(doc["publication"]),
            recipe=dict(doc["recipe"]),
            recipe_key=str(doc["recipe_key"]),
            key=str(doc["key"]),
            inputs=None if doc.get("inputs") is None else dict(doc["inputs"]),
            files=files,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ContentError(
            f"the frozen entry's manifest is damaged ({str(err)[:200]})",
            where=str(manifest),
            fix=fix,
        ) from err


def _copy_hashing(src: Path, dest: Path) -> tuple[str, int]:
    """Copy ``src`` to ``dest``; return the sha256 and size of the bytes copied."""
    h = hashlib.sha256()
    size = 0
    with open(src, "rb") as fin, open(dest, "wb") as fout:
        while chunk := fin.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
            fout.write(chunk)
    return h.hexdigest(), size
