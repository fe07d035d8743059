"""Confinement: the site publishes only what is inside the content tree.

One rule wherever the site resolves a path that content names or holds (pages, assets,
bibliographies, ``atlases.toml``, an image atlas's ``image``, a patch experiment's icon, the
images of a results file): the path, with every symbolic link followed, lies inside its root
(the content folder; a results file's own folder). A symlink whose target stays inside keeps
working; one that leads out (``/etc/passwd``), an absolute path and a ``../`` path that leaves
are refused with an error naming where the path was found. Paths outside the content tree
that a user means (data sets, weights, the cache, the output) are named in ``atlas.toml`` and
are not content: they are not checked here.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

from generator.errors import AtlasError, ContentError


def within(path: Path, root: Path) -> bool:
    """Whether ``path``, every symlink followed, lies inside ``root`` (also resolved). A
    symlink loop or an unreadable link is not inside anything."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return False


def is_relative(written: str) -> bool:
    """Whether a path as written in content is relative (not ``/x``, ``C:\\x`` or ``\\\\x``)."""
    return not (
        PurePosixPath(written).is_absolute()
        or PureWindowsPath(written).is_absolute()
        or PureWindowsPath(written).drive
        or written.startswith("\\")
    )


def confine(
    path: Path,
    root: Path,
    *,
    where: str,
    what: str,
    written: str | None = None,
    error: type[AtlasError] = ContentError,
) -> Path:
    """``path`` resolved, when it lies inside ``root`` (:func:`within`); else ``error``.

    ``written`` is the path as the content wrote it, relative to ``path``'s folder (None:
    ``path`` was found in the content tree, e.g. a symlink there); an absolute ``written`` is
    refused even when it points inside. ``what`` names the path in the message ("the atlas
    image of [atlas.x]"), ``where`` where it was found (``file:line``).
    """
    if written is not None and not is_relative(written):
        raise error(
            f"{what} is an absolute path",
            where=where,
            expected=f"a path relative to the file that names it, inside {root}",
            got=written,
            fix="write the path relative to the file (e.g. images/atlas.png) and keep the file"
            " inside the content folder",
        )
    if not within(path, root):
        target = _target(path)
        raise error(
            f"{what} lies outside the content folder"
            + (" (through a symbolic link)" if path.is_symlink() or written is None else ""),
            where=where,
            expected=f"a file inside {root} (symbolic links may point only inside it)",
            got=written if written is not None else f"{path} -> {target}",
            fix="copy the file into the content folder (or make the link point inside it);"
            " the site publishes only what the content folder holds",
        )
    return path.resolve()


def _target(path: Path) -> str:
    try:
        return str(path.resolve())
    except (OSError, RuntimeError):
        return "(a symbolic link loop)"
