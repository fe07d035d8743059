"""One writer per project: builds, computes, freezes and serve's rebuilds take turns.

:func:`project_lock` holds an exclusive ``flock`` on ``<cache>/lock`` for the duration of a
command. The file says who holds it (command, pid, host, since when), so a second command
waiting for it can say what it waits for. The kernel drops the lock when its holder exits,
however it exits (``kill -9`` included), so a killed holder never leaves the project locked.

Once the lock is taken nothing else writes to the project, so it is the moment to clean up
after a writer that was killed (:func:`recover`): temporary files and folders
(``.<name>.*.tmp``) are removed, and a folder swap killed between its two renames
(``<name>`` gone, ``.<name>.old-<pid>`` left) is undone: the old folder is restored, never
deleted.

The lock is re-entrant within a process (``atlas deploy`` builds while holding it) and
serializes threads of one process too.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from generator.errors import SetupError

#: Per lock file: (thread lock, how deep this process holds it, its open file).
_HELD: dict[str, list[object]] = {}
_HELD_GUARD = threading.Lock()

#: How often a waiting command checks the lock (seconds).
POLL = 0.1


@contextlib.contextmanager
def project_lock(
    cache: Path,
    command: str,
    *,
    wait: float | None = None,
    log: Callable[[str], None] | None = print,
    output: Path | None = None,
) -> Iterator[None]:
    """Hold the project's lock (``<cache>/lock``) while the block runs; see the module doc.

    Args:
        cache: the project's cache folder (``[paths] cache``).
        command: what holds it, as a user would recognise it (``"atlas build"``).
        wait: seconds to wait for another holder (None: as long as it takes); past it a
            :class:`SetupError` names the holder.
        log: where "waiting for ..." is said (once), and what recovery cleaned.
        output: the site's output folder, whose killed swaps (``.<output>.*.tmp``,
            ``.<output>.old-<pid>`` beside it) are recovered too.
    """
    path = Path(cache) / "lock"
    key = str(path.resolve() if path.parent.exists() else path.absolute())
    with _HELD_GUARD:
        entry = _HELD.setdefault(key, [threading.RLock(), 0, None])
    thread_lock = entry[0]
    assert isinstance(thread_lock, type(threading.RLock()))
    if not thread_lock.acquire(timeout=-1 if wait is None else wait):
        raise _busy(path, _holder(path), wait)
    try:
        if entry[1] == 0:
            entry[2] = _acquire(path, command, wait, log)
            recovered = recover(Path(cache))
            if output is not None and output.parent.is_dir():
                recovered += _recover_in(output.parent, prefix=f".{output.name}.")
            if recovered and log is not None:
                log(
                    f"cleaned up after an interrupted run: {recovered} leftover(s) removed or restored"
                )
        entry[1] = int(entry[1]) + 1  # type: ignore[call-overload]
        try:
            yield
        finally:
            entry[1] = int(entry[1]) - 1  # type: ignore[call-overload]
            if entry[1] == 0:
                handle = entry[2]
                entry[2] = None
                if handle is not None:
                    _release(handle)  # type: ignore[arg-type]
    finally:
        thread_lock.release()


def _acquire(
    path: Path, command: str, wait: float | None, log: Callable[[str], None] | None
) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
        raise SetupError(
            f"cannot open the project lock ({err.strerror})",
            where=str(path),
            fix=f"make {path.parent} writable, or set [paths] cache to a writable folder",
        ) from err
    start = time.monotonic()
    said = False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                os.close(handle)
                raise
        if not said and log is not None:
            log(f"waiting for {_holder(path)} to finish (the project lock {path})")
            said = True
        if wait is not None and time.monotonic() - start >= wait:
            holder = _holder(path)
            os.close(handle)
            raise _busy(path, holder, wait)
        time.sleep(POLL)
    info = {
        "command": command,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    os.ftruncate(handle, 0)
    os.pwrite(handle, (json.dumps(info) + "\n").encode(), 0)
    return handle


def _release(handle: int) -> None:
    with contextlib.suppress(OSError):
        os.ftruncate(handle, 0)
    fcntl.flock(handle, fcntl.LOCK_UN)
    os.close(handle)


def _holder(path: Path) -> str:
    """Who holds the lock, as its file says (it may be between holders: then "another run")."""
    try:
        info = json.loads(path.read_text())
        return f"{info['command']} (pid {info['pid']} on {info['host']}, since {info['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another atlas run"


def _busy(path: Path, holder: str, wait: float | None) -> SetupError:
    return SetupError(
        f"the project is busy: {holder} holds its lock",
        where=str(path),
        expected=f"the lock free within {wait:g} s" if wait is not None else None,
        fix="wait for it to finish (builds, computes and freezes of one project take turns),"
        " or stop it",
    )


def recover(cache: Path) -> int:
    """Clean what killed writers left in the cache folder and its subfolders one level down
    (the stage folders): remove ``.<name>.*.tmp`` entries, restore ``<name>`` from
    ``.<name>.old-<pid>`` when it is missing, else remove the old copy. Call only while
    holding the project lock. Returns how many entries it removed or restored."""
    if not cache.is_dir():
        return 0
    count = _recover_in(cache)
    for sub in cache.iterdir():
        if sub.is_dir() and not sub.is_symlink() and not sub.name.startswith("."):
            count += _recover_in(sub)
    return count


def _recover_in(folder: Path, prefix: str = ".") -> int:
    """:func:`recover` in one folder, for the entries whose names start with ``prefix``."""
    count = 0
    olds: dict[str, list[Path]] = {}
    for entry in folder.iterdir():
        name = entry.name
        if not name.startswith(prefix):
            continue
        if ".old-" in name:
            olds.setdefault(name[1:].rsplit(".old-", 1)[0], []).append(entry)
        elif name.endswith(".tmp"):
            _remove(entry)
            count += 1
    for name, copies in olds.items():
        copies.sort(key=lambda p: p.stat().st_mtime_ns, reverse=True)
        if not (folder / name).exists():
            os.replace(copies.pop(0), folder / name)  # a swap killed between its renames
            count += 1
        for extra in copies:
            _remove(extra)
            count += 1
    return count


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        entry.unlink(missing_ok=True)
