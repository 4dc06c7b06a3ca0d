"""Every use of pytest-benchmark's private internals, in one place.

pytest-benchmark has no public API for what devicebench needs around its fixture and its
session: rounds that end when the median is known, a call of several steps that its
statistics count per step, its session's storage and saving options, the JSON it writes, a
result to discard. Each of those touches an attribute pytest-benchmark does not document;
they are all here, so that the next upgrade of pytest-benchmark is mended in one module.
Checked against pytest-benchmark 4.0 to 5.3 (``fixture.py``, ``session.py``, ``stats.py``).
"""

from __future__ import annotations

import cProfile
import os
import pstats
import shlex
from typing import Any, Callable

import pytest

from .timing import StopRounds

# pytest-benchmark's default storage; when it is still this, the user did not choose one.
DEFAULT_STORAGE = "file://./.benchmarks"


class BenchmarkLoop:
    """pytest-benchmark's ``benchmark`` fixture as :class:`devicebench.timing.Loop`."""

    def __init__(self, benchmark):
        self.benchmark = benchmark

    @property
    def info(self) -> dict:
        return self.benchmark.extra_info

    @property
    def disabled(self) -> bool:
        return bool(getattr(self.benchmark, "disabled", False))

    def run(self, round_call: Callable[[], Any], *, before_round: Callable[[], None], rounds: int, calls_per_round: int) -> None:
        """Time ``round_call`` through the fixture's ``pedantic`` until ``before_round`` raises
        :class:`~devicebench.timing.StopRounds` or ``rounds`` rounds are done.

        Only ``round_call`` is inside pytest-benchmark's timer: ``before_round`` is its untimed
        ``setup``, so whatever runs between rounds (a stop rule, sensors, progress, events) is
        never timed. A round of ``calls_per_round`` calls is one call to pytest-benchmark
        (``iterations=1``, since it takes no ``setup`` with ``iterations``), and its statistics
        divide each round by ``calls_per_round`` (``Metadata.iterations``, as for its own loops),
        so the stored figures are per call. Rounds ended early skip pytest-benchmark's
        ``--benchmark-cprofile`` block, so the profile is taken here as it would take it.
        """
        benchmark, first = self.benchmark, True

        def setup() -> None:
            nonlocal first
            if first:  # pedantic has made its statistics; from now on they count per call
                benchmark.stats.iterations = calls_per_round
                first = False
            before_round()

        try:
            benchmark.pedantic(round_call, setup=setup, rounds=rounds, warmup_rounds=0, iterations=1)
            return
        except StopRounds:
            benchmark.has_error = False  # pedantic marks any exception; this one only ends the rounds
        if benchmark.cprofile:
            profile = cProfile.Profile()
            for _ in range(getattr(benchmark, "cprofile_loops", None) or 1):
                before_round()
                profile.runcall(round_call)
            if hasattr(benchmark, "_save_cprofile"):  # 5.x: also dumps it where --benchmark-cprofile-dump says
                benchmark._save_cprofile(profile)
            else:
                benchmark.stats.cprofile_stats = pstats.Stats(profile)

    def round_seconds(self) -> list[float]:
        """The timed rounds so far, per call, as pytest-benchmark stores them; [] before the first."""
        stats = getattr(self.benchmark, "stats", None)
        return list(stats.stats.data) if stats else []


def mark_failed(benchmark) -> None:
    """The benchmark's result is not one: pytest-benchmark then neither shows nor stores it."""
    benchmark.has_error = True


def session_of(config: pytest.Config):
    """pytest-benchmark's ``BenchmarkSession`` (its storage, saving options and logger), or None."""
    return getattr(config, "_benchmarksession", None)


def explicit_option(config: pytest.Config, flag: str) -> bool:
    """Whether ``flag`` (``--benchmark-min-rounds``) was given on this command line, in
    ``PYTEST_ADDOPTS`` or in the ini file's ``addopts``: a value equal to pytest-benchmark's
    default is still the user's choice."""
    args = [*config.getini("addopts"), *shlex.split(os.environ.get("PYTEST_ADDOPTS", "")), *config.invocation_params.args]
    return any(str(arg) == flag or str(arg).startswith(flag + "=") for arg in args)
