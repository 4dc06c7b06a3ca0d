"""Exact work beside the clock: what a step does, counted by torch's own machinery, and how
``compare`` and ``history`` read it first (one run a side decides a change of work)."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from devicebench import cli
from devicebench.measure import counting
from devicebench.measure.devices import open_device
from devicebench.reading import compare, counters, history
from devicebench.reading.runs import load_run

from .test_compare import golden
from .test_guest import _env

CPU = open_device("cpu")
BENCH = "test_matmul[cpu-fp32]"


def adam_steps(item: bool, steps: int = 10):
    """A linear regression's Adam loop; ``item`` reads the loss back every step, as a logging line would."""
    x = torch.randn(1000, 1, generator=torch.Generator().manual_seed(0))
    y = 3 * x + 2
    model = torch.nn.Linear(1, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)

    def step():
        for _ in range(steps):
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            if item:
                loss.item()

    return step


def test_a_host_read_per_step_is_counted_exactly():
    plain, logged = counting.count(CPU, adam_steps(False)), counting.count(CPU, adam_steps(True))
    assert logged["host_reads"] - plain["host_reads"] == 10
    assert logged["ops"][counting.HOST_READ] == logged["host_reads"]
    assert logged["flops"] == plain["flops"] > 0
    again = counting.count(CPU, adam_steps(False))
    assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in plain.items() if k != "seconds"}


def test_flops_are_torchs_own_count():
    from torch.utils.flop_counter import FlopCounterMode

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 26 * 26, 10))
    x = torch.randn(8, 1, 28, 28)
    step = lambda: model(x).sum().backward()  # noqa: E731
    with FlopCounterMode(display=False) as reference:
        step()
    assert counting.count(CPU, step)["flops"] == reference.get_total_flops() > 0


def test_copies_off_the_host_are_counted_with_their_bytes():
    x = torch.randn(256, 256)
    found = counting.count(CPU, lambda: x.to("meta"))  # a device other than the host: the copy's bytes, no GPU needed
    assert (found["h2d_copies"], found["h2d_bytes"]) == (1, 256 * 256 * 4)
    assert found["d2h_copies"] == 0


def test_allocations_count_new_storage_not_views():
    x = torch.randn(1000)
    assert counting.count(CPU, lambda: x.view(10, 100).t())["allocated_bytes"] == 0
    assert counting.count(CPU, lambda: x * 2)["allocated_bytes"] == 4000


# --- compare and history, on runs that carry real counts -------------------------------------------


def with_work(run: dict, work: dict, instructions: int | None = None) -> dict:
    run = copy.deepcopy(run)
    for bench in run["benchmarks"]:
        if bench["name"] == BENCH:
            bench["extra_info"]["work"] = {**work, "counted": "one call of the step"}
            if instructions is not None:
                bench["extra_info"]["instructions"] = {"per_call": instructions, "calls": [instructions, instructions + 3], "counted": "one call of the step"}
    return run


@pytest.fixture(scope="module")
def counted():
    return counting.count(CPU, adam_steps(False)), counting.count(CPU, adam_steps(True))


def test_compare_names_an_added_item_with_one_run_a_side(counted, tmp_path, capsys):
    plain, logged = counted
    base = with_work(load_run(golden("base")), plain)
    cand = with_work(load_run(golden("base")), logged)
    result = compare.compare_runs(base, cand)
    [work] = result.work
    assert work.more_work == ("host_reads",) and work.is_regression
    assert work.changes[0].startswith("the step now makes 10 more host reads of a device value")
    assert f"{counters.HOST_READ} {plain['host_reads']} -> {logged['host_reads']}" in work.changes[0]
    (tmp_path / "a.json").write_text(json.dumps(base))
    (tmp_path / "b.json").write_text(json.dumps(cand))
    code = cli.main(["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--no-history"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "a sync each on a GPU: aten._local_scalar_dense" in out and "more work" in out.splitlines()[-1]
    assert cli.main(["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--no-history", "--allow-more-work"]) == 0
    capsys.readouterr()


def test_compare_names_nothing_for_the_same_work(counted):
    plain, _ = counted
    again = counting.count(CPU, adam_steps(False))
    result = compare.compare_runs(with_work(load_run(golden("base")), plain), with_work(load_run(golden("base")), again))
    [work] = result.work
    assert not work.changes and not work.is_regression


def test_instructions_gate_on_their_threshold_with_one_run_a_side(counted):
    plain, _ = counted
    base = with_work(load_run(golden("base")), plain, instructions=10_000_000)
    for per_call, status in ((10_050_000, "unchanged"), (10_200_000, "slower"), (9_800_000, "faster")):
        [work] = compare.compare_runs(base, with_work(load_run(golden("base")), plain, instructions=per_call)).work
        assert work.instruction_status == status, per_call
        assert work.is_regression == (status == "slower")


def test_a_run_file_cannot_smuggle_markup_through_its_op_names():
    info = {"work": {"ops": {"aten.mm": 2, "<script>x</script>": 5, "aten.add": -1, "aten.mul": float("nan")}, "host_reads": "7", "flops": 10}}
    work = counters.work_of(info)
    assert work.ops == {"aten.mm": 2} and work.counts == {"flops": 10}


def test_history_marks_a_change_of_work_as_a_certain_change_point(counted):
    plain, logged = counted
    base = load_run(golden("base"))
    runs = [(Path(f"{i + 1:04d}_run.json"), with_work(base, plain if i < 3 else logged)) for i in range(5)]
    from devicebench.reading.runs import as_run

    points = history.change_points([(p, as_run(r)) for p, r in runs])
    [point] = [c for c in points if c.kind == "work"]
    assert (point.benchmark, point.run, point.weak) == (BENCH, "0004_run.json", False)
    assert "host reads" in point.work


# --- instructions under Valgrind --------------------------------------------------------------------


def test_instructions_need_valgrind_and_say_so(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_x(bench, device):\n    bench.run(device, lambda: None)\n")
    env = {**_env(), "PATH": str(tmp_path)}  # no valgrind on it
    proc = subprocess.run([sys.executable, "-m", "pytest", "test_x.py", "--bench-instructions"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "--bench-instructions counts under Valgrind, which is not installed (Debian/Ubuntu: apt-get install valgrind" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("valgrind") is None or shutil.which("cc") is None, reason="needs valgrind and a C compiler (.ci/run installs valgrind)")
def test_instructions_are_counted_under_valgrind_and_see_twice_the_work(tmp_path):
    """A real Valgrind run through the plugin: one process for the run, each CPU benchmark's calls counted."""
    (tmp_path / "test_steps.py").write_text(
        "import pytest, torch\n"
        "a = torch.randn(64, 64)\n"
        "@pytest.mark.parametrize('times', [1, 2])\n"
        "def test_mm(bench, device, times):\n"
        "    bench.run(device, lambda: [a @ a for _ in range(times * 20)])\n"
    )
    cmd = [sys.executable, "-m", "pytest", "test_steps.py", "--benchmark-only", "--bench-size=smoke", "--bench-devices=cpu", "--bench-instructions"]
    cmd += ["--benchmark-json=out.json", "-p", "no:cacheprovider", "-p", "no:randomly"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "counting the instructions of 2 CPU benchmark(s) under Valgrind" in proc.stdout
    found = {b["name"]: b["extra_info"] for b in json.loads((tmp_path / "out.json").read_text())["benchmarks"]}
    once, twice = (found[f"test_mm[cpu-{n}]"]["instructions"] for n in (1, 2))
    assert once["threads"] == 1 and len(once["calls"]) == 2 and once["spread"] < 0.01
    assert 1.8 < twice["per_call"] / once["per_call"] < 2.1
    assert found["test_mm[cpu-1]"]["work"]["ops"] == {"aten.mm": 20}


def test_report_and_history_show_the_work_that_changed(counted, tmp_path, capsys):
    plain, logged = counted
    folder = tmp_path / "results" / "machine" / "Linux-CPython-3.11-64bit"
    folder.mkdir(parents=True)
    base = load_run(golden("base"))
    for i, work in enumerate((plain, plain, logged), start=1):
        run = with_work(base, work)
        run["datetime"] = f"2026-12-0{i}T00:00:00"
        (folder / f"{i:04d}_run.json").write_text(json.dumps(run))
    assert cli.main(["history", str(tmp_path / "results")]) == 0
    out = capsys.readouterr().out
    assert "the work changed: the step now makes 10 more host reads" in out and "0002 -> 0003" in out
    assert cli.main(["report", str(tmp_path / "results"), "--out", str(tmp_path / "report")]) == 0
    capsys.readouterr()
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "the work changed 1 time(s)" in summary
    page = (tmp_path / "report" / "index.html").read_text()
    assert "What the steps do differently (exact work)" in page and "aten._local_scalar_dense" in page


def test_instructions_of_another_valgrind_are_not_set_side_by_side(counted):
    plain, _ = counted
    base = with_work(load_run(golden("base")), plain, instructions=10_000_000)
    cand = with_work(load_run(golden("base")), plain, instructions=10_500_000)
    for run, tool in ((base, "callgrind (valgrind-3.19.0)"), (cand, "callgrind (valgrind-3.22.0)")):
        for bench in run["benchmarks"]:
            if "instructions" in bench["extra_info"]:
                bench["extra_info"]["instructions"]["tool"] = tool
    [work] = compare.compare_runs(base, cand).work
    assert work.instruction_status == "inconclusive" and "other tools" in work.instruction_note and not work.is_regression
