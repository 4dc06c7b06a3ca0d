"""torch.compile, measured: the compiled variants of the smoke run on this CPU (the compiler runs
here: inductor's CPU backend builds with gcc), compile time apart, torch's own counters, the
speed-up over eager with its break-even in ``speedup``, the same guards as eager, and the same
for one's own steps through ``bench.compile`` in a project of its own (through the installed plugin)."""

from __future__ import annotations

import json

import pytest

from devicebench import cli
from devicebench.measure import backends, compiling, devices
from devicebench.reading import runs, speedup
from devicebench.workloads import COMPILE_NO_DDP

from .conftest import run_benches
from .test_guest import INSTALLED, project, pytest_in

COMPILED = {"test_linear_regression[cpu-compile]": "eager", "test_cnn[cpu-compile]": "resident"}


def _benchmarks(run) -> dict:
    return {b["name"]: b for b in json.loads(run.run_files()[0].read_text())["benchmarks"]}


def test_compiled_variants_record_the_compile_apart_with_torchs_counters(smoke_run):
    benchmarks = _benchmarks(smoke_run)
    for name, eager in COMPILED.items():
        info = benchmarks[name]["extra_info"]
        assert f"{name} PASSED" in smoke_run.stdout
        assert info["compile_mode"] == "default" and info["compile_cache"] == "cold"
        assert info["eager_reference"] == eager
        # The first call compiles: the compiler's seconds are inside it, and the rest of it is one call's work.
        assert 0 < info["compile_s"] <= info["cold_start_s"]
        assert info["compile_total_s"] >= info["compile_s"]
        # The model (forward and backward) and the optimizer's step: two graphs at least.
        assert info["compile_graphs"] >= 2
        assert isinstance(info["compile_graph_breaks"], int) and isinstance(info["compile_recompiles"], int)
        assert info["recompiles_in_rounds"] == 0
        assert max(benchmarks[name]["stats"]["data"]) < info["cold_start_s"]  # no timed round compiled
    # The compiler's start in this process was paid once, before the first compiled benchmark, and by none of them.
    startups = {benchmarks[name]["extra_info"]["compiler_startup_s"] for name in COMPILED}
    assert len(startups) == 1 and startups.pop() > 0


def test_compiled_variants_train_as_eager_does_and_are_judged_alike(smoke_run):
    benchmarks = _benchmarks(smoke_run)
    for name, eager in COMPILED.items():
        compiled_q = benchmarks[name]["extra_info"]["quality"]
        eager_q = benchmarks[name.replace("compile", eager)]["extra_info"]["quality"]
        assert set(compiled_q) == set(eager_q)
        for key, figure in compiled_q.items():
            assert (figure["after"], figure["rule"], figure["better"]) == (eager_q[key]["after"], eager_q[key]["rule"], eager_q[key]["better"])
    linreg = benchmarks["test_linear_regression[cpu-compile]"]["extra_info"]
    assert linreg["final_loss"] == pytest.approx(4.0, rel=0.1)  # the noise variance: it learned the truth
    assert linreg["learned_w"] == pytest.approx([2.0, -3.0], abs=0.05)


def test_reduce_overhead_and_ddp_are_skipped_with_their_reasons(smoke_run):
    skipped = {s["name"]: s["reason"] for s in json.loads(smoke_run.run_files()[0].read_text())["devicebench"]["skipped"]}
    assert skipped["test_linear_regression[cpu-compile-reduce-overhead]"] == "compile-reduce-overhead needs CUDA graphs; cpu has none"
    assert skipped["test_cnn[ddp:cpu-compile]"] == COMPILE_NO_DDP


def test_speedup_sets_each_compiled_variant_against_eager_with_its_break_even(smoke_run, capsys):
    [path] = smoke_run.run_files()
    run = runs.load(path)
    by_name = run.by_name()
    assert cli.main(["speedup", str(path), "--format", "json"]) == 0
    rows = {(r["workload"], r["variant"]): r for r in json.loads(capsys.readouterr().out)}
    for (workload, variant), name in (("linear_regression", "compile"), "test_linear_regression[cpu-compile]"), (("cnn", "compile"), "test_cnn[cpu-compile]"):
        gain = rows[(workload, variant)]["compiled"]["cpu"]
        compiled, eager = by_name[name], by_name[name.replace("compile", COMPILED[name])]
        assert gain["reference"] == f"cpu-{COMPILED[name]}"
        assert gain["ratio"] == pytest.approx(eager.median_s / compiled.median_s, rel=1e-9)  # the same work per call
        assert gain["compile_s"] == compiled.info["compile_s"]
        if compiled.median_s < eager.median_s:
            assert gain["break_even"] == pytest.approx(compiled.info["compile_s"] / (eager.median_s - compiled.median_s))
            assert not gain["never"]
        else:
            assert gain["never"] and gain["break_even"] is None
    assert cli.main(["speedup", str(path)]) == 0
    table = capsys.readouterr().out.split("torch.compile against eager, the same work on the same device:")[1]
    line = next(line for line in table.splitlines() if line.startswith("linear_regression"))
    assert "vs cpu-eager" in line and ("pays off after" in line or "never: the compiled call is not faster" in line)


def _result(median_s: float, rounds: list[float], **info) -> runs.Result:
    return runs.Result("b", "b", median_s, {"median": median_s, "data": rounds}, info)


def test_break_even_is_never_when_compiled_is_not_faster_and_open_ended_within_the_intervals():
    eager = _result(1.0, [0.9, 0.95, 1.0, 1.0, 1.05, 1.1, 1.0])
    assert speedup.break_even(10.0, eager, _result(1.2, [1.2] * 7)) == (None, None, None, True)
    calls, low, high, never = speedup.break_even(10.0, eager, _result(0.5, [0.5] * 7))
    assert (calls, never) == (pytest.approx(20.0), False)
    lo, hi = eager.median_interval()
    assert (low, high) == (pytest.approx(10.0 / (hi - 0.5)), pytest.approx(10.0 / (lo - 0.5)))
    # Faster by less than the eager median's spread: it may never pay off.
    _, low, high, never = speedup.break_even(10.0, eager, _result(0.97, [0.97] * 7))
    assert low is not None and high is None and not never


def test_the_compiler_is_skipped_with_its_reason_where_it_cannot_build(tmp_path):
    cpu = devices.open_device("cpu")
    assert compiling.unavailable(cpu, "reduce-overhead") == "reduce-overhead replays CUDA graphs; the CPU has none"
    assert "unknown torch.compile mode" in compiling.unavailable(cpu, "fastest")
    run = run_benches("-k", "cpu-compile and not reduce", "-rs", storage=tmp_path, env_extra={"CXX": str(tmp_path / "no-such-compiler")})
    assert run.ret == 0, run.output
    assert "needs a C++ compiler, and none was found (install g++ or set CXX)" in run.stdout
    assert " passed" not in run.stdout.splitlines()[-1]


def test_the_gpu_compiler_is_skipped_without_a_c_compiler_for_tritons_launchers(tmp_path, monkeypatch):
    """Triton builds its kernel launchers with $CC, else gcc or clang: without one the compiled cuda:0
    variants are skipped with that reason, not failed mid-compile (Triton's presence is the GPU
    side's, faked here: this machine has no GPU, so torch reports no usable Triton)."""
    import torch.utils._triton

    def executable(name: str) -> str:
        path = tmp_path / name
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
        return str(path)

    cuda = backends.BACKENDS["cuda"]
    monkeypatch.setattr(torch.utils._triton, "has_triton", lambda: False)
    assert "needs Triton" in cuda.compiler_unavailable("default")
    monkeypatch.setattr(torch.utils._triton, "has_triton", lambda: True)
    monkeypatch.setenv("CC", executable("my-cc"))
    assert cuda.compiler_unavailable("default") is None and cuda.compiler_unavailable("reduce-overhead") is None
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    assert cuda.compiler_unavailable("default") == (
        "torch.compile's GPU backend (Triton) needs a C compiler for its kernel launchers, and none was found (install gcc or set CC)"
    )
    monkeypatch.delenv("CC")
    monkeypatch.setenv("PATH", str(tmp_path))  # no gcc, no clang
    assert "needs a C compiler" in cuda.compiler_unavailable("default")
    executable("clang")
    assert cuda.compiler_unavailable("default") is None


def test_a_compiled_step_that_trains_wrong_fails_its_guard(tmp_path):
    """A miscompiled optimizer step (it updates nothing) fails the same convergence check as eager would."""
    run = run_benches("-p", "tests.plugins.miscompile", "-k", "test_linear_regression and cpu-compile and not reduce", storage=tmp_path)
    assert run.ret == 1, run.output
    assert "FAILED benches/test_linear_regression.py::test_linear_regression[cpu-compile]" in run.stdout
    assert "is not near the noise variance" in run.stdout
    assert "1 failed" in run.stdout and " passed" not in run.stdout.splitlines()[-1]


OWN_COMPILED = {
    "test_own.py": '''
import pytest
import torch


@pytest.mark.parametrize("compile_mode", ["eager", "default"])
def test_step(bench, device, compile_mode):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    forward = bench.compile(device, model)
    x = torch.randn(512, 16)
    bench.run(device, lambda: forward(x).sum(), rounds=8)


def test_recompiles_while_timed(bench, device):
    calls = []
    double = bench.compile(device, lambda x: x * 2, mode="default")

    def step():
        calls.append(1)
        # From the fifth call on, another dtype: the compiler compiles again, inside the timed rounds.
        return double(torch.ones(64, dtype=torch.float32 if len(calls) < 5 else torch.float64))

    bench.run(device, step, rounds=8)


def test_compile_after_run(bench, device):
    bench.run(device, lambda: torch.ones(4) * 2, rounds=3)
    bench.compile(device, lambda x: x)


def test_bad_mode(bench, device):
    bench.compile(device, lambda x: x, mode="fastest")
''',
}


@pytest.mark.skipif(not INSTALLED, reason="devicebench is not installed here (pip install -e .): no pytest11 entry point to test")
def test_ones_own_step_eager_and_compiled_in_one_test(tmp_path, capsys):
    root = project(tmp_path, OWN_COMPILED)
    proc = pytest_in(root, "--benchmark-only", "--bench-size=smoke", "--benchmark-autosave", "--bench-devices=cpu", "-rA", timeout=600)
    out = proc.stdout
    assert "bench.compile comes before bench.run: the step bench.run times is the compiled one" in out
    assert "bench.compile(mode='fastest'): the mode is eager or one of torch.compile's: default, reduce-overhead" in out
    assert "2 failed, 3 passed" in out, out + proc.stderr
    [path] = root.glob("results/*/*/0001_*.json")
    results = {b["name"]: b["extra_info"] for b in json.loads(path.read_text())["benchmarks"]}
    eager, compiled = results["test_step[cpu-eager]"], results["test_step[cpu-default]"]
    assert eager["compile_mode"] == "eager" and "compile_s" not in eager
    assert compiled["compile_mode"] == "default" and compiled["eager_reference"] == "eager" and compiled["compile_s"] > 0
    recompiled = results["test_recompiles_while_timed[cpu]"]
    assert recompiled["recompiles_in_rounds"] >= 1 and recompiled["compile_recompiles"] >= 1

    assert cli.main(["speedup", str(path), "--format", "json"]) == 0
    rows = {(r["workload"], r["variant"]): r for r in json.loads(capsys.readouterr().out)}
    gain = rows[("test_step", "default")]["compiled"]["cpu"]
    assert gain["reference"] == "cpu-eager" and gain["ratio"] > 0
    assert gain["never"] or gain["break_even"] > 0
    # A compile inside the timed rounds is said wherever the figure is read.
    assert cli.main(["show", str(path)]) == 0
    shown = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("test_recompiles_while_timed[cpu]"))
    assert "recompiled" in shown and "(they timed the compiler)" in shown
    assert cli.main(["compare", str(path), str(path)]) == 1  # the two misuses failed: regressions of the candidate
    assert "test_recompiles_while_timed[cpu]: recompiled inside the timed rounds (they timed the compiler) in 1 of 1 baseline" in capsys.readouterr().out


def test_the_report_says_what_compiling_gives_per_machine_in_one_sentence(smoke_run, tmp_path):
    assert cli.main(["report", str(smoke_run.storage), "--out", str(tmp_path / "report")]) == 0
    summary = (tmp_path / "report" / "summary.md").read_text()
    first_screen = summary.split("\n## ")[1]  # the summary, one short line each
    [sentence] = [line for line in first_screen.splitlines() if line.startswith("- torch.compile: ")]
    assert "cnn compile " in sentence and "vs cpu-resident" in sentence
    assert "linreg compile " in sentence and "vs cpu-eager" in sentence
    assert sentence.count("pays off after") + sentence.count("never pays off") == 2
    assert "torch.compile against eager, the same work on the same device:" in (tmp_path / "report" / "index.html").read_text()
