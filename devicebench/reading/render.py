"""Rendering only: comparisons and speed-up matrices as terminal tables, Markdown and JSON."""

from __future__ import annotations

import html
import json
import re
from dataclasses import asdict

from .compare import Comparison
from .runs import Run, as_run
from .schema import unit_label
from .speedup import CompileGain
from .speedup import Row as SpeedupRow
from .units import digits, format_seconds, format_throughput, ratio

FORMATS = ("table", "markdown", "json")

# Text read from a run file (names, CPU models, skip reasons, errors) is untrusted: it reaches
# terminals, Markdown job summaries and HTML. One line each, and nothing in it may become
# markup: no line breaks (a forged "no regression" line), HTML, links, images or table cells.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MARKDOWN = re.compile(r"([\\`\[\]!|])")


class Code(str):
    """A cell shown as code (a benchmark name): a code span in Markdown, where nothing is markup."""


class Safe(str):
    """A cell made here from numbers (seconds, ratios, p-values): nothing to escape."""


def plain(text: object) -> str:
    """One line of text: control characters, line breaks among them, become spaces."""
    return _CONTROL.sub(" ", str(text))


def md_text(text: object) -> str:
    """Text as Markdown shows it literally: HTML escaped, link, image, code and cell syntax escaped."""
    return _MARKDOWN.sub(r"\\\1", html.escape(plain(text), quote=False))


def text(value: object, fmt: str) -> str:
    """Text from a run file as one line of the output's format: plain for a terminal, escaped for Markdown."""
    return md_text(value) if fmt == "markdown" else plain(value)


def md_code(text: object) -> str:
    """A code span that no text can leave: no backticks or line breaks inside; ``|`` escaped for tables."""
    return "`" + plain(text).replace("`", "'").replace("|", "\\|") + "`"


def _md_cell(cell: str) -> str:
    if isinstance(cell, Code):
        return md_code(cell)
    if isinstance(cell, Safe):
        return str(cell)
    return md_text(cell)


def table(headers: list[str], rows: list[list[str]], fmt: str) -> str:
    """Columns aligned for a terminal (``table``) or a GitHub pipe table (``markdown``), every cell escaped."""
    if fmt == "markdown":
        out = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
        out += ["| " + " | ".join(_md_cell(cell) for cell in row) + " |" for row in rows]
        return "\n".join(out)
    rows = [[plain(cell) for cell in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _verdict(v, environment_changed: bool = False) -> str:
    if v.reference and v.status in ("faster", "slower", "unchanged", "inconclusive"):
        return f"{v.status} (a ceiling: the machine)"
    if v.is_regression and environment_changed:
        return f"{v.status} (environment changed)"
    text = v.status.upper() if v.is_regression else v.status
    return f"{text} ({v.note})" if v.note and v.status in ("not comparable", "failed") else text


def _interval(v) -> str:
    if v.ratio is None:
        return ""
    if v.ratio_low is None:
        return ratio(v.ratio)
    relative = f" rel. ceilings (as measured {ratio(v.raw_ratio)})" if v.relative_to_ceiling else ""
    return f"{ratio(v.ratio)} [{digits(v.ratio_low)}-{digits(v.ratio_high)}]{relative}"


def _machine_line(move) -> str:
    direction = "slower" if move.ratio > 1 else "faster"
    factor = move.ratio if move.ratio > 1 else 1 / move.ratio
    each = ", ".join(f"{name} {ratio(value)}" for name, value in move.ceilings.items())
    return (
        f"The machine moved, not the code: {move.device} is {ratio(factor)} {direction} by its ceilings ({each}); "
        f"its workloads are judged relative to them."
    )


# What makes a verdict's runs less than exact, as compare's "measurement:" lines name it.
RUN_FLAGS = (
    ("noisy (stopped before the median was known)", "noisy_runs"),
    ("throttled", "throttled_runs"),
    ("recompiled inside the timed rounds (they timed the compiler)", "recompiled_runs"),
)


def run_flags(verdicts) -> list[str]:
    """``name: throttled in 1 of 3 baseline and 0 of 3 candidate runs``, for each flag a verdict's runs carry."""
    flags = []
    for v in verdicts:
        for what, attribute in RUN_FLAGS:
            b, c = getattr(v, attribute)
            if b or c:
                flags.append(f"{v.name}: {what} in {b} of {len(v.baseline_runs)} baseline and {c} of {len(v.candidate_runs)} candidate runs")
    return flags


def _comparison_json(result: Comparison, baseline: str, candidate: str) -> str:
    return json.dumps(
        {
            "baseline": baseline,
            "candidate": candidate,
            "runs": {"baseline": result.runs[0], "candidate": result.runs[1], "history": result.history_runs},
            "procedure": result.procedure,
            "regressions": result.regressions,
            "inconclusive": result.inconclusive,
            "unconfirmed": [{"name": n, "direction": d, "ratio": r} for n, d, r in result.unconfirmed],
            "environment_changed": result.environment_changed,
            "environment_regressions": result.environment_regressions,
            "machine": [asdict(m) for m in result.machine],
            "warnings": result.warnings,
            "hardware_diff": result.hardware_diff,
            "software_changes": result.software_changes,
            "benchmarks": [{**asdict(v), "is_regression": v.is_regression} for v in result.verdicts],
            "work": [{**asdict(w), "instruction_ratio": w.instruction_ratio, "is_regression": w.is_regression} for w in result.work],
            "quality": [asdict(q) for q in result.quality],
            "quality_not_comparable": [{"name": n, "reason": r} for n, r in result.quality_not_comparable],
        },
        indent=2,
    )


def comparison(result: Comparison, fmt: str, baseline: str, candidate: str) -> str:
    if fmt == "json":
        return _comparison_json(result, baseline, candidate)
    md = fmt == "markdown"
    t = md_text if md else plain  # everything from a run file, outside the tables
    out = [f"{'## ' if md else ''}devicebench compare: {t(baseline)} -> {t(candidate)}", ""]
    if result.software_changes:
        out.append("What changed between the runs: " + t(", ".join(f"{k} {b} -> {c}" for k, b, c in result.software_changes)))
        if result.environment_changed:
            out.append("The environment changed: what is slower or worse below is not counted as the change's regression.")
        out.append("")
    for move in result.machine:
        if move.moved:
            out += [t(_machine_line(move)), ""]
    if result.hardware_diff:
        out.append("Different hardware (compared anyway): " + t(", ".join(f"{k} {b} -> {c}" for k, b, c in result.hardware_diff)))
        out.append("")
    for warning in result.warnings:
        out += [f"warning: {t(warning)}", ""]
    out += _work_section(result, fmt)
    history = f" + {result.history_runs} stored" if result.history_runs else ""
    rows = [
        [
            Code(v.name),
            Safe(format_seconds(v.baseline_s)),
            Safe(format_seconds(v.candidate_s)),
            Safe(_interval(v)),
            Safe(f"{v.p_adjusted:.2g}" if v.p_adjusted is not None else ""),
            Safe(f"{len(v.baseline_runs)}/{len(v.candidate_runs)}{history if v.method.startswith('t ') else ''}" if v.baseline_runs else ""),
            _verdict(v, result.environment_changed),
            _work_cell(result.work_of(v.fullname)),
        ]
        for v in result.verdicts
    ]
    out.append(table(["benchmark", "baseline", "candidate", "ratio [95% interval]", "p (Holm)", "runs", "verdict", "work"], rows, fmt))
    if result.quality:
        out += ["", f"{'### ' if md else ''}What the benchmarks learned and used"]
        qrows = [[Code(q.name), q.metric, Safe(f"{q.baseline:.4g}"), Safe(f"{q.candidate:.4g}"), q.note] for q in result.quality]
        out.append(table(["benchmark", "metric", "baseline", "candidate", "regression"], qrows, fmt))
    if result.quality_not_comparable:
        out += ["", f"{'### ' if md else ''}Accuracy, loss and memory not compared (not like for like)"]
        out.append(table(["benchmark", "why"], [[Code(n), r] for n, r in result.quality_not_comparable], fmt))
    notes = [f"{v.name}: {v.note}" for v in result.verdicts if v.status == "inconclusive" and v.note and not v.reference]
    flags = run_flags(result.verdicts)
    bullet = "- " if md else ""
    out += ["", f"{bullet}procedure: {result.procedure}", *(f"{bullet}inconclusive: {t(n)}" for n in notes)]
    out += [f"{bullet}unconfirmed {d}: {t(n)} {ratio(r)} (to confirm: {CONFIRM})" for n, d, r in result.unconfirmed]
    out += [f"{bullet}measurement: {t(f)}" for f in flags]
    worse = [(v.name, v.status) for v in result.verdicts if v.is_regression]
    worse += [(w.name, "more instructions" if w.instruction_status == "slower" else "more work") for w in result.work if w.is_regression]
    worse += [(q.name, q.metric) for q in result.quality]
    listing = ", ".join(f"{md_code(name) if md else plain(name)} ({what})" for name, what in worse)
    undecided = f"; {len(result.inconclusive)} inconclusive" if result.inconclusive else ""
    if result.environment_regressions:
        changed = t(", ".join(f"{k} {b} -> {c}" for k, b, c in result.software_changes))
        out += ["", f"not comparable: the environment changed ({changed}); {len(worse)} result(s) slower or worse: {listing}"]
        out.append("(--allow-env-change counts them as regressions)")
    else:
        out += ["", _last_line(result, worse, listing, undecided, t)]
    return "\n".join(out)


def _work_cell(found) -> str:
    """A time verdict's row names what changed in the step's work (the first change), or that it did not."""
    if found is None:
        return ""
    if found.note:
        return "not compared"
    if found.changes:
        return found.headline
    return "unchanged" + (f" ({found.instruction_status} instructions)" if found.instruction_status not in ("", "unchanged") else "")


def _work_section(result: Comparison, fmt: str) -> list[str]:
    """Exact work first: what each step now does differently, and its instructions, one run a side."""
    if not result.work:
        return []
    md = fmt == "markdown"
    t = md_text if md else plain
    bullet = "- " if md else "  "
    changed = [w for w in result.work if w.changes or w.note or w.instruction_status not in ("", "unchanged")]
    counted = sum(1 for w in result.work)
    title = f"{'### ' if md else ''}Exact work (counted: one run a side decides)"
    if not changed:
        return [title, f"the same work in the {counted} benchmark(s) counted" + _instruction_tail(result), ""]
    out = [title]
    for w in changed:
        name = md_code(w.name) if md else plain(w.name)
        lines = []
        if w.instructions:
            b, c = w.instructions
            lines.append(f"instructions per call {b:,} -> {c:,}: {w.instruction_status}, {t(w.instruction_note)}")
        lines += [t(change) for change in w.changes]
        if w.note:
            lines.append(f"not compared: {t(w.note)}")
        verdict = " (more work: fails the gate)" if w.more_work and not w.allowed else " (more work, allowed)" if w.more_work else ""
        out.append(f"{name}{verdict}:")
        out += [f"{bullet}{line}" for line in lines]
        if md:
            out.append("")  # a list ends before the next benchmark's line
    unchanged = counted - len(changed)
    if unchanged:
        out.append(f"the same work in the other {unchanged} benchmark(s) counted")
    return out if out[-1] == "" else [*out, ""]


def _instruction_tail(result: Comparison) -> str:
    with_instructions = [w for w in result.work if w.instructions]
    return f"; instructions per call within the threshold in {len(with_instructions)}" if with_instructions else ""


CONFIRM = "run 3+ a side, or store 5+ runs of this machine and software"


def _last_line(result: Comparison, worse: list, listing: str, undecided: str, t) -> str:
    """The line a CI log ends on: never "no regression" while a slowdown beyond the threshold is unconfirmed."""
    if worse:
        return f"{len(worse)} regression(s): {listing}" + undecided
    slow = [(n, r) for n, d, r in result.unconfirmed if d == "slowdown"]
    if slow:
        names = ", ".join(f"{t(n)} ({ratio(r)})" for n, r in slow)
        return f"no confirmed regression; {len(slow)} unconfirmed slowdown(s): {names} (to confirm: {CONFIRM})" + undecided
    return "no regression" + undecided


def _html_cell(cell: str) -> str:
    return f"<code>{html.escape(cell)}</code>" if isinstance(cell, Code) else html.escape(cell)


def html_table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in headers)
    body = "".join("<tr>" + "".join(f"<td>{_html_cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def speedups(rows: list[SpeedupRow], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([asdict(r) for r in rows], indent=2)
    out = table(*speedup_cells(rows), fmt)
    if not any(r.per_joule for r in rows):
        out += "\n\nwork per joule: not measured (no GPU energy counter or RAPL readings in this run)"
    for line in ceilings_not_reached(rows):
        out += f"\n\n{md_text(line) if fmt == 'markdown' else plain(line)}"
    compiled = compile_cells(rows)
    if compiled[1]:
        out += "\n\ntorch.compile against eager, the same work on the same device:\n\n" + table(*compiled, fmt)
    return out


def _count(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else digits(value)


def break_even_text(gain: CompileGain, unit: str | None) -> str:
    """``pays off after 41 calls [35-52] (20,500 steps)``, ``never: the compiled call is not faster``."""
    if gain.never:
        return "never: the compiled call is not faster"
    if gain.break_even is None:
        return ""
    interval = ""
    if gain.break_even_low is not None:
        interval = f" [{_count(gain.break_even_low)}-{_count(gain.break_even_high) if gain.break_even_high is not None else 'never'}]"
    work = unit_label(unit or "").removesuffix("/s")
    of_work = f" ({_count(gain.break_even * gain.work_per_call)} {work})" if gain.work_per_call and work else ""
    return f"pays off after {_count(gain.break_even)} calls{interval}{of_work}"


def gain_text(gain: CompileGain) -> str:
    """``1.80x vs cuda:0-eager [1.71-1.90]``, or why there is no figure."""
    if gain.ratio is None:
        return ""
    # Fewer than 6 rounds a side give no interval: say so, rather than let the figure stand as exact.
    interval = f" [{digits(gain.low)}-{digits(gain.high)}]" if gain.low is not None and gain.high is not None else " (interval: too few rounds)"
    return f"{ratio(gain.ratio)} vs {gain.reference}{interval}"


def compile_cells(rows: list[SpeedupRow]) -> tuple[list[str], list[list[str]]]:
    """The compiled variants against eager on each device: speed-up, compile time, break-even, flags."""
    headers = ["workload", "variant", "device", "speed-up (reference) [95% interval]", "compile", "break-even", "notes"]
    body = []
    for r in rows:
        for device, gain in r.compiled.items():
            graph = f"{ratio(gain.graph_ratio)} vs {gain.graph_reference}" if gain.graph_ratio is not None else ""
            notes = "; ".join(filter(None, [graph, gain.note]))
            body.append([r.workload, r.variant, device, Safe(gain_text(gain)), Safe(format_seconds(gain.compile_s)), Safe(break_even_text(gain, r.unit)), notes])
    return headers, body


def ceilings_not_reached(rows: list[SpeedupRow]) -> list[str]:
    """Where a workload beat the ceiling that bounds it: the ceiling's round was noisy or wrong, and no efficiency is given."""
    return [
        f"{r.workload} {r.variant} on {device}: faster than its {r.ceiling} ceiling, so that ceiling was not reached "
        "(its rounds were noisy or wrong); efficiency withheld"
        for r in rows
        for device in r.ceiling_not_reached
    ]


def speedup_cells(rows: list[SpeedupRow]) -> tuple[list[str], list[list[str]]]:
    """The matrix's columns, derived from what the run has: the CPU, each accelerator that ran
    (``cuda:0``, ``mps``) with its speed-up, DataParallel where it ran, efficiency, and DP/DDP scaling."""
    accelerators = [d for d in dict.fromkeys(d for r in rows for d in r.accelerators)]
    with_dp = any(r.dp_s is not None for r in rows)
    with_efficiency = any(r.efficiency for r in rows)
    with_scaling = any(r.note or any(d != "dp" or not with_dp for d in r.scaling) for r in rows)
    with_energy = any(r.per_joule for r in rows)
    headers = ["workload", "variant", "cpu"]
    for device in accelerators:
        headers += [device, f"{device} over cpu (reference)"]
    if with_dp:
        headers += ["dp", "dp over cuda:0"]
    if with_efficiency:
        headers.append("efficiency vs ceiling")
    if with_scaling:
        headers.append("DP/DDP: median, scaling; notes")
    if with_energy:
        headers.append("work per joule (each chip's own counter)")
    body = []
    for r in rows:
        cells = [r.workload, r.variant, Safe(format_seconds(r.cpu_s))]
        for device in accelerators:
            figure = r.accelerators.get(device)
            over = ratio(figure.over_cpu) + f" vs {r.cpu_reference}" if figure and figure.over_cpu is not None else ""
            # A copy's figure is its bandwidth; a step's, its time.
            shown = format_throughput(figure.throughput, r.unit) if figure and figure.throughput and r.unit == "gb_per_s" else format_seconds(figure.median_s) if figure else ""
            cells += [Safe(shown), over]
        if with_dp:
            dp = ratio(r.dp_over_gpu)
            scaling = r.scaling.get("dp")
            if dp and r.dp_replicas == 1:
                dp += " (1 replica)"
            elif dp and r.dp_replicas and scaling and scaling.efficiency is not None:
                dp += f" ({r.dp_replicas} replicas, {scaling.efficiency:.0%} scaling)"
            cells += [Safe(format_seconds(r.dp_s)), dp]
        if with_efficiency:
            cells.append(", ".join(f"{d} {e:.0%}" for d, e in r.efficiency.items()))
        if with_scaling:
            scaling = "; ".join(
                f"{d} x{s.world}: {format_seconds(s.median_s)}"
                + (f", {s.efficiency:.0%} of {s.world} x {s.reference}" if s.efficiency is not None else f" ({s.note})" if s.note else "")
                for d, s in r.scaling.items()
                if not (with_dp and d == "dp")  # in the dp columns already
            )
            cells.append("; ".join(filter(None, [scaling, r.note])))
        if with_energy:
            label = unit_label(r.unit or "").removesuffix("/s")
            cpu_j = r.per_joule.get("cpu")
            cells.append(
                "; ".join(
                    f"{d} {j:.4g} {label}/J" + (f" ({ratio(j / cpu_j)} cpu)" if cpu_j and d != "cpu" else "")
                    for d, j in r.per_joule.items()
                )
            )
        body.append(cells)
    return headers, body


def _cold_start(result) -> str:
    """The first call; for a compiled step, the compiler's share of it: ``21.24 s (compile 21.05 s)``."""
    cold, compile_s = result.figure("cold_start_s"), result.figure("compile_s")
    return format_seconds(cold) + (f" (compile {format_seconds(compile_s)})" if compile_s is not None else "")


def run_tables(run: dict | Run, fmt: str) -> str:
    """One run as ``devicebench show`` prints it: every benchmark, then where the CNN's time goes."""
    run = as_run(run)
    results = sorted(run.results, key=lambda r: r.name)
    with_energy = any(r.figure("energy_per_call_j") is not None for r in results)
    body = []
    for r in results:
        row = [
            Code(r.name),
            Safe(format_seconds(r.median_s)),
            Safe(r.how_well_known()),
            Safe(str(r.rounds)),
            Safe(_cold_start(r)),
            Safe(format_throughput(r.throughput, r.unit, r.bytes_counted)),
        ]
        if with_energy:
            per_j = r.per_joule
            row.append(Safe(f"{per_j:.4g} {unit_label(r.unit).removesuffix('/s')}/J" if per_j else ""))
        body.append(row)
    headers = ["benchmark", "median", "how well known", "rounds", "cold start", "throughput"] + (["per joule"] if with_energy else [])
    out = table(headers, body, fmt)
    training = [r for r in results if r.workload == "cnn" and r.figure("epoch_s") is not None]
    if training:
        head = ["benchmark", "data", "epoch", "waiting for data", "in the step", "first batch", "val accuracy", "time to accuracy"]
        cells = []
        for r in training:
            tta = r.figure("time_to_accuracy_s")
            reached = f"{format_seconds(tta)} ({r.info.get('epochs_to_accuracy')} epochs)" if tta is not None else "not reached"
            accuracy = r.figure("val_accuracy")
            cells.append(
                [
                    Code(r.name),
                    str(r.info.get("dataset", "")),
                    *(Safe(format_seconds(r.figure(k))) for k in ("epoch_s", "data_wait_s", "step_s", "first_batch_s")),
                    Safe(f"{accuracy:.4f}" if accuracy is not None else ""),
                    f"{r.info.get('target_accuracy')}: {reached}",
                ]
            )
        out += "\n\n" + table(head, cells, fmt)
    return out
