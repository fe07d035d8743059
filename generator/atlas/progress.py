"""A small progress reporter for long stages: counts, items per second and ETA on stderr.

On a terminal one line is redrawn in place (at most every ``interval`` seconds); into a file or
pipe a line is written every ``log_interval`` seconds, so CI logs stay short. Pass
``Progress(enabled=False)`` to silence it (tests, library use).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import TextIO


def format_duration(seconds: float) -> str:
    """``75`` -> ``1m15s``; ``3725`` -> ``1h02m``; unknown (inf/nan) -> ``?``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


class Task:
    """One counted piece of work (``advance`` as items finish, ``close`` at the end).

    The rate counts only items done by this process, so a resumed run's ETA is honest;
    ``note`` (e.g. the workers of a cluster) ends every line.
    """

    def __init__(
        self, progress: Progress, label: str, total: int, unit: str, done: int = 0
    ) -> None:
        self.progress = progress
        self.label = label
        self.total = total
        self.unit = unit
        self.done = done
        self._start_done = done
        self._start = progress.clock()
        self._last_draw = float("-inf")
        self.note = ""

    @property
    def rate(self) -> float:
        """Items per second since this task started (0 before any time passed)."""
        elapsed = self.progress.clock() - self._start
        return (self.done - self._start_done) / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        rate = self.rate
        remaining = (self.total - self.done) / rate if rate > 0 else float("inf")
        return (
            f"{self.label}: {self.done:,}/{self.total:,} {self.unit}  "
            f"{rate:,.1f} {self.unit}/s  ETA {format_duration(remaining)}{self._note()}"
        )

    def _note(self) -> str:
        return f"  {self.note}" if self.note else ""

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = self.progress.clock()
        if now - self._last_draw >= self.progress.draw_interval:
            self._last_draw = now
            self.progress.draw(self.line())

    def close(self) -> None:
        elapsed = self.progress.clock() - self._start
        self.progress.draw(
            f"{self.label}: {self.done:,}/{self.total:,} {self.unit} in "
            f"{format_duration(elapsed)} ({self.rate:,.1f} {self.unit}/s){self._note()}",
            final=True,
        )


class Progress:
    """Where stages report what they do.

    Args:
        stream: defaults to ``sys.stderr``.
        enabled: False discards everything.
        interval: seconds between redraws on a terminal.
        log_interval: seconds between lines when the stream is not a terminal.
        clock: a monotonic clock (injectable for tests).
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        enabled: bool = True,
        interval: float = 0.5,
        log_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.clock = clock
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.draw_interval = interval if self.tty else log_interval
        self._open_line = False

    def message(self, text: str) -> None:
        """A one-off line (a stage starting, a cache hit, a summary)."""
        self.draw(text, final=True)

    def task(self, label: str, total: int, unit: str = "images", done: int = 0) -> Task:
        return Task(self, label, total, unit, done)

    def draw(self, text: str, *, final: bool = False) -> None:
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\r\x1b[K" + text + ("\n" if final else ""))
            self._open_line = not final
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
