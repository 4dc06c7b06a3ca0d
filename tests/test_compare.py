"""``devicebench compare`` on golden runs made by the real suite (``tests/data/make-golden``)."""

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from devicebench import cli
from devicebench.reading import compare, machines
from devicebench.reading.runs import load_run

RUNS = Path(__file__).parent / "data" / "runs"


def golden(name: str) -> Path:
    return RUNS / f"{name}.json"


def run_cli(*args: str, capsys) -> tuple[int, str, str]:
    try:
        code = cli.main(list(args))
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write(tmp_path: Path, name: str, run: dict) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(run))
    return str(path)


def verdicts(base: str, cand: str, **settings) -> dict[str, compare.TimeVerdict]:
    result = compare.compare_runs(load_run(golden(base)), load_run(golden(cand)), compare.Settings(**settings))
    return {v.name: v for v in result.verdicts}


def interleaved(side: str, first: int = 0, last: int | None = None) -> str:
    """The 7 interleaved seed-size runs of one side (A, B unchanged; S matmul 20% slower), as a CLI argument."""
    return ",".join(str(p) for p in sorted((RUNS / "interleaved" / side).glob("*.json"))[first:last])


def runs_of(side: str, first: int = 0, last: int | None = None) -> list[dict]:
    return [load_run(p) for p in interleaved(side, first, last).split(",")]


def by_name(result: compare.Comparison) -> dict[str, compare.TimeVerdict]:
    return {v.name: v for v in result.verdicts}


def test_removed_and_added_benchmarks_are_listed_not_regressions():
    removed = verdicts("base", "only-matmul")
    assert removed["test_linear_regression[cpu-eager]"].status == "removed"
    assert removed["test_matmul[cpu-fp32]"].status == "inconclusive"  # one run a side, no history
    added = verdicts("only-matmul", "base")
    assert added["test_cnn[cpu-resident]"].status == "added"
    assert not any(v.is_regression for v in removed.values() if v.status == "removed")


def test_a_skipped_benchmark_is_not_comparable_with_its_reason():
    result = verdicts("base", "dp-only")
    skipped = result["test_matmul[cpu-fp32]"]
    assert skipped.status == "not comparable"
    assert skipped.note == "candidate skipped it: not selected by --bench-devices=dp"
    assert result["test_cnn[cpu-loader]"].status == "removed"  # deselected by -k: no recorded reason


def test_runs_without_raw_times_compare_by_their_medians(tmp_path, capsys):
    """Rounds never were the evidence: a run saved without --benchmark-save-data compares alike."""
    side = []
    for path in interleaved("S").split(","):
        run = load_run(path)
        for bench in run["benchmarks"]:
            bench["stats"].pop("data")
        side.append(write(tmp_path, Path(path).stem, run))
    code, out, _ = run_cli("compare", interleaved("A"), ",".join(side), "--no-history", capsys=capsys)
    assert code == 1 and "1 regression(s): test_matmul[cpu-fp32] (slower)" in out


def test_what_was_learned_and_used_is_compared(tmp_path, capsys):
    base = load_run(golden("base"))
    worse = copy.deepcopy(base)
    for bench in worse["benchmarks"]:
        info = bench["extra_info"]
        if info["workload"] == "cnn":
            info["val_accuracy"] -= 0.05
        if info["workload"] == "linear_regression":
            info["final_loss"] *= 1.5
    code, out, _ = run_cli("compare", write(tmp_path, "base", base), write(tmp_path, "worse", worse), "--no-history", capsys=capsys)
    assert code == 1
    assert "What the benchmarks learned and used" in out
    assert "test_cnn[cpu-loader] (val_accuracy)" in out and "test_linear_regression[cpu-eager] (final_loss)" in out


def test_peak_memory_growth_is_a_regression():
    base = load_run(golden("base"))
    grown = copy.deepcopy(base)
    base["benchmarks"][0]["extra_info"]["peak_memory_bytes"] = 1_000_000
    grown["benchmarks"][0]["extra_info"]["peak_memory_bytes"] = 1_200_000
    result = compare.compare_runs(base, grown)
    assert [(q.name, q.metric) for q in result.quality] == [(base["benchmarks"][0]["name"], "peak_memory_bytes")]


def test_different_hardware_is_refused_unless_allowed(tmp_path, capsys):
    other = load_run(golden("seed-b"))
    other["machine_info"]["devicebench"]["fingerprint"]["cpu_threads"] = 64
    other["machine_info"]["devicebench"]["fingerprint"]["gpu_models"] = ["NVIDIA H100 80GB HBM3"]
    path = write(tmp_path, "other", other)
    code, _, err = run_cli("compare", str(golden("seed-a")), path, capsys=capsys)
    assert code == 2 and err.count("\n") == 1
    assert "different machines" in err and "cpu_threads: 2 vs 64" in err and "gpu_models" in err
    code, out, _ = run_cli("compare", str(golden("seed-a")), path, "--allow-mismatch", "--no-history", capsys=capsys)
    assert code == 0 and "Different hardware (compared anyway): cpu_threads 2 -> 64" in out


def test_a_job_over_several_machines_is_other_hardware():
    base, two_nodes = load_run(golden("seed-a")), load_run(golden("seed-b"))
    assert machines.hardware_diff(base, two_nodes) == []
    two_nodes["machine_info"]["devicebench"]["fingerprint"]["nodes"] = 2
    assert machines.hardware_diff(base, two_nodes) == [("nodes", 1, 2)]


def test_changed_software_is_printed_first(tmp_path, capsys):
    newer = load_run(golden("rerun"))
    newer["machine_info"]["devicebench"]["torch"] = "9.9.9"
    code, out, _ = run_cli("compare", str(golden("base")), write(tmp_path, "newer", newer), capsys=capsys)
    lines = out.splitlines()
    assert lines[2].startswith("What changed between the runs: torch ") and lines[2].endswith("-> 9.9.9")


def test_plain_pytest_benchmark_runs_compare_with_a_warning(capsys):
    code, out, _ = run_cli("compare", str(golden("plain-a")), str(golden("plain-b")), capsys=capsys)
    assert code in (0, 1)
    assert "warning: the baseline has no devicebench machine block" in out
    assert "test_sum" in out


@pytest.mark.parametrize("fmt", ["markdown", "json"])
def test_formats(fmt, capsys):
    code, out, _ = run_cli("compare", interleaved("A"), interleaved("S"), "--format", fmt, capsys=capsys)
    assert code == 1
    if fmt == "json":
        data = json.loads(out)
        assert data["regressions"] == ["test_matmul[cpu-fp32] (slower)"]
        assert data["runs"] == {"baseline": 7, "candidate": 7, "history": 0}
        assert "Holm" in data["procedure"]
        [matmul] = [b for b in data["benchmarks"] if b["name"] == "test_matmul[cpu-fp32]"]
        # Every number behind the verdict: both sides' run medians, the estimate, its interval, p before and after Holm.
        assert len(matmul["baseline_runs"]) == len(matmul["candidate_runs"]) == 7
        assert matmul["ratio_low"] <= matmul["ratio"] <= matmul["ratio_high"] and matmul["p_value"] <= matmul["p_adjusted"]
        assert matmul["spread"] > 0 and matmul["method"] == "Hodges-Lehmann, Mann-Whitney"
    else:
        assert out.startswith("## devicebench compare") and "| `test_matmul[cpu-fp32]` |" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.json", "other.json"], "missing.json: no such file, and not a run id"),
        (["0042", "latest"], "0042: no stored runs under"),
        (["--threshold", "-1", "a", "b"], "argument --threshold: -1 is not between 0 and 10"),
        (["--alpha", "x", "a", "b"], "argument --alpha: 'x' is not a number"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    code, _, err = run_cli("compare", "--results", str(tmp_path), *args, capsys=capsys)
    assert code == 2 and err.count("\n") == 1 and message in err


def test_bad_files_are_named(tmp_path, capsys):
    truncated = tmp_path / "truncated.json"
    truncated.write_text(golden("base").read_text()[:500])
    code, _, err = run_cli("compare", str(golden("base")), str(truncated), capsys=capsys)
    assert code == 2 and f"{truncated}: not valid JSON" in err


def test_run_ids_resolve_in_the_results_folder(tmp_path, capsys):
    machine = tmp_path / "some-machine" / "Linux-CPython-3.11-64bit"
    machine.mkdir(parents=True)
    (machine / "0001_abc_20260101_000000.json").write_text(golden("seed-b").read_text())
    (machine / "0002_def_20260102_000000.json").write_text(golden("seed-slow").read_text())
    code, out, _ = run_cli("compare", "--results", str(tmp_path), "1", "latest", capsys=capsys)
    assert code == 0 and "0001_abc" in out and "0002_def" in out
    code, _, err = run_cli("compare", "--results", str(tmp_path), "3", "latest", capsys=capsys)
    assert code == 2 and "3: no run 0003 under" in err


def test_pytest_benchmark_still_reads_every_stored_run():
    files = sorted(Path(__file__).parents[1].glob("results/*/*/*.json")) + sorted(RUNS.glob("*.json"))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_benchmark", "compare", *map(str, files)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "Failed to load" not in proc.stderr + proc.stdout
    assert "test_matmul[cpu-fp32]" in proc.stdout


def test_runs_of_different_machines_are_not_merged(tmp_path, capsys):
    other = load_run(golden("seed-b"))
    other["machine_info"]["devicebench"]["fingerprint"]["cpu_model"] = "Another CPU"
    code, _, err = run_cli("compare", f"{golden('seed-a')},{write(tmp_path, 'other', other)}", str(golden("seed-slow")), capsys=capsys)
    assert code == 2 and "runs of different machines cannot be merged: cpu_model" in err


def test_interleaved_runs_gate_without_false_alarms(capsys):
    """7 unchanged runs a side, interleaved on the noisy 2-core machine: no regression either way."""
    for base, cand in (("A", "B"), ("B", "A")):
        code, out, _ = run_cli("compare", interleaved(base), interleaved(cand), capsys=capsys)
        assert code == 0, out
        assert out.startswith("devicebench compare: 7 runs") and "no regression" in out


def test_interleaved_runs_catch_the_slowed_matmul_and_nothing_else(capsys):
    result = compare.compare_sides(runs_of("A"), runs_of("S"))
    assert result.regressions == ["test_matmul[cpu-fp32] (slower)"]
    matmul = by_name(result)["test_matmul[cpu-fp32]"]
    # The whole interval clears the 5% threshold, and the adjusted p the family-wise alpha.
    assert matmul.ratio_low > 1.05 and matmul.ratio > 1.2 and matmul.p_adjusted < 0.05
    assert matmul.p_adjusted == pytest.approx(min(1.0, 3 * matmul.p_value))  # Holm's first step over 3 benchmarks


def test_runs_of_different_sizes_are_not_comparable():
    seed, smoke = load_run(golden("seed-a")), load_run(golden("base"))
    result = {v.name: v for v in compare.compare_runs(smoke, seed).verdicts}
    assert result["test_matmul[cpu-fp32]"].status == "not comparable"
    assert result["test_matmul[cpu-fp32]"].note == "sizes differ: smoke vs seed"


def test_a_ddp_benchmark_on_another_world_size_is_not_comparable(smoke_run):
    """torchrun gives ddp:cpu the launcher's world size: 2 ranks and 4 ranks are different work."""
    base = load_run(smoke_run.run_files()[0])
    cand = copy.deepcopy(base)
    for bench in cand["benchmarks"]:
        if bench["name"] == "test_cnn[ddp:cpu-resident]":
            bench["extra_info"]["world_size"] = 4
    result = {v.name: v for v in compare.compare_runs(base, cand).verdicts}
    assert result["test_cnn[ddp:cpu-resident]"].status == "not comparable"
    assert result["test_cnn[ddp:cpu-resident]"].note == "world sizes differ: 2 vs 4"
    assert result["test_cnn[ddp:cpu-loader]"].status != "not comparable"


RESULTS = Path(__file__).parents[1] / "results"
H200_RUN = RESULTS / "intel-xeon-16t-nvidia-h200-x1-6fb4e97f" / "Linux-CPython-3.12-64bit" / "0001_51ce617.json"


def test_accuracy_is_not_judged_between_models_trained_for_other_epochs(capsys):
    """The H200 run's cpu-resident trained 9 epochs (rounds then followed speed); the 2-core runs train 4."""
    [cpu_run] = RESULTS.glob("amd-epyc-2t-540f5fe3/*/0006_*.json")
    result = compare.compare_runs(load_run(cpu_run), load_run(H200_RUN))
    assert dict(result.quality_not_comparable)["test_cnn[cpu-resident]"] == "epochs 4 vs 9"
    assert not [q for q in result.quality if q.name == "test_cnn[cpu-resident]"]
    code, out, _ = run_cli("compare", str(cpu_run), str(H200_RUN), "--allow-mismatch", capsys=capsys)
    assert "Accuracy, loss and memory not compared (not like for like)" in out and "epochs 4 vs 9" in out


def test_accuracy_is_not_judged_across_data_sets_or_batches(tmp_path):
    base = load_run(golden("base"))
    other = copy.deepcopy(base)
    for bench in other["benchmarks"]:
        info = bench["extra_info"]
        if info["workload"] == "cnn":
            info["val_accuracy"] -= 0.2  # would be a regression, were it the same training
            info["dataset"] = "MNIST" if info["variant"] == "loader" else info["dataset"]
            info["batch_size"] = 256 if info["variant"] == "resident" else info["batch_size"]
    result = compare.compare_runs(base, other)
    verdicts = {v.name: v for v in result.verdicts}
    # Other data or another batch is other work: neither its time nor what it learned is compared.
    assert verdicts["test_cnn[cpu-loader]"].status == "not comparable"
    assert verdicts["test_cnn[cpu-loader]"].note.startswith("the work differs: dataset ")
    assert verdicts["test_cnn[cpu-resident]"].note == "the work differs: global batch 128 vs 256"
    assert not result.quality and not result.regressions


def test_a_changed_environment_is_not_the_changes_regression(tmp_path, capsys):
    slowed = []
    for path in interleaved("S").split(","):
        run = load_run(path)
        run["machine_info"]["devicebench"]["torch"] = "9.9.9"
        slowed.append(write(tmp_path, Path(path).stem, run))
    code, out, err = run_cli("compare", interleaved("A"), ",".join(slowed), capsys=capsys)
    assert code == 2 and err.count("\n") == 1 and "not comparable: the environment changed" in err
    assert "The environment changed: what is slower or worse below is not counted" in out
    assert "slower (environment changed)" in out and "--allow-env-change counts them" in out
    code, out, _ = run_cli("compare", interleaved("A"), ",".join(slowed), "--allow-env-change", capsys=capsys)
    assert code == 1 and "test_matmul[cpu-fp32] (slower)" in out.splitlines()[-1]
    # A changed environment with nothing slower is no regression and says what changed.
    newer = load_run(golden("seed-b"))
    newer["machine_info"]["devicebench"]["torch"] = "9.9.9"
    code, out, _ = run_cli("compare", str(golden("seed-a")), write(tmp_path, "b", newer), capsys=capsys)
    assert code == 0 and "What changed between the runs: torch" in out


def test_a_generic_cpu_name_compares_with_its_generation(tmp_path, capsys):
    base, cand = load_run(golden("seed-a")), load_run(golden("seed-b"))
    genoa = "family 25 model 17 stepping 1; avx2 avx512f; L2 1024K, L3 32768K"
    milan = "family 25 model 1 stepping 1; avx2; L2 512K, L3 32768K"
    for run, detail in ((base, genoa), (cand, milan)):
        run["machine_info"]["devicebench"]["fingerprint"]["cpu_detail"] = detail
    assert machines.hardware_diff(base, cand) == [("cpu_detail", genoa, milan)]
    # A run stored before the detail existed is unknown, not different: compared, with a warning.
    del base["machine_info"]["devicebench"]["fingerprint"]["cpu_detail"]
    result = compare.compare_runs(base, cand)
    assert result.hardware_diff == []
    assert any("does not record which CPU generation" in w for w in result.warnings)


# --- the gate's evidence: each test below fails on the gate that judged rounds of one run a side


def test_one_run_a_side_without_history_is_inconclusive_not_a_p_value_from_rounds(capsys):
    """0003 is an unchanged rerun of 0002; a rank test over their rounds called 4 benchmarks slower (p = 4.6e-16)."""
    [run2] = RESULTS.glob("amd-epyc-2t-540f5fe3/*/0002_*.json")
    [run3] = RESULTS.glob("amd-epyc-2t-540f5fe3/*/0003_*.json")
    code, out, _ = run_cli("compare", str(run3), str(run2), "--no-history", capsys=capsys)
    assert code == 0, out
    result = compare.compare_runs(load_run(run3), load_run(run2))
    timed = [v for v in result.verdicts if v.baseline_runs]
    assert timed and all(v.status == "inconclusive" and v.p_value is None for v in timed)
    assert all("one run a side, no history" in v.note for v in timed)
    code, _, err = run_cli("compare", str(run3), str(run2), "--no-history", "--fail-inconclusive", capsys=capsys)
    assert code == 3 and err.startswith("devicebench: inconclusive: ")


@pytest.mark.parametrize(("base", "cand"), [("0002", "0003"), ("0003", "0002"), ("0005", "0003"), ("0005", "0006"), ("0006", "0005")])
def test_the_stored_unchanged_pairs_give_no_regression(base, cand, capsys):
    folder = next(RESULTS.glob("amd-epyc-2t-540f5fe3/*"))
    paths = [str(next(folder.glob(f"{run}_*.json"))) for run in (base, cand)]
    code, out, _ = run_cli("compare", *paths, "--history", str(folder), capsys=capsys)
    assert code == 0, out
    # No regression; a slowdown the evidence can neither confirm nor rule out is named as such.
    assert re.match(r"no (confirmed )?regression", out.splitlines()[-1]), out.splitlines()[-1]


def _sides(n_benchmarks: int, slower: float) -> tuple[list[dict], list[dict]]:
    """5 runs a side of ``n_benchmarks`` copies of the interleaved A runs' matmul, every candidate run ``slower``."""
    base, cand = [], []
    for i, run in enumerate(runs_of("A", 0, 5) + runs_of("B", 0, 5)):
        [matmul] = [copy.deepcopy(b) for b in run["benchmarks"] if b["name"] == "test_matmul[cpu-fp32]"]
        run["benchmarks"] = []
        for k in range(n_benchmarks):
            twin = copy.deepcopy(matmul)
            twin["name"] = twin["fullname"] = f"test_matmul[cpu-fp32-{k}]"
            if i >= 5:
                twin["stats"]["median"] *= slower
            run["benchmarks"].append(twin)
        (base if i < 5 else cand).append(run)
    return base, cand


def test_the_stated_alpha_is_family_wise():
    """33 benchmarks, every candidate run 1.3x slower: each alone reaches p = 1/252, but the family does not reach 0.05."""
    base, cand = _sides(33, 1.3)
    result = compare.compare_sides(base, cand)
    assert result.regressions == []
    assert all(v.p_value == pytest.approx(1 / 252) and v.p_adjusted == pytest.approx(33 / 252) for v in result.verdicts)
    assert "Holm-adjusted over 33 benchmark(s), < 0.05 (family-wise)" in result.procedure
    one = compare.compare_sides(*_sides(1, 1.3))  # the same evidence alone is a regression
    assert one.regressions == ["test_matmul[cpu-fp32-0] (slower)"]


def test_three_runs_against_three_cannot_reach_alpha_and_say_how_many_are_needed():
    """Every slowed run slower than every unchanged one: 1 in C(6, 3) = 20 under the null, not a regression."""
    result = compare.compare_sides(runs_of("A", 0, 3), runs_of("S", 0, 3))
    matmul = by_name(result)["test_matmul[cpu-fp32]"]
    assert max(matmul.baseline_runs) < min(matmul.candidate_runs)
    assert matmul.status == "inconclusive" and not result.regressions
    assert "3 against 3 runs cannot reach p < 0.05 at all" in matmul.note and "runs a side would catch" in matmul.note


def test_a_failure_in_some_candidate_runs_is_a_regression(tmp_path, capsys):
    """The linear regression's guard failed in 3 of 7 runs: the 4 that passed must not hide it."""
    cand = []
    for i, path in enumerate(interleaved("B").split(",")):
        run = load_run(path)
        if i < 3:
            run["benchmarks"] = [b for b in run["benchmarks"] if b["name"] != "test_linear_regression[cpu-eager]"]
            run["devicebench"]["failed"].append(
                {"fullname": "benches/test_linear_regression.py::test_linear_regression[cpu-eager]", "name": "x", "error": "AssertionError: final loss 9.1"}
            )
        cand.append(write(tmp_path, f"cand{i}", run))
    code, out, _ = run_cli("compare", interleaved("A"), ",".join(cand), capsys=capsys)
    assert code == 1
    assert "FAILED (failed in 3 of 7 candidate runs: AssertionError: final loss 9.1)" in out
    # Failed only in the baseline: not comparable, not a regression.
    code, out, _ = run_cli("compare", ",".join(cand), interleaved("A"), capsys=capsys)
    assert code == 0 and "not comparable (failed in the baseline: AssertionError: final loss 9.1)" in out


def test_the_same_run_named_twice_counts_once(capsys):
    [run2] = RESULTS.glob("amd-epyc-2t-540f5fe3/*/0002_*.json")
    [run3] = RESULTS.glob("amd-epyc-2t-540f5fe3/*/0003_*.json")
    code, out, _ = run_cli("compare", ",".join([str(run2)] * 5), ",".join([str(run3)] * 5), "--no-history", capsys=capsys)
    assert code == 0 and not out.startswith("devicebench compare: 5 runs")


def _slower_machine(runs: list[dict], factor: float) -> list[dict]:
    runs = copy.deepcopy(runs)
    for run in runs:
        for bench in run["benchmarks"]:
            bench["stats"]["median"] *= factor
    return runs


def gate_runs(side: str, first: int = 0, last: int | None = None) -> list[dict]:
    """The gate runs (tests/data/make-gate-runs): the CPU job's benchmarks with their ceilings; S has the matmul 15% slower."""
    return [load_run(p) for p in sorted((RUNS / "gate" / side).glob("*.json"))[first:last]]


def test_a_slower_machine_is_said_first_and_is_not_the_codes_regression(capsys):
    """Everything, the ceilings too, 1.9x slower: the machine moved, and nothing is left for the code."""
    result = compare.compare_sides(gate_runs("A", 0, 7), _slower_machine(gate_runs("A", 7), 1.9))
    [cpu] = result.machine
    assert cpu.device == "cpu" and cpu.moved and cpu.ratio == pytest.approx(1.9, rel=0.15)
    assert result.regressions == []
    assert all(v.relative_to_ceiling for v in result.verdicts if not v.reference)
    ceilings = [v for v in result.verdicts if v.reference]
    assert len(ceilings) == 2 and all(not v.is_regression for v in ceilings)
    from devicebench.reading import render

    out = render.comparison(result, "table", "a", "b")
    assert out.splitlines()[2].startswith("The machine moved, not the code: cpu is 1.")
    # The same, judged as measured, would have called every workload slower.
    raw = [v for v in result.verdicts if not v.reference]
    assert all(v.raw_ratio > 1.5 for v in raw)


def test_a_slowdown_on_a_slower_machine_is_still_caught():
    result = compare.compare_sides(gate_runs("A", 0, 7), _slower_machine(gate_runs("S", 7), 1.9))
    assert result.machine[0].moved
    assert result.regressions == ["test_matmul[cpu-fp32] (slower)"]


def test_one_noisy_ceiling_is_not_the_machine_moving():
    """The copy ceiling wanders by 20% on a shared VM: the machine moved only if every ceiling moved alike."""
    base, cand = gate_runs("A", 0, 7), gate_runs("S", 7)
    for run in cand:
        for bench in run["benchmarks"]:
            if bench["name"] == "test_ceiling[cpu-copy]":
                bench["stats"]["median"] *= 1.3
    result = compare.compare_sides(base, cand)
    assert not result.machine[0].moved and not any(v.relative_to_ceiling for v in result.verdicts)
    assert result.regressions == ["test_matmul[cpu-fp32] (slower)"]


def test_noisy_and_throttled_runs_are_named_beside_the_verdicts(capsys):
    """A run that stopped at its time limit, or ran throttled, is said, run by run."""
    base, cand = gate_runs("A", 0, 5), gate_runs("A", 5, 10)
    for run in cand[:2]:
        for bench in run["benchmarks"]:
            bench["extra_info"].update(target_precision=0.01, stop_reason="time limit", median_precision=0.04, throttled_rounds=3)
    result = compare.compare_sides(base, cand)
    matmul = by_name(result)["test_matmul[cpu-fp32]"]
    assert matmul.noisy_runs == (0, 2) and matmul.throttled_runs == (0, 2)
    from devicebench.reading import render

    out = render.comparison(result, "table", "a", "b")
    assert "measurement: test_matmul[cpu-fp32]: noisy (stopped before the median was known) in 0 of 5 baseline and 2 of 5 candidate runs" in out
    assert "measurement: test_matmul[cpu-fp32]: throttled in 0 of 5 baseline and 2 of 5 candidate runs" in out


def test_an_inconclusive_slowdown_beyond_the_threshold_is_never_summed_up_as_no_regression(capsys):
    """One run a side, no history: the matmul 1.32x slower is inconclusive, and the last line says what is open."""
    code, out, _ = run_cli("compare", str(golden("seed-a")), str(golden("seed-slow")), "--no-history", capsys=capsys)
    assert code == 0, out  # nothing confirmed: no regression to fail on
    last = out.splitlines()[-1]
    assert last.startswith("no confirmed regression; 2 unconfirmed slowdown(s): ") and "test_matmul[cpu-fp32] (1.32x)" in last
    assert "run 3+ a side, or store 5+ runs" in last and "no regression" not in last
    assert "procedure: no benchmark had the runs for a test" in out and "Holm-adjusted over 0" not in out
    code, out, _ = run_cli("compare", str(golden("seed-a")), str(golden("seed-slow")), "--no-history", "--format", "json", capsys=capsys)
    unconfirmed = {u["name"]: (u["direction"], u["ratio"]) for u in json.loads(out)["unconfirmed"]}
    assert unconfirmed["test_matmul[cpu-fp32]"][0] == "slowdown" and unconfirmed["test_matmul[cpu-fp32]"][1] > 1.3


def test_sides_run_under_different_process_settings_are_said_not_like_for_like():
    base, cand = runs_of("A", 0, 1)[0], copy.deepcopy(runs_of("B", 0, 1)[0])
    base["machine_info"]["devicebench"]["process_settings"] = {"transparent_hugepage": "madvise", "aslr": True}
    cand["machine_info"]["devicebench"]["process_settings"] = {"OMP_NUM_THREADS": "1", "transparent_hugepage": "madvise", "aslr": False}
    [warning] = [w for w in compare.compare_runs(base, cand).warnings if "process settings" in w]
    assert warning == "the sides ran under different process settings (OMP_NUM_THREADS: unset vs 1, aslr: True vs False): their times are not like for like"
    # A run file is untrusted: unknown names and values that are not plain words are left out.
    cand["machine_info"]["devicebench"]["process_settings"] = {"<script>": "1", "OMP_WAIT_POLICY": "<b>x</b>", "transparent_hugepage": "madvise", "aslr": True}
    assert not [w for w in compare.compare_runs(base, cand).warnings if "process settings" in w]
    # Runs stored before the settings were recorded compare as they did.
    del cand["machine_info"]["devicebench"]["process_settings"]
    assert not [w for w in compare.compare_runs(base, cand).warnings if "process settings" in w]
