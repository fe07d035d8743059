"""Downloading weights: streamed, checksummed, validated, then moved into place atomically.

A download goes to a temporary file beside its destination; its sha256 is computed while
streaming and compared with the pinned digest (or torchvision's file-name prefix); an
optional ``validate`` callback (e.g. "the tensors are exactly Lucid's keys and shapes") runs
on the finished temporary file; only then is it renamed into place. A failed or interrupted
download leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

from generator.errors import WeightsError
from generator.models.model_spec import WeightSource

#: Bytes per read while streaming.
_CHUNK = 1 << 16


def _progress(out: IO[str], done: int, total: int | None, label: str) -> None:
    mb = done / 1e6
    if total:
        out.write(f"\r  {label}: {mb:7.1f} / {total / 1e6:.1f} MB ({100 * done / total:3.0f}%)")
    else:
        out.write(f"\r  {label}: {mb:7.1f} MB")
    out.flush()


def sha256_of(path: str | os.PathLike[str]) -> str:
    """The full sha256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def check_digest(digest: str, source: WeightSource, *, where: str) -> None:
    """Raise a :class:`WeightsError` when ``digest`` is not the one ``source`` pins."""
    if source.sha256 and digest != source.sha256:
        expected = f"sha256 {source.sha256}"
    elif source.sha256_prefix and not digest.startswith(source.sha256_prefix):
        expected = f"a sha256 starting with {source.sha256_prefix}"
    else:
        return
    raise WeightsError(
        "checksum mismatch: the file is corrupt or not the published one",
        where=where,
        expected=expected,
        got=f"sha256 {digest}",
        fix=f"download it again (`--force`), from {source.url}",
    )


def download(
    source: WeightSource,
    dest: str | os.PathLike[str],
    *,
    validate: Callable[[Path], None] | None = None,
    progress: IO[str] | None = sys.stderr,
    timeout: float = 60.0,
) -> Path:
    """Download ``source.url`` to ``dest`` (checksum, then ``validate``, then an atomic rename).

    Raises a :class:`WeightsError` when the address cannot be reached (offline), the checksum
    differs or ``validate`` rejects the file; ``dest`` is then untouched.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    tmp = Path(tmp_name)
    done = 0
    try:
        h = hashlib.sha256()
        try:
            with (
                os.fdopen(fd, "wb") as out,
                urllib.request.urlopen(source.url, timeout=timeout) as response,
            ):
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    h.update(chunk)
                    done += len(chunk)
                    if progress is not None:
                        _progress(progress, done, total, dest.name)
                out.flush()
                os.fsync(out.fileno())
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            reason = getattr(err, "reason", None) or err
            raise WeightsError(
                f"could not download the weights: {reason}",
                where=source.url,
                expected="a reachable address (this needs internet)",
                fix=f"run it again where there is internet, or download {source.url} by hand"
                f" and put it at {dest}",
            ) from err
        finally:
            if progress is not None and done:
                progress.write("\n")
        check_digest(h.hexdigest(), source, where=source.url)
        if validate is not None:
            validate(tmp)
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return dest
