"""List the pretrained weights a machine already holds: model caches and large weight files.

Run first on a lent GPU machine (by ``bench/gpu_session.sh``), so a session knows whether real
InceptionV1 / GoogLeNet weights are there before it plans any check on them::

    python bench/cached_weights.py [--out weights.json] [--min-mb 20] [ROOT ...]

What it reports:

* ``caches``: torch hub's folder (``torch.hub.get_dir()``, ``$TORCH_HOME``) and the Hugging Face
  caches (``$HF_HOME``, ``$HF_HUB_CACHE``, ``$HUGGINGFACE_HUB_CACHE``, ``$TRANSFORMERS_CACHE``,
  ``~/.cache/huggingface``): whether each exists, and every file in it of at least
  ``--min-mb`` (for Hugging Face, grouped by model: ``models--org--name``).
* ``files``: every file named like weights (``*.pth``, ``*.pt``, ``*.safetensors``, ``*.bin``,
  ``*.ckpt``, ``*.h5``, ``*.onnx``, ``*.pb``, ``*.npz``, ``*.msgpack``) of at least ``--min-mb``
  under the roots (default: the caches above, ``~``, ``/root``, ``/home``, ``/opt``, ``/data``,
  ``/models``, ``/mnt``, ``/srv``, ``/workspace``, ``/tmp``, ``/usr/share``), each once (by real
  path), largest first, with ``inception`` set where the name suggests InceptionV1 / GoogLeNet
  (the weights this project's full publication needs: see ``atlas fetch-weights``).

The walk follows no folder links, skips ``/proc``, ``/sys`` and ``/dev``, and stops after
``--budget`` seconds (the JSON says whether it was cut short), so it fits a device session.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

SUFFIXES = (
    ".pth",
    ".pt",
    ".safetensors",
    ".bin",
    ".ckpt",
    ".h5",
    ".onnx",
    ".pb",
    ".npz",
    ".msgpack",
)
#: names that suggest InceptionV1 / GoogLeNet weights (torchvision's googlenet-1378be20.pth,
#: Lucid's inception5h, timm's inception_v1 / googlenet ports...)
INCEPTION_HINTS = ("googlenet", "inception5h", "inceptionv1", "inception_v1", "inception-v1")
SKIP_TOP = ("/proc", "/sys", "/dev")
DEFAULT_ROOTS = (
    "~",
    "/root",
    "/home",
    "/opt",
    "/data",
    "/models",
    "/mnt",
    "/srv",
    "/workspace",
    "/tmp",
    "/usr/share",
)


@dataclass(frozen=True)
class Found:
    path: str
    mb: float
    inception: bool


def looks_like_inception(path: str) -> bool:
    name = path.lower()
    return any(hint in name for hint in INCEPTION_HINTS)


def cache_dirs(env: dict[str, str] | None = None) -> dict[str, Path]:
    """The model caches this machine would use, by name (torch hub, Hugging Face)."""
    env = dict(os.environ) if env is None else env
    home = Path(env.get("HOME", str(Path.home())))
    xdg = Path(env.get("XDG_CACHE_HOME", str(home / ".cache")))
    torch_home = Path(env.get("TORCH_HOME", str(xdg / "torch")))
    hf_home = Path(env.get("HF_HOME", str(xdg / "huggingface")))
    dirs = {"torch_hub": torch_home / "hub", "huggingface": hf_home}
    for key in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE"):
        if env.get(key):
            dirs[key.lower()] = Path(env[key])
    return dirs


def walk(
    roots: list[Path], *, min_bytes: int, deadline: float, any_suffix: bool = False
) -> tuple[list[Found], bool]:
    """Files of at least ``min_bytes`` under ``roots`` (weight suffixes only unless
    ``any_suffix``), each once by real path (the first path met in sorted order names it),
    largest first; and whether time ran out."""
    seen: set[str] = set()
    found: list[Found] = []
    for root in roots:
        if not root.is_dir():
            continue
        for folder, subdirs, files in os.walk(root, followlinks=False):
            if time.monotonic() > deadline:
                return _sorted(found), True
            subdirs[:] = sorted(d for d in subdirs if os.path.join(folder, d) not in SKIP_TOP)
            for name in sorted(files):
                if not any_suffix and not name.lower().endswith(SUFFIXES):
                    continue
                path = os.path.join(folder, name)
                try:
                    real = os.path.realpath(path)
                    size = os.stat(real).st_size
                except OSError:
                    continue  # a dangling link, a file gone meanwhile, no permission
                if size < min_bytes or real in seen:
                    continue
                seen.add(real)
                found.append(Found(path, round(size / 2**20, 1), looks_like_inception(path)))
    return _sorted(found), False


def _sorted(found: list[Found]) -> list[Found]:
    return sorted(found, key=lambda f: (-f.mb, f.path))


def hf_models(hf_dir: Path) -> dict[str, float]:
    """Hugging Face hub cache: model name -> MB of its blobs."""
    out: dict[str, float] = {}
    for hub in (hf_dir / "hub", hf_dir):
        if not hub.is_dir():
            continue
        for entry in sorted(hub.glob("models--*")):
            blobs = entry / "blobs"
            size = (
                sum(f.stat().st_size for f in blobs.iterdir() if f.is_file())
                if blobs.is_dir()
                else 0
            )
            out[entry.name.removeprefix("models--").replace("--", "/")] = round(size / 2**20, 1)
    return out


def survey(roots: list[Path] | None, *, min_mb: float, budget: float) -> dict[str, object]:
    deadline = time.monotonic() + budget
    min_bytes = int(min_mb * 2**20)
    caches = cache_dirs()
    report_caches: dict[str, object] = {}
    for name, folder in caches.items():
        files, _ = walk([folder], min_bytes=min_bytes, deadline=deadline, any_suffix=True)
        entry: dict[str, object] = {
            "path": str(folder),
            "exists": folder.is_dir(),
            "files": [asdict(f) for f in files],
        }
        if name != "torch_hub":
            entry["models"] = hf_models(folder)
        report_caches[name] = entry
    if roots is None:
        roots = [*caches.values(), *(Path(r).expanduser() for r in DEFAULT_ROOTS)]
    files, cut = walk(roots, min_bytes=min_bytes, deadline=deadline)
    return {
        "min_mb": min_mb,
        "roots": [str(r) for r in roots],
        "caches": report_caches,
        "files": [asdict(f) for f in files],
        "inception_candidates": [f.path for f in files if f.inception],
        "cut_short": cut,
        "seconds": round(budget - (deadline - time.monotonic()), 2),
    }


def summary(report: dict[str, object]) -> str:
    lines = []
    caches = report["caches"]
    assert isinstance(caches, dict)
    for name, entry in caches.items():
        state = "present" if entry["exists"] else "absent"
        models = entry.get("models") or {}
        extra = f", models: {', '.join(models) or 'none'}" if "models" in entry else ""
        lines.append(f"{name}: {entry['path']} ({state}, {len(entry['files'])} large files{extra})")
    files = report["files"]
    assert isinstance(files, list)
    lines.append(f"weight files >= {report['min_mb']} MB: {len(files)}")
    lines += [
        f"  {f['mb']:>9.1f} MB  {f['path']}{'  <- InceptionV1?' if f['inception'] else ''}"
        for f in files
    ]
    if report["cut_short"]:
        lines.append("(the walk ran out of time: the list may be incomplete)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("roots", nargs="*", type=Path, help="folders to walk (default: see above)")
    parser.add_argument("--out", type=Path, help="write the report as JSON here")
    parser.add_argument("--min-mb", type=float, default=20.0)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds for the whole walk")
    args = parser.parse_args(argv)
    report = survey(args.roots or None, min_mb=args.min_mb, budget=args.budget)
    print(summary(report), flush=True)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
