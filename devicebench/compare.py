"""Did a change make anything slower? Pure functions from two sides of runs to verdicts; no printing.

**The run is the unit of evidence.** Rounds of one process agree with each other far better
than with the next process's (10-20% apart on a shared 2-core machine), so a test over the
rounds of one run a side answers "did these two processes differ", not "did the code get
slower". Each run contributes one number per benchmark, its median; the rounds give that
median and its interval, nothing more. The evidence is then one of:

- several runs a side: the Hodges-Lehmann shift of the candidate's log run medians from the
  baseline's, with its distribution-free interval and Mann-Whitney p-values;
- one run a side (or one against several) with stored history: at least ``min_history``
  earlier runs of the same hardware fingerprint, size and software give the run-to-run
  spread, and a t interval is built on it (not distribution-free: its error rates are the
  ones measured, see README);
- neither: **inconclusive** ("one run a side, no history"), never a p-value from rounds.

**A regression** ("slower") needs both a real size and evidence: the whole 95% interval of
the ratio candidate / baseline above ``1 + threshold``, and the one-sided p-value of a
slowdown, adjusted by Holm's procedure over every benchmark of the comparison, below
``alpha``. The stated alpha is family-wise: on unchanged code, the chance that a
comparison shows any regression at all. "faster" is the mirror image; "unchanged" means the
interval lies within the threshold both ways; anything else is **inconclusive**, with how
many runs a side would decide it at the spread seen.

**Failures count**: a benchmark that failed in any candidate run is a regression; one that
failed only in the baseline is not comparable. **The machine moved, not the code**: the
ceilings (``test_ceiling``) are reference kernels no change to this project can slow. They
are never regressions; when every ceiling of a device moved between the sides by more than
the threshold, and the same way, the comparison says so first and judges every workload on
that device relative to its ceilings (each run's median over the geometric mean of the
same run's ceilings), so what is left is the code's. Otherwise workloads are judged as
measured: dividing by a ceiling adds the ceiling's own noise (it tripled the matmul's
run-to-run spread on the 2-core machine).

What the benchmarks learned and used is compared too (validation accuracy, loss, peak
memory), between results of the same training only. Benchmarks skipped on one side are
"not comparable" with the recorded reason; present on one side only, for no recorded
reason, they are "added" or "removed".
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from . import quality as _quality_mod
from . import schema, stats, work
from .runs import Result, Run, as_run

HARDWARE_KEYS = ("cpu_model", "cpu_threads", "cpu_detail", "gpu_models", "gpu_count", "nodes")
SOFTWARE_KEYS = ("torch", "torchvision", "cuda", "cudnn", "nvidia_driver", "python")

FASTER, SLOWER, UNCHANGED, INCONCLUSIVE = "faster", "slower", "unchanged", "inconclusive"
NOT_COMPARABLE, ADDED, REMOVED, FAILED = "not comparable", "added", "removed", "failed"
CEILING = "ceiling"  # the workload whose benchmarks measure the machine, not the code


@dataclass(frozen=True)
class Settings:
    # The smallest slowdown worth failing a change for. The whole 95% interval must clear
    # it, so a slowdown is caught reliably only when it is well past it: at the 2-core
    # machine's spread, 7 runs a side catch a 15% slowdown (README, "How often the gate is wrong").
    threshold: float = 0.05
    alpha: float = 0.05  # family-wise: the chance that a comparison of unchanged code shows any regression
    accuracy_drop: float = 0.01  # one point of validation accuracy
    # A new torch, CUDA, cuDNN, driver or Python between the runs is not the change under
    # test: its slowdowns are the environment's unless the user says the change is that.
    allow_env_change: bool = False
    # Stored runs needed to estimate the run-to-run spread for one run a side.
    min_history: int = 5

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

    @property
    def environment_changed(self) -> bool:
        """Software differs between the runs, and the user did not say that is the change under test."""
        return bool(self.software_changes) and not self.allow_env_change

    def _worse(self) -> list[str]:
        slow = [f"{v.name} ({v.status})" for v in self.verdicts if v.is_regression]
        return slow + [f"{q.name} ({q.metric})" for q in self.quality]

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


# --- reading runs -------------------------------------------------------------------------


def hardware_diff(base: dict | Run, cand: dict | Run) -> list[tuple[str, object, object]]:
    b, c = as_run(base), as_run(cand)
    if not b.machine or not c.machine:
        return []
    # A fingerprint names "nodes" only for a torchrun job over several machines.
    bf, cf = ({"nodes": 1, **run.fingerprint} for run in (b, c))
    # A generic CPU name gains "cpu_detail"; a run stored before that has none, which is
    # unknown, not different (compare warns).
    unknown = {"cpu_detail"} if None in (bf.get("cpu_detail"), cf.get("cpu_detail")) else set()
    return [(k, bf.get(k), cf.get(k)) for k in HARDWARE_KEYS if k not in unknown and bf.get(k) != cf.get(k)]


def _cpu_detail_unknown(base: Run, cand: Run) -> str | None:
    details = [run.fingerprint.get("cpu_detail") for run in (base, cand)]
    if (details[0] is None) != (details[1] is None):
        side = "baseline" if details[0] is None else "candidate"
        return (
            f"the {side} run does not record which CPU generation its generic CPU name stands for "
            f"(stored before devicebench did): the other is {details[1] or details[0]}"
        )
    return None


def software_changes(base: dict | Run, cand: dict | Run) -> list[tuple[str, object, object]]:
    b, c = as_run(base).machine, as_run(cand).machine
    if not b or not c:
        return []
    return [(k, b.get(k), c.get(k)) for k in SOFTWARE_KEYS if b.get(k) != c.get(k)]


def same_machine(runs: list[dict | Run]) -> None:
    """Raise ValueError when runs of one side come from different hardware."""
    for other in runs[1:]:
        diff = hardware_diff(runs[0], other)
        if diff:
            raise ValueError("runs of different machines cannot be merged: " + "; ".join(f"{k}: {a!r} vs {b!r}" for k, a, b in diff))


def history_key(run: dict | Run) -> tuple:
    """What a stored run must share with the compared ones to lend its spread: fingerprint, size, software."""
    run = as_run(run)
    return (run.fingerprint.get("id"), run.size, tuple(run.machine.get(k) for k in SOFTWARE_KEYS))


@dataclass
class _Side:
    """One side's results per benchmark: every run's result, failures and skips."""

    runs: list[Run]
    results: dict[str, list[Result]] = field(default_factory=dict)
    which_runs: dict[str, list[int]] = field(default_factory=dict)  # the runs each result comes from
    failed: dict[str, list[str]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        for i, run in enumerate(self.runs):
            for result in run.results:
                self.results.setdefault(result.fullname, []).append(result)
                self.which_runs.setdefault(result.fullname, []).append(i)
            for fullname, error in run.failed.items():
                self.failed.setdefault(fullname, []).append(error)
            self.skipped.update(run.skipped)

    def medians(self, fullname: str) -> list[float]:
        return [r.median_s for r in self.results.get(fullname, [])]

    def info(self, fullname: str) -> dict:
        """The benchmark's extra_info over the runs: each number the median of the runs' values."""
        results = self.results[fullname]
        info = dict(results[0].info)
        for key, value in info.items():
            values = [r.info.get(key) for r in results]
            if isinstance(value, (int, float)) and not isinstance(value, bool) and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
            ):
                info[key] = statistics.median(values)
        return info


def _machine_factors(run: Run, ceilings: dict[str, set[str]]) -> dict[str, float]:
    """Per device, the mean log median of the ceilings every run shares: the run's machine speed."""
    by_name = {r.fullname: r for r in run.results}
    return {
        device: statistics.fmean(math.log(by_name[f].median_s) for f in names)
        for device, names in ceilings.items()
        if names and names <= set(by_name)
    }


def _shared_ceilings(runs: list[Run]) -> dict[str, set[str]]:
    shared: dict[str, set[str]] | None = None
    for run in runs:
        mine: dict[str, set[str]] = {}
        for result in run.results:
            if result.workload == CEILING and result.device:
                mine.setdefault(result.device, set()).add(result.fullname)
        shared = mine if shared is None else {d: shared[d] & mine.get(d, set()) for d in shared}
    return {d: names for d, names in (shared or {}).items() if names}


# --- what the benchmarks learned and used -------------------------------------------------------


def _number(info: dict, key: str) -> float | None:
    value = info.get(key)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def quality_unlike(bi: dict, ci: dict) -> str | None:
    """Why two results' declared quality figures cannot be judged (other epochs, data, batch, or work behind them), or None."""
    b_figures, c_figures = _quality_mod.declared(bi), _quality_mod.declared(ci)
    shared = sorted(set(b_figures) & set(c_figures))
    if not shared:
        return None
    why = work.unlike(bi, ci, work.SAME_TRAINING)
    if why:
        return why
    apart = [reason for name in shared if (reason := _quality_mod.same_work(b_figures[name], c_figures[name]))]
    return "; ".join(apart) or None


def _quality(name: str, bi: dict, ci: dict, settings: Settings) -> list[QualityChange]:
    """What got worse beyond its rule (:mod:`devicebench.quality`): an absolute figure (accuracy)
    down by more than ``accuracy_drop``, a relative one (a loss, peak memory) worse by more than
    the threshold. Only declared figures, and only where both sides did the same work."""
    changes = []
    b_figures, c_figures = _quality_mod.declared(bi), _quality_mod.declared(ci)
    if work.unlike(bi, ci, work.SAME_TRAINING):
        return changes
    for key in sorted(set(b_figures) & set(c_figures)):
        bq, cq = b_figures[key], c_figures[key]
        if _quality_mod.same_work(bq, cq):
            continue
        b, c = bq.value, cq.value
        if bq.rule == "absolute":
            drop = settings.accuracy_drop
            worse, note = (c < b - drop, f"dropped by more than {drop}") if bq.better == "higher" else (c > b + drop, f"rose by more than {drop}")
        elif bq.better == "lower":
            grew = "grew" if schema.FIGURES.get(key) is not None and schema.FIGURES[key].unit == "B" else "worse"
            worse, note = (c > b * (1 + settings.threshold), f"{grew} by more than {settings.threshold:.0%}")
        else:
            worse, note = (c < b / (1 + settings.threshold), f"worse by more than {settings.threshold:.0%}")
        if worse:
            changes.append(QualityChange(name, key, b, c, note))
    return changes


def _unlike(bi: dict, ci: dict) -> str | None:
    """Why two results of one benchmark measure different work (size, processes/GPUs, work, settings), or None."""
    if bi.get("size") != ci.get("size"):
        return f"sizes differ: {bi.get('size')} vs {ci.get('size')}"
    # Under torchrun the same ddp benchmark may run on 2 ranks or on 16 (another node count).
    worlds = [info.get("world_size") or info.get("dp_replicas") for info in (bi, ci)]
    if worlds[0] != worlds[1]:
        return f"world sizes differ: {worlds[0]} vs {worlds[1]}"
    unlike = work.unlike(bi, ci, work.SAME_THROUGHPUT_WORK)
    if unlike:
        return f"the work differs: {unlike}"
    # TF32, cuDNN autotuning and the like change what is computed and how fast.
    bp, cp = bi.get("precision"), ci.get("precision")
    if isinstance(bp, dict) and isinstance(cp, dict) and bp != cp:
        changed = ", ".join(f"{k} {bp.get(k)} vs {cp.get(k)}" for k in sorted(set(bp) | set(cp)) if bp.get(k) != cp.get(k))
        return f"settings differ: {changed}"
    return None


# --- the time verdicts --------------------------------------------------------------------------


@dataclass
class _Test:
    """One benchmark's evidence, before Holm's adjustment decides."""

    name: str
    fullname: str
    base: list[float]  # log run medians, relative to the ceilings when the machine moved
    cand: list[float]
    base_s: list[float]
    cand_s: list[float]
    relative: bool
    reference: bool
    shift: stats.Shift | None = None
    spread: float | None = None
    could_reach: bool = True  # a rank test of this many runs can reach the family's alpha at all
    note: str = ""
    noisy: tuple[int, int] = (0, 0)
    throttled: tuple[int, int] = (0, 0)


def _evidence(test: _Test, history: list[list[float]], settings: Settings) -> None:
    n, m = len(test.base), len(test.cand)
    if n >= 2 and m >= 2:
        test.shift = stats.hodges_lehmann(test.base, test.cand)
        test.spread = stats.pooled_sd([test.base, test.cand])[0]
        test.could_reach = stats.min_rank_p(n, m) < settings.alpha
        return
    groups = [h for h in history if len(h) >= 2] + [g for g in (test.base, test.cand) if len(g) >= 2]
    spread, df = stats.pooled_sd(groups)
    if df + 1 >= settings.min_history and spread > 0:
        test.shift = stats.t_shift(test.base, test.cand, spread, df)
        test.spread = spread
        return
    runs = "one run a side" if n == m == 1 else f"{n} against {m} runs"
    stored = sum(len(h) for h in history)
    known = f"only {stored} comparable stored run{'s' if stored != 1 else ''}" if history else "no history"
    test.note = f"{runs}, {known}: the run-to-run spread is unknown (give several runs a side, or {settings.min_history}+ stored runs)"


def _decide(test: _Test, p_slow: float, p_fast: float, settings: Settings, env: bool, family: int) -> TimeVerdict:
    b_med, c_med = statistics.median(test.base_s), statistics.median(test.cand_s)
    raw = c_med / b_med
    common = dict(
        baseline_s=b_med,
        candidate_s=c_med,
        baseline_runs=tuple(test.base_s),
        candidate_runs=tuple(test.cand_s),
        relative_to_ceiling=test.relative,
        raw_ratio=raw,
        reference=test.reference,
        environment_changed=env,
        noisy_runs=test.noisy,
        throttled_runs=test.throttled,
    )
    shift = test.shift
    if shift is None:
        return TimeVerdict(test.name, test.fullname, INCONCLUSIVE, ratio=raw, note=test.note, **common)
    margin = settings.margin
    ratio, low, high = math.exp(shift.estimate), math.exp(shift.low), math.exp(shift.high)
    # Runs a side to catch twice the threshold at this spread, at Holm's strictest step.
    needed = stats.runs_needed(test.spread or 0.0, math.log1p(2 * settings.threshold), margin, settings.alpha / max(1, family))
    if p_slow < settings.alpha and shift.low > margin:
        status, p, adjusted = SLOWER, shift.p_greater, p_slow
    elif p_fast < settings.alpha and shift.high < -margin:
        status, p, adjusted = FASTER, shift.p_less, p_fast
    elif -margin < shift.low and shift.high < margin:
        status, p, adjusted = UNCHANGED, None, None
    else:
        status = INCONCLUSIVE
        p, adjusted = (shift.p_greater, p_slow) if shift.estimate >= 0 else (shift.p_less, p_fast)
    note = ""
    if status == INCONCLUSIVE:
        reach = (
            f"{len(test.base)} against {len(test.cand)} runs cannot reach p < {settings.alpha} at all; "
            if not test.could_reach
            else f"the interval {low:.3f}x-{high:.3f}x reaches past the {settings.threshold:.0%} threshold; "
        )
        note = reach + (
            f"about {needed} runs a side would catch a {2 * settings.threshold:.0%} slowdown at this spread"
            if needed
            else "more runs would narrow it"
        )
    return TimeVerdict(
        test.name,
        test.fullname,
        status,
        p_value=p,
        method=shift.method,
        note=note,
        ratio=ratio,
        ratio_low=low,
        ratio_high=high,
        p_adjusted=adjusted,
        spread=test.spread,
        runs_needed=needed,
        **common,
    )


def compare_sides(
    base_runs: list[dict | Run], cand_runs: list[dict | Run], settings: Settings = Settings(), history: list[dict | Run] = ()
) -> Comparison:
    """Verdicts for the candidate runs against the baseline runs.

    ``history``: stored runs of the same fingerprint, size and software (see
    :func:`history_key`), neither side's; they lend their run-to-run spread when a side has
    a single run.
    """
    base_runs, cand_runs = [as_run(r) for r in base_runs], [as_run(r) for r in cand_runs]
    history = [as_run(r) for r in history]
    base, cand = _Side(base_runs), _Side(cand_runs)
    first_b, first_c = base_runs[0], cand_runs[0]
    warnings = []
    for label, runs in (("baseline", base_runs), ("candidate", cand_runs)):
        if any(not run.machine for run in runs):
            warnings.append(f"the {label} has no devicebench machine block (plain pytest-benchmark?): its machine cannot be checked")
        interrupted = sum(1 for run in runs if run.interrupted)
        if interrupted:
            warnings.append(
                f"{interrupted} {label} run(s) were interrupted: benchmarks they did not reach show as added, removed or in fewer runs"
            )
    unknown_cpu = _cpu_detail_unknown(first_b, first_c)
    if unknown_cpu:
        warnings.append(unknown_cpu)
    env = bool(software_changes(first_b, first_c)) and not settings.allow_env_change

    # The machine: each device's shared ceilings, per run.
    ceilings = _shared_ceilings(base_runs + cand_runs)
    b_factors = [_machine_factors(run, ceilings) for run in base_runs]
    c_factors = [_machine_factors(run, ceilings) for run in cand_runs]
    machine = []
    for device, names in sorted(ceilings.items()):
        per = {}
        for fullname in sorted(names):
            b_meds, c_meds = base.medians(fullname), cand.medians(fullname)
            per[base.results[fullname][0].name] = statistics.median(c_meds) / statistics.median(b_meds)
        ratio = math.exp(statistics.median(f[device] for f in c_factors) - statistics.median(f[device] for f in b_factors))
        # Moved when every ceiling moved past the threshold the same way: one noisy ceiling
        # (a shared VM's copy bandwidth wanders by 20%) is not the machine.
        alike = all(math.log(r) > settings.margin for r in per.values()) or all(math.log(r) < -settings.margin for r in per.values())
        machine.append(MachineMove(device, ratio, per, alike))
    moved = {m.device for m in machine if m.moved}

    history_by_bench: dict[str, list[tuple[Run, Result]]] = {}
    for run in history:
        for result in run.results:
            history_by_bench.setdefault(result.fullname, []).append((run, result))

    verdicts: list[TimeVerdict] = []
    quality: list[QualityChange] = []
    quality_skipped: list[tuple[str, str]] = []
    tests: list[_Test] = []
    for fullname in sorted(set(base.results) | set(cand.results) | set(cand.failed)):
        name = fullname.rsplit("::", 1)[-1]
        in_b, in_c = fullname in base.results, fullname in cand.results
        b_med = statistics.median(base.medians(fullname)) if in_b else None
        c_med = statistics.median(cand.medians(fullname)) if in_c else None
        if fullname in cand.failed:
            errors = cand.failed[fullname]
            note = f"failed in {len(errors)} of {len(cand_runs)} candidate runs: {errors[0]}"
            verdicts.append(TimeVerdict(name, fullname, FAILED, b_med, c_med, note=note, environment_changed=env))
            continue
        if in_c and fullname in base.failed:
            note = f"failed in the baseline: {base.failed[fullname][0]}"
            verdicts.append(TimeVerdict(name, fullname, NOT_COMPARABLE, b_med, c_med, note=note))
            continue
        if in_b and in_c:
            bi, ci = base.info(fullname), cand.info(fullname)
            unlike = _unlike(bi, ci)
            if unlike:
                verdicts.append(TimeVerdict(name, fullname, NOT_COMPARABLE, b_med, c_med, note=unlike))
                continue
            quality.extend(_quality(name, bi, ci, settings))
            why = quality_unlike(bi, ci)
            if why:
                quality_skipped.append((name, why))
            reference = bi.get("workload") == CEILING
            device = bi.get("device")
            relative = device in moved and not reference
            b_s, c_s = base.medians(fullname), cand.medians(fullname)

            def logs(side: _Side, factors: list[dict[str, float]]) -> list[float]:
                return [
                    math.log(seconds) - (factors[i][device] if relative else 0.0)
                    for seconds, i in zip(side.medians(fullname), side.which_runs[fullname])
                ]

            test = _Test(name, fullname, logs(base, b_factors), logs(cand, c_factors), b_s, c_s, relative, reference)
            test.noisy = tuple(sum(r.noisy for r in side.results[fullname]) for side in (base, cand))
            test.throttled = tuple(sum(bool(r.throttled_rounds) for r in side.results[fullname]) for side in (base, cand))
            hist = []
            for run, result in history_by_bench.get(fullname, []):
                if _unlike(result.info, bi) is None:
                    factor = _machine_factors(run, ceilings).get(device) if relative else 0.0
                    if factor is not None:
                        hist.append(math.log(result.median_s) - factor)
            _evidence(test, [hist] if hist else [], settings)
            tests.append(test)
            continue
        if in_b and fullname in cand.skipped:
            verdicts.append(TimeVerdict(name, fullname, NOT_COMPARABLE, b_med, None, note=f"candidate skipped it: {cand.skipped[fullname]}"))
        elif in_c and fullname in base.skipped:
            verdicts.append(TimeVerdict(name, fullname, NOT_COMPARABLE, None, c_med, note=f"baseline skipped it: {base.skipped[fullname]}"))
        elif in_b:
            verdicts.append(TimeVerdict(name, fullname, REMOVED, b_med, None))
        else:
            verdicts.append(TimeVerdict(name, fullname, ADDED, None, c_med))

    # Holm over the benchmarks that can regress (the ceilings are the machine's), each direction.
    family = [t for t in tests if t.shift is not None and not t.reference]
    slow_adj = dict(zip((t.fullname for t in family), stats.holm([t.shift.p_greater for t in family])))
    fast_adj = dict(zip((t.fullname for t in family), stats.holm([t.shift.p_less for t in family])))
    for test in tests:
        if test.reference and test.shift is not None:  # reported at its own, unadjusted level
            p_slow, p_fast = test.shift.p_greater, test.shift.p_less
        else:
            p_slow, p_fast = slow_adj.get(test.fullname, 1.0), fast_adj.get(test.fullname, 1.0)
        verdicts.append(_decide(test, p_slow, p_fast, settings, env, len(family)))
    verdicts.sort(key=lambda v: v.fullname)

    procedure = (
        f"a regression needs the 95% interval of the ratio above {1 + settings.threshold:.3g}x and a slowdown's p, "
        f"Holm-adjusted over {len(family)} benchmark(s), < {settings.alpha} (family-wise); the unit is the run"
        + ("" if family else " (no benchmark had the runs for a test)")
    )
    return Comparison(
        verdicts,
        quality,
        hardware_diff(first_b, first_c),
        software_changes(first_b, first_c),
        warnings,
        quality_skipped,
        settings.allow_env_change,
        machine,
        procedure,
        (len(base_runs), len(cand_runs)),
        len(history),
    )


def compare_runs(base: dict | Run, cand: dict | Run, settings: Settings = Settings(), history: list[dict | Run] = ()) -> Comparison:
    """One run a side: see :func:`compare_sides`."""
    return compare_sides([base], [cand], settings, history)
