"""What a comparison says, as data: its settings, a verdict per benchmark, what the machine did,
and the whole comparison. :mod:`devicebench.reading.compare` computes these; ``render`` and
``report`` only read them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

HARDWARE_KEYS = ("cpu_model", "cpu_threads", "cpu_detail", "gpu_models", "gpu_count", "nodes")
SOFTWARE_KEYS = ("torch", "torchvision", "cuda", "cudnn", "nvidia_driver", "python")

FASTER, SLOWER, UNCHANGED, INCONCLUSIVE = "faster", "slower", "unchanged", "inconclusive"
NOT_COMPARABLE, ADDED, REMOVED, FAILED = "not comparable", "added", "removed", "failed"
CEILING = "ceiling"  # the workload whose benchmarks measure the machine, not the code


@dataclass(frozen=True)
class Settings:
    # The smallest slowdown worth failing a change for. The whole 95% interval must clear
    # it, so a slowdown is caught reliably only when it is well past it: at the 2-core
    # machine's spread, 7 runs a side catch a 15% slowdown (docs/comparing.md, "How often the gate is wrong").
    threshold: float = 0.05
    alpha: float = 0.05  # family-wise: the chance that a comparison of unchanged code shows any regression
    accuracy_drop: float = 0.01  # one point of validation accuracy
    # A new torch, CUDA, cuDNN, driver or Python between the runs is not the change under
    # test: its slowdowns are the environment's unless the user says the change is that.
    allow_env_change: bool = False
    # Stored runs needed to estimate the run-to-run spread for one run a side.
    min_history: int = 5
    # Instructions per call (--bench-instructions) differ between runs of unchanged code by far
    # less than this (measured: docs/comparing.md, "Exact work"): a change beyond it is the code's.
    instruction_threshold: float = 0.01
    # A step that now syncs, copies or computes more fails the gate unless the change means to.
    allow_more_work: bool = False

    @property
    def margin(self) -> float:
        """The threshold on the log scale, where ratios are differences."""
        return math.log1p(self.threshold)


@dataclass(frozen=True)
class TimeVerdict:
    name: str
    fullname: str
    status: str
    baseline_s: float | None = None  # median of the side's run medians
    candidate_s: float | None = None
    p_value: float | None = None  # one-sided, in the direction of the change, before Holm
    method: str = ""
    note: str = ""
    ratio: float | None = None  # candidate / baseline: the Hodges-Lehmann or mean estimate, else the medians' ratio
    ratio_low: float | None = None  # its 95% interval
    ratio_high: float | None = None
    p_adjusted: float | None = None  # Holm-adjusted over the comparison's benchmarks
    baseline_runs: tuple[float, ...] = ()  # every run's median, seconds
    candidate_runs: tuple[float, ...] = ()
    relative_to_ceiling: bool = False  # judged on median / the run's ceilings (the machine moved)
    raw_ratio: float | None = None  # the medians' ratio before any ceiling adjustment
    spread: float | None = None  # run-to-run standard deviation of log medians behind the interval
    runs_needed: int | None = None  # runs a side to catch a slowdown of twice the threshold at that spread
    reference: bool = False  # a ceiling: the machine's figure, never a regression
    environment_changed: bool = False
    noisy_runs: tuple[int, int] = (0, 0)  # runs a side whose rounds stopped before the median was known
    throttled_runs: tuple[int, int] = (0, 0)  # runs a side with rounds taken while the GPU was throttled
    recompiled_runs: tuple[int, int] = (0, 0)  # runs a side whose compiled step recompiled inside its timed rounds

    @property
    def is_regression(self) -> bool:
        return self.status in (SLOWER, FAILED) and not self.reference


@dataclass(frozen=True)
class QualityChange:
    name: str
    metric: str
    baseline: float
    candidate: float
    note: str


@dataclass(frozen=True)
class WorkVerdict:
    """What changed in one benchmark's exact work (counted, so one run a side decides), and its instructions."""

    name: str
    fullname: str
    changes: tuple[str, ...] = ()  # what the step now does differently, in words, the largest first
    headline: str = ""  # the first change in a few words ("host reads 20 -> 520")
    more_work: tuple[str, ...] = ()  # counters the gate fails on that grew (host_reads, h2d_bytes, flops, ...)
    note: str = ""  # why the work was not set side by side
    instructions: tuple[int, int] | None = None  # per call, baseline and candidate (--bench-instructions)
    instruction_status: str = ""  # slower, faster, unchanged, inconclusive
    instruction_note: str = ""
    allowed: bool = False  # --allow-more-work: reported, not failed

    @property
    def instruction_ratio(self) -> float | None:
        return self.instructions[1] / self.instructions[0] if self.instructions else None

    @property
    def is_regression(self) -> bool:
        return (bool(self.more_work) and not self.allowed) or self.instruction_status == SLOWER

    @property
    def summary(self) -> str:
        """One line: the instructions' change and the work's first change."""
        parts = []
        if self.instructions:
            parts.append(f"instructions {self.instruction_ratio:.4f}x ({self.instruction_status})")
        if self.changes:
            parts.append(self.changes[0])
        return "; ".join(parts)


@dataclass(frozen=True)
class MachineMove:
    """How a device's ceilings moved between the sides: candidate over baseline, ratios of medians."""

    device: str
    ratio: float  # geometric mean over the ceilings
    ceilings: dict[str, float]  # each ceiling's own ratio
    moved: bool  # beyond the threshold: workloads on this device are judged relative to the ceilings


@dataclass
class Comparison:
    verdicts: list[TimeVerdict]
    quality: list[QualityChange]
    hardware_diff: list[tuple[str, object, object]]
    software_changes: list[tuple[str, object, object]]
    warnings: list[str] = field(default_factory=list)
    # Benchmarks whose accuracy, loss and memory were not judged, and why (other epochs, data, batch).
    quality_not_comparable: list[tuple[str, str]] = field(default_factory=list)
    allow_env_change: bool = False
    machine: list[MachineMove] = field(default_factory=list)
    procedure: str = ""
    runs: tuple[int, int] = (1, 1)  # runs a side
    history_runs: int = 0
    threshold: float = 0.05  # the change a verdict must clear (Settings.threshold)
    work: list[WorkVerdict] = field(default_factory=list)  # exact work, read first: one run a side decides it

    def work_of(self, fullname: str) -> WorkVerdict | None:
        for w in self.work:
            if w.fullname == fullname:
                return w
        return None

    @property
    def unconfirmed(self) -> list[tuple[str, str, float]]:
        """Inconclusive benchmarks whose ratio lies beyond the threshold: (name, "slowdown" or
        "speed-up", ratio). The evidence does not confirm them, and does not rule them out."""
        found = []
        for v in self.verdicts:
            if v.status != INCONCLUSIVE or v.reference or v.ratio is None:
                continue
            if v.ratio > 1 + self.threshold:
                found.append((v.name, "slowdown", v.ratio))
            elif v.ratio < 1 / (1 + self.threshold):
                found.append((v.name, "speed-up", v.ratio))
        return found

    @property
    def environment_changed(self) -> bool:
        """Software differs between the runs, and the user did not say that is the change under test."""
        return bool(self.software_changes) and not self.allow_env_change

    def _worse(self) -> list[str]:
        slow = [f"{v.name} ({v.status})" for v in self.verdicts if v.is_regression]
        work = [f"{w.name} ({'more instructions' if w.instruction_status == SLOWER else 'more work: ' + ', '.join(w.more_work)})" for w in self.work if w.is_regression]
        return slow + work + [f"{q.name} ({q.metric})" for q in self.quality]

    @property
    def regressions(self) -> list[str]:
        """What got slower or worse and is the change's: nothing, when the environment changed under it."""
        return [] if self.environment_changed else self._worse()

    @property
    def environment_regressions(self) -> list[str]:
        """What got slower or worse while the environment changed: not attributable to the change."""
        return self._worse() if self.environment_changed else []

    @property
    def inconclusive(self) -> list[str]:
        return [v.name for v in self.verdicts if v.status == INCONCLUSIVE and not v.reference]

    @property
    def compared(self) -> int:
        """Benchmarks that got a verdict on their times (whatever it was)."""
        return sum(1 for v in self.verdicts if v.status in (FASTER, SLOWER, UNCHANGED, INCONCLUSIVE, FAILED))
