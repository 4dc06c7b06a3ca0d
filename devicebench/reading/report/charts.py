"""The history charts: drawn by matplotlib on one reused figure, kept by content in ``charts/`` (a chart whose points did not change is not drawn again)."""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

from .. import render
from ..runs import Result
from ..schema import unit_label
from .collect import Machine, Point


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
        self.marks: list = []  # the change points' lines, drawn anew per chart
        ax.set_xlabel("run (number, date)", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.tick_params(axis="x", labelsize=7)

    def draw(self, title: str, ylabel: str, time_axis: bool, points: list[Point], labels: list[str], path: Path, marks: tuple = ()) -> None:
        """``marks``: (position in ``points``, weak) of each change point, drawn before that point."""
        ax = self.ax
        for artist in self.marks:
            artist.remove()
        self.marks = [ax.axvline(at - 0.5, color="C3", linestyle=":" if weak else "--", linewidth=1.0) for at, weak in marks]
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
        if self.marks:
            self.marks[0].set_label("change point (dotted: weak)")
        ax.legend(handles=[self.line, *([self.band] if banded else []), *self.marks[:1]], fontsize=7, loc="lower left", frameon=False)
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


def _chart_file(charts_dir: Path, machine: Machine, name: str, title: str, ylabel: str, points: list[Point], labels: list[str], marks: tuple = ()) -> Path:
    """The chart's file: named by its content, so that an unchanged chart is found, not drawn again."""
    content = repr((_chart_style(), title, ylabel, [(p.value, p.low, p.high) for p in points], [labels[p.run] for p in points], marks))
    digest = hashlib.sha256(content.encode()).hexdigest()[:16]
    base = chart_path(charts_dir, machine.fingerprint, name)
    return base.with_name(f"{base.stem}-{digest}.png")


def speedup_chart(charts_dir: Path, machine: Machine, bars: list[tuple[str, float, float | None, float | None]]) -> Path:
    """One machine's speed-ups over its CPU as bars (label, ratio, interval low, high), on a log scale;
    kept by content like the history charts."""
    path = _summary_chart_path(charts_dir, machine, "speedups", bars)
    if path.exists():
        return path
    plt = _pyplot()
    height = 0.9 + 0.28 * len(bars)
    fig, ax = plt.subplots(figsize=(5.2, height), dpi=100)
    try:
        y = list(range(len(bars)))[::-1]
        values = [b[1] for b in bars]
        errors = [
            [max(0.0, v - (lo if lo is not None else v)) for v, lo in zip(values, (b[2] for b in bars))],
            [max(0.0, (hi if hi is not None else v) - v) for v, hi in zip(values, (b[3] for b in bars))],
        ]
        ax.barh(y, values, xerr=errors, color="C0", alpha=0.8, error_kw={"elinewidth": 0.8, "capsize": 2, "label": "95% interval"}, label="GPU over its CPU")
        ax.set_xscale("log")
        ax.axvline(1.0, color="#888", linewidth=0.8)
        ax.set_yticks(y, [_literal(b[0]) for b in bars], fontsize=7)
        for yi, v, b in zip(y, values, bars):
            ax.text((b[3] or v) * 1.12, yi, f"{v:.3g}x", va="center", fontsize=7)
        ax.set_xlim(0.5, max(b[3] or b[1] for b in bars) * 6)
        fig.supxlabel("times faster than its CPU, same work (log scale; whiskers: 95% interval)", fontsize=7, y=0.12 / height)
        ax.tick_params(axis="x", labelsize=7)
        fig.suptitle(_literal(f"{machine.short}: GPU over its CPU, like for like"), fontsize=7, y=1 - 0.08 / height)
        fig.subplots_adjust(left=0.36, right=0.97, top=1 - 0.3 / height, bottom=0.5 / height)
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


def _summary_style() -> str:
    """Part of a summary chart's content key: the drawing code of both summary charts."""
    import inspect

    try:
        code = inspect.getsource(speedup_chart) + inspect.getsource(change_point_chart)
    except (OSError, TypeError):  # installed without its sources: drawn afresh each time
        return str(id(speedup_chart))
    return hashlib.sha256(code.encode()).hexdigest()[:12]


def change_point_chart(charts_dir: Path, machine: Machine, points: list, runs: int, labels: list[str]) -> Path:
    """One machine's confirmed change points over its history: a row per benchmark, a mark at the
    first run after each change (red: the code's or environment's, grey: the machine's), its ratio beside it."""
    # The code's changes first: they are what a reader came for; then the machine's, 20 rows at most.
    rows = sorted({c.benchmark for c in points}, key=lambda n: (all(c.cause == "machine" for c in points if c.benchmark == n), n))[:20]
    shown = [c for c in points if c.benchmark in rows]
    path = _summary_chart_path(charts_dir, machine, "changes", (runs, [(c.benchmark, c.index, round(c.ratio, 4), c.cause) for c in shown]))
    if path.exists():
        return path
    plt = _pyplot()
    height = 1.5 + 0.24 * len(rows)
    fig, ax = plt.subplots(figsize=(5.2, height), dpi=100)
    try:
        y = {name: len(rows) - 1 - i for i, name in enumerate(rows)}
        for cause, color in (("code or environment", "C3"), ("machine", "#888")):
            mine = [c for c in shown if c.cause == cause]
            if not mine:
                continue
            ax.scatter([c.index for c in mine], [y[c.benchmark] for c in mine], color=color, s=14, label=cause, zorder=3)
            for c in mine if len(shown) <= 30 else ():  # beyond that the ratios would overlap: the section lists them
                ax.annotate(f"{c.ratio:.2g}x", (c.index, y[c.benchmark]), xytext=(3, 3), textcoords="offset points", fontsize=6)
        ax.set_yticks(list(y.values()), [_literal(n) for n in y], fontsize=6)
        ax.set_xlim(-0.5, runs - 0.5)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        step = max(1, runs // 6)
        ticks = list(range(0, runs, step))
        ax.set_xticks(ticks, [labels[t].split("\n")[0] for t in ticks], fontsize=6)
        ax.set_xlabel("the first run after each change; beside it, time after / before", fontsize=6)
        ax.grid(axis="y", color="#eee")
        ax.legend(fontsize=6, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, frameon=False, borderaxespad=0.2)
        fig.suptitle(_literal(f"{machine.short}: change points over its history"), fontsize=7, y=1 - 0.06 / height)
        fig.subplots_adjust(left=0.4, right=0.97, top=1 - 0.5 / height, bottom=0.55 / height)
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


def _summary_chart_path(charts_dir: Path, machine: Machine, kind: str, content: object) -> Path:
    """A summary chart's file, named by its content (and its drawing code), so that an unchanged one is not drawn again."""
    key = repr((_chart_style(), _summary_style(), machine.fingerprint, content))
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return chart_path(charts_dir, machine.fingerprint, kind).with_name(f"{machine.fingerprint[:10]}-{kind}-{digest}.png")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
