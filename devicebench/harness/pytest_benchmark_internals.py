"""Every use of pytest-benchmark's private internals, in one place.

pytest-benchmark has no public API for what devicebench needs around its fixture and its
session: rounds that end when the median is known, a call of several steps that its
statistics count per step, its session's storage and saving options, the JSON it writes, a
result to discard. Each of those touches an attribute pytest-benchmark does not document;
they are all here, so that the next upgrade of pytest-benchmark is mended in one module.
Read against pytest-benchmark 5.2 and 5.3 (``fixture.py``, ``session.py``, ``stats.py``), the
versions the tests run on.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import shlex
from typing import Any, Callable

import pytest
from pytest_benchmark.utils import get_tag

from devicebench.measure.timing import StopRounds


class BenchmarkLoop:
    """pytest-benchmark's ``benchmark`` fixture as :class:`devicebench.measure.timing.Loop`."""

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
        :class:`~devicebench.measure.timing.StopRounds` or ``rounds`` rounds are done.

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
        """The timed rounds so far, per call: pytest-benchmark's own list (read between rounds, so
        not copied), [] before the first."""
        stats = getattr(self.benchmark, "stats", None)
        return stats.stats.data if stats else []


def mark_failed(benchmark) -> None:
    """The benchmark's result is not one: pytest-benchmark then neither shows nor stores it."""
    benchmark.has_error = True


class Saving:
    """What pytest-benchmark's session will save, and where: the attributes of its
    ``BenchmarkSession`` (``config._benchmarksession``) that devicebench reads and sets."""

    def __init__(self, session):
        self.session = session

    @classmethod
    def of(cls, config: pytest.Config) -> Saving | None:
        """The session's saving, or None where nothing is timed (no plugin, disabled, skipped)."""
        session = getattr(config, "_benchmarksession", None)
        if session is None or session.disabled or session.skip:
            return None
        return cls(session)

    @property
    def saves(self) -> bool:
        """``--benchmark-save`` or ``--benchmark-autosave`` was given (or set here)."""
        return bool(self.session.save or self.session.autosave)

    @property
    def only(self) -> bool:
        return bool(self.session.only)

    @property
    def json_path(self) -> str | None:
        return self.session.json or None

    @property
    def logger(self):
        return self.session.logger

    @property
    def machine_id(self) -> str:
        return self.session.machine_id

    @property
    def storage(self):
        return self.session.storage

    @storage.setter
    def storage(self, storage) -> None:
        self.session.storage = storage

    def save_nothing(self) -> None:
        self.session.autosave = self.session.save = self.session.json = None

    def save_under_tag(self, project_name: str | None) -> None:
        """Save as ``--benchmark-autosave`` would: under the commit id, the time, "uncommitted-changes" if dirty."""
        self.session.autosave = get_tag(project_name)

    def keep_raw_rounds(self) -> None:
        """Every round's time in the saved run (``--benchmark-save-data``)."""
        self.session.save_data = True

    def write_json_with(self, write: Callable[[dict], None]) -> None:
        """``--benchmark-json`` written by ``write(output_json)`` instead of pytest-benchmark's own
        ``save_json`` (it gives no class to subclass there: the session's method is replaced)."""
        self.session.save_json = write


def explicit_option(config: pytest.Config, flag: str) -> bool:
    """Whether ``flag`` (``--benchmark-min-rounds``) was given on this command line, in
    ``PYTEST_ADDOPTS`` or in the ini file's ``addopts``: a value equal to pytest-benchmark's
    default is still the user's choice."""
    args = [*config.getini("addopts"), *shlex.split(os.environ.get("PYTEST_ADDOPTS", "")), *config.invocation_params.args]
    return any(str(arg) == flag or str(arg).startswith(flag + "=") for arg in args)
