"""A failing benchmark fails loudly and alone: out-of-memory and diverged training."""

import pytest

from devicebench import cli

from .conftest import run_benches


def test_out_of_memory_fails_that_benchmark_with_its_size_and_the_run_goes_on(tmp_path):
    run = run_benches("-p", "tests.plugins.oom", "-k", "matmul or ceiling", storage=tmp_path)
    assert run.ret == 1, run.output
    assert "out of memory on cpu at --bench-size=smoke, m=256, k=64, n=256" in run.stdout
    assert "Tried to allocate 20.00 GiB" in run.stdout
    assert "Traceback" not in run.stdout
    data = run.json()
    assert {b["name"] for b in data["benchmarks"]} >= {"test_ceiling[cpu-copy]", "test_ceiling[cpu-matmul-fp32]"}
    [failed] = data["devicebench"]["failed"]
    assert failed["name"] == "test_matmul[cpu-fp32]"
    assert "out of memory on cpu" in failed["error"]


def test_diverged_training_is_a_failure_not_a_number(tmp_path):
    # The compiled variants run the same check (tests/test_compile.py); leaving them out spares a compile.
    run = run_benches("-p", "tests.plugins.diverge", "-k", "linear_regression and not compile", storage=tmp_path)
    assert run.ret == 1, run.output
    assert "training diverged" in run.stdout
    assert "2 failed" in run.stdout
    assert run.run_files() == [] or all(
        b["name"] not in ("test_linear_regression[cpu-eager]", "test_linear_regression[cpu-fused]") for b in run.json()["benchmarks"]
    )


@pytest.mark.parametrize("where", ["on a line", "where no line number is"])
def test_an_interrupted_run_keeps_what_finished_and_drops_the_interrupted_benchmark(tmp_path, capsys, where):
    env = {"DEVICEBENCH_TEST_INTERRUPT_NO_LINE": "1"} if where == "where no line number is" else None
    run = run_benches("-p", "tests.plugins.interrupt", "--bench-devices=cpu", "-k", "ceiling or linear_regression", storage=tmp_path, env_extra=env)
    assert run.ret == 2, run.output  # pytest's "interrupted", not a TypeError in reporting it
    assert "Traceback (most recent call last)" not in run.output and "KeyboardInterrupt" in run.output
    data = run.json()
    names = {b["name"] for b in data["benchmarks"]}
    assert {"test_ceiling[cpu-copy]", "test_linear_regression[cpu-eager]"} <= names
    assert "test_linear_regression[cpu-fused]" not in names  # one round is not a result
    assert data["devicebench"]["interrupted"] is True
    [path] = run.run_files()
    assert cli.main(["show", str(path)]) == 0
    assert "interrupted: the run was stopped early" in capsys.readouterr().out
    assert cli.main(["compare", str(path), str(path)]) == 0
    assert "warning: 1 candidate run(s) were interrupted" in capsys.readouterr().out
