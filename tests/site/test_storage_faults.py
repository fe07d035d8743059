"""A full or read-only disk: one clear message naming the folder (and the space needed where
it is known), exit 2, the previous site intact, no scratch left, and the next run resumes.

The disks are small tmpfs mounts (skipped where this process cannot mount: not root, or in a
container without the capability)."""

from __future__ import annotations

import errno
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sitekit import make_project, snapshot

from generator.atlas.artifacts import Activations, reserved_memmap
from generator.cli import main
from generator.errors import SetupError, storage_error


def mount_tmpfs(folder: Path, megabytes: float, *, read_only: bool = False) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={int(megabytes * 1024)}k" + (",ro" if read_only else "")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True
    )
    return done.returncode == 0


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A folder for small tmpfs mounts, all unmounted afterwards."""
    folder = tmp_path / "disks"
    folder.mkdir()
    if os.geteuid() != 0 or not mount_tmpfs(folder / "probe", 1):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield folder
    for mount in sorted(folder.iterdir(), reverse=True):
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def noisy_project(root: Path) -> Path:
    """The site kit's project with a 2,000 px atlas of noise (12 MB as PNG: incompressible)."""
    make_project(root)
    pixels = np.random.default_rng(0).integers(0, 255, (2000, 2000, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(root / "content/study/images/grid.png")
    atlases = root / "content/study/atlases.toml"
    atlases.write_text(atlases.read_text().replace("icon_size = 32", "icon_size = 200"))
    return root


def set_paths(root: Path, **paths: Path) -> None:
    config = root / "atlas.toml"
    lines = "".join(f'{key} = "{value}"\n' for key, value in paths.items())
    text = re.sub(r"\[paths\]\n.*?\n\n", "", config.read_text(), flags=re.DOTALL)
    config.write_text(text.replace("[tiles]", f"[paths]\n{lines}\n[tiles]"))


def run(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["--config", str(root / "atlas.toml"), "build"])
    return code, capsys.readouterr().err


def test_a_full_cache_disk_is_one_message_and_the_site_is_kept(disk, tmp_path, capsys) -> None:
    root = noisy_project(tmp_path / "p")
    assert run(root, capsys)[0] == 0  # the site, with the cache on the big disk
    site = snapshot(root / "site")
    (root / "content/study/index.md").write_text("---\ntitle: Changed\n---\n\nNew text.\n")
    assert mount_tmpfs(disk / "small", 4)
    set_paths(root, cache=disk / "small/cache")
    code, err = run(root, capsys)
    assert code == 2 and "Traceback" not in err
    assert f"error: {disk / 'small/cache/bundle'}: cannot write: no space left" in err
    assert "12.0 MB needed for" in err and "MB free there now" in err
    assert "nothing was replaced" in err
    assert snapshot(root / "site") == site
    assert [p for p in (disk / "small").rglob(".*")] == []  # no scratch left behind
    # The tiles do not fit in 16 MB either: the same message, from libvips this time.
    assert mount_tmpfs(disk / "medium", 16)
    set_paths(root, cache=disk / "medium/cache")
    code, err = run(root, capsys)
    assert code == 2 and f"error: {disk / 'medium/cache/tiles'}: cannot write: no space" in err
    assert snapshot(root / "site") == site
    # With room, the next run finishes.
    assert mount_tmpfs(disk / "big", 64)
    set_paths(root, cache=disk / "big/cache")
    assert run(root, capsys)[0] == 0
    assert "New text." in (root / "site/study/index.html").read_text()


def test_a_full_or_read_only_output_disk_keeps_the_previous_site(disk, tmp_path, capsys) -> None:
    root = noisy_project(tmp_path / "p")
    assert mount_tmpfs(disk / "out", 40)
    set_paths(root, output=disk / "out/site")
    assert run(root, capsys)[0] == 0
    site = snapshot(disk / "out/site")
    (root / "content/study/index.md").write_text("---\ntitle: Changed\n---\n\nNew text.\n")
    # Almost no room: the new site is written beside the old (unchanged atlases hard-linked).
    filler = disk / "out/filler"
    free = os.statvfs(disk / "out").f_bavail * os.statvfs(disk / "out").f_frsize
    filler.write_bytes(b"\0" * max(0, free - 100_000))
    code, err = run(root, capsys)
    assert code == 2 and f"error: {disk / 'out'}: cannot write: no space left" in err
    assert snapshot(disk / "out/site") == site
    assert sorted(p.name for p in (disk / "out").iterdir()) == ["filler", "site"]
    filler.unlink()
    subprocess.run(["mount", "-o", "remount,ro", str(disk / "out")], check=True)
    code, err = run(root, capsys)
    assert code == 2 and "cannot write: a read-only file system" in err
    assert "make the folder writable" in err and snapshot(disk / "out/site") == site


def test_storage_errors_name_the_folder_and_others_are_not_taken(tmp_path: Path) -> None:
    source = tmp_path / "image.png"
    source.write_bytes(b"x" * 3_000_000)
    full = OSError(
        errno.ENOSPC, "No space left on device", str(source), None, str(tmp_path / ".x.tmp/a")
    )
    error = storage_error(full)
    assert isinstance(error, SetupError) and error.exit_code == 2
    assert error.where == str(tmp_path)  # the temporary folder is gone: its parent is named
    assert error.what.startswith("cannot write: no space left (3.0 MB needed for ")
    denied = storage_error(PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "f")))
    assert denied is not None and "permission denied" in denied.what
    assert storage_error(FileNotFoundError(errno.ENOENT, "No such file", "x")) is None


def test_a_reserved_memory_map_fails_cleanly_on_a_full_disk(disk) -> None:
    assert mount_tmpfs(disk / "tiny", 1)
    array = reserved_memmap(disk / "tiny/ok.npy", (100, 100))
    array[:] = 7  # allocated: no SIGBUS
    del array
    with pytest.raises(OSError) as info:
        reserved_memmap(disk / "tiny/thumbs.npy", (4, 1024, 1024))  # 4 MB on a 1 MB disk
    assert info.value.errno == errno.ENOSPC
    # activations are written through it too (to their .npy files, by blocks of rows)
    (disk / "tiny/thumbs.npy").unlink(missing_ok=True)
    acts = Activations(
        layer="mixed4c",
        vectors=np.ones((1024, 1024), dtype=np.float32),  # 2 MB in float16
        image_index=np.arange(1024),
        positions=np.zeros((1024, 2), dtype=np.int64),
        labels=np.zeros(1024, dtype=np.int64),
        layer_hw=(1, 1),
    )
    with pytest.raises(OSError) as info:
        acts.save(disk / "tiny/activations", float16=True)
    assert info.value.errno == errno.ENOSPC
