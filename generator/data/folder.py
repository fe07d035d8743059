"""A folder of image files as an :class:`ImageSource`: flat, or one subfolder per class.

``FolderSource("/data/imagenet/train")`` finds every JPEG, PNG and WebP file under the folder
(recursively; hidden files and folders are ignored) and orders them by relative path, so the
order is the same on every machine. Two layouts:

- **class subfolders** (ImageNet style: ``root/<class>/**/<image>``): the class names are the
  subfolder names, sorted; an image's label is its subfolder's position in that list.
- **flat** (images anywhere, some directly in ``root``): unlabelled (label -1).

``labels="auto"`` (the default) picks class subfolders when ``root`` holds no image itself and
at least one subfolder does. :meth:`FolderSource.identity` digests the relative paths, sizes and
modification times (and the options), so editing, adding or removing a file changes it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from generator.cache import digest
from generator.data.base import ImageSource
from generator.data.decode import DEFAULT_MAX_PIXELS, decode_image
from generator.errors import ConfigError, SetupError

#: File name endings read as images (lower-cased before comparing).
EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp")

#: Bump when scanning or decoding changes what a folder yields: part of the identity.
FOLDER_VERSION = 1

LABEL_MODES = ("auto", "folders", "none")


def scan(root: Path, extensions: tuple[str, ...] = EXTENSIONS) -> list[tuple[str, int, int]]:
    """Every image file under ``root``: ``(relative POSIX path, size in bytes, mtime in ns)``.

    Sorted by relative path (code-point order). Hidden entries (names starting with ".") are
    skipped; symbolic links to files are followed, links to folders are not (no cycles).
    """
    found: list[tuple[str, int, int]] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.startswith(".") or not name.lower().endswith(extensions):
                continue
            path = os.path.join(folder, name)
            try:
                st = os.stat(path)
            except OSError:  # a dangling link: reading it will report it as unreadable
                st = None
            rel = Path(os.path.relpath(path, root)).as_posix()
            found.append((rel, st.st_size if st else 0, st.st_mtime_ns if st else 0))
    found.sort(key=lambda item: item[0])
    return found


class FolderSource(ImageSource):
    """The image files under ``root``, in relative-path order, decoded with :func:`decode_image`.

    Args:
        root: the folder.
        labels: "auto", "folders" (class subfolders; images directly in ``root`` get -1) or
            "none" (unlabelled).
        class_names: display names for the class subfolders (sorted folder order), e.g.
            Imagenette's "tench" for ``n01440764``; default: the folder names.
        max_pixels: larger images are skipped as "too large" (decompression-bomb guard).
        name: a short name for messages; default ``folder:<root>``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        labels: str = "auto",
        class_names: tuple[str, ...] | list[str] | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        name: str | None = None,
    ) -> None:
        self.root = Path(root).expanduser()
        self.name = name or f"folder:{self.root}"
        if labels not in LABEL_MODES:
            raise ConfigError(
                f"unknown label mode {labels!r} for image folder {self.root}",
                expected=" | ".join(LABEL_MODES),
                got=repr(labels),
                fix='use labels = "auto" (class subfolders when present)',
            )
        if not self.root.is_dir():
            raise SetupError(
                "image folder not found" if not self.root.exists() else "not a folder",
                where=str(self.root),
                expected="a folder of JPEG/PNG/WebP images, flat or one subfolder per class",
                fix="create it, or point the data set's `folder` at an existing image folder",
            )
        files = scan(self.root)
        if not files:
            raise SetupError(
                "no images found in the image folder (searched recursively)",
                where=str(self.root),
                expected="files ending in " + ", ".join(EXTENSIONS),
                fix="copy images into it, or point the data set's `folder` elsewhere",
            )
        self.max_pixels = int(max_pixels)
        self.labels_mode = labels
        self._rel = [rel for rel, _, _ in files]
        self._size = np.array([s for _, s, _ in files], dtype=np.int64)
        self._mtime = np.array([m for _, _, m in files], dtype=np.int64)
        top = [rel.split("/", 1)[0] if "/" in rel else None for rel in self._rel]
        if labels == "auto":
            labels = "folders" if all(t is not None for t in top) else "none"
        self.labelled = labels == "folders"
        folders = sorted({t for t in top if t is not None}) if self.labelled else []
        if class_names is not None:
            if not self.labelled or len(class_names) != len(folders):
                raise ConfigError(
                    f"{len(class_names)} class names given for {len(folders)} class subfolders",
                    where=str(self.root),
                    expected=f"one name per subfolder, in sorted order: {', '.join(folders[:12])}",
                    got=", ".join(class_names[:12]),
                    fix="give as many names as there are class subfolders, or none",
                )
            self.class_names = tuple(class_names)
        else:
            self.class_names = tuple(folders)
        position = {f: k for k, f in enumerate(folders)}
        self._labels = np.array([position.get(t, -1) if t else -1 for t in top], dtype=np.int64)
        self._identity: str | None = None

    def __len__(self) -> int:
        return len(self._rel)

    def identity(self) -> str:
        if self._identity is None:
            h = hashlib.sha256()
            for rel, size, mtime in zip(
                self._rel, self._size.tolist(), self._mtime.tolist(), strict=True
            ):
                h.update(f"{rel}\t{size}\t{mtime}\n".encode())
            self._identity = digest(
                "folder",
                FOLDER_VERSION,
                h.hexdigest(),
                self.labelled,
                self.class_names,
                self.max_pixels,
            )
        return self._identity

    def path(self, index: int) -> Path:
        """The file of image ``index``."""
        return self.root / self._rel[index]

    def relative_path(self, index: int) -> str:
        """The file of image ``index`` relative to the root, with "/" separators."""
        return self._rel[index]

    def read(self, index: int) -> np.ndarray:
        return self.read_noted(index)[0]

    def read_noted(self, index: int) -> tuple[np.ndarray, str | None]:
        """Image ``index`` as ``uint8 [H, W, 3]`` and its conversion note (see :mod:`.decode`)."""
        return decode_image(
            self.path(index), max_pixels=self.max_pixels, where=self.describe(index)
        )

    def label(self, index: int) -> int:
        return int(self._labels[index])

    def labels(self, indices: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """The labels of ``indices`` (default: every image), ``int64`` (-1 where unlabelled)."""
        if indices is None:
            return self._labels.copy()
        return self._labels[np.asarray(indices, dtype=np.int64)]

    def describe(self, index: int) -> str:
        return str(self.path(index))
