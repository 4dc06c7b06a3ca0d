"""What the report says of a machine: its speed-ups like for like, best efficiency, what changed since the previous run, what to doubt, and the tables."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .. import compare, history, machines, render, speedup, targets
from ..runs import Result, Run
from ..units import digits, format_seconds, format_throughput, ratio
from .collect import Machine, Point

# The pair view covers the latest pair only: a history is read as change points (devicebench.reading.history).
RECENT_PAIRS = 1



# Earlier runs of the same software that lend their spread to a one-run-a-side comparison:
# the latest ones (a spread from 20 runs is as good as from 500, and costs far less).
HISTORY_WINDOW = 20


def _window(runs: list[tuple[Path, Run]], before: int, like: Run) -> list[int]:
    """The latest earlier runs (their indices, before ``before``) of the same fingerprint, size and software."""
    key = machines.history_key(like)
    found = []
    for i in range(before - 1, -1, -1):
        if machines.history_key(runs[i][1]) == key:
            found.append(i)
            if len(found) == HISTORY_WINDOW:
                break
    return found


@dataclass(frozen=True)
class Change:
    """What one run changed against the one before, with the evidence for each regression."""

    baseline: str
    candidate: str
    regressions: list[str]  # "name: 1.15x [1.10-1.21], p 0.003"
    environment: str = ""  # the software that changed, where it did (its slowdowns are not counted)
    inconclusive: int = 0
    compared: int = 0
    history: int = 0  # earlier runs of the same software that lent their spread
    min_history: int = 5
    unconfirmed: list[str] = field(default_factory=list)  # inconclusive slowdowns beyond the threshold: "name 1.29x"
    work: list[str] = field(default_factory=list)  # what the steps now do differently: "name: the step now makes 500 more host reads ..."


def _evidence(v: compare.TimeVerdict) -> str:
    if v.status == compare.FAILED:
        return f"{v.name}: failed ({v.note})"
    interval = f" [{digits(v.ratio_low)}-{digits(v.ratio_high)}]" if v.ratio_low is not None else ""
    p = f", p {v.p_adjusted:.2g}" if v.p_adjusted is not None else ""
    return f"{v.name}: {ratio(v.ratio)} the time{interval}{p}"


def change(machine: Machine, i: int, settings: compare.Settings) -> Change:
    """Run ``i`` against run ``i - 1``, with the spread of the earlier runs of the same software (all read whole)."""
    (b_path, base), (c_path, cand) = machine.whole(i - 1), machine.whole(i)
    window = [machine.whole(j)[1] for j in _window(machine.runs, i - 1, cand)]
    result = compare.compare_runs(base, cand, settings, window)
    worse = [_evidence(v) for v in result.verdicts if v.is_regression] + [f"{q.name}: {q.metric} {q.baseline:.4g} -> {q.candidate:.4g}" for q in result.quality]
    worse += [f"{w.name}: {w.summary}" for w in result.work if w.is_regression]
    work = [f"{w.name}: {w.summary}" for w in result.work if w.changes or w.instruction_status not in ("", "unchanged")]
    changed = ", ".join(f"{k} {b} -> {c}" for k, b, c in result.software_changes) if result.environment_changed else ""
    slow = [f"{n} {ratio(r)}" for n, d, r in result.unconfirmed if d == "slowdown"]
    return Change(b_path.name, c_path.name, worse, changed, len(result.inconclusive), result.compared, result.history_runs, settings.min_history, slow, work)


def _since_text(machine: Machine, latest: Change | None) -> str:
    if latest is None:
        return "one run: nothing to compare yet"
    if latest.environment and latest.regressions:
        return f"the environment changed ({latest.environment}): {len(latest.regressions)} slower or worse, not counted as regressions"
    if latest.regressions:
        return f"{len(latest.regressions)} regression(s): " + "; ".join(latest.regressions)
    if not latest.compared:
        return "nothing comparable with the previous run"
    why = (
        f"fewer than {latest.min_history} earlier runs of the same software: the spread is not known yet"
        if latest.history < latest.min_history
        else "the run-to-run spread is too wide to tell a change of the threshold's size"
    )
    undecided = f"; {latest.inconclusive} of {latest.compared} inconclusive ({why})" if latest.inconclusive else ""
    if latest.unconfirmed:  # never "no regression" while a slowdown beyond the threshold is open
        slow = ", ".join(latest.unconfirmed)
        return f"no confirmed regression; {len(latest.unconfirmed)} unconfirmed slowdown(s): {slow} (to confirm: {render.CONFIRM})" + undecided
    return "no regression found" + undecided


def completeness_flags(run: Run) -> list[str]:
    """What makes the run's figures less than complete and exact, one phrase each."""
    flags = []
    if run.block.get("generated_by"):
        flags.append("generated, not measured")
    if run.interrupted:
        flags.append("interrupted: benchmarks it did not reach are missing")
    if run.failed:
        flags.append(f"{len(run.failed)} failed: {_names(sorted(n.rsplit('::', 1)[-1] for n in run.failed))}")
    disagree = [c.name for c in targets.check_against_events(run) if not c.agrees]
    if disagree:
        flags.append(f"{len(disagree)} median(s) disagree with CUDA events: {_names(disagree)}")
    noisy = [r.name for r in run.results if r.noisy]
    if noisy:
        flags.append(f"{len(noisy)} noisy (stopped before the median was known): {_names(noisy)}")
    throttled = [r.name for r in run.results if r.throttled_rounds]
    if throttled:
        flags.append(f"{len(throttled)} with throttled GPU rounds: {_names(throttled)}")
    if run.block.get("gpu_shared"):
        flags.append("another process used the GPU during the run")
    return flags


def _names(names: list[str], most: int = 3) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def speedup_summary(rows: list[speedup.Row]) -> list[str]:
    """Per accelerator and workload, the range of speed-ups over the CPU doing the same work."""
    by: dict[tuple[str, str], list[tuple[float, str]]] = defaultdict(list)
    for row in rows:
        for device, figure in row.accelerators.items():
            if figure.over_cpu is not None:
                by[(device, row.workload)].append((figure.over_cpu, row.variant))
    out = []
    for device in dict.fromkeys(d for d, _ in by):
        parts = []
        for (d, workload), values in by.items():
            if d != device:
                continue
            values.sort()
            (low, low_v), (high, high_v) = values[0], values[-1]
            parts.append(f"{workload} {ratio(low)} ({low_v})" + (f" to {ratio(high)} ({high_v})" if high_v != low_v else ""))
        out.append(f"{device} over cpu: " + "; ".join(parts))
    return out


def scaling_summary(rows: list[speedup.Row]) -> list[str]:
    """Per DataParallel or DDP device, its scaling over one process of the same run."""
    by: dict[str, list[tuple[float, str, int, str]]] = defaultdict(list)
    for row in rows:
        for device, s in row.scaling.items():
            if s.efficiency is not None:
                by[device].append((s.efficiency, f"{row.workload} {row.variant}", s.world, s.reference))
    out = []
    for device, values in by.items():
        values.sort()
        low, high = values[0], values[-1]
        span = f"{low[0]:.0%}" + (f" to {high[0]:.0%}" if high[0] != low[0] else "")
        out.append(f"{device} x{low[2]}: {span} of {low[2]} x {low[3]}")
    return out


def best_efficiency(rows: list[speedup.Row]) -> str:
    """The highest share of a ceiling any variant reached, on an accelerator where there is one."""
    found = [(e, device, row) for row in rows for device, e in row.efficiency.items()]
    if not found:
        return "no ceiling measured"
    accelerated = [f for f in found if f[1] != "cpu"]
    e, device, row = max(accelerated or found, key=lambda f: f[0])
    ceiling = row.ceiling or "ceiling"
    return f"{row.workload} {row.variant} on {device}: {e:.0%} of its {ceiling} ceiling"


def compile_summary(rows: list[speedup.Row]) -> str:
    """torch.compile in one sentence: each compiled variant's speed-up over eager on its device, and when it pays off."""
    parts = []
    for row in rows:
        for device, gain in row.compiled.items():
            if gain.ratio is None:
                continue
            pays = "never pays off (not faster)" if gain.never else render.break_even_text(gain, row.unit) or "break-even not known"
            compile_s = f", compiling {format_seconds(gain.compile_s)}" if gain.compile_s is not None else ""
            flag = f" ({gain.note})" if gain.recompiles_in_rounds else ""
            parts.append(f"{row.workload.replace('linear_regression', 'linreg')} {row.variant} {render.gain_text(gain)}{compile_s}, {pays}{flag}")
    return "torch.compile: " + "; ".join(parts) if parts else ""


def answer_lines(s: "Summary") -> list[str]:
    """The answer for one machine in short lines: what its GPU does over its CPU, its history's
    change points (counted; the latest and the largest named), what changed since the previous
    run, what to doubt."""
    lines = []
    training = sorted((f.over_cpu, d) for row in s.rows if row.workload == "cnn" for d, f in row.accelerators.items() if f.over_cpu is not None)
    overall = sorted((f.over_cpu, d) for row in s.rows for d, f in row.accelerators.items() if f.over_cpu is not None)
    if training:
        low, high = training[0][0], training[-1][0]
        span = ratio(low) if low == high else f"{ratio(low)} to {ratio(high)}"
        lines.append(f"training (CNN epochs) runs {span} faster on {training[0][1]} than on its CPU, like for like")
    elif overall:
        lines.append(f"{overall[0][1]} runs the suite's work {ratio(overall[0][0])} to {ratio(overall[-1][0])} faster than its CPU, like for like")
    else:
        lines.append("CPU only" + (f" ({s.scaling[0]})" if s.scaling else ""))
    if s.compile_text:
        lines.append(s.compile_text)
    if s.efficiency != "no ceiling measured":
        lines.append(f"best efficiency: {s.efficiency}")
    latest, largest = notable(s.change_points, SHOWN_CHANGE_POINTS)
    rest = len(s.change_points) - len(latest) - len(largest)
    lines.append(f"history: {s.history_text}" + (f"; {rest} more than named here, all listed in the report's {ALL_CHANGES}" if rest > 0 else ""))
    lines += [f"latest change: {short_change_text(c)}" for c in latest]
    lines += [f"largest change: {short_change_text(c)}" for c in largest]
    lines += _since_lines(s)
    if s.flags:
        lines.append("doubt: " + "; ".join(f.split(":")[0] for f in s.flags))
    return lines


def _since_lines(s: "Summary") -> list[str]:
    """What changed since the previous run, in short lines: the verdict, then what is open."""
    latest = s.changes[-1] if s.changes else None
    if latest is None or latest.regressions or not latest.compared:
        return [f"since the previous run: {s.since}"]
    lines = ["since the previous run: " + ("no confirmed regression" if latest.unconfirmed else "no regression found")]
    if latest.unconfirmed:
        lines.append(f"unconfirmed slowdown(s): {', '.join(latest.unconfirmed)} (to confirm: several runs a side)")
    if latest.inconclusive:
        why = "the spread is not known yet" if latest.history < latest.min_history else "the spread is too wide"
        lines.append(f"inconclusive: {latest.inconclusive} of {latest.compared} ({why})")
    return lines


# Change points named on the first screen (the latest and the largest, each) and in a machine's
# section; the rest are counted there, and all are listed in ALL_CHANGES.
SHOWN_CHANGE_POINTS = 3
LISTED_CHANGE_POINTS = 10
ALL_CHANGES = "change-points.md"


def notable(points: list, most: int) -> tuple[list, list]:
    """The latest ``most`` change points and the ``most`` largest of the others: confirmed ones
    (and changes of the work, which are certain) where there are any, else the weak ones."""
    pool = [c for c in points if not c.weak] or list(points)
    latest = sorted(pool, key=lambda c: (-c.index, c.benchmark))[:most]
    largest = sorted((c for c in pool if c not in latest), key=lambda c: (-abs(math.log(c.ratio)) if c.ratio > 0 else 0.0, c.index))[:most]
    return latest, largest


def short_change_text(c) -> str:
    """``test_matmul[cpu-fp32] 1.13x the time from 0015`` (weak, of the machine, the work or the software where so)."""
    if c.kind == "work":
        return f"{c.benchmark}: the work changed from {c.run[:4]}"
    notes = [n for n in ("weak" if c.weak else "", "the machine's" if c.cause == "machine" else "", c.software) if n]
    return f"{c.benchmark} {c.ratio:.3g}x the time from {c.run[:4]}" + (f" ({'; '.join(notes)})" if notes else "")


@dataclass
class Summary:
    machine: Machine
    latest_path: Path
    latest: Run
    rows: list[speedup.Row]
    speedups: list[str]
    scaling: list[str]
    efficiency: str
    since: str
    flags: list[str]
    changes: list[Change]  # the latest pair (the pair view)
    change_points: list = field(default_factory=list)  # devicebench.reading.history.ChangePoint, over the whole history
    history_text: str = ""  # the change points in a sentence
    compile_text: str = ""  # torch.compile against eager in a sentence (empty without compiled variants)


def summarize(machine: Machine, settings: compare.Settings) -> Summary:
    latest_path, latest = machine.whole(-1)
    rows = speedup.matrix(latest)
    first = max(1, len(machine.runs) - RECENT_PAIRS)
    changes = [change(machine, i, settings) for i in range(first, len(machine.runs))]
    points = history.change_points(machine.runs, settings.threshold, settings.alpha, machine.memo)
    return Summary(
        machine,
        latest_path,
        latest,
        rows,
        speedup_summary(rows) or ["no GPU in this run: CPU only"],
        scaling_summary(rows),
        best_efficiency(rows),
        _since_text(machine, changes[-1] if changes else None),
        completeness_flags(latest) + render.ceilings_not_reached(rows),
        changes,
        points,
        _history_text(machine, points),
        compile_summary(rows),
    )


def change_point_text(c) -> str:
    """``test_matmul[cpu-fp32] 1.13x the time [1.11-1.18] from 0015 (after 0014), code or environment``."""
    what = "weak: " if c.weak else ""
    software = f" ({c.software})" if c.software else ""
    if c.kind == "work":
        return f"{c.benchmark}: the work changed from {c.run[:4]} (after {c.before_run[:4]}): {c.work}; {c.ratio:.3g}x the time{software}"
    if c.work:
        software += f"; the work changed: {c.work}"
    return (
        f"{what}{c.benchmark} {c.ratio:.3g}x the time [{c.ratio_low:.3g}-{c.ratio_high:.3g}] from {c.run[:4]} (after {c.before_run[:4]}), "
        f"p {c.p:.2g}, {c.cause}{software}"
    )


def _history_text(machine: Machine, points: list) -> str:
    """What the history says since its first run, counted: ``2 change point(s) since 2026-01-01
    (1 the machine's), 3 weak; the work changed once``."""
    runs = machine.runs
    work = [c for c in points if c.kind == "work"]
    points = [c for c in points if c.kind != "work"]
    said = f"; the work changed {len(work)} time(s)" if work else ""
    if len(runs) < 2 * history.MIN_SEGMENT:
        return f"{len(runs)} run(s): too few to find a change point in the times ({2 * history.MIN_SEGMENT} needed){said}"
    since = runs[0][1].datetime[:10] or runs[0][0].name[:4]
    confirmed = [c for c in points if not c.weak]
    weak = len(points) - len(confirmed)
    tail = f", {weak} weak" if weak else ""
    if not confirmed:
        return f"no change point since {since} ({len(runs)} runs){tail}{said}"
    machine_moves = sum(c.cause == "machine" for c in confirmed)
    moves = f" ({machine_moves} the machine's: its ceilings moved with them)" if machine_moves else ""
    return f"{len(confirmed)} change point(s) since {since}{moves}{tail}{said}"


def side_by_side(summaries: list[Summary]) -> tuple[list[str], list[list[str]]]:
    """Benchmarks that ran on two machines or more (latest runs of the same size): throughput, or median time."""
    by_size: dict[str | None, list[Summary]] = defaultdict(list)
    for s in summaries:
        by_size[s.latest.size].append(s)
    shared = [group for group in by_size.values() if len(group) >= 2]
    if not shared:
        return [], []
    group = max(shared, key=len)
    results = [s.latest.by_name() for s in group]
    names = sorted(n for n in set().union(*results) if sum(n in r for r in results) >= 2)
    headers = ["benchmark"] + [f"{s.machine.short} (run {s.latest_path.name[:4]})" for s in group]
    rows = []
    for name in names:
        cells = [render.Code(name)]
        for r in results:
            result = r.get(name)
            if result is None:
                cells.append(render.Safe(""))
            elif result.throughput:
                cells.append(render.Safe(format_throughput(result.throughput, result.unit)))
            else:
                cells.append(render.Safe(format_seconds(result.median_s)))
        rows.append(cells)
    return headers, rows


def _run_label(path: Path, run: Run) -> str:
    return f"{path.name[:4]}\n{run.datetime[:10]}"


_CAVEAT = (
    "The latest run against the one before, judged against the run-to-run spread of the earlier runs of the same "
    "software (at least 5 are needed; with fewer, a change is inconclusive). On a shared machine one "
    "process's timings differ from the next's by 10-20%: confirm a finding with several runs a side "
    "(devicebench compare A1,A2,... B1,B2,...)."
)


SUMMARY_HEADERS = ["machine", "runs", "latest run", "GPU over its CPU (like for like)", "best efficiency", "changes in its history", "since the previous run", "how well measured"]


def _summary_cells(s: Summary) -> list[str]:
    return [
        s.machine.short,
        render.Safe(str(len(s.machine.runs))),
        f"{s.latest_path.name[:4]} of {s.latest.datetime[:10]}",
        "; ".join(s.speedups + s.scaling),
        s.efficiency,
        s.history_text,
        s.since,
        "; ".join(s.flags) or "complete, no flag",
    ]


def _single_rows(results: list[Result]) -> list[list[str]]:
    return [
        [render.Code(r.name), render.Safe(format_seconds(r.median_s)), render.Safe(r.how_well_known()), render.Safe(format_throughput(r.throughput, r.unit, r.bytes_counted))]
        for r in results
    ]


def _trend_rows(machine: Machine, series: dict[str, list[Point]]) -> list[list[str]]:
    """For Markdown, where there are no charts: per benchmark with history, first and latest figure."""
    rows = []
    for name, points in series.items():
        if len(points) < 2:
            continue
        # Each point says what it is: a benchmark missing from the latest run keeps its unit.
        last = points[-1]
        alike = [p for p in points if p.unit == last.unit]
        if len(alike) < 2:
            continue
        first = alike[0]
        up = last.unit is not None
        shown = (lambda v: format_throughput(v, last.unit)) if up else format_seconds
        change = last.value / first.value
        rows.append([render.Code(name), render.Safe(str(len(points))), render.Safe(shown(first.value)), render.Safe(shown(last.value)), render.Safe(f"{ratio(change)} ({'higher is better' if up else 'lower is better'})")])
    return rows


def speedup_bars(s: Summary) -> list[tuple[str, float, float | None, float | None]]:
    """Each workload variant's cuda:0 (or first accelerator's) speed-up over the CPU doing the same
    work, with the interval both medians' intervals give: (label naming the reference, ratio, low, high)."""
    results = {(r.workload, r.variant, r.device): r for r in s.latest.results}
    bars = []
    for row in s.rows:
        for device, figure in row.accelerators.items():
            if figure.over_cpu is None or not row.cpu_reference:
                continue
            gpu = results.get((row.workload, row.variant, device))
            cpu = results.get((row.workload, row.cpu_reference.removeprefix("cpu-"), "cpu"))
            low, high = speedup.ratio_interval(gpu, cpu, figure.over_cpu) if gpu and cpu else (None, None)
            on = "" if device == "cuda:0" else f" on {device}"
            bars.append((f"{row.workload.replace('linear_regression', 'linreg')} {row.variant}{on} vs {row.cpu_reference}", figure.over_cpu, low, high))
            break  # one bar a variant: the first accelerator the row has
    return bars

