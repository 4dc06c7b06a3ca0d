"""Reading stored runs back, and the figures a person reads off one run.

A run is pytest-benchmark's JSON enriched by the suite. :func:`load_run` checks what it reads
and raises :class:`BadRun` with the file and what is wrong, never a bare traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


class BadRun(ValueError):
    """A file that is not a readable benchmark run; the message names the file and the problem."""


def load_run(path: str | Path) -> dict:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadRun(f"{path}: no such file") from None
    except OSError as exc:
        raise BadRun(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRun(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); truncated?") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise BadRun(f"{path}: not a benchmark run (no 'benchmarks' list)")
    for i, bench in enumerate(data["benchmarks"]):
        if not isinstance(bench, dict) or "name" not in bench or "median" not in bench.get("stats", {}):
            raise BadRun(f"{path}: benchmark #{i} has no name or no stats.median")
    return data


@dataclass(frozen=True)
class Row:
    name: str
    device: str
    median_s: float
    iqr_s: float
    rounds: int
    cold_start_s: float | None
    throughput: str


def _format_throughput(info: dict) -> str:
    unit = info.get("throughput_unit")
    if not unit or unit not in info:
        return ""
    value = info[unit]
    return f"{value:,.0f} {unit}" if value >= 1000 else f"{value:.4g} {unit}"


def rows(run: dict) -> list[Row]:
    out = []
    for bench in sorted(run["benchmarks"], key=lambda b: b["name"]):
        info, stats = bench.get("extra_info", {}), bench["stats"]
        out.append(
            Row(
                name=bench["name"],
                device=info.get("device", "?"),
                median_s=stats["median"],
                iqr_s=stats.get("iqr", 0.0),
                rounds=stats.get("rounds", 0),
                cold_start_s=info.get("cold_start_s"),
                throughput=_format_throughput(info),
            )
        )
    return out


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return ""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.4g} {unit}"
    return f"{seconds / 1e-9:.4g} ns"


def markdown_table(run: dict) -> str:
    lines = [
        "| benchmark | median | IQR | rounds | cold start | throughput |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows(run):
        lines.append(
            f"| `{row.name}` | {format_seconds(row.median_s)} | {format_seconds(row.iqr_s)} | {row.rounds} "
            f"| {format_seconds(row.cold_start_s)} | {row.throughput} |"
        )
    return "\n".join(lines)


def training_table(run: dict) -> str:
    """Where each CNN epoch's time goes, and what the training reached; empty without CNN results."""
    lines = []
    for bench in sorted(run["benchmarks"], key=lambda b: b["name"]):
        info = bench.get("extra_info", {})
        if info.get("workload") != "cnn" or "epoch_s" not in info:
            continue
        tta = info.get("time_to_accuracy_s")
        reached = f"{format_seconds(tta)} ({info['epochs_to_accuracy']} epochs)" if tta is not None else "not reached"
        lines.append(
            f"| `{bench['name']}` | {info['dataset']} | {format_seconds(info['epoch_s'])} | {format_seconds(info['data_wait_s'])} "
            f"| {format_seconds(info['step_s'])} | {format_seconds(info['first_batch_s'])} | {info['val_accuracy']:.4f} "
            f"| {info['target_accuracy']}: {reached} |"
        )
    if not lines:
        return ""
    head = [
        "| benchmark | data | epoch | waiting for data | in the step | first batch | val accuracy | time to accuracy |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    return "\n".join(head + lines)


def describe_machine(run: dict) -> str:
    info = run.get("machine_info", {}).get("devicebench")
    if not info:
        return "machine: unknown (no devicebench block: written by plain pytest-benchmark?)"
    gpus = ", ".join(g["name"] for g in info.get("gpus", [])) or "no GPU"
    return (
        f"{info['cpu_model']} ({info['cpu_threads']} threads), {gpus}; torch {info['torch']}, "
        f"CUDA {info['cuda']}, Python {info['python']}; run of {run.get('datetime', '?')}"
    )


@dataclass(frozen=True)
class EventCheck:
    name: str
    median_s: float
    event_median_s: float
    allowance_s: float  # the largest difference that still agrees
    allowance: str  # what it is: "3%", or the sync cost measured in the run
    agrees: bool

    @property
    def relative_diff(self) -> float:
        return abs(self.median_s - self.event_median_s) / self.event_median_s


def check_against_events(run: dict, rel_tol: float = 0.03) -> list[EventCheck]:
    """Each CUDA benchmark's median against CUDA events recorded around the same calls.

    They agree within ``rel_tol`` (3%) of the events' median, or, where the run measured what
    a synchronized round costs beyond its device work (``sync_overhead_max_s``: launching the
    first kernel, waking from the sync, reading the timer), within that cost per call. A
    benchmark's own spread is never an allowance: a noisy benchmark must agree as well.
    """
    checks = []
    for bench in run["benchmarks"]:
        info = bench.get("extra_info", {})
        event_median = info.get("cuda_event_median_s")
        if not event_median:
            continue
        median = bench["stats"]["median"]
        allowance_s, allowance = rel_tol * event_median, f"{rel_tol:.0%}"
        overhead, iterations = info.get("sync_overhead_max_s"), info.get("iterations") or 1
        if overhead and overhead / iterations > allowance_s:
            allowance_s = overhead / iterations
            allowance = f"sync cost {format_seconds(overhead)}" + (f" / {iterations} calls" if iterations > 1 else "")
        checks.append(EventCheck(bench["name"], median, event_median, allowance_s, allowance, abs(median - event_median) <= allowance_s))
    return checks


def stored_runs(results_dir: str | Path) -> list[Path]:
    """Every run file under ``results_dir`` (pytest-benchmark's ``NNNN_*.json``), in path order."""
    root = Path(results_dir)
    return sorted(p for p in root.rglob("*.json") if p.name[:4].isdigit() and p.name[4:5] == "_")


def resolve(arg: str, results_dir: str | Path, machine_slug: str | None = None) -> Path:
    """A run file from a path, or from a run id (``0003``, ``3``, ``latest``) in ``results_dir``.

    Ids are numbered per machine folder, so an id that exists for several machines means this
    machine's run (``machine_slug``), and is otherwise ambiguous.
    """
    path = Path(arg)
    if path.is_file():
        return path
    if not (arg == "latest" or arg.isdigit()):
        raise BadRun(f"{arg}: no such file, and not a run id (a number such as 0003, or 'latest')")
    runs = stored_runs(results_dir)
    if not runs:
        raise BadRun(f"{arg}: no stored runs under {results_dir}")
    mine = [p for p in runs if machine_slug and machine_slug in p.parts]
    if arg == "latest":
        folders = {p.parent for p in runs}
        pool = mine or (runs if len(folders) == 1 else [])
        if not pool:
            raise BadRun(f"latest: runs of several machines under {results_dir} and none of this one; give a path")
        return max(pool, key=lambda p: (p.name[:4], p.name))
    prefix = f"{int(arg):04d}_"
    matches = [p for p in runs if p.name.startswith(prefix)]
    if len(matches) > 1:
        matches = [p for p in matches if p in mine] or matches
    if not matches:
        raise BadRun(f"{arg}: no run {prefix[:-1]} under {results_dir}")
    if len(matches) > 1:
        raise BadRun(f"{arg}: ambiguous, run {prefix[:-1]} exists for several machines ({', '.join(map(str, matches))}); give a path")
    return matches[0]
