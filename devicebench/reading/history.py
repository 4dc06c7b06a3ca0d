"""A machine's history read as change points: where a benchmark's level moved, by how much, on
what evidence, and whether the machine moved with it.

Pairwise verdicts over a long history add up false alarms with every pair, and blame a slow
drift or a step seen in one noisy run on one pair. Here each benchmark's run medians (log
seconds, in run order, one machine fingerprint and size) are segmented by ``ruptures``
(binary segmentation under a least-squares cost, the penalty scaled by the history's own
run-to-run spread: :func:`candidates`), and every candidate boundary is then tested like a
comparison with several runs a side: the Hodges-Lehmann ratio of the medians after over
before with its distribution-free 95% interval, and the one-sided Mann-Whitney p-value in
its direction. A candidate without a raw p below ``alpha`` is dropped and its neighbours are
tested again over the merged runs (:func:`_kept`). Two segmentations propose: a strict one
whose boundaries can be confirmed (Holm-adjusted p below ``alpha`` over every candidate of
every benchmark, and the whole interval beyond the threshold), and a generous one whose
other boundaries are kept as *weak*, as is a strict one that is not confirmed.

**Code or machine**: a change point of a workload at the run where the same device's
ceilings (reference kernels no change to the project can move) changed the same way, within
one run, is the machine's; otherwise it is the code's or the environment's, and the torch,
CUDA, cuDNN, driver or Python change between the two runs, where there is one, is named.

Why ``ruptures``: Apache Otava (E-divisive with a t-test) pins numpy 2.2 and pulls BigQuery,
Postgres and Slack clients; MongoDB's ``signal-processing-algorithms`` needs numpy < 2 and
Python 3.11 exactly. ``ruptures`` is maintained, needs numpy and scipy only, and its
segmentation is only the first step: the evidence is the rank test the gate already uses.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import counters, stats
from .machines import software_changes
from .runs import Run
from .verdicts import CEILING, Settings

MIN_SEGMENT = 4  # runs a side: the fewest for which a one-sided rank test can reach p < 0.05 (1/70)
# Two segmentations propose boundaries, their penalties in units of the history's spread^2 x
# log(runs). Only the strict one's can be confirmed: at 4 and 8 a drift of the eager regression
# within the 14 slowed gate runs came out as a confirmed change, at 12 only the slowed matmul
# did. The generous one's are shown as weak where the rank test supports them: a 19% step of
# the noisy linear regression after four runs is named, which the strict penalty never
# proposes; confirming them too would raise the false confirmed change points about eightfold
# (docs/comparing.md, "How often history is wrong").
PENALTY = 12.0
GENEROUS_PENALTY = 2.0


@dataclass(frozen=True)
class ChangePoint:
    benchmark: str
    run: str  # the first run after the change
    before_run: str  # the last run before it
    index: int  # of ``run`` in the history, from 0
    ratio: float  # median after / median before, of the time per call
    ratio_low: float
    ratio_high: float
    p: float  # Holm-adjusted, one-sided in the ratio's direction
    p_raw: float
    runs_before: int
    runs_after: int
    weak: bool
    cause: str  # "machine" or "code or environment"
    software: str = ""  # what changed in the software between before_run and run
    commit_before: str = ""
    commit: str = ""
    device: str = ""
    kind: str = "time"  # "time": the level of its times moved; "work": what one call does changed (exact, certain)
    work: str = ""  # what changed in the step's counted work at this run, where something did

    def as_json(self) -> dict:
        return asdict(self)


def _spread(values: np.ndarray) -> float:
    """The run-to-run spread of a series, robust to its steps: the MAD of successive differences, over sqrt 2."""
    if len(values) < 3:
        return 0.0
    diffs = np.diff(values)
    return float(1.4826 * np.median(np.abs(diffs - np.median(diffs))) / math.sqrt(2))


def candidates(values: list[float], min_size: int | None = None, penalty: float | None = None) -> list[int]:
    """Boundaries (the index of the first value after each) that ``ruptures`` finds in ``values``."""
    min_size = MIN_SEGMENT if min_size is None else min_size
    if len(values) < 2 * min_size:
        return []
    import ruptures

    signal = np.asarray(values, dtype=float)
    sigma = max(_spread(signal), 1e-6)
    algo = ruptures.Binseg(model="l2", min_size=min_size, jump=1).fit(signal)
    ends = algo.predict(pen=(PENALTY if penalty is None else penalty) * sigma**2 * math.log(len(signal)))
    return [e for e in ends if e < len(signal)]


def _between(before: tuple[Path, Run], after: tuple[Path, Run]) -> dict:
    """What a change point says of the two runs around it: their files, commits and the software that changed."""
    changed = software_changes(before[1], after[1])
    return {
        "run": after[0].name,
        "before_run": before[0].name,
        "software": ", ".join(f"{k} {b} -> {c}" for k, b, c in changed),
        "commit_before": _commit(before[1]),
        "commit": _commit(after[1]),
    }


def _commit(run: Run) -> str:
    info = run.raw.get("commit_info")
    return str((info or {}).get("id") or "")[:12] if isinstance(info, dict) else ""


def series(runs: list[tuple[Path, Run]]) -> dict[str, list[tuple[int, float]]]:
    """Per benchmark: (run index, log median seconds) for each run that has it, in run order."""
    found: dict[str, list[tuple[int, float]]] = {}
    for i, (_, run) in enumerate(runs):
        for result in run.results:
            if result.median_s and result.median_s > 0:
                found.setdefault(result.fullname, []).append((i, math.log(result.median_s)))
    return found


def _test(points: list[tuple[int, float]], cut: int, left: int, right: int):
    """The shift between the segments around boundary ``cut`` (positions in ``points``)."""
    before = [v for _, v in points[left:cut]]
    after = [v for _, v in points[cut:right]]
    return stats.hodges_lehmann(before, after), len(before), len(after)


def _kept(points: list[tuple[int, float]], cuts: list[int], alpha: float) -> list[tuple[int, object, int, int, float]]:
    """The proposed cuts whose shift the rank test supports (raw p below ``alpha``), each tested
    against its neighbouring segments: the weakest is dropped and its segments merged, then the
    rest are tested again, until every cut left has the evidence. A spurious cut thus never
    splits the runs a real step is tested on."""
    cuts = list(cuts)
    while cuts:
        bounds = [0, *cuts, len(points)]
        tested = []
        for k, cut in enumerate(cuts):
            shift, n_before, n_after = _test(points, cut, bounds[k], bounds[k + 2])
            p_raw = shift.p_greater if shift.estimate > 0 else shift.p_less
            tested.append((cut, shift, n_before, n_after, p_raw))
        weakest = max(tested, key=lambda t: t[-1])
        if weakest[-1] < alpha:
            return tested
        cuts.remove(weakest[0])
    return []


def change_points(runs: list[tuple[Path, Run]], threshold: float = 0.05, alpha: float = 0.05) -> list[ChangePoint]:
    """The change points of one machine's history (runs oldest first)."""
    found = []
    info = {r.fullname: r for _, run in runs for r in run.results}
    for fullname, points in sorted(series(runs).items()):
        values = [v for _, v in points]
        strict = _kept(points, candidates(values), alpha)
        found += [(fullname, points, True, *tested) for tested in strict]
        found += [
            (fullname, points, False, *tested)
            for tested in _kept(points, candidates(values, penalty=GENEROUS_PENALTY), alpha)
            if all(abs(tested[0] - other[0]) > 1 for other in strict)
        ]
    adjusted = stats.holm([f[-1] for f in found])
    margin = math.log1p(threshold)
    out = []
    for (fullname, points, confirmable, cut, shift, n_before, n_after, p_raw), p in zip(found, adjusted):
        confirmed = confirmable and p < alpha and (shift.low > margin or shift.high < -margin)
        i_before, i_after = points[cut - 1][0], points[cut][0]
        result = info[fullname]
        out.append(
            ChangePoint(
                benchmark=result.name,
                **_between(runs[i_before], runs[i_after]),
                index=i_after,
                ratio=math.exp(shift.estimate),
                ratio_low=math.exp(shift.low),
                ratio_high=math.exp(shift.high),
                p=p,
                p_raw=p_raw,
                runs_before=n_before,
                runs_after=n_after,
                weak=not confirmed,
                cause="code or environment",
                device=str(result.device or ""),
            )
        )
    return _name_work(_attribute(out, {r.name: r.workload for r in info.values()}) + work_changes(runs))


def work_changes(runs: list[tuple[Path, Run]], threshold: float = Settings.instruction_threshold) -> list[ChangePoint]:
    """Where a benchmark's counted work changed from one run to the next: certain change points,
    since counts of the same code are the same in every run (instructions beyond ``threshold``)."""
    out = []
    last: dict[str, tuple[int, object]] = {}  # each benchmark's last run index and result
    for i, (path, run) in enumerate(runs):
        for result in run.results:
            before = last.get(result.fullname)
            last[result.fullname] = (i, result)
            if before is None:
                continue
            j, before_result = before
            changes = _work_diff(before_result.info, result.info, threshold)
            if not changes:
                continue
            ratio = result.median_s / before_result.median_s if result.median_s and before_result.median_s else 1.0
            out.append(
                ChangePoint(
                    benchmark=result.name,
                    **_between(runs[j], (path, run)),
                    index=i,
                    ratio=ratio,
                    ratio_low=ratio,
                    ratio_high=ratio,
                    p=0.0,
                    p_raw=0.0,
                    runs_before=1,
                    runs_after=1,
                    weak=False,
                    cause="code or environment",
                    device=str(result.device or ""),
                    kind="work",
                    work="; ".join(changes),
                )
            )
    return out


def _work_diff(before: dict, after: dict, threshold: float) -> list[str]:
    changes = []
    bi, ai = counters.instructions_of(before), counters.instructions_of(after)
    if bi and ai and (bi.counted, bi.tool) == (ai.counted, ai.tool) and abs(math.log(ai.per_call / bi.per_call)) > math.log1p(threshold):
        changes.append(f"instructions per call {bi.per_call:,} -> {ai.per_call:,} ({ai.per_call / bi.per_call:.4f}x)")
    bw, aw = counters.work_of(before), counters.work_of(after)
    if bw and aw and bw.counted == aw.counted:
        changes += counters.diff(bw, aw).changes
    return changes


def _name_work(points: list[ChangePoint]) -> list[ChangePoint]:
    """A time change point names the work change of the same benchmark at the same run (or the one next to it)."""
    work = [c for c in points if c.kind == "work"]
    out = []
    for c in points:
        same = [w for w in work if c.kind == "time" and w.benchmark == c.benchmark and w.device == c.device and abs(w.index - c.index) <= 1]
        out.append(_replace(c, work=same[0].work) if same else c)
    return sorted(out, key=lambda c: (c.benchmark, c.index, c.kind))


def _attribute(points: list[ChangePoint], workloads: dict[str, str | None]) -> list[ChangePoint]:
    """A workload's change point at a run where its device's ceilings moved the same way (within one run) is the machine's."""
    ceilings = [c for c in points if workloads.get(c.benchmark) == CEILING]
    out = []
    for c in points:
        if workloads.get(c.benchmark) == CEILING:
            out.append(_replace(c, cause="machine"))
            continue
        moved = any(abs(m.index - c.index) <= 1 and m.device == c.device and (m.ratio > 1) == (c.ratio > 1) for m in ceilings)
        out.append(_replace(c, cause="machine") if moved else c)
    return out


def _replace(c: ChangePoint, **changes) -> ChangePoint:
    return ChangePoint(**{**asdict(c), **changes})
