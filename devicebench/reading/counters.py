"""Exact work in stored results: read safely, compared without statistics, said in words a user acts on.

A result's ``work`` (devicebench.measure.counting) counts what one call of its step did; the
same code gives the same counts in every run, so two results whose counts differ did
different work, and one run a side shows it. Each counter is compared exactly, and a change
is said as what the step now does ("500 more host reads of a device value, a sync each on a
GPU: aten._local_scalar_dense 20 -> 520"). Instructions per call (``--bench-instructions``)
are nearly exact: they differ between runs of the same code by a measured fraction
(``Settings.instruction_threshold``), and are judged against that threshold, one run a side.

The counts come from run files, which are untrusted: a count that is not a whole number of
0 or more, and an operator name that is not ``namespace.name``, are dropped on reading.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass

from .units import format_bytes
from .verdicts import FASTER, INCONCLUSIVE, SLOWER, UNCHANGED, Settings, WorkVerdict

OP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,100}(?:\.[A-Za-z_][A-Za-z0-9_]{0,100}){1,3}")
HOST_READ = "aten._local_scalar_dense"
# Counters in the order a message names them, what each is in words, and whether more of it
# is more work the gate fails (a step that syncs, copies or computes more).
COUNTERS = (
    ("host_reads", "host reads of a device value (.item(), bool(t), printing a tensor), a sync each on a GPU", True),
    ("cuda_syncs", "synchronizations of the host with the GPU", True),
    ("h2d_copies", "copies from host to device", True),
    ("h2d_bytes", "bytes copied from host to device", True),
    ("d2h_copies", "copies from device to host", True),
    ("d2h_bytes", "bytes copied from device to host", True),
    ("flops", "floating-point operations", True),
    ("cuda_kernels", "kernels the GPU ran", False),
    ("cuda_copies", "copies the GPU ran", False),
    ("allocated_bytes", "bytes its operators allocated", False),
    ("cuda_allocated_bytes", "bytes the CUDA allocator handed out", False),
    ("op_calls", "operator calls", False),
)
GATED = tuple(key for key, _, gated in COUNTERS if gated)
SHOWN_OPS = 6  # operators a message names; the rest are counted


def _count(value) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 or value != int(value):
        return None
    return int(value)


@dataclass(frozen=True)
class Work:
    """One result's counted work, as read from its run file."""

    counted: str  # which call was counted: "one call of the step", "the first of an epoch's 469 training steps"
    counts: dict[str, int]
    ops: dict[str, int]
    note: str = ""  # what the counters could not see (a compiled step's graph, DataParallel's threads)


def work_of(info: dict) -> Work | None:
    """A result's ``work``, its bad entries dropped; None where it has none."""
    work = info.get("work")
    if not isinstance(work, dict):
        return None
    counts = {key: n for key, _, _ in COUNTERS if (n := _count(work.get(key))) is not None}
    raw_ops = work.get("ops")
    ops = {name: n for name, value in raw_ops.items() if isinstance(name, str) and OP_NAME.fullmatch(name) and (n := _count(value)) is not None} if isinstance(raw_ops, dict) else {}
    counted = work.get("counted") if isinstance(work.get("counted"), str) else "one call of the step"
    note = work.get("note") if isinstance(work.get("note"), str) else ""
    return Work(counted[:200], counts, ops, note[:300])


@dataclass(frozen=True)
class Instructions:
    per_call: int
    calls: tuple[int, ...]
    counted: str
    tool: str = ""  # callgrind and Valgrind's version: another version may count the same code otherwise

    @property
    def spread(self) -> float:
        """(most - fewest) / median of the counted calls of one run."""
        return (max(self.calls) - min(self.calls)) / self.per_call if self.calls and self.per_call else 0.0


def instructions_of(info: dict) -> Instructions | None:
    found = info.get("instructions")
    if not isinstance(found, dict):
        return None
    per_call = _count(found.get("per_call"))
    if not per_call:
        return None
    calls = found.get("calls") if isinstance(found.get("calls"), list) else []
    calls = tuple(c for c in (_count(v) for v in calls) if c)
    counted = found.get("counted") if isinstance(found.get("counted"), str) else "one call of the step"
    tool = found.get("tool") if isinstance(found.get("tool"), str) else ""
    return Instructions(per_call, calls or (per_call,), counted[:200], tool[:100])


def _amount(key: str, n: float) -> str:
    if key.endswith("bytes"):
        return format_bytes(n)
    if key == "flops":
        return f"{n:.3g}"
    return f"{n:,.0f}"


def _counter_change(key: str, words: str, before: int, after: int, ops_note: str) -> str:
    more = after > before
    delta = abs(after - before)
    if key == "host_reads":
        return f"the step now makes {delta:,} {'more' if more else 'fewer'} {words}: {HOST_READ} {before:,} -> {after:,}"
    if key == "flops":
        ratio = f"{after / before:.3g}x" if before else "from none"
        return f"{words} {_amount(key, before)} -> {_amount(key, after)} ({ratio}){ops_note}"
    return f"{'more' if more else 'fewer'} {words}: {_amount(key, before)} -> {_amount(key, after)}{ops_note}"


def op_changes(before: dict[str, int], after: dict[str, int]) -> list[str]:
    """``aten.mm 1 -> 2`` for every operator whose count changed, the largest changes first."""
    names = sorted(set(before) | set(after), key=lambda n: (-abs(after.get(n, 0) - before.get(n, 0)), n))
    return [f"{n} {before.get(n, 0):,} -> {after.get(n, 0):,}" for n in names if before.get(n, 0) != after.get(n, 0)]


@dataclass(frozen=True)
class WorkDiff:
    """How two results' work differs: sentences, the largest first; whether the gate fails it."""

    changes: tuple[str, ...] = ()
    more_work: tuple[str, ...] = ()  # the gated counters that grew
    headline: str = ""  # the first change in a few words, for a table's cell
    not_comparable: str = ""  # the counted calls differ: their counts are not set side by side

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def summary(self) -> str:
        return self.changes[0] if self.changes else ""


def diff(base: Work, cand: Work) -> WorkDiff:
    """What changed in the work from ``base`` to ``cand``: every counter exactly, then the operators."""
    if base.counted != cand.counted:
        return WorkDiff(not_comparable=f"other calls were counted: {base.counted!r} vs {cand.counted!r}")
    ops = op_changes(base.ops, cand.ops)
    changes, grew, headline = [], [], ""
    for key, words, gated in COUNTERS:
        if key not in base.counts or key not in cand.counts or base.counts[key] == cand.counts[key]:
            continue
        before, after = base.counts[key], cand.counts[key]
        if key == "host_reads":
            ops = [o for o in ops if not o.startswith(HOST_READ + " ")]
        changes.append(_counter_change(key, words, before, after, ""))
        if not headline:
            headline = f"{key.replace('_', ' ')} {_amount(key, before)} -> {_amount(key, after)}"
        if gated and after > before:
            grew.append(key)
    if ops:
        shown = "; ".join(ops[:SHOWN_OPS]) + (f"; and {len(ops) - SHOWN_OPS} more" if len(ops) > SHOWN_OPS else "")
        changes.append(f"operators: {shown}")
        headline = headline or f"operators: {ops[0]}"
    return WorkDiff(tuple(changes), tuple(grew), headline)


def side_work(infos: list[dict]) -> Work | None:
    """One side's work over its runs: the counts its runs agree on (they are exact: runs that
    disagree did different work, and the first run's is taken)."""
    found = [w for w in (work_of(i) for i in infos) if w is not None]
    return found[0] if found else None


def side_instructions(infos: list[dict]) -> Instructions | None:
    """One side's instructions per call: the median over its runs, every counted call kept."""
    found = [i for i in (instructions_of(info) for info in infos) if i is not None]
    if not found or len({(i.counted, i.tool) for i in found}) > 1:
        return None
    per_call = int(statistics.median(i.per_call for i in found))
    return Instructions(per_call, tuple(c for i in found for c in i.calls), found[0].counted, found[0].tool)


# --- a benchmark's verdict: read first, decided with one run a side --------------------------------


def _instructions(base: Instructions | None, cand: Instructions | None, settings: Settings) -> tuple[str, str]:
    """(status, note) of two sides' instructions per call against the measured threshold."""
    if base is None or cand is None:
        return "", ""
    if base.counted != cand.counted:
        return INCONCLUSIVE, f"other calls were counted: {base.counted!r} vs {cand.counted!r}"
    if base.tool != cand.tool:
        return INCONCLUSIVE, f"counted by other tools: {base.tool!r} vs {cand.tool!r}"
    threshold = settings.instruction_threshold
    noise = max(base.spread, cand.spread)
    ratio = cand.per_call / base.per_call
    if noise > threshold / 2:
        return INCONCLUSIVE, f"the counted calls of one run differ by {noise:.2%}, more than half the {threshold:.1%} threshold"
    if ratio > 1 + threshold:
        return SLOWER, f"{ratio:.4f}x the instructions per call, beyond the {threshold:.1%} that unchanged code varies by"
    if ratio < 1 / (1 + threshold):
        return FASTER, f"{ratio:.4f}x the instructions per call"
    return UNCHANGED, f"{ratio:.4f}x the instructions per call, within {threshold:.1%}"


def work_verdict(name: str, fullname: str, base_infos: list[dict], cand_infos: list[dict], settings: Settings) -> WorkVerdict | None:
    """What changed in one benchmark's counted work and instructions; None where neither side counted any."""
    bw, cw = side_work(base_infos), side_work(cand_infos)
    bi, ci = side_instructions(base_infos), side_instructions(cand_infos)
    if (bw is None or cw is None) and (bi is None or ci is None):
        return None
    found = diff(bw, cw) if bw is not None and cw is not None else WorkDiff()
    status, note = _instructions(bi, ci, settings)
    return WorkVerdict(
        name,
        fullname,
        changes=found.changes,
        headline=found.headline,
        more_work=found.more_work,
        note=found.not_comparable,
        instructions=(bi.per_call, ci.per_call) if status else None,
        instruction_status=status,
        instruction_note=note,
        allowed=settings.allow_more_work,
    )
