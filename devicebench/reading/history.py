"""A machine's history read as change points: where a benchmark's level moved, by how much, on
what evidence, and whether the machine moved with it.

Pairwise verdicts over a long history add up false alarms with every pair, and blame a slow
drift or a step seen in one noisy run on one pair. Here each benchmark's run medians (log
seconds, in run order, one machine fingerprint and size) are segmented as ``ruptures``
segments them (its binary segmentation under a least-squares cost, the penalty scaled by the
history's own run-to-run spread: :func:`candidates`, :func:`binseg`), and every candidate boundary is then tested like a
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

Why ``ruptures``' method: Apache Otava (E-divisive with a t-test) pins numpy 2.2 and pulls
BigQuery, Postgres and Slack clients; MongoDB's ``signal-processing-algorithms`` needs numpy < 2
and Python 3.11 exactly. ``ruptures`` is maintained and its segmentation is only the first
step: the evidence is the rank test the gate already uses. Its own search prices every split
of every segment in Python (80 s for 2000 runs of 80 benchmarks), so :func:`binseg` runs the
same segmentation on cumulative sums, and the tests hold its boundaries to ruptures'.

A long history is analysed once: with an index's memo (:class:`~.index.Memo`) each series'
analysis, and each rank test of two segments, is kept by the digest of its values, so a
history read again is not analysed again, and a new run re-tests only the segments it changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import json
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


def binseg(signal: np.ndarray, min_size: int, pen: float) -> list[int]:
    """The boundaries ``ruptures.Binseg(model="l2", min_size=min_size, jump=1).fit(signal).predict(pen=pen)``
    finds, but the signal's end: the same binary segmentation (split the segment whose best split
    gains most, the first such on a tie, while the gain exceeds ``pen``), each segment's best
    split found in one pass over cumulative sums. ruptures evaluates every split's cost in
    Python (80 s on 2000 runs x 80 benchmarks); tests/test_history.py holds the two equal."""
    x = signal - signal.mean()  # centred: the sums lose no precision
    sums = np.concatenate(([0.0], np.cumsum(x)))
    squares = np.concatenate(([0.0], np.cumsum(x * x)))

    def cost(start, end):
        s = sums[end] - sums[start]
        return squares[end] - squares[start] - s * s / (end - start)

    def best(start: int, end: int) -> tuple:
        splits = np.arange(start + min_size, end - min_size + 1)
        if not len(splits):
            return (0.0, start, end, None)
        gains = cost(start, end) - cost(start, splits) - cost(splits, end)
        k = len(gains) - 1 - int(np.argmax(gains[::-1]))  # ties to the later split, as ruptures' max((gain, bkp))
        return (-float(gains[k]), start, end, int(splits[k]))

    heap = [best(0, len(x))]  # (-gain, start, end, split): the largest gain first, then the first segment
    found = []
    while heap:
        gain, start, end, split = heapq.heappop(heap)
        if split is None or not -gain > pen:
            break
        found.append(split)
        heapq.heappush(heap, best(start, split))
        heapq.heappush(heap, best(split, end))
    return sorted(found)


def candidates(values: list[float], min_size: int | None = None, penalty: float | None = None) -> list[int]:
    """Boundaries (the index of the first value after each) that binary segmentation (:func:`binseg`) finds in ``values``."""
    min_size = MIN_SEGMENT if min_size is None else min_size
    if len(values) < 2 * min_size:
        return []
    signal = np.asarray(values, dtype=float)
    sigma = max(_spread(signal), 1e-6)
    return binseg(signal, min_size, (PENALTY if penalty is None else penalty) * sigma**2 * math.log(len(signal)))


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
    return _scan(runs)[0]


def _scan(runs: list[tuple[Path, Run]]) -> tuple[dict[str, list[tuple[int, float]]], dict]:
    """:func:`series`, and each benchmark's latest result, in one pass (a long history has 100,000s)."""
    found: dict[str, list[tuple[int, float]]] = {}
    latest = {}
    log = math.log
    for i, (_, run) in enumerate(runs):
        for result in run.results:
            median, fullname = result.median_s, result.fullname
            latest[fullname] = result
            if median and median > 0:
                points = found.get(fullname)
                if points is None:
                    points = found[fullname] = []
                points.append((i, log(median)))
    return found, latest


def _tests(values: list[float], memo=None):
    """The rank test of a boundary, ``test(left, cut, right)``: the shift between ``values[left:cut]``
    and ``values[cut:right]`` and the two sizes. With ``memo`` (an index's :class:`~.index.Memo`),
    a test of the same two segments' values is made once: a new run leaves most segments as they were."""
    signal = np.asarray(values, dtype="<f8")

    def test(left: int, cut: int, right: int):
        if memo is None:
            return stats.hodges_lehmann(values[left:cut], values[cut:right]), cut - left, right - cut
        key = "test " + hashlib.sha256(f"{TEST_METHOD} {cut - left}|".encode() + signal[left:right].tobytes()).hexdigest()
        kept = memo.get(key)
        try:
            shift = stats.Shift(*json.loads(kept), TEST_METHOD) if kept is not None else None
        except (ValueError, TypeError):
            shift = None
        if shift is None:
            shift = stats.hodges_lehmann(values[left:cut], values[cut:right])
            memo[key] = json.dumps([shift.estimate, shift.low, shift.high, shift.p_greater, shift.p_less])
        return shift, cut - left, right - cut

    return test


def _kept(test, n: int, cuts: list[int], alpha: float) -> list[tuple[int, object, int, int, float]]:
    """The proposed cuts (of a series of ``n`` values) whose shift the rank test supports (raw p below
    ``alpha``), each tested against its neighbouring segments: the weakest is dropped and its segments
    merged, then the rest are tested again, until every cut left has the evidence. A spurious cut
    thus never splits the runs a real step is tested on."""
    cuts = list(cuts)
    done: dict[tuple[int, int, int], tuple] = {}  # a cut whose neighbours stay is not tested again
    while cuts:
        bounds = [0, *cuts, n]
        tested = []
        for k, cut in enumerate(cuts):
            key = (bounds[k], cut, bounds[k + 2])
            if key not in done:
                done[key] = test(*key)
            shift, n_before, n_after = done[key]
            p_raw = shift.p_greater if shift.estimate > 0 else shift.p_less
            tested.append((cut, shift, n_before, n_after, p_raw))
        weakest = max(tested, key=lambda t: t[-1])
        if weakest[-1] < alpha:
            return tested
        cuts.remove(weakest[0])
    return []


# What an analysis depends on, besides the values: a change here makes every analysis kept in
# an index stale (their keys change).
TEST_METHOD = "Hodges-Lehmann, Mann-Whitney"
ANALYSIS = f"binseg l2 min {MIN_SEGMENT} pen {PENALTY}/{GENEROUS_PENALTY}; {TEST_METHOD}; v1"


def analyse(values: list[float], alpha: float, memo=None) -> list[tuple]:
    """One benchmark's boundaries with their evidence: (cut, confirmable, shift estimate, low, high,
    runs before, runs after, raw p), cut being a position in ``values``. ``memo`` (an index's
    :class:`~.index.Memo`) keeps the analysis, and each rank test, for the next call."""
    if memo is None:
        return _analyse(values, alpha, None)
    key = "series " + hashlib.sha256(f"{ANALYSIS}; alpha {alpha!r}".encode() + np.asarray(values, dtype="<f8").tobytes()).hexdigest()
    kept = memo.get(key)
    if kept is not None:
        try:
            entry = json.loads(kept)
            memo.touch(entry["tests"])  # the tests it made stay kept for the next run's analysis
            return [tuple(t) for t in entry["found"]]
        except (ValueError, TypeError, KeyError):
            pass
    before = set(memo.used)
    found = _analyse(values, alpha, memo)
    memo[key] = json.dumps({"found": found, "tests": sorted(k for k in memo.used - before if k.startswith("test "))})
    return found


def _analyse(values: list[float], alpha: float, memo) -> list[tuple]:
    test = _tests(values, memo)
    strict = _kept(test, len(values), candidates(values), alpha)
    generous = [t for t in _kept(test, len(values), candidates(values, penalty=GENEROUS_PENALTY), alpha) if all(abs(t[0] - s[0]) > 1 for s in strict)]
    return [(cut, confirmable, shift.estimate, shift.low, shift.high, n_before, n_after, p_raw) for confirmable, found in ((True, strict), (False, generous)) for cut, shift, n_before, n_after, p_raw in found]


def change_points(runs: list[tuple[Path, Run]], threshold: float = 0.05, alpha: float = 0.05, memo=None) -> list[ChangePoint]:
    """The change points of one machine's history (runs oldest first); ``memo`` keeps each series' analysis for the next call."""
    found = []
    points_of, info = _scan(runs)
    for fullname, points in sorted(points_of.items()):
        found += [(fullname, points, *tested) for tested in analyse([v for _, v in points], alpha, memo)]
    adjusted = stats.holm([f[-1] for f in found])
    margin = math.log1p(threshold)
    out = []
    for (fullname, points, cut, confirmable, estimate, low, high, n_before, n_after, p_raw), p in zip(found, adjusted):
        confirmed = confirmable and p < alpha and (low > margin or high < -margin)
        i_before, i_after = points[cut - 1][0], points[cut][0]
        result = info[fullname]
        out.append(
            ChangePoint(
                benchmark=result.name,
                **_between(runs[i_before], runs[i_after]),
                index=i_after,
                ratio=math.exp(estimate),
                ratio_low=math.exp(low),
                ratio_high=math.exp(high),
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
            b, a = before_result.info, result.info
            if not (("instructions" in b and "instructions" in a) or ("work" in b and "work" in a)):
                continue  # nothing counted on both sides (most runs): nothing to compare
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
    moves = {(m.device, m.index, m.ratio > 1) for m in points if workloads.get(m.benchmark) == CEILING}
    out = []
    for c in points:
        if workloads.get(c.benchmark) == CEILING:
            out.append(_replace(c, cause="machine"))
            continue
        moved = any((c.device, c.index + d, c.ratio > 1) in moves for d in (-1, 0, 1))
        out.append(_replace(c, cause="machine") if moved else c)
    return out


def _replace(c: ChangePoint, **changes) -> ChangePoint:
    return dataclasses.replace(c, **changes)
