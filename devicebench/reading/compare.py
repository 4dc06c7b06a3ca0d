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

from . import counters, stats, work
from . import quality as _quality_mod
from .machines import _cpu_detail_unknown, hardware_diff, settings_differ, software_changes
from .runs import Result, Run, as_run
from .verdicts import (
    ADDED,
    CEILING,
    FAILED,
    FASTER,
    INCONCLUSIVE,
    NOT_COMPARABLE,
    REMOVED,
    SLOWER,
    UNCHANGED,
    Comparison,
    MachineMove,
    QualityChange,
    Settings,
    TimeVerdict,
    WorkVerdict,
)


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


def _unlike(bi: dict, ci: dict) -> str | None:
    """Why two results of one benchmark measure different work (size, processes/GPUs, work, settings), or None."""
    if bi.get("size") != ci.get("size"):
        return f"sizes differ: {bi.get('size')} vs {ci.get('size')}"
    # Under torchrun the same ddp benchmark may run on 2 ranks or on 16 (another node count).
    worlds = [work.world(info) for info in (bi, ci)]
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
    recompiled: tuple[int, int] = (0, 0)


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
        recompiled_runs=test.recompiled,
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


def _side_warnings(base_runs: list[Run], cand_runs: list[Run]) -> list[str]:
    warnings = []
    for label, runs in (("baseline", base_runs), ("candidate", cand_runs)):
        if any(not run.machine for run in runs):
            warnings.append(f"the {label} has no devicebench machine block (plain pytest-benchmark?): its machine cannot be checked")
        interrupted = sum(1 for run in runs if run.interrupted)
        if interrupted:
            warnings.append(
                f"{interrupted} {label} run(s) were interrupted: benchmarks they did not reach show as added, removed or in fewer runs"
            )
    unknown_cpu = _cpu_detail_unknown(base_runs[0], cand_runs[0])
    if unknown_cpu:
        warnings.append(unknown_cpu)
    differ = settings_differ(base_runs[0], cand_runs[0])
    if differ:
        warnings.append(f"the sides ran under different process settings ({differ}): their times are not like for like")
    return warnings


class _Judge:
    """One comparison's shared context (the sides, how the machine moved, the history) and the
    verdict of each benchmark in it."""

    def __init__(self, base_runs: list[Run], cand_runs: list[Run], settings: Settings, history: list[Run]):
        self.base_runs, self.cand_runs, self.settings = base_runs, cand_runs, settings
        self.base, self.cand = _Side(base_runs), _Side(cand_runs)
        self.env = bool(software_changes(base_runs[0], cand_runs[0])) and not settings.allow_env_change
        # The machine: each device's shared ceilings, per run.
        self.ceilings = _shared_ceilings(base_runs + cand_runs)
        self.b_factors = [_machine_factors(run, self.ceilings) for run in base_runs]
        self.c_factors = [_machine_factors(run, self.ceilings) for run in cand_runs]
        self.machine = [self._machine_move(device, names) for device, names in sorted(self.ceilings.items())]
        self.moved = {m.device for m in self.machine if m.moved}
        self.history: dict[str, list[tuple[Run, Result]]] = {}
        for run in history:
            for result in run.results:
                self.history.setdefault(result.fullname, []).append((run, result))
        self.verdicts: list[TimeVerdict] = []
        self.quality: list[QualityChange] = []
        self.quality_skipped: list[tuple[str, str]] = []
        self.tests: list[_Test] = []
        self.work: list[WorkVerdict] = []

    def _machine_move(self, device: str, names: set[str]) -> MachineMove:
        per = {}
        for fullname in sorted(names):
            b_meds, c_meds = self.base.medians(fullname), self.cand.medians(fullname)
            per[self.base.results[fullname][0].name] = statistics.median(c_meds) / statistics.median(b_meds)
        ratio = math.exp(statistics.median(f[device] for f in self.c_factors) - statistics.median(f[device] for f in self.b_factors))
        # Moved when every ceiling moved past the threshold the same way: one noisy ceiling
        # (a shared VM's copy bandwidth wanders by 20%) is not the machine.
        margin = self.settings.margin
        alike = all(math.log(r) > margin for r in per.values()) or all(math.log(r) < -margin for r in per.values())
        return MachineMove(device, ratio, per, alike)

    def judge(self, fullname: str) -> None:
        """A verdict for one benchmark, or a test to decide once every benchmark's p-value is known."""
        base, cand = self.base, self.cand
        name = fullname.rsplit("::", 1)[-1]
        in_b, in_c = fullname in base.results, fullname in cand.results
        b_med = statistics.median(base.medians(fullname)) if in_b else None
        c_med = statistics.median(cand.medians(fullname)) if in_c else None
        verdict = lambda kind, note="", **kw: self.verdicts.append(TimeVerdict(name, fullname, kind, b_med, c_med, note=note, **kw))  # noqa: E731
        if fullname in cand.failed:
            errors = cand.failed[fullname]
            verdict(FAILED, f"failed in {len(errors)} of {len(self.cand_runs)} candidate runs: {errors[0]}", environment_changed=self.env)
        elif in_c and fullname in base.failed:
            verdict(NOT_COMPARABLE, f"failed in the baseline: {base.failed[fullname][0]}")
        elif in_b and in_c:
            unlike = _unlike(base.info(fullname), cand.info(fullname))
            if unlike:
                verdict(NOT_COMPARABLE, unlike)
            else:
                found = counters.work_verdict(name, fullname, [r.info for r in base.results[fullname]], [r.info for r in cand.results[fullname]], self.settings)
                if found is not None:
                    self.work.append(found)
                self._test(name, fullname)
        elif in_b and fullname in cand.skipped:
            verdict(NOT_COMPARABLE, f"candidate skipped it: {cand.skipped[fullname]}")
        elif in_c and fullname in base.skipped:
            verdict(NOT_COMPARABLE, f"baseline skipped it: {base.skipped[fullname]}")
        else:
            verdict(REMOVED if in_b else ADDED)

    def _test(self, name: str, fullname: str) -> None:
        base, cand, settings = self.base, self.cand, self.settings
        bi, ci = base.info(fullname), cand.info(fullname)
        self.quality.extend(_quality_mod.changes(name, bi, ci, settings))
        why = _quality_mod.unlike(bi, ci)
        if why:
            self.quality_skipped.append((name, why))
        reference = bi.get("workload") == CEILING
        device = bi.get("device")
        relative = device in self.moved and not reference

        def logs(side: _Side, factors: list[dict[str, float]]) -> list[float]:
            return [math.log(seconds) - (factors[i][device] if relative else 0.0) for seconds, i in zip(side.medians(fullname), side.which_runs[fullname])]

        test = _Test(name, fullname, logs(base, self.b_factors), logs(cand, self.c_factors), base.medians(fullname), cand.medians(fullname), relative, reference)
        test.noisy = tuple(sum(r.noisy for r in side.results[fullname]) for side in (base, cand))
        test.throttled = tuple(sum(bool(r.throttled_rounds) for r in side.results[fullname]) for side in (base, cand))
        test.recompiled = tuple(sum(bool(r.recompiles_in_rounds) for r in side.results[fullname]) for side in (base, cand))
        hist = []
        for run, result in self.history.get(fullname, []):
            if _unlike(result.info, bi) is None:
                factor = _machine_factors(run, self.ceilings).get(device) if relative else 0.0
                if factor is not None:
                    hist.append(math.log(result.median_s) - factor)
        _evidence(test, [hist] if hist else [], settings)
        self.tests.append(test)

    def decide(self) -> list[_Test]:
        """Holm over the benchmarks that can regress (the ceilings are the machine's), each direction; returns that family."""
        family = [t for t in self.tests if t.shift is not None and not t.reference]
        slow_adj = dict(zip((t.fullname for t in family), stats.holm([t.shift.p_greater for t in family])))
        fast_adj = dict(zip((t.fullname for t in family), stats.holm([t.shift.p_less for t in family])))
        for test in self.tests:
            if test.reference and test.shift is not None:  # reported at its own, unadjusted level
                p_slow, p_fast = test.shift.p_greater, test.shift.p_less
            else:
                p_slow, p_fast = slow_adj.get(test.fullname, 1.0), fast_adj.get(test.fullname, 1.0)
            self.verdicts.append(_decide(test, p_slow, p_fast, self.settings, self.env, len(family)))
        self.verdicts.sort(key=lambda v: v.fullname)
        return family


def _procedure(settings: Settings, family: list[_Test]) -> str:
    """What was tested, and how; said alone when nothing was."""
    if not family:
        return "no benchmark had the runs for a test"
    return (
        f"a regression needs the 95% interval of the ratio above {1 + settings.threshold:.3g}x and a slowdown's p, "
        f"Holm-adjusted over {len(family)} benchmark(s), < {settings.alpha} (family-wise); the unit is the run"
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
    judge = _Judge(base_runs, cand_runs, settings, history)
    for fullname in sorted(set(judge.base.results) | set(judge.cand.results) | set(judge.cand.failed)):
        judge.judge(fullname)
    family = judge.decide()
    first_b, first_c = base_runs[0], cand_runs[0]
    return Comparison(
        verdicts=judge.verdicts,
        quality=judge.quality,
        hardware_diff=hardware_diff(first_b, first_c),
        software_changes=software_changes(first_b, first_c),
        warnings=_side_warnings(base_runs, cand_runs),
        quality_not_comparable=judge.quality_skipped,
        allow_env_change=settings.allow_env_change,
        machine=judge.machine,
        procedure=_procedure(settings, family),
        runs=(len(base_runs), len(cand_runs)),
        history_runs=len(history),
        threshold=settings.threshold,
        work=sorted(judge.work, key=lambda w: w.fullname),
    )


def compare_runs(base: dict | Run, cand: dict | Run, settings: Settings = Settings(), history: list[dict | Run] = ()) -> Comparison:
    """One run a side: see :func:`compare_sides`."""
    return compare_sides([base], [cand], settings, history)
