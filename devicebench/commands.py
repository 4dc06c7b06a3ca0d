"""What each ``devicebench`` command does: one ``cmd_*`` function per command, each taking the
parsed arguments and returning the exit status (:mod:`devicebench.cli` parses and dispatches).
Every one reads stored runs (JSON) only: none imports torch."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import NoReturn

from .reading.runs import Run

EXIT_OK, EXIT_REGRESSION, EXIT_BAD_INPUT, EXIT_INCONCLUSIVE = 0, 1, 2, 3


def format_info(info: dict) -> str:
    """The machine as a person reads it: what the tutorial's "is CUDA available?" section asks."""
    fp = info["fingerprint"]
    lines = [
        f"torch {info['torch']}, torchvision {info['torchvision']}, CUDA {info['cuda']}, cuDNN {info['cudnn']}, "
        f"Python {info['python']}",
        f"CPU: {info['cpu_model']}, {info['cpu_threads']} threads ({info['torch_threads']} used by torch)",
        f"CUDA available: {'yes' if info['cuda_available'] else 'no'}, GPUs: {info['gpu_count']}",
    ]
    if info["nvidia_driver"]:
        lines.append(f"NVIDIA driver: {info['nvidia_driver']}")
    for gpu in info["gpus"]:
        lines.append(
            f"  cuda:{gpu['index']}: {gpu['name']}, {gpu['memory_bytes'] / 2**30:.1f} GiB, "
            f"compute capability {gpu['capability']}, {gpu['multiprocessors']} SMs"
        )
    settings = ", ".join(f"{k}={v}" for k, v in info["precision"].items())
    lines.append(f"precision settings: {settings}")
    lines.append(f"fingerprint: {fp['id']} (results folder results/{fp['slug']})")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    from .measure import fingerprint

    info = fingerprint.machine_info()
    if args.folder:  # for scripts: pytest-benchmark list --storage "$(devicebench info --folder)"
        print(f"results/{info['fingerprint']['slug']}")
    else:
        print(json.dumps(info, indent=2) if args.json else format_info(info))
    return EXIT_OK


def _fail(message: str) -> NoReturn:
    print(f"devicebench: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_BAD_INPUT)


def _load(arg: str, results_dir: str = "results") -> tuple[str, Run]:
    """A run from a file or a run id; bad input ends the command with one line and exit 2."""
    from .reading.host import Host
    from .reading.run_ids import is_file, resolve
    from .reading.runs import BadRun, load

    try:
        path = resolve(arg, results_dir, None if is_file(arg) else Host.read())
        return str(path), load(path)
    except BadRun as exc:
        _fail(str(exc))


def _load_side(arg: str, results_dir: str) -> tuple[str, list[Run], list[Path]]:
    """One side of a comparison: a run, several joined by commas, or a folder of runs.

    The same run given twice (by path, or the same content under another name) counts once:
    a run is one observation, however often it is named.
    """
    import hashlib

    from .reading.machines import same_machine
    from .reading.run_ids import stored_runs
    from .reading.runs import BadRun, load

    loaded, seen = [], set()
    for part in (p for p in arg.split(",") if p):
        if _is_dir(part):
            files = stored_runs(part)
            if not files:
                _fail(f"{part}: no stored runs in this folder")
            try:
                items = [(str(f), load(f)) for f in files]
            except BadRun as exc:
                _fail(str(exc))
        else:
            items = [_load(part, results_dir)]
        for path, run in items:
            key = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            if key not in seen:
                seen.add(key)
                loaded.append((path, run))
    if not loaded:
        _fail(f"{arg!r}: no run given")
    try:
        same_machine([run for _, run in loaded])
    except ValueError as exc:
        _fail(f"{arg}: {exc}")
    label = loaded[0][0] if len(loaded) == 1 else f"{len(loaded)} runs ({', '.join(Path(p).name[:4] for p, _ in loaded)})"
    return label, [run for _, run in loaded], [Path(p).resolve() for p, _ in loaded]


def _is_dir(path: str) -> bool:
    try:
        return Path(path).is_dir()
    except OSError:
        return False


def _history(folder: str, like: Run, exclude: list[Path]) -> list[Run]:
    """Stored runs under ``folder`` of the same fingerprint, size and software as ``like``, but
    for the compared ones (by path or content); unreadable files are passed over."""
    import hashlib

    from .reading.machines import history_key
    from .reading.run_ids import stored_runs
    from .reading.runs import BadRun, load

    if not _is_dir(folder):
        return []
    excluded = {p.resolve() for p in exclude}
    hashes = {hashlib.sha256(p.read_bytes()).hexdigest() for p in exclude}
    found = []
    for path in stored_runs(folder):
        if path.resolve() in excluded or hashlib.sha256(path.read_bytes()).hexdigest() in hashes:
            continue
        try:
            run = load(path)
        except BadRun:
            continue
        if history_key(run) == history_key(like):
            found.append(run)
    return found


def cmd_show(args: argparse.Namespace) -> int:
    from .reading import render, runs

    _, run = _load(args.run, args.results)
    print(render.text(runs.describe_machine(run), args.format))
    print()
    print(render.run_tables(run, args.format))
    if run.interrupted:
        print("\ninterrupted: the run was stopped early (Ctrl-C or a timeout); the benchmarks it had not reached are missing")
    text = render.plain if args.format == "table" else render.md_text
    if run.failed:
        print(f"\nfailed ({len(run.failed)}):")
        for fullname, error in sorted(run.failed.items()):
            print(f"  {text(fullname.rsplit('::', 1)[-1])}: {text(error)}")
    skipped = Counter(run.skipped.values())
    if skipped:
        print(f"\nskipped ({sum(skipped.values())}):")
        for reason, count in skipped.most_common():
            print(f"  {count:3d} x {render.plain(reason) if args.format == 'table' else render.md_text(reason)}")
    return EXIT_OK


def cmd_check_timing(args: argparse.Namespace) -> int:
    from .reading import render, targets
    from .reading.units import format_seconds

    checks = targets.check_against_events(_load(args.run, args.results)[1], rel_tol=args.tolerance)
    if not checks:
        print(f"nothing to check: no benchmark in {render.plain(args.run)} ran on a GPU, so none has CUDA-event times")
        return EXIT_OK
    rows = [
        [
            render.Code(c.name),
            format_seconds(c.median_s),
            format_seconds(c.event_median_s),
            f"{c.relative_diff:.1%}",
            f"{format_seconds(c.allowance_s)} ({c.allowance})",
            "agrees" if c.agrees else "DISAGREES",
        ]
        for c in checks
    ]
    print(render.table(["benchmark", "median", "CUDA events", "difference", "allowed", "verdict"], rows, args.format))
    bad = [c.name for c in checks if not c.agrees]
    if bad:
        print(f"{len(bad)} of {len(checks)} disagree with CUDA events: {render.plain(', '.join(bad))}", file=sys.stderr)
        return EXIT_REGRESSION
    return EXIT_OK


def cmd_check_targets(args: argparse.Namespace) -> int:
    from .reading import render, targets

    outcomes = targets.check(_load(args.run, args.results)[1])
    rows = [[render.Safe(o.target), o.detail, "holds" if o.passed else "FAILS"] for o in outcomes]  # targets: the suite's own words
    print(render.table(["target", "figures", "verdict"], rows, args.format))
    failed = [o.target for o in outcomes if not o.passed]
    if failed:
        print(f"{len(failed)} of {len(outcomes)} targets fail or cannot be computed: {'; '.join(failed)}", file=sys.stderr)
        return EXIT_REGRESSION
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from .reading import compare, render

    base_label, base, base_paths = _load_side(args.baseline, args.results)
    cand_label, cand, cand_paths = _load_side(args.candidate, args.results)
    # Stored history lends its spread only where a side has a single run.
    wanted = not args.no_history and min(len(base), len(cand)) == 1
    history = _history(args.history or args.results, cand[0], base_paths + cand_paths) if wanted else []
    result = compare.compare_sides(base, cand, compare_settings(args), history)
    if result.hardware_diff and not args.allow_mismatch:
        parts = "; ".join(f"{k}: {b!r} vs {c!r}" for k, b, c in result.hardware_diff)
        _fail(f"{base_label} and {cand_label} come from different machines ({parts}); --allow-mismatch compares them anyway")
    print(render.comparison(result, args.format, base_label, cand_label))
    return exit_status(result, base_label, cand_label, args.fail_inconclusive)


def exit_status(result, base_label: str, cand_label: str, fail_inconclusive: bool) -> int:
    """A comparison's exit status, with the one line on stderr that says why where it is not 0 or 1."""
    from .reading import render

    if result.regressions:
        return EXIT_REGRESSION
    if result.environment_regressions:
        print(
            f"devicebench: not comparable: the environment changed between {base_label} and {cand_label}; "
            "--allow-env-change counts its slowdowns as regressions",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    if not result.compared:
        print(f"devicebench: not comparable: no benchmark of {cand_label} could be compared with {base_label}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if result.inconclusive and fail_inconclusive:
        print(f"devicebench: inconclusive: {render.plain(', '.join(result.inconclusive))} (--fail-inconclusive)", file=sys.stderr)
        return EXIT_INCONCLUSIVE
    return EXIT_OK


def cmd_speedup(args: argparse.Namespace) -> int:
    from .reading import render, runs, speedup

    path, run = _load(args.run, args.results)
    if args.format != "json":
        print(render.text(runs.describe_machine(run), args.format))
        print()
    print(render.speedups(speedup.matrix(run), args.format))
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from .reading import export
    from .reading.files import replace_file

    _, run = _load(args.run, args.results)
    entries = export.github_action(run)
    if not entries:
        _fail(f"{args.run[:200]}: the run has no results to export")
    text = json.dumps(entries, indent=2) + "\n"
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        replace_file(Path(args.output), text.encode())
    except OSError as exc:
        _fail(f"--output {args.output[:200]}: cannot write there ({exc.strerror or exc})")
    print(f"wrote {len(entries)} results to {args.output}", file=sys.stderr)
    return EXIT_OK


def _check_sources(sources: list[str]) -> None:
    from .reading.run_ids import is_file

    for source in sources:
        if not (_is_dir(source) or is_file(source)):
            _fail(f"{source[:200]}: no such folder or run file")


def cmd_report(args: argparse.Namespace) -> int:
    from .reading import render, report

    _check_sources(args.results_dir)
    from .reading.runs import BadRun

    try:
        written = report.write_report(args.results_dir, args.out, compare_settings(args), progress=_progress)
    except OSError as exc:
        _fail(f"--out {args.out}: cannot write the report there ({exc.strerror or exc})")
    except BadRun as exc:  # a run the index knew, gone or changed before it was read whole
        _fail(f"{exc} (read again: devicebench report)")
    if written is None:
        _fail(f"{', '.join(args.results_dir)[:200]}: no stored runs")
    for warning in written.warnings:
        print(f"warning: {render.plain(warning)}", file=sys.stderr)
    kept = f", {written.charts - written.drawn} unchanged since the last report" if written.charts > written.drawn else ""
    print(f"wrote {written.index} and {written.summary} ({written.charts} charts{kept}, {written.runs} runs, {written.machines} machines)")
    return EXIT_OK


def cmd_index(args: argparse.Namespace) -> int:
    from .reading.index import Index
    from .reading.run_ids import stored_runs

    for folder in args.results_dir:
        if not _is_dir(folder):
            _fail(f"{folder[:200]}: no such folder")
    for folder in args.results_dir:
        index = Index.open(folder, rebuild=args.rebuild)
        try:
            index.update(stored_runs(folder), progress=_progress)
            runs, warnings = index.runs()
        finally:
            index.close()
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
        where = index.location or "memory only (no writable place)"
        print(f"{folder}: {len(runs)} run(s) indexed, {index.parsed} read now; index: {where}")
    return EXIT_OK


def _progress(done: int, total: int) -> None:
    """A line on stderr about every tenth of a long indexing (the first read of a long history takes minutes)."""
    from .reading.index import BATCH  # progress is called before each batch

    if total >= 2 * BATCH and (done == 0 or done * 10 // total > (done - BATCH) * 10 // total):
        print(f"indexing the runs: {done} of {total} read", file=sys.stderr, flush=True)


def cmd_history(args: argparse.Namespace) -> int:
    from .reading import history, render
    from .reading.report import collect

    _check_sources(args.results_dir)
    machines, warnings = collect(args.results_dir, detail="history", progress=_progress)
    if not machines:
        _fail(f"{', '.join(args.results_dir)[:200]}: no stored runs")
    for warning in warnings:
        print(f"warning: {render.plain(warning)}", file=sys.stderr)
    found = [(m, c) for m in machines for c in history.change_points(m.runs, args.threshold, args.alpha, m.memo)]
    if machines[0].memo is not None:
        machines[0].memo.save()
    if args.format == "json":
        print(json.dumps({"change_points": [{"machine": m.fingerprint, **c.as_json()} for m, c in found]}, indent=2))
        return EXIT_OK
    for machine in machines:
        mine = [c for m, c in found if m is machine]
        weak = sum(c.weak for c in mine)
        print(f"{render.text(machine.short, args.format)}: {len(machine.runs)} runs, {len(mine) - weak} confirmed and {weak} weak change point(s)")
        rows = [
            [
                render.Code(c.benchmark),
                render.plain(f"{c.before_run[:4]} -> {c.run[:4]}"),
                render.Safe(f"{c.ratio:.3g}x" if c.kind == "work" else f"{c.ratio:.3g}x [{c.ratio_low:.3g}-{c.ratio_high:.3g}]"),
                render.Safe("exact" if c.kind == "work" else f"{c.p:.2g}"),
                render.Safe(f"{c.runs_before}/{c.runs_after}"),
                ("the work changed: " if c.kind == "work" else "weak; " if c.weak else "")
                + (c.work if c.kind == "work" else c.cause + (f"; the work changed: {c.work}" if c.work else ""))
                + (f" ({c.software})" if c.software else ""),
            ]
            for c in mine
        ]
        if rows:
            print(render.table(["benchmark", "runs", "time after / before [95%]", "p (Holm)", "runs a side", "change"], rows, args.format))
        print()
    return EXIT_OK


def compare_settings(args: argparse.Namespace):
    from .reading.compare import Settings

    return Settings(
        threshold=args.threshold,
        alpha=args.alpha,
        accuracy_drop=args.accuracy_drop,
        allow_env_change=getattr(args, "allow_env_change", False),
        min_history=getattr(args, "min_history", Settings.min_history),
        instruction_threshold=getattr(args, "instruction_threshold", Settings.instruction_threshold),
        allow_more_work=getattr(args, "allow_more_work", False),
    )
