"""Benchmark: the full demo build, cold and warm, then the quality checks of its atlases.

The project's ``atlas.toml`` and ``content/`` are copied into a temporary project folder, so
its cache (``[paths] cache``, relative to atlas.toml; no option or environment variable
overrides it) starts empty and the repository's ``.atlas-cache/`` and ``site/`` are not
touched. Then, in that folder:

1. ``atlas build`` with the empty cache (cold: computes every bundle, the patch experiment,
   the pyramids and the pages);
2. ``atlas build`` again (warm: everything comes from the cache);
3. ``atlas quality --check`` on the bundles the cold build made (docs/ARCHITECTURE.md,
   "Quality checks").

Each build's output lines are timestamped as they arrive; per-stage times attribute the time
before each log line to the stage that line reports (collect, layout, render, examples,
compose, experiment; the rest after the last bundle is tiles and pages).

Goals (the demo-build issue, on the project's 2-core machine, no GPU): cold <= 8 min after
installation, warm < 1 min; the quality thresholds of ``generator/atlas/quality.py``.

    python bench/demo.py [--write] [--keep]

prints the "## Demo build" section of bench/RESULTS.md; ``--write`` also puts it there
(replacing the previous one). The logs go to bench/out/demo-build-{cold,warm}.log and every
measurement to bench/out/demo-build.json (``--from-json`` prints the section again from it).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
OUT = ROOT / "bench" / "out"
SECTION = "## Demo build"
COLD_GOAL, WARM_GOAL = 8 * 60.0, 60.0

#: Log line prefix -> the stage whose work the time before that line was (first match wins).
STAGES = (
    (re.compile(r"^collect "), "collect activations + attributions"),
    (re.compile(r"^layout: done"), "layout (UMAP / t-SNE)"),
    (re.compile(r"^render"), "render icons"),
    (re.compile(r"^examples"), "dataset examples"),
    (re.compile(r"^(compose: |atlas \S+: bundle written)"), "compose bundle"),
    (re.compile(r"^experiment "), "patch experiment"),
    (re.compile(r"^built "), "tiles + pages (after the last compute line)"),
)
OTHER = "other (start-up, cache look-ups, selection, grids)"


@dataclass(frozen=True)
class Run:
    """One ``atlas`` command: wall and child CPU seconds, exit code, timestamped lines, and
    (when sampled) its resident memory ``(seconds, bytes)`` every 0.2 s."""

    wall: float
    cpu: float
    code: int
    lines: list[tuple[float, str]]
    rss: list[tuple[float, int]] = field(default_factory=list)

    def text(self) -> str:
        return "".join(f"[{t:7.1f}s] {line}\n" for t, line in self.lines)


def rss_of(pid: int) -> int:
    """Resident bytes of process ``pid`` (0 once it has gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_atlas(project: Path, *args: str, sample_rss: bool = False) -> Run:
    """Run ``atlas --config <project>/atlas.toml <args>``; stdout and stderr merged; with
    ``sample_rss``, its resident memory sampled every 0.2 s (``/proc/<pid>/status``)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "generator.cli", "--config", str(project / "atlas.toml")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*command, *args],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    rss: list[tuple[float, int]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            rss.append((time.perf_counter() - start, rss_of(proc.pid)))

    poller = threading.Thread(target=sample, daemon=True)
    if sample_rss:
        poller.start()
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append((time.perf_counter() - start, line.rstrip("\n")))
        print(f"  [{lines[-1][0]:6.1f}s] {lines[-1][1]}", file=sys.stderr)
    code = proc.wait()
    wall = time.perf_counter() - start
    done.set()
    if sample_rss:
        poller.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(wall, cpu, code, lines, rss)


def stage_spans(
    run: Run, stages: Sequence[tuple[re.Pattern[str], str]] = STAGES, other: str = OTHER
) -> list[tuple[str, float, float]]:
    """``(stage, start, end)`` of every stretch of the run: the time before each log line
    goes to the stage that line reports (the first of ``stages`` to match, else ``other``)."""
    spans = []
    previous = 0.0
    for t, line in [*run.lines, (run.wall, "")]:
        stage = next((name for pattern, name in stages if pattern.search(line)), other)
        spans.append((stage, previous, t))
        previous = t
    return spans


def stage_times(run: Run) -> dict[str, float]:
    """Seconds per stage (:func:`stage_spans`)."""
    times: dict[str, float] = {}
    for stage, start, end in stage_spans(run):
        times[stage] = times.get(stage, 0.0) + end - start
    return times


def atlas_times(run: Run) -> list[tuple[str, float]]:
    """``(atlas or experiment id, seconds since the previous one finished)`` in build order."""
    found, previous = [], 0.0
    for t, line in run.lines:
        match = re.match(
            r"^(?:atlas (\S+): bundle written|experiment (\S+): results written)", line
        )
        if match:
            found.append((match.group(1) or f"experiment {match.group(2)}", t - previous))
            previous = t
    return found


def machine() -> str:
    """CPU model, CPUs, memory, GPU, load average, software versions."""
    import torch

    model = "unknown CPU"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        mem_kb = int(meminfo.readline().split()[1])
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{model}, {os.cpu_count()} CPUs, {mem_kb / 2**20:.0f} GiB RAM, {gpu}; Python "
        f"{platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} "
        "threads by default)"
    )


def load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def copy_project(dest: Path) -> None:
    """atlas.toml, content/ and (when present) the template overrides of the repository."""
    shutil.copy2(ROOT / "atlas.toml", dest / "atlas.toml")
    shutil.copytree(ROOT / "content", dest / "content")
    if (ROOT / "overrides").is_dir():
        shutil.copytree(ROOT / "overrides", dest / "overrides")


def section(
    cold: Run, warm: Run, quality: Run, loads: dict[str, str], note: str, command: str
) -> str:
    def minutes(s: float) -> str:
        return f"{int(s // 60)}m{s % 60:04.1f}s"

    lines = [
        SECTION,
        "",
        "`bench/demo.py` (the demo publication built from nothing, then again; its quality checks).",
        "",
        f"- Machine: {machine()}.",
        f"- Load average (1 / 5 / 15 min) before the cold build {loads['before']}, after it "
        f"{loads['cold']}, after the warm one {loads['warm']}." + (f" {note}" if note else ""),
        f"- Date: {datetime.date.today().isoformat()}. Command: `{command}` (a fresh copy of "
        "`atlas.toml` + `content/` in a temporary folder, so `[paths] cache` starts empty; "
        "the InceptionV1 publication is left out, as on any machine without its weights).",
        "",
        "| build | wall | CPU (user+sys) | exit | goal |",
        "|---|---|---|---|---|",
        f"| cold (empty cache) | **{minutes(cold.wall)}** | {minutes(cold.cpu)} | {cold.code} | "
        f"<= 8 min: {'met' if cold.wall <= COLD_GOAL and cold.code == 0 else 'NOT met'} |",
        f"| warm (second run) | **{warm.wall:.1f} s** | {warm.cpu:.1f} s | {warm.code} | "
        f"< 1 min: {'met' if warm.wall < WARM_GOAL and warm.code == 0 else 'NOT met'} |",
        "",
        "Cold build by stage (the time before each log line goes to the stage that line "
        "reports; bench/out/demo-build-cold.log has the timestamped log):",
        "",
        "| stage | wall |",
        "|---|---|",
    ]
    lines += [f"| {stage} | {seconds:.1f} s |" for stage, seconds in stage_times(cold).items()]
    lines += ["", "Per atlas (from the previous one's end to its bundle):", ""]
    lines += ["| atlas | wall |", "|---|---|"]
    lines += [f"| {name} | {seconds:.1f} s |" for name, seconds in atlas_times(cold)]
    summary = [line for _, line in cold.lines + warm.lines if line.startswith("built ")]
    lines += ["", "Build summaries:", "", "```", *summary, "```", ""]
    lines += [
        f"Quality (`atlas quality --check` on the cold build's bundles, {quality.wall:.1f} s, "
        f"exit {quality.code}: {'every threshold met' if quality.code == 0 else 'a threshold missed'}):",
        "",
        "```",
        *(line for _, line in quality.lines),
        "```",
        "",
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    """Replace RESULTS.md's "## Demo build" section (up to the next "## ") or append it."""
    doc = RESULTS.read_text()
    start = doc.find(f"\n{SECTION}\n")
    if start < 0:
        RESULTS.write_text(doc.rstrip("\n") + "\n\n" + text)
        return
    end = doc.find("\n## ", start + 1)
    rest = "" if end < 0 else doc[end:]
    RESULTS.write_text(doc[: start + 1] + text + rest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project")
    parser.add_argument("--note", default="", help="a sentence about the machine's state")
    parser.add_argument("--from-json", action="store_true", help="no build: reuse the last runs")
    args = parser.parse_args()
    command = "python bench/demo.py" + (" --write" if args.write else "")
    saved = OUT / "demo-build.json"
    if args.from_json:
        doc = json.loads(saved.read_text())
        runs = [Run(**{**r, "lines": [tuple(x) for x in r["lines"]]}) for r in doc["runs"]]
        text = section(*runs, doc["loads"], args.note or doc["note"], doc["command"])
        print(text)
        if args.write:
            write_section(text)
        return

    project = Path(tempfile.mkdtemp(prefix="atlas-demo-bench-"))
    OUT.mkdir(parents=True, exist_ok=True)
    loads = {"before": load()}
    try:
        copy_project(project)
        print(f"project: {project}", file=sys.stderr)
        cold = run_atlas(project, "build")
        loads["cold"] = load()
        (OUT / "demo-build-cold.log").write_text(cold.text())
        warm = run_atlas(project, "build")
        loads["warm"] = load()
        (OUT / "demo-build-warm.log").write_text(warm.text())
        quality = run_atlas(project, "quality", "--check")
    finally:
        if not args.keep:
            shutil.rmtree(project, ignore_errors=True)
    doc = {"runs": [dataclasses.asdict(r) for r in (cold, warm, quality)], "loads": loads}
    saved.write_text(json.dumps({**doc, "note": args.note, "command": command}))
    text = section(cold, warm, quality, loads, args.note, command)
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
