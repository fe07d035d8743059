"""The progress reporter: counts, rate, ETA; redraw on a terminal, periodic lines in a log."""

from __future__ import annotations

import io

from generator.atlas.progress import Progress, format_duration


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_durations() -> None:
    assert [format_duration(s) for s in (0, 59.4, 75, 3725, float("inf"), -1)] == [
        "0s",
        "59s",
        "1m15s",
        "1h02m",
        "?",
        "?",
    ]


def test_rate_and_eta_count_only_this_runs_work() -> None:
    clock, stream = Clock(), io.StringIO()
    progress = Progress(stream, clock=clock, log_interval=10)
    task = progress.task("collect mixed4c", total=1000, done=400)  # resumed at 400
    clock.now = 10.0
    task.advance(100)  # 100 images in 10 s: 10/s, 500 left: 50 s
    assert task.line() == "collect mixed4c: 500/1,000 images  10.0 images/s  ETA 50s"
    clock.now = 15.0
    task.advance(50)  # within the log interval: no new line
    task.close()
    lines = stream.getvalue().splitlines()
    assert lines == [
        "collect mixed4c: 500/1,000 images  10.0 images/s  ETA 50s",
        "collect mixed4c: 550/1,000 images in 15s (10.0 images/s)",
    ]


def test_a_terminal_line_is_redrawn_in_place_and_silence_is_silent() -> None:
    clock, term = Clock(), Terminal()
    progress = Progress(term, clock=clock, interval=0.5)
    task = progress.task("x", total=4, unit="img")
    for _ in range(4):
        clock.now += 1
        task.advance()
    progress.message("done")
    text = term.getvalue()
    assert text.count("\r\x1b[K") == 5 and text.endswith("done\n")
    quiet = io.StringIO()
    silent = Progress(quiet, enabled=False)
    silent.task("x", total=1).advance()
    silent.message("hello")
    assert quiet.getvalue() == ""
