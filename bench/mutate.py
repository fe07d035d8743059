"""Mutation testing of the modules that compute what readers see (issue 17; ``make mutate``).

    python bench/mutate.py                          # every module of MODULES, one at a time
    python bench/mutate.py grid layout              # some of them (short names or paths)
    python bench/mutate.py build --functions _json_key _atlas_key
    python bench/mutate.py grid --retest            # only the mutants not killed so far
    python bench/mutate.py --report                 # the table of the last runs, runs nothing
    python bench/mutate.py --list                   # the modules and the mutant globs

mutmut 3 (configured in pyproject.toml ``[tool.mutmut]``) copies ``generator/`` and the tests
into ``mutants/``, writes every mutant of the ``only_mutate`` files there behind a trampoline,
records which selected tests reach which function, then runs, per mutant, only those tests
(fastest first, stopping at the first failure). This script runs ``mutmut run <glob>`` for one
module at a time (``nice``d, ``--max-children`` workers), then reads the verdicts mutmut
leaves in ``mutants/<path>.meta`` and prints one Markdown row per module: mutants, killed,
survived, timeout, no tests (no selected test reaches the function), score. The score is
``(killed + timeout) / (mutants - skipped)``, as mutmut's own badge computes it. With
``--survivors`` it also prints the diff of every surviving mutant (``mutmut show``). The
tables are appended to ``bench/out/mutate.md``.

Verdicts are also kept in ``bench/out/mutate-verdicts.json`` (mutmut forgets every verdict when
its test selection changes). ``--unchecked`` runs only the mutants without a verdict yet (an interrupted run goes on where it
stopped); ``--retest`` runs again only the mutants not killed so far: after
adding tests, the killed ones stay killed (tests were only added), so this gives the new score
in a fraction of the time; run without it after changing the modules themselves.

Before the modules, ``--check`` (on by default) makes sure the mutated copy is what the tests
import, not the editable install of ``generator/``: it runs one known-breaking mutant and
stops unless it is killed.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
MUTANTS = ROOT / "mutants"
RECORD = OUT / "mutate-verdicts.json"

#: Short name -> source file (the ``only_mutate`` list of pyproject.toml's ``[tool.mutmut]``).
MODULES = {
    "grid": "generator/atlas/grid.py",
    "attribute": "generator/atlas/attribute.py",
    "layout": "generator/atlas/layout.py",
    "patch_results": "generator/experiments/results.py",
    "tourquery": "generator/site/blocks/tourquery.py",
    "build": "generator/site/build.py",
    "publish": "generator/tiles/publish.py",
}

#: The functions whose mutants a plain run tests (``--everything``: all of each module's). On
#: the project's shared 2-core machine a mutant costs ~10 s under load (mutmut niced, each
#: mutant a forked pytest run), so a plain run covers the functions that compute what a reader
#: sees: layout normalization and the exact neighbours UMAP is given (not the UMAP / t-SNE
#: calls), the statistics of an experiment, the rectangle of a tour query, the change detection
#: of the incremental build, viewer.json and its cells blocks. Grids and attribution (the torch
#: passes, the readout and the per-class reference): every function.
FOCUS: dict[str, tuple[str, ...]] = {
    "generator/atlas/layout.py": (
        "default_layout_params",
        "normalize_axes",
        "_distinct",
        "exact_neighbors",
    ),
    "generator/experiments/results.py": ("flip_statistics",),
    "generator/site/blocks/tourquery.py": ("_result", "_tidy"),
    "generator/site/build.py": ("_atlas_key", "_intact_atlas", "_json_key", "_unchanged"),
    "generator/tiles/publish.py": ("viewer_manifest", "cells_blocks"),
}

#: A mutant that must be killed if the tests import the mutated copy: ``assign_bins``'s
#: ``size < 1`` check turned into ``size <= 1`` (its first mutant; a 1x1 grid then raises).
CHECK_MUTANT = "generator.atlas.grid.x_assign_bins__mutmut_1"

#: mutmut's exit code -> verdict (mutmut/stats.py ``status_by_exit_code``; others: suspicious).
STATUS = {
    1: "killed",
    3: "killed",
    0: "survived",
    5: "no tests",
    33: "no tests",
    34: "skipped",
    35: "suspicious",
    36: "timeout",
    37: "killed",  # caught by the type checker (only with type_check_command)
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    None: "not checked",
}


@dataclass(frozen=True)
class Score:
    """The verdicts of one module's mutants."""

    module: str
    total: int
    killed: int
    survived: int
    timeout: int
    no_tests: int
    other: int  # not checked, suspicious, segfault
    skipped: int
    survivors: tuple[str, ...]

    @property
    def score(self) -> float:
        tested = self.total - self.skipped
        return (self.killed + self.timeout) / tested if tested else 0.0

    def row(self) -> str:
        return (
            f"| {self.module} | {self.total} | {self.killed} | {self.survived} | {self.timeout}"
            f" | {self.no_tests} | {self.other} | {100 * self.score:.1f}% |"
        )


HEADER = (
    "| module | mutants | killed | survived | timeout | no tests | other | score |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|"
)


def dotted(path: str) -> str:
    """``generator/atlas/grid.py`` -> ``generator.atlas.grid`` (mutmut's module names)."""
    return path.removesuffix(".py").replace("/", ".")


def globs(path: str, functions: list[str]) -> list[str]:
    """mutmut's mutant-name patterns for ``path``: every mutant, or those of ``functions``
    (plain functions ``x_<name>``, methods ``xǁ<Class>ǁ<name>``; ``Class.name`` also works)."""
    module = dotted(path)
    if not functions:
        return [f"{module}.*"]
    patterns = []
    for name in functions:
        cls, _, func = name.rpartition(".")
        if cls:
            patterns.append(f"{module}.xǁ{cls}ǁ{func}__mutmut_*")
        else:
            patterns += [f"{module}.x_{func}__mutmut_*", f"{module}.xǁ*ǁ{func}__mutmut_*"]
    return patterns


def resolve(name: str) -> str:
    if name in MODULES:
        return MODULES[name]
    if name in MODULES.values():
        return name
    raise SystemExit(f"unknown module {name!r}: one of {', '.join(MODULES)} (or their paths)")


def mutmut_command() -> list[str]:
    """The venv's ``mutmut`` script (``python -m mutmut`` re-executes mutmut's main module)."""
    script = Path(sys.executable).parent / "mutmut"
    if not script.is_file():
        raise SystemExit("mutmut is not installed: pip install 'mutmut>=3.8,<4' (or make mutate)")
    return [str(script)]


def run_mutmut(patterns: list[str], children: int, niceness: int) -> int:
    command = [*mutmut_command(), "run", "--max-children", str(children), *patterns]
    if niceness and shutil.which("nice"):
        command = ["nice", "-n", str(niceness), *command]
    print("$", " ".join(command), flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    return subprocess.call(command, cwd=ROOT, env=env)


def verdicts(path: str) -> dict[str, int | None]:
    """Mutant name -> exit code, from ``mutants/<path>.meta`` (empty before the first run)."""
    meta = MUTANTS / f"{path}.meta"
    if not meta.is_file():
        return {}
    codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    return codes


def load_record() -> dict[str, dict[str, int]]:
    return json.loads(RECORD.read_text()) if RECORD.is_file() else {}


def remember(path: str, names: list[str]) -> dict[str, int | None]:
    """Merge mutmut's verdicts of ``names`` into the record; the module's recorded verdicts
    (mutants mutmut no longer generates are dropped)."""
    record = load_record()
    current = verdicts(path)
    kept = {n: c for n, c in record.get(path, {}).items() if n in current}
    kept.update({n: current[n] for n in names if current.get(n) is not None})  # type: ignore[misc]
    record[path] = kept
    OUT.mkdir(parents=True, exist_ok=True)
    RECORD.write_text(json.dumps(record, indent=1, sort_keys=True))
    return {n: kept.get(n) for n in current}


def matching(names: object, patterns: list[str]) -> list[str]:
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]  # type: ignore[attr-defined]


def not_killed(path: str, patterns: list[str], *, rerun_survivors: bool = True) -> list[str]:
    """The mutants of ``patterns`` whose recorded verdict is not killed or timeout (and, without
    ``rerun_survivors``, those without any verdict)."""
    record = load_record().get(path, {})
    done = ("killed", "timeout") if rerun_survivors else ("killed", "timeout", "survived")
    return [n for n in matching(verdicts(path), patterns) if STATUS.get(record.get(n)) not in done]


def score(path: str, patterns: list[str], label: str) -> Score:
    record = load_record().get(path, {})
    codes = {name: record.get(name) for name in matching(verdicts(path), patterns)}
    counts = {"killed": 0, "survived": 0, "timeout": 0, "no tests": 0, "skipped": 0}
    other = 0
    for code in codes.values():
        status = STATUS.get(code, "other")
        if status in counts:
            counts[status] += 1
        else:
            other += 1
    survivors = tuple(sorted(n for n, c in codes.items() if STATUS.get(c) == "survived"))
    return Score(
        label,
        len(codes),
        counts["killed"],
        counts["survived"],
        counts["timeout"],
        counts["no tests"],
        other,
        counts["skipped"],
        survivors,
    )


def show(name: str) -> str:
    result = subprocess.run(
        [*mutmut_command(), "show", name], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return result.stdout.strip()


def check_isolation(children: int, niceness: int) -> None:
    """Stop unless a known-breaking mutant is killed (the tests import the mutated copy)."""
    run_mutmut([CHECK_MUTANT], children, niceness)
    code = verdicts(MODULES["grid"]).get(CHECK_MUTANT)  # not recorded: it is rerun each time
    if STATUS.get(code) != "killed":
        raise SystemExit(
            f"isolation check failed: {CHECK_MUTANT} was {STATUS.get(code, code)!r}, not killed;"
            " the tests may import the original generator/ instead of mutants/generator/"
        )
    print(f"isolation check: {CHECK_MUTANT} killed (the tests import mutants/generator/)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("modules", nargs="*", help=f"short names ({', '.join(MODULES)}) or paths")
    parser.add_argument("--functions", nargs="+", default=[], help="only these functions' mutants")
    parser.add_argument(
        "--everything", action="store_true", help="every function of the modules (see FOCUS)"
    )
    parser.add_argument("--max-children", type=int, default=1, help="parallel mutants (default 1)")
    parser.add_argument("--nice", type=int, default=10, help="niceness of mutmut (default 10)")
    parser.add_argument(
        "--report", action="store_true", help="print the last verdicts, run nothing"
    )
    parser.add_argument("--retest", action="store_true", help="run only mutants not killed so far")
    parser.add_argument(
        "--unchecked", action="store_true", help="run only mutants without a recorded verdict"
    )
    parser.add_argument("--no-check", action="store_true", help="skip the isolation check")
    parser.add_argument("--survivors", action="store_true", help="print each survivor's diff")
    parser.add_argument("--list", action="store_true", help="print modules and globs, run nothing")
    args = parser.parse_args(argv)
    chosen = [resolve(m) for m in args.modules] or list(MODULES.values())
    if args.functions and len(chosen) != 1:
        parser.error("--functions needs exactly one module")
    labels = {path: name for name, path in MODULES.items()}
    if args.list:
        for path in chosen:
            functions = args.functions or ([] if args.everything else list(FOCUS.get(path, ())))
            print(f"{labels[path]:<14} {path:<34} {' '.join(globs(path, functions))}")
        return 0
    rows: list[tuple[Score, float]] = []
    if not args.report and not args.no_check:
        check_isolation(args.max_children, args.nice)
    for path in chosen:
        functions = args.functions or ([] if args.everything else list(FOCUS.get(path, ())))
        patterns = globs(path, functions)
        plural = "" if len(functions) == 1 else "s"
        label = labels[path] + (f" ({len(functions)} function{plural})" if functions else "")
        start = time.perf_counter()
        if not args.report:
            names = patterns
            if args.retest or args.unchecked:
                names = not_killed(path, patterns, rerun_survivors=args.retest)
            if names:
                rc = run_mutmut(names, args.max_children, args.nice)
                if rc != 0:
                    print(f"mutmut exited with {rc} on {path}", file=sys.stderr)
                    return rc
        remember(path, matching(verdicts(path), patterns))
        rows.append((score(path, patterns, label), time.perf_counter() - start))
    lines = [HEADER, *(s.row() for s, _ in rows)]
    if not args.report:
        lines += ["", "wall: " + ", ".join(f"{s.module} {w:.0f} s" for s, w in rows)]
    for s, _ in rows:
        if s.survivors:
            lines += ["", f"survivors of {s.module}: " + " ".join(s.survivors)]
            if args.survivors:
                lines += ["```diff", *(show(n) for n in s.survivors), "```"]
    text = "\n".join(lines)
    print(text)
    if not args.report:
        OUT.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        with (OUT / "mutate.md").open("a") as log:
            log.write(f"\n## {stamp}: {' '.join(sys.argv[1:]) or '(all)'}\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
