"""Imagenette (fast.ai's ten easy ImageNet classes) through torchvision, as a :class:`FolderSource`.

``open_imagenette(root)`` asks ``torchvision.datasets.Imagenette(root, split, size,
download=True)`` for the data: torchvision downloads and unpacks the archive (md5-checked) once
and reuses it after. The unpacked ``<root>/imagenette2-320/<split>/<wnid>/*.JPEG`` tree is then
read by our own :class:`FolderSource` (robust decoding, identity, labels in sorted-wnid order,
which is torchvision's order too) with torchvision's readable class names ("tench", ...).

Without internet, an already unpacked tree is used as is; otherwise a :class:`SetupError` (exit
code 2) says what is missing, where we looked and how to get it.
"""

from __future__ import annotations

import os
from pathlib import Path

from generator.data.folder import FolderSource
from generator.errors import ConfigError, SetupError

#: Folder each archive unpacks to, per torchvision's ``Imagenette._ARCHIVES`` (imagenette2.tgz,
#: imagenette2-320.tgz, imagenette2-160.tgz on fast.ai's S3 bucket).
ARCHIVE_FOLDERS = {"full": "imagenette2", "320px": "imagenette2-320", "160px": "imagenette2-160"}
SPLITS = ("train", "val")


def imagenette_folder(
    root: str | os.PathLike[str], split: str = "train", size: str = "320px"
) -> Path:
    """Where torchvision unpacks Imagenette ``size``/``split`` under ``root``."""
    return Path(root).expanduser() / ARCHIVE_FOLDERS[size] / split


def open_imagenette(
    root: str | os.PathLike[str],
    *,
    split: str = "train",
    size: str = "320px",
    download: bool = True,
) -> FolderSource:
    """Imagenette ``split`` at ``size`` ("full", "320px", "160px") under ``root``, downloading it
    first when it is missing and ``download`` is true. Raises :class:`SetupError` when it is
    neither here nor downloadable."""
    if size not in ARCHIVE_FOLDERS:
        raise ConfigError(
            f"unknown Imagenette size {size!r}",
            expected=" | ".join(ARCHIVE_FOLDERS),
            got=repr(size),
        )
    if split not in SPLITS:
        raise ConfigError(
            f"unknown Imagenette split {split!r}", expected=" | ".join(SPLITS), got=repr(split)
        )
    root = Path(root).expanduser()
    folder = imagenette_folder(root, split, size)
    try:
        from torchvision.datasets import Imagenette
    except ImportError as err:
        raise _missing(folder, size, f"torchvision is not installed ({err})") from err
    if not folder.is_dir() and not download:
        raise _missing(folder, size, "not present, and downloading is off")
    try:
        dataset = Imagenette(str(root), split=split, size=size, download=download)
    except (OSError, RuntimeError, ValueError, KeyError) as err:  # URLError is an OSError
        raise _missing(folder, size, f"{type(err).__name__}: {err}") from err
    names = tuple(str(dataset.classes[k][0]) for k in range(len(dataset.wnids)))
    return FolderSource(
        folder, labels="folders", class_names=names, name=f"imagenette-{size}/{split}"
    )


def _missing(folder: Path, size: str, why: str) -> SetupError:
    archive = ARCHIVE_FOLDERS[size] + ".tgz"
    return SetupError(
        f"Imagenette ({size}) is not available here and could not be downloaded",
        where=str(folder),
        expected=f"an unpacked Imagenette tree: {folder}/<wnid>/*.JPEG (from {archive})",
        got=why,
        fix=(
            "run once on a machine with internet (torchvision downloads it into the `root` of "
            f"[datasets.<name>]), or copy the unpacked {ARCHIVE_FOLDERS[size]}/ folder there, "
            'or point `[datasets.<name>] folder = "..."` at any ImageNet-style folder'
        ),
    )
