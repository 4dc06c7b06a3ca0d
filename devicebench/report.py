"""The history report: the answer first, then every stored run, grouped by machine.

Writes ``index.html`` (one file that opens offline: charts embedded, no scripts, nothing
fetched) and ``summary.md`` (the same answer and tables, no images, for a CI job summary).

The page opens on a summary, one row per machine: the GPU over its CPU, like for like (each
variant against the CPU doing the same work, as ``speedup`` sets them), the best efficiency
against the device's own ceilings, what changed since the previous run with its evidence,
and the latest run's quality (interrupted, failures, medians that disagree with CUDA events,
noisy or throttled results, a shared GPU). Machines that ran the same benchmarks sit side by
side. Each machine's section has its speed-up matrix, the regressions between its recent
consecutive runs, and its history: a chart per benchmark with two runs or more (throughput
where the benchmark records one, so that up is better, with the median's 95% interval),
a table row for the others.

Charts are drawn by matplotlib on one reused figure and kept by content in ``charts/``: a
chart whose points did not change is not drawn again.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from . import compare, render, speedup, targets
from .files import replace_file
from .runs import BadRun, Result, Run, as_run, describe_machine, load, stored_runs
from .schema import unit_label
from .units import digits, format_seconds, format_throughput, ratio

# Consecutive pairs whose regressions a machine's section lists (the latest ones); older pairs
# are there to compare with ``devicebench compare``.
RECENT_PAIRS = 30
# Earlier runs of the same software that lend their spread to a one-run-a-side comparison:
# the latest ones (a spread from 20 runs is as good as from 500, and costs far less).
HISTORY_WINDOW = 20


@dataclass
class Machine:
    fingerprint: str
    description: str
    runs: list[tuple[Path, Run]] = field(default_factory=list)

    same_as_another: bool = False  # another machine of the report has the same short name

    @property
    def short(self) -> str:
        """The machine in a few words, for a table: ``Intel Xeon (16 threads), NVIDIA H200``, with its
        fingerprint where another machine of the report reads the same."""
        short = self.description.split("; ")[0]
        return f"{short} [{self.fingerprint[:8]}]" if self.same_as_another else short


@dataclass(frozen=True)
class Written:
    index: Path
    summary: Path
    charts: int
    runs: int
    machines: int
    warnings: list[str]
    drawn: int = 0  # charts drawn this time (the others were kept from before)


def run_files(sources: list[str | Path] | str | Path) -> list[Path]:
    """Every run file of ``sources``: a folder's stored runs, a file as it is; each once."""
    if isinstance(sources, (str, Path)):
        sources = [sources]
    found: dict[Path, Path] = {}
    for source in map(Path, sources):
        for path in stored_runs(source) if source.is_dir() else [source]:
            found.setdefault(path.resolve(), path)
    return list(found.values())


CACHE_VERSION = "1"


class RunCache:
    """What the report reads of each run, kept in ``<out>/.cache/``: every round's time is most of a
    run file and the report needs only the median's interval, so a run read once is read again
    from a file a tenth its size. An entry is found by the run file's path, size and modification
    time; it is checked like any run when read, and one that cannot be read is read from the run."""

    def __init__(self, folder: Path | None):
        self.folder = folder
        self.used: set[str] = set()
        if folder is not None:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError:
                self.folder = None  # a report without a cache is slower, not wrong

    def load(self, path: Path) -> Run:
        if self.folder is None:
            return load(path)
        try:
            stat = path.stat()
        except OSError:
            return load(path)  # which says why in one line
        key = hashlib.sha256(f"{CACHE_VERSION}\0{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:24]
        entry = self.folder / f"{key}.json"
        self.used.add(entry.name)
        if entry.exists():
            try:
                return as_run(json.loads(entry.read_text(encoding="utf-8")), path)
            except (OSError, ValueError, RecursionError, BadRun):
                pass
        run = load(path)
        try:
            replace_file(entry, json.dumps(_slim(run), separators=(",", ":")).encode())
        except OSError:
            pass
        return run

    def prune(self) -> None:
        """Forget the runs that are no longer there, or have changed."""
        if self.folder is not None:
            for stale in self.folder.glob("*.json"):
                if stale.name not in self.used:
                    stale.unlink(missing_ok=True)


def _slim(run: Run) -> dict:
    """The run without its rounds, its medians' intervals (as :meth:`Result.median_interval` finds them) recorded instead."""
    data = dict(run.raw)
    benchmarks = []
    for bench, result in zip(run.raw["benchmarks"], run.results):
        stats = {k: v for k, v in bench["stats"].items() if k != "data"}
        stats["rounds"] = result.rounds
        info = {k: v for k, v in (bench.get("extra_info") or {}).items() if k not in ("median_ci_low_s", "median_ci_high_s")}
        interval = result.median_interval()
        if interval is not None:
            info["median_ci_low_s"], info["median_ci_high_s"] = interval
        benchmarks.append({**bench, "stats": stats, "extra_info": info})
    data["benchmarks"] = benchmarks
    return data


def collect(sources: list[str | Path] | str | Path, cache: RunCache | None = None) -> tuple[list[Machine], list[str]]:
    """Runs grouped by hardware fingerprint (and size, where not seed), oldest first; unreadable files become warnings."""
    machines: dict[str, Machine] = {}
    warnings = []
    cache = cache or RunCache(None)
    for path in run_files(sources):
        try:
            run = cache.load(path)
        except BadRun as exc:
            warnings.append(f"skipped {exc}")
            continue
        fp = str(run.fingerprint.get("id", "unknown"))
        size = run.size
        # Smoke and seed timings of one machine are different workloads: separate histories.
        key = f"{fp}-{size}" if size and size != "seed" else fp
        description = describe_machine(run).split("; run of")[0] + (f", {size} size" if size and size != "seed" else "")
        machine = machines.setdefault(key, Machine(key, description))
        machine.runs.append((path, run))
    for machine in machines.values():
        machine.runs.sort(key=lambda pr: (pr[1].datetime, pr[0].name))
    # Machines with a GPU first: they carry the answer most readers came for.
    ordered = sorted(machines.values(), key=lambda m: (not _accelerated(m.runs[-1][1]), m.description))
    names = [m.short for m in ordered]
    for machine in ordered:
        machine.same_as_another = names.count(machine.short) > 1
    return ordered, warnings


def _accelerated(run: Run) -> bool:
    return any(r.device in speedup.accelerator_ids() for r in run.results)


# --- what each machine's runs say -----------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One run's figure of a benchmark: its median and the median's 95% interval, as plotted."""

    run: int
    value: float
    low: float | None
    high: float | None
    unit: str | None = None  # the throughput's unit; None: the value is a median time


def _plotted(result: Result) -> tuple[float, float | None, float | None]:
    """Throughput (up is better) where the result records one, else the median time; with its interval."""
    interval = result.median_interval()
    if result.throughput:
        work = result.throughput * result.median_s
        if interval:
            return result.throughput, work / interval[1], work / interval[0]
        return result.throughput, None, None
    return result.median_s, *(interval or (None, None))


def history(runs: list[tuple[Path, Run]]) -> dict[str, list[Point]]:
    """Per benchmark: one point for each run that has it, in run order."""
    series: dict[str, list[Point]] = defaultdict(list)
    for i, (_, run) in enumerate(runs):
        for r in run.results:
            series[r.name].append(Point(i, *_plotted(r), unit=r.unit if r.throughput else None))
    return dict(sorted(series.items()))


def _window(runs: list[tuple[Path, Run]], before: int, like: Run) -> list[Run]:
    """The latest earlier runs (before index ``before``) of the same fingerprint, size and software."""
    key = compare.history_key(like)
    found = []
    for _, run in reversed(runs[:before]):
        if compare.history_key(run) == key:
            found.append(run)
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


def _evidence(v: compare.TimeVerdict) -> str:
    if v.status == compare.FAILED:
        return f"{v.name}: failed ({v.note})"
    interval = f" [{digits(v.ratio_low)}-{digits(v.ratio_high)}]" if v.ratio_low is not None else ""
    p = f", p {v.p_adjusted:.2g}" if v.p_adjusted is not None else ""
    return f"{v.name}: {ratio(v.ratio)} the time{interval}{p}"


def change(runs: list[tuple[Path, Run]], i: int, settings: compare.Settings) -> Change:
    """Run ``i`` against run ``i - 1``, with the spread of the earlier runs of the same software."""
    (b_path, base), (c_path, cand) = runs[i - 1], runs[i]
    result = compare.compare_runs(base, cand, settings, _window(runs, i - 1, cand))
    worse = [_evidence(v) for v in result.verdicts if v.is_regression] + [f"{q.name}: {q.metric} {q.baseline:.4g} -> {q.candidate:.4g}" for q in result.quality]
    changed = ", ".join(f"{k} {b} -> {c}" for k, b, c in result.software_changes) if result.environment_changed else ""
    return Change(b_path.name, c_path.name, worse, changed, len(result.inconclusive), result.compared, result.history_runs, settings.min_history)


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
    return "no regression found" + undecided


def quality_flags(run: Run) -> list[str]:
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


def headline(s: "Summary") -> str:
    """The answer for one machine in a sentence: what its GPU does over its CPU, what changed, what to doubt."""
    parts = []
    training = sorted((f.over_cpu, d) for row in s.rows if row.workload == "cnn" for d, f in row.accelerators.items() if f.over_cpu is not None)
    overall = sorted((f.over_cpu, d) for row in s.rows for d, f in row.accelerators.items() if f.over_cpu is not None)
    if training:
        low, high = training[0][0], training[-1][0]
        span = ratio(low) if low == high else f"{ratio(low)} to {ratio(high)}"
        parts.append(f"training (CNN epochs) runs {span} faster on {training[0][1]} than on its CPU, like for like")
    elif overall:
        parts.append(f"{overall[0][1]} runs the suite's work {ratio(overall[0][0])} to {ratio(overall[-1][0])} faster than its CPU, like for like")
    else:
        parts.append("CPU only" + (f" ({s.scaling[0]})" if s.scaling else ""))
    parts.append(s.since)
    if s.flags:
        parts.append("doubt: " + "; ".join(f.split(":")[0] for f in s.flags))
    return f"{s.machine.short}: " + "; ".join(parts) + "."


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
    changes: list[Change]  # the recent consecutive pairs, oldest first


def summarize(machine: Machine, settings: compare.Settings) -> Summary:
    latest_path, latest = machine.runs[-1]
    rows = speedup.matrix(latest)
    first = max(1, len(machine.runs) - RECENT_PAIRS)
    changes = [change(machine.runs, i, settings) for i in range(first, len(machine.runs))]
    return Summary(
        machine,
        latest_path,
        latest,
        rows,
        speedup_summary(rows) or ["no GPU in this run: CPU only"],
        scaling_summary(rows),
        best_efficiency(rows),
        _since_text(machine, changes[-1] if changes else None),
        quality_flags(latest),
        changes,
    )


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


# --- charts ---------------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


def chart_path(charts_dir: Path, machine: str, name: str) -> Path:
    """A chart's file: readable, short, distinct for every (machine, benchmark), and inside ``charts_dir``
    whatever the run file says its fingerprint or names are (``../../x``, 300 characters, slugs that collide)."""
    digest = hashlib.sha256(f"{machine}\0{name}".encode()).hexdigest()[:10]
    path = charts_dir / f"{_slug(machine)[:24]}-{_slug(name)[:60]}-{digest}.png"
    if path.resolve().parent != charts_dir.resolve():
        raise ValueError(f"chart name outside {charts_dir}: {path}")
    return path


def _axis_label(result: Result) -> str:
    if result.throughput:
        return f"{unit_label(result.unit)} (higher is better)"
    return "median time per call (lower is better)"


class Charts:
    """One matplotlib figure whose artists are updated for every chart: a new figure, or even a
    cleared one, costs more than the drawing (measured: about half of each chart's time)."""

    def __init__(self):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        self.plt = plt
        self.fig = plt.figure(figsize=(5.2, 2.6), dpi=100)
        # Fixed margins, wide enough for the labels: nothing is clipped, and no layout pass per chart.
        # The outer tick labels are centred on the first and last run: the side margins hold half of one.
        self.fig.subplots_adjust(left=0.15, right=0.93, top=0.88, bottom=0.28)
        ax = self.ax = self.fig.add_subplot()
        (self.line,) = ax.plot([], [], marker="o", markersize=3, linewidth=1.2, label="median")
        self.band = None
        ax.set_xlabel("run (number, date)", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.tick_params(axis="x", labelsize=7)

    def draw(self, title: str, ylabel: str, time_axis: bool, points: list[Point], labels: list[str], path: Path) -> None:
        ax = self.ax
        x = list(range(len(points)))
        values = [p.value for p in points]
        scale, unit = 1.0, ""
        if time_axis:
            scale, unit = next(((f, u) for u, f in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)) if max(values) >= f), (1e-9, "ns"))
        banded = all(p.low is not None and p.high is not None for p in points)
        top = max([*values, *(p.high for p in points if banded)])
        if self.band is not None:
            self.band.remove()
            self.band = None
        if banded:
            self.band = ax.fill_between(
                x, [p.low / scale for p in points], [p.high / scale for p in points], alpha=0.25, linewidth=0, color="C0", label="median's 95% interval"
            )
        self.line.set_data(x, [v / scale for v in values])
        self.line.set_marker("o" if len(x) <= 40 else "")
        ax.set_title(_literal(title), fontsize=9)
        ylabel = _literal(ylabel)
        ax.set_ylabel(ylabel.replace("median time per call", f"median time per call, {unit}\n") if unit else ylabel.replace(" (", "\n("), fontsize=7)
        ax.set_ylim(0, top / scale * 1.12)  # the highest point and interval inside the frame
        ax.set_xlim(-0.5, len(x) - 0.5)
        step = max(1, len(x) // 6)
        ticks = x[::step]
        if ticks[-1] != x[-1]:  # the latest run always has its label
            ticks = ticks[:-1] + [x[-1]] if x[-1] - ticks[-1] < step / 2 else ticks + [x[-1]]
        ax.set_xticks(ticks, [labels[points[t].run] for t in ticks])
        # The legend names only what is drawn.
        ax.legend(handles=[self.line, *([self.band] if banded else [])], fontsize=7, loc="lower left", frameon=False)
        self.fig.savefig(path)

    def close(self) -> None:
        self.plt.close(self.fig)


@functools.lru_cache(maxsize=1)
def _chart_style() -> str:
    """Part of every chart's content key: the drawing code and matplotlib's version, so that a new
    look (or a new matplotlib) redraws every chart."""
    import importlib.metadata
    import inspect

    try:
        code = inspect.getsource(Charts)
    except (OSError, TypeError):  # installed without its sources: every report draws afresh
        code = str(id(Charts))
    return hashlib.sha256((code + importlib.metadata.version("matplotlib")).encode()).hexdigest()[:12]


def _literal(text: str) -> str:
    """Text matplotlib shows as it is: a run file's ``$`` would start mathematics (or fail to parse)."""
    return render.plain(text).replace("$", r"\$")


def _chart_file(charts_dir: Path, machine: Machine, name: str, title: str, ylabel: str, points: list[Point], labels: list[str]) -> Path:
    """The chart's file: named by its content, so that an unchanged chart is found, not drawn again."""
    content = repr((_chart_style(), title, ylabel, [(p.value, p.low, p.high) for p in points], [labels[p.run] for p in points]))
    digest = hashlib.sha256(content.encode()).hexdigest()[:16]
    base = chart_path(charts_dir, machine.fingerprint, name)
    return base.with_name(f"{base.stem}-{digest}.png")


def _run_label(path: Path, run: Run) -> str:
    return f"{path.name[:4]}\n{run.datetime[:10]}"


# --- the page and the summary ---------------------------------------------------------------


_CAVEAT = (
    "Each compares one run with the next, against the run-to-run spread of the earlier runs of the same "
    "software (at least 5 are needed; with fewer, a change is inconclusive). On a shared machine one "
    "process's timings differ from the next's by 10-20%: confirm a finding with several runs a side "
    "(devicebench compare A1,A2,... B1,B2,...)."
)
SUMMARY_HEADERS = ["machine", "runs", "latest run", "GPU over its CPU (like for like)", "best efficiency", "since the previous run", "run quality"]


def _summary_cells(s: Summary) -> list[str]:
    return [
        s.machine.short,
        render.Safe(str(len(s.machine.runs))),
        f"{s.latest_path.name[:4]} of {s.latest.datetime[:10]}",
        "; ".join(s.speedups + s.scaling),
        s.efficiency,
        s.since,
        "; ".join(s.flags) or "complete, no flag",
    ]


def _html_table(headers: list[str], rows: list[list[str]], cls: str = "") -> str:
    return f"<div class='scroll'>{render.html_table(headers, rows).replace('<table>', f'<table class={cls!r}>' if cls else '<table>', 1)}</div>"


def _single_rows(results: list[Result]) -> list[list[str]]:
    return [
        [render.Code(r.name), render.Safe(format_seconds(r.median_s)), render.Safe(r.quality()), render.Safe(format_throughput(r.throughput, r.unit, r.bytes_counted))]
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


def write_report(sources: list[str | Path] | str | Path, out: str | Path, settings: compare.Settings = compare.Settings()) -> Written | None:
    """The history report of the runs in ``sources`` (folders of stored runs, or run files); None without runs."""
    out = Path(out)
    cache = RunCache(out / ".cache" / "runs")
    machines, warnings = collect(sources, cache)
    if not machines:
        return None
    cache.prune()
    charts_dir = out / "charts"
    charts_dir.mkdir(parents=True, exist_ok=True)
    summaries = [summarize(m, settings) for m in machines]
    n_runs = sum(len(m.runs) for m in machines)
    dates = sorted(run.datetime[:10] for m in machines for _, run in m.runs if run.datetime)
    lede = f"{n_runs} runs of {len(machines)} machine(s)" + (f", {dates[0]} to {dates[-1]}" if dates else "")

    answers = [headline(s) for s in summaries]
    md = ["# devicebench report", "", render.md_text(lede), "", "## Summary", ""]
    md += [f"- {render.md_text(a)}" for a in answers] + [""]
    md += [render.table(SUMMARY_HEADERS, [_summary_cells(s) for s in summaries], "markdown"), ""]
    body = [f"<p class='lede'>{html.escape(lede)}</p>", "<section id='summary'><h2>Summary</h2>"]
    body.append("<ul class='answers'>" + "".join(f"<li>{html.escape(a)}</li>" for a in answers) + "</ul>")
    body.append(_html_table(SUMMARY_HEADERS, [_summary_cells(s) for s in summaries], "summary"))
    body.append(
        "<p class='note'>Speed-ups set each GPU variant against the CPU doing the same work (speedup's reference "
        "column); efficiency is the share of the same device's ceiling; regressions need the evidence "
        "<code>devicebench compare</code> needs (the run is the unit).</p></section>"
    )
    headers, rows = side_by_side(summaries)
    if rows:
        md += ["## Machines side by side", "", "Latest runs; throughput where the benchmark records one (higher is better), else the median time.", ""]
        md += [render.table(headers, rows, "markdown"), ""]
        body.append("<section id='side-by-side'><h2>Machines side by side</h2><p>Latest runs; throughput where the benchmark records one (higher is better), else the median time.</p>")
        body.append(_html_table(headers, rows) + "</section>")

    charts: Charts | None = None  # matplotlib is imported only when a chart must be drawn
    drawn = 0
    n_charts, kept = 0, set()
    try:
        for s in summaries:
            machine = s.machine
            n = len(machine.runs)
            title = f"{machine.description} ({n} run{'s' if n != 1 else ''}, fingerprint {machine.fingerprint})"
            labels = [_run_label(p, r) for p, r in machine.runs]
            md += [f"## {render.md_text(title)}", "", f"Latest run: {render.md_code(s.latest_path)}", ""]
            md += [f"- {render.md_text(line)}" for line in [*s.speedups, *s.scaling, f"best efficiency: {s.efficiency}", f"since the previous run: {s.since}"]]
            md += [f"- run quality: {render.md_text(flag)}" for flag in s.flags] + [""]
            md += [render.speedups(s.rows, "markdown"), ""]
            body.append(f"<section class='machine'><h2>{html.escape(title)}</h2><p>Latest run: <code>{html.escape(str(s.latest_path))}</code></p>")
            if s.flags:
                body.append("<ul class='flags'>" + "".join(f"<li>{html.escape(f)}</li>" for f in s.flags) + "</ul>")
            body.append(_html_table(*render.speedup_cells(s.rows)))

            pairs = f"the last {len(s.changes)} pairs" if len(machine.runs) - 1 > len(s.changes) else "every pair"
            found = [c for c in s.changes if c.regressions]
            md += [f"### Regressions between consecutive runs ({pairs})", "", _CAVEAT, ""]
            body.append(f"<h3>Regressions between consecutive runs ({html.escape(pairs)})</h3><p class='note'>{html.escape(_CAVEAT)}</p>")
            if len(machine.runs) < 2:
                nothing = "one run: nothing to compare yet"
            else:
                undecided = sum(c.inconclusive for c in s.changes)
                nothing = "none found" + (f" ({undecided} verdicts inconclusive)" if undecided else "")
            lines = [f"{c.baseline} -> {c.candidate}: " + ("; ".join(c.regressions)) + (f" (environment changed: {c.environment}; not counted)" if c.environment else "") for c in found]
            md += [render.md_text(f"- {line}") for line in lines] or [nothing]
            md.append("")
            body.append("<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>" if lines else f"<p>{html.escape(nothing)}</p>")

            series = history(machine.runs)
            latest = s.latest.by_name()
            with_history = {n: p for n, p in series.items() if len(p) >= 2}
            single = [latest[n] for n, p in series.items() if len(p) < 2 and n in latest]
            if with_history:
                trend = _trend_rows(machine, with_history)
                md += ["### History", "", render.table(["benchmark", "runs", "first", "latest", "latest over first"], trend, "markdown"), ""]
                body.append("<h3>History: median per run, with its 95% interval</h3><div class='grid'>")
                for name, points in with_history.items():
                    result = latest.get(name) or next(r for _, run in reversed(machine.runs) for r in run.results if r.name == name)
                    ylabel = _axis_label(result)
                    path = _chart_file(charts_dir, machine, name, name, ylabel, points, labels)
                    if not path.exists():
                        charts = charts or Charts()
                        charts.draw(name, ylabel, not result.throughput, points, labels, path)
                        drawn += 1
                    kept.add(path.name)
                    n_charts += 1
                    encoded = base64.b64encode(path.read_bytes()).decode()
                    body.append(f"<img alt='{html.escape(name)}: {html.escape(ylabel)} per run' src='data:image/png;base64,{encoded}'>")
                body.append("</div>")
            if single:
                heading = "Benchmarks with one run" if with_history else "The run's benchmarks (one run: no history to chart yet)"
                cells = _single_rows(single)
                md += [f"### {heading}", "", render.table(["benchmark", "median", "how well known", "throughput"], cells, "markdown"), ""]
                body.append(f"<h3>{html.escape(heading)}</h3>" + _html_table(["benchmark", "median", "how well known", "throughput"], cells))
            body.append("</section>")
    finally:
        if charts is not None:
            charts.close()
    for stale in charts_dir.glob("*.png"):  # charts of an earlier report whose points have changed since
        if stale.name not in kept:
            stale.unlink(missing_ok=True)
    index, summary = out / "index.html", out / "summary.md"
    replace_file(index, _PAGE.format(body="\n".join(body)).encode())
    replace_file(summary, "\n".join(md).encode())
    return Written(index, summary, n_charts, n_runs, len(machines), warnings, drawn)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>devicebench report</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em auto; padding: 0 1em; max-width: 1180px; color: #222; }}
h1 {{ margin: 0 0 0.2em; }}
.lede {{ margin: 0 0 1em; color: #555; }}
.note {{ color: #555; font-size: 13px; }}
.scroll {{ overflow-x: auto; max-width: 100%; }}
table {{ border-collapse: collapse; margin: 0.6em 0; font-size: 13px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }}
table.summary td {{ max-width: 22em; }}
.flags li {{ color: #8a4b00; }}
.answers li {{ margin: 0.3em 0; font-size: 15px; }}
code {{ font-size: 12px; }}
h2, h3, p, li {{ overflow-wrap: anywhere; }}
.grid {{ display: flex; flex-wrap: wrap; gap: 8px; }}
.grid img {{ width: 520px; max-width: 100%; height: auto; border: 1px solid #eee; }}
</style></head><body>
<h1>devicebench report</h1>
{body}
</body></html>
"""
