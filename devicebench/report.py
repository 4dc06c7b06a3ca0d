"""The history report: every stored run, grouped by machine fingerprint.

Writes ``index.html`` (self-contained: charts embedded, no scripts, no CDN, opens offline),
``summary.md`` (the same tables, for a CI job summary) and ``charts/*.png``. Per machine:
the latest run's speed-up matrix and efficiency, the regressions found between each pair
of consecutive runs, and one chart per benchmark of its median (line) and IQR (band) over
the runs. Charts are small multiples, one per benchmark, so hundreds of runs and dozens
of benchmarks stay readable.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from . import compare, render, speedup
from .runs import BadRun, Run, as_run, describe_machine, load, stored_runs


@dataclass
class Machine:
    fingerprint: str
    description: str
    runs: list[tuple[Path, Run]] = field(default_factory=list)


@dataclass(frozen=True)
class Written:
    index: Path
    summary: Path
    charts: int
    runs: int
    machines: int
    warnings: list[str]


def run_files(sources: list[str | Path] | str | Path) -> list[Path]:
    """Every run file of ``sources``: a folder's stored runs, a file as it is; each once."""
    if isinstance(sources, (str, Path)):
        sources = [sources]
    found: dict[Path, Path] = {}
    for source in map(Path, sources):
        for path in stored_runs(source) if source.is_dir() else [source]:
            found.setdefault(path.resolve(), path)
    return list(found.values())


def collect(sources: list[str | Path] | str | Path) -> tuple[list[Machine], list[str]]:
    """Runs grouped by hardware fingerprint (and size, where not seed), oldest first; unreadable files become warnings."""
    machines: dict[str, Machine] = {}
    warnings = []
    for path in run_files(sources):
        try:
            run = load(path)
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
    return list(machines.values()), warnings


def history(runs: list[tuple[Path, Run]]) -> dict[str, list[tuple[int, float, float, float]]]:
    """Per benchmark: (run index, median, q1, q3) for each run that has it."""
    series: dict[str, list[tuple[int, float, float, float]]] = defaultdict(list)
    for i, (_, run) in enumerate(runs):
        for r in as_run(run).results:
            q1, q3 = r.stats.get("q1", r.median_s), r.stats.get("q3", r.median_s)
            series[r.name].append((i, r.median_s, q1 if q1 is not None else r.median_s, q3 if q3 is not None else r.median_s))
    return dict(sorted(series.items()))


def consecutive_regressions(runs: list[tuple[Path, Run]], settings: compare.Settings) -> tuple[list[tuple[str, str, list[str]]], int]:
    """Regressions found between each run and the next, and how many benchmark verdicts were inconclusive.

    One run a side has no spread of its own: the earlier runs of the same software lend theirs
    (at least ``settings.min_history``); before there are that many, a change is inconclusive.
    """
    found, undecided = [], 0
    for i, ((b_path, base), (c_path, cand)) in enumerate(zip(runs, runs[1:])):
        history = [run for _, run in runs[:i] if compare.history_key(run) == compare.history_key(cand)]
        result = compare.compare_runs(base, cand, settings, history)
        regressions = result.regressions + [f"{r}, environment changed" for r in result.environment_regressions]
        undecided += len(result.inconclusive)
        if regressions:
            found.append((b_path.name, c_path.name, regressions))
    return found, undecided


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


def draw_chart(name: str, points: list[tuple[int, float, float, float]], labels: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [p[0] for p in points]
    median, q1, q3 = ([p[k] for p in points] for k in (1, 2, 3))
    scale, unit = max(median), "s"
    for candidate_unit, factor in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if scale >= factor:
            scale, unit = factor, candidate_unit
            break
    else:
        scale, unit = 1e-9, "ns"
    fig, ax = plt.subplots(figsize=(5.0, 2.4), dpi=100)
    ax.fill_between(x, [v / scale for v in q1], [v / scale for v in q3], alpha=0.3, linewidth=0, label="IQR")
    ax.plot(x, [v / scale for v in median], marker="o" if len(x) <= 30 else None, markersize=3, linewidth=1.2, label="median")
    ax.set_title(name, fontsize=9)
    ax.set_ylabel(unit, fontsize=8)
    ax.set_ylim(bottom=0)
    ticks = x if len(x) <= 8 else x[:: max(1, len(x) // 6)]
    ax.set_xticks(ticks)
    ax.set_xticklabels([labels[t] for t in ticks], fontsize=7, rotation=20)
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


_CAVEAT = (
    "Each compares one run with the next, against the run-to-run spread of the earlier runs of the same "
    "software (at least 5 are needed; with fewer, a change is inconclusive). On a shared machine one "
    "process's timings differ from the next's by 10-20%: confirm a finding with several runs a side "
    "(devicebench compare A1,A2,... B1,B2,...)."
)


def _run_label(path: Path, run: Run) -> str:
    return f"{path.name[:4]} {run.datetime[:10]}"


def write_report(sources: list[str | Path] | str | Path, out: str | Path, settings: compare.Settings = compare.Settings()) -> Written | None:
    """The history report of the runs in ``sources`` (folders of stored runs, or run files); None without runs."""
    machines, warnings = collect(sources)
    if not machines:
        return None
    out = Path(out)
    charts_dir = out / "charts"
    charts_dir.mkdir(parents=True, exist_ok=True)
    md, body, n_charts = ["# devicebench history", ""], [], 0
    for machine in machines:
        latest_path, latest = machine.runs[-1]
        labels = [_run_label(p, r) for p, r in machine.runs]
        matrix = speedup.matrix(latest)
        found, undecided = consecutive_regressions(machine.runs, settings)
        nothing = "none found" + (f" ({undecided} verdicts inconclusive)" if undecided else "")
        if len(machine.runs) < 2:
            nothing = "one run: nothing to compare yet"
        title = f"{machine.description} ({len(machine.runs)} runs, fingerprint {machine.fingerprint})"
        md += [f"## {render.md_text(title)}", "", f"Latest run: {render.md_code(latest_path)}", "", render.speedups(matrix, "markdown"), ""]
        md += ["### Regressions between consecutive runs", "", _CAVEAT, ""]
        md += [render.md_text(f"- {b} -> {c}: {', '.join(r)}") for b, c, r in found] or [nothing]
        md.append("")
        body.append(f"<h2>{html.escape(title)}</h2><p>Latest run: <code>{html.escape(str(latest_path))}</code></p>")
        body.append(render.html_table(*render.speedup_cells(matrix)))
        body.append(f"<h3>Regressions between consecutive runs</h3><p>{html.escape(_CAVEAT)}</p>")
        if found:
            items = "".join(f"<li>{html.escape(b)} &rarr; {html.escape(c)}: {html.escape(', '.join(r))}</li>" for b, c, r in found)
            body.append(f"<ul>{items}</ul>")
        else:
            body.append(f"<p>{html.escape(nothing)}</p>")
        body.append("<h3>Median and IQR per run</h3><div class='grid'>")
        md += ["### Charts", ""]
        for name, points in history(machine.runs).items():
            chart = chart_path(charts_dir, machine.fingerprint, name)
            draw_chart(name, points, labels, chart)
            n_charts += 1
            encoded = base64.b64encode(chart.read_bytes()).decode()
            body.append(f"<img alt='{html.escape(name)}' src='data:image/png;base64,{encoded}'>")
            md.append(f"![{render.md_text(name)}](charts/{chart.name})")
        body.append("</div>")
        md.append("")
    index, summary = out / "index.html", out / "summary.md"
    index.write_text(_PAGE.format(body="\n".join(body)), encoding="utf-8")
    summary.write_text("\n".join(md), encoding="utf-8")
    return Written(index, summary, n_charts, sum(len(m.runs) for m in machines), len(machines), warnings)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>devicebench history</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 14px; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) {{ text-align: left; }}
.grid {{ display: flex; flex-wrap: wrap; gap: 8px; }}
.grid img {{ width: 500px; max-width: 100%; border: 1px solid #eee; }}
</style></head><body>
<h1>devicebench history</h1>
{body}
</body></html>
"""
