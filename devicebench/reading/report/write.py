"""The report built as one document (:mod:`.page`), then written as ``index.html`` and ``summary.md``."""

from __future__ import annotations

from pathlib import Path

from .. import compare, render
from ..files import replace_file
from . import page
from .charts import Charts, _axis_label, _chart_file, change_point_chart, speedup_chart
from .collect import Machine, RunCache, Written, collect, history
from .page import Bullets, Heading, Images, Markdown, Para, Section, Table, only
from .summary import (
    _CAVEAT,
    ALL_CHANGES,
    LISTED_CHANGE_POINTS,
    SUMMARY_HEADERS,
    Summary,
    _run_label,
    _single_rows,
    _summary_cells,
    _trend_rows,
    answer_lines,
    change_point_text,
    notable,
    side_by_side,
    speedup_bars,
    summarize,
)

HISTORY_NOTE = (
    "Where a benchmark's level moved over every stored run of this machine (devicebench history: ruptures' segmentation, "
    "the gate's rank test, Holm over every candidate); the machine's when its ceilings moved with it."
)
SIDE_BY_SIDE_NOTE = "Latest runs; throughput where the benchmark records one (higher is better), else the median time."
REFERENCES_NOTE = (
    "Speed-ups set each GPU variant against the CPU doing the same work (speedup's reference column); efficiency "
    "is the share of the same device's ceiling; regressions need the evidence devicebench compare needs (the run is the unit)."
)


def _front(machines: list[Machine], summaries: list[Summary], drawer: "_ChartDrawer | None" = None) -> list:
    """The answer first: the lede, one sentence per machine and its speed-ups as a picture, one row per machine, the machines side by side."""
    n_runs = sum(len(m.runs) for m in machines)
    dates = sorted(run.datetime[:10] for m in machines for _, run in m.runs if run.datetime)
    lede = f"{n_runs} runs of {len(machines)} machine(s)" + (f", {dates[0]} to {dates[-1]}" if dates else "")
    blocks = [only("markdown", Heading(1, "devicebench report")), Para(lede, cls="lede")]
    blocks.append(
        Section(
            [
                Heading(2, "Summary"),
                *[block for s in summaries for block in _answer(s, drawer)],
                only("html", Table(SUMMARY_HEADERS, [_summary_cells(s) for s in summaries], cls="summary")),
                only("html", Para(REFERENCES_NOTE, cls="note")),
            ],
            id="summary",
        )
    )
    headers, rows = side_by_side(summaries)
    if rows:
        blocks.append(Section([Heading(2, "Machines side by side"), Para(SIDE_BY_SIDE_NOTE), Table(headers, rows)], id="side-by-side"))
    return blocks


def _answer(s: Summary, drawer: "_ChartDrawer | None") -> list:
    """One machine on the first screen: its name, the answer in short lines, its pictures."""
    pictures = _speedup_pictures([s], drawer)
    return [Heading(3, f"{s.machine.short}: {len(s.machine.runs)} run(s)"), Bullets(answer_lines(s), cls="answers"), *([only("html", Images(pictures))] if pictures else [])]


def _speedup_pictures(summaries: list[Summary], drawer: "_ChartDrawer | None") -> list[tuple[Path, str]]:
    if drawer is None:
        return []
    pictures = []
    for s in summaries:
        bars = speedup_bars(s)
        if bars:
            alt = f"{s.machine.short}: GPU over its CPU, like for like, " + ", ".join(f"{label} {value:.3g}x" for label, value, _, _ in bars)
            pictures.append((drawer.speedups(s.machine, bars), alt))
        confirmed = [c for c in s.change_points if not c.weak]
        if confirmed:
            labels = [_run_label(p, r) for p, r in s.machine.runs]
            alt = f"{s.machine.short}: {len(confirmed)} change point(s) over its history"
            pictures.append((drawer.changes(s.machine, confirmed, len(s.machine.runs), labels), alt))
    return pictures


def _changes(s: Summary) -> list:
    """The change points of the machine's history, then the latest pair."""
    machine = s.machine
    latest, largest = notable(s.change_points, LISTED_CHANGE_POINTS)
    points = [f"latest: {change_point_text(c)}" for c in latest] + [f"largest: {change_point_text(c)}" for c in largest]
    rest = len(s.change_points) - len(points)
    blocks = [Heading(3, "Change points in its history"), Para(HISTORY_NOTE, cls="note"), Para(s.history_text)]
    if points:
        blocks.append(Bullets(points))
        blocks.append(Para(f"{rest} more; all {len(s.change_points)} are listed in " if rest else "All are also listed in ", code=ALL_CHANGES))
    if len(machine.runs) < 2:
        nothing = "one run: nothing to compare yet"
    else:
        undecided = sum(c.inconclusive for c in s.changes)
        nothing = "none found" + (f" ({undecided} verdicts inconclusive)" if undecided else "")
    lines = [
        f"{c.baseline} -> {c.candidate}: " + "; ".join(c.regressions) + (f" (environment changed: {c.environment}; not counted)" if c.environment else "")
        for c in s.changes
        if c.regressions
    ]
    work = [f"{c.baseline} -> {c.candidate}: {line}" for c in s.changes for line in c.work]
    after = [Heading(3, "What the steps do differently (exact work)"), Bullets(work)] if work else []
    return blocks + [Heading(3, "Since the previous run"), Para(_CAVEAT, cls="note"), Bullets(lines) if lines else Para(nothing)] + after


class _ChartDrawer:
    """Draws what is not in ``charts/`` already, on one figure (matplotlib only imported if a chart must be drawn)."""

    def __init__(self, charts_dir: Path):
        self.charts_dir = charts_dir
        self.charts: Charts | None = None
        self.drawn = 0
        self.kept: set[str] = set()

    def image(self, machine: Machine, name: str, result, points, labels, change_points=()) -> tuple[Path, str]:
        ylabel = _axis_label(result)
        runs = [p.run for p in points]
        marks = tuple((runs.index(c.index), c.weak) for c in change_points if c.index in runs)
        path = _chart_file(self.charts_dir, machine, name, name, ylabel, points, labels, marks)
        if not path.exists():
            self.charts = self.charts or Charts()
            self.charts.draw(name, ylabel, not result.throughput, points, labels, path, marks)
            self.drawn += 1
        self.kept.add(path.name)
        return path, f"{name}: {ylabel} per run"

    def speedups(self, machine: Machine, bars) -> Path:
        before = set(self.charts_dir.glob("*-speedups-*.png"))
        path = speedup_chart(self.charts_dir, machine, bars)
        self.drawn += path not in before
        self.kept.add(path.name)
        return path

    def changes(self, machine: Machine, points, runs: int, labels) -> Path:
        before = set(self.charts_dir.glob("*-changes-*.png"))
        path = change_point_chart(self.charts_dir, machine, points, runs, labels)
        self.drawn += path not in before
        self.kept.add(path.name)
        return path

    def close(self) -> None:
        if self.charts is not None:
            self.charts.close()
        for stale in self.charts_dir.glob("*.png"):  # charts of an earlier report whose points have changed since
            if stale.name not in self.kept:
                stale.unlink(missing_ok=True)


def _history(s: Summary, drawer: _ChartDrawer) -> list:
    """Charts (on the page) or a table (in Markdown) of each benchmark with history; a table of the rest."""
    machine = s.machine
    labels = [_run_label(p, r) for p, r in machine.runs]
    series = history(machine.runs)
    latest = s.latest.by_name()
    with_history = {n: p for n, p in series.items() if len(p) >= 2}
    single = [latest[n] for n, p in series.items() if len(p) < 2 and n in latest]
    blocks = []
    if with_history:
        trend = Table(["benchmark", "runs", "first", "latest", "latest over first"], _trend_rows(machine, with_history))
        blocks.append(only("markdown", Section([Heading(3, "History"), trend])))
        images = []
        for name, points in with_history.items():
            result = latest.get(name) or next(r for _, run in reversed(machine.runs) for r in run.results if r.name == name)
            marked = [c for c in s.change_points if c.benchmark == name]
            images.append(drawer.image(machine, name, result, points, labels, marked))
        blocks.append(only("html", Section([Heading(3, "History: median per run, with its 95% interval"), Images(images)])))
    if single:
        heading = "Benchmarks with one run" if with_history else "The run's benchmarks (one run: no history to chart yet)"
        blocks += [Heading(3, heading), Table(["benchmark", "median", "how well known", "throughput"], _single_rows(single))]
    return blocks


def _machine(s: Summary, drawer: _ChartDrawer) -> Section:
    machine = s.machine
    n = len(machine.runs)
    title = f"{machine.description} ({n} run{'s' if n != 1 else ''}, fingerprint {machine.fingerprint})"
    said = [*s.speedups, *s.scaling, *filter(None, [s.compile_text]), f"best efficiency: {s.efficiency}", f"since the previous run: {s.since}"]
    compiled = render.compile_cells(s.rows)
    blocks = [
        Heading(2, title),
        Para("Latest run: ", code=str(s.latest_path)),
        only("markdown", Bullets(said + [f"how well measured: {flag}" for flag in s.flags])),
        *([only("html", Bullets(s.flags, cls="flags"))] if s.flags else []),
        Markdown(render.speedups(s.rows, "markdown")),
        only("html", Table(*render.speedup_cells(s.rows))),
        *([only("html", Para("torch.compile against eager, the same work on the same device:")), only("html", Table(*compiled))] if compiled[1] else []),
        *_changes(s),
        *_history(s, drawer),
    ]
    return Section(blocks, cls="machine")


def write_report(sources: list[str | Path] | str | Path, out: str | Path, settings: compare.Settings = compare.Settings(), progress=None) -> Written | None:
    """The history report of the runs in ``sources`` (folders of stored runs, or run files); None without runs."""
    out = Path(out)
    cache = RunCache(out / ".cache" / "runs")
    machines, warnings = collect(sources, cache, progress=progress)
    if not machines:
        return None
    cache.prune()
    charts_dir = out / "charts"
    charts_dir.mkdir(parents=True, exist_ok=True)
    summaries = [summarize(m, settings) for m in machines]
    if machines[0].memo is not None:
        machines[0].memo.save()
    drawer = _ChartDrawer(charts_dir)
    try:
        document = _front(machines, summaries, drawer) + [_machine(s, drawer) for s in summaries]
    finally:
        drawer.close()
    index, summary = out / "index.html", out / "summary.md"
    replace_file(index, page.page(document).encode())
    replace_file(summary, page.to_markdown(document).encode())
    replace_file(out / ALL_CHANGES, page.to_markdown(_all_changes(summaries)).encode())
    n_charts = sum(len(b.images) for b in _images(document))
    return Written(index, summary, n_charts, sum(len(m.runs) for m in machines), len(machines), warnings, drawer.drawn)


def _all_changes(summaries: list[Summary]) -> list:
    """Every change point of every machine's history, in run order (the report names a few)."""
    blocks = [Heading(1, "Change points of every stored run's history"), Para(HISTORY_NOTE)]
    for s in summaries:
        points = sorted(s.change_points, key=lambda c: (c.index, c.benchmark))
        blocks += [Heading(2, f"{s.machine.short}: {len(s.machine.runs)} run(s), fingerprint {s.machine.fingerprint}"), Para(s.history_text)]
        blocks.append(Bullets([change_point_text(c) for c in points]) if points else Para("none"))
    return blocks


def _images(blocks: list):
    for block in blocks:
        if isinstance(block, Images):
            yield block
        elif isinstance(block, Section):
            yield from _images(block.blocks)
