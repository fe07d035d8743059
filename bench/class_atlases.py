"""Benchmark: a class activation atlas of every class of the demo world, and how often the demo
model reads its icons as that class.

The demo publication shows four class atlases; which four was decided by this measurement
(`atlas quality`'s "classified" check: at least 70% of a class atlas's icons classified as its
class, docs/ARCHITECTURE.md, "Quality checks"). It builds, in a temporary project (fresh
cache; the repository's ``.atlas-cache/`` and ``site/`` are not touched), one class atlas per
class of the synthetic world with exactly the settings of the demo publication's class
atlases (``content/demo/atlases.toml``: mixed4c, 4,000 samples, readout attribution, winners
only, the "demo" render preset), then runs ``atlas quality`` on them and prints its table.

    python bench/class_atlases.py [--icon-size PX]

``--icon-size`` overrides the preset's 48 px (the model's own input is 64 px). Takes about
two minutes on the project's 2-core machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PUBLICATION_SPEC = ROOT / "content" / "demo" / "atlases.toml"
TEMPLATE_ID = "demo-class-striped-disc"  # a class atlas of the publication: its settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--icon-size", type=int, default=None, help="override the preset's")
    args = parser.parse_args()

    import tomli_w

    from generator.data.world import CLASS_NAMES

    spec = tomllib.loads(PUBLICATION_SPEC.read_text())["atlas"][TEMPLATE_ID]
    with tempfile.TemporaryDirectory(prefix="atlas-class-bench-") as tmp:
        project = Path(tmp)
        config = (ROOT / "atlas.toml").read_text()
        # The InceptionV1 publication's data set is not needed here.
        config = config.split("[datasets.imagenet]")[0]
        (project / "atlas.toml").write_text(config)
        pub = project / "content" / "classes"
        pub.mkdir(parents=True)
        (project / "content" / "index.md").write_text("---\ntitle: Class atlases\n---\n")
        (pub / "index.md").write_text("---\ntitle: Every class of the demo world\n---\n")
        ids = [f"class-{name.replace(' ', '-')}" for name in CLASS_NAMES]
        render = {**spec.get("render", {})}
        if args.icon_size is not None:
            render["icon_size"] = args.icon_size
        atlases = {
            atlas_id: {**spec, "class": name, "title": f"Class atlas: {name}", "render": render}
            for atlas_id, name in zip(ids, CLASS_NAMES, strict=True)
        }
        (pub / "atlases.toml").write_text(tomli_w.dumps({"atlas": atlases}))
        atlas = [sys.executable, "-m", "generator.cli", "--config", str(project / "atlas.toml")]
        start = time.perf_counter()
        subprocess.run([*atlas, "build"], check=True, stdout=subprocess.DEVNULL)
        built = time.perf_counter() - start
        print(
            f"{len(ids)} class atlases built in {built:.0f} s (icon size: "
            f"{args.icon_size or 'the preset'})"
        )
        quality = subprocess.run([*atlas, "quality", *ids], capture_output=True, text=True)
        print(quality.stdout, end="")
        if quality.returncode not in (0, 1):
            sys.exit(quality.stderr)


if __name__ == "__main__":
    main()
