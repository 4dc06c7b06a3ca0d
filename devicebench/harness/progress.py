"""Progress lines for long benchmarks: which one, which round, seconds so far.

A CPU round at seed size takes seconds to minutes; without a sign of life a user cannot
tell a slow machine from a hung one. Lines go to the terminal past pytest's output capture,
never more often than every ``every_s`` seconds and only once a benchmark has run that long,
so fast benchmarks print nothing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


class Progress:
    def __init__(self, config, name: str, every_s: float = 5.0):
        self._reporter = config.pluginmanager.get_plugin("terminalreporter") if config else None
        self._capture = config.pluginmanager.get_plugin("capturemanager") if config else None
        self._name = name
        self._every_s = every_s
        self._start = time.perf_counter()
        self._last = self._start

    def update(self, phase: str, done: int, total: int | None = None, half_width: float | None = None) -> None:
        """``round 12/30``, or ``round 12, median known to +-3.1%`` where the rounds stop when it is known."""
        now = time.perf_counter()
        if now - self._last < self._every_s:
            return
        self._last = now
        count = f"{done}/{total}" if total else str(done)
        known = f", median known to +-{half_width:.1%}" if half_width is not None else ""
        self.write(f"{self._name}: {phase} {count}{known}, {now - self._start:.0f} s so far")

    def write(self, text: str) -> None:
        if self._reporter is None:
            return
        if self._capture is not None:
            with self._capture.global_and_fixture_disabled():
                self._write_line(f"  ... {text}")
        else:
            self._write_line(f"  ... {text}")

    def _write_line(self, line: str) -> None:
        """A line of its own, and pytest's progress line carried on below it: the file's name
        (the test's, with ``-v``) is written again, so the test's outcome and the percentage
        stay on a line that names it."""
        reporter = self._reporter
        current = getattr(reporter, "currentfspath", None)
        reporter.write_line(line)
        if isinstance(current, Path):  # without -v: the file's name
            reporter.write(os.path.relpath(current, reporter.startpath) + " ")
            reporter.currentfspath = current
        elif isinstance(current, str):  # with -v: the test's name
            reporter.write(current)
            reporter.currentfspath = current
